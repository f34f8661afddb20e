//! What ctxflow adds to NATS messages on a real server (`CTXFLOW_NATS_URL`, as `.ci/run` sets;
//! without it nothing is measured): per publish, `Client::publish` against
//! `ctxflow::nats::publish` writing the request id and trace context into the headers; per
//! handled message, a batch published and received by a subscriber, handled bare against
//! handled through `ctxflow::nats::extract(..).scope(..)`. 1 s of warm-up and 3 s of
//! measurement each.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ctxflow::text_map::ContextPropagator;
use ctxflow::ContextVar;
use futures::StreamExt;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

fn trace() -> opentelemetry::Context {
    opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

async fn handle(message: async_nats::Message) {
    black_box((message.payload, REQUEST_ID.get()));
}

fn messages(c: &mut Criterion) {
    let Ok(url) = std::env::var("CTXFLOW_NATS_URL") else {
        eprintln!("benches/nats.rs: CTXFLOW_NATS_URL is not set; start nats-server and set it");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async_nats::connect(url)).unwrap();
    let carrier = ContextPropagator::new(&REQUEST_ID);
    let payload = bytes::Bytes::from_static(b"2 coffees");

    let mut group = c.benchmark_group("nats");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("publish/without_ctxflow", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    client
                        .publish("bench.publish", payload.clone())
                        .await
                        .unwrap();
                }
                client.flush().await.unwrap();
                start.elapsed()
            })
        })
    });
    group.bench_function("publish/with_context", |b| {
        b.iter_custom(|iters| {
            let _id = REQUEST_ID.set("req-0123456789".into());
            let publishing = async {
                let start = Instant::now();
                for _ in 0..iters {
                    ctxflow::nats::publish(&client, &carrier, "bench.publish", payload.clone())
                        .await
                        .unwrap();
                }
                client.flush().await.unwrap();
                start.elapsed()
            };
            runtime.block_on(publishing.with_context(trace()))
        })
    });

    // Published then received on one connection: each sample's messages handled in turn.
    let handled = |with_context: bool, iters: u64| {
        let subject = format!("bench.handle.{with_context}");
        let publishing = async {
            let mut subscriber = client.subscribe(subject.clone()).await.unwrap();
            client.flush().await.unwrap();
            let start = Instant::now();
            // In batches, well under the subscriber's buffer, so that no message is dropped.
            let mut left = iters;
            while left > 0 {
                let batch = left.min(1000);
                left -= batch;
                for _ in 0..batch {
                    match with_context {
                        true => ctxflow::nats::publish(
                            &client,
                            &carrier,
                            subject.clone(),
                            payload.clone(),
                        )
                        .await
                        .unwrap(),
                        false => client
                            .publish(subject.clone(), payload.clone())
                            .await
                            .unwrap(),
                    }
                }
                client.flush().await.unwrap();
                for _ in 0..batch {
                    let message = subscriber.next().await.unwrap();
                    match with_context {
                        true => {
                            let context = ctxflow::nats::extract(&carrier, &message);
                            context.scope(handle(message)).await
                        }
                        false => handle(message).await,
                    }
                }
            }
            start.elapsed()
        };
        let _id = REQUEST_ID.set("req-0123456789".into());
        runtime.block_on(publishing.with_context(trace()))
    };
    group.bench_function("published_and_handled/without_ctxflow", |b| {
        b.iter_custom(|iters| handled(false, iters))
    });
    group.bench_function("published_and_handled/with_context", |b| {
        b.iter_custom(|iters| handled(true, iters))
    });
    group.finish();
}

criterion_group!(benches, messages);
criterion_main!(benches);
