//! What ctxflow adds to a gRPC unary call with tonic over HTTP/2 on 127.0.0.1: the same service
//! and client, bare, then with `RequestContextLayer` on the server and `InjectContextLayer` on
//! the channel, the caller's request id and trace context sent and read on every call. Calls go
//! one after another on one connection; 1 s of warm-up and 3 s of measurement each.
#![allow(
    clippy::disallowed_methods,
    reason = "both servers run as the runtime's own tasks, so that only the layers differ"
)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ctxflow::tower::{InjectContextLayer, RequestContextLayer};
use ctxflow::ContextVar;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use text_grpc::TextServer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tower::Layer;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

fn echo() -> TextServer {
    TextServer::new(|text: String| async move { Ok(text) })
}

fn channel(runtime: &tokio::runtime::Runtime, address: std::net::SocketAddr) -> Channel {
    runtime.block_on(async {
        Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    })
}

fn unary_calls(c: &mut Criterion) {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listen = || {
        server_runtime
            .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .unwrap()
    };
    let (bare_listener, layered_listener) = (listen(), listen());
    let (bare_address, layered_address) = (
        bare_listener.local_addr().unwrap(),
        layered_listener.local_addr().unwrap(),
    );
    server_runtime.spawn(
        Server::builder()
            .add_service(echo())
            .serve_with_incoming(TcpIncoming::from(bare_listener)),
    );
    server_runtime.spawn(
        Server::builder()
            .layer(RequestContextLayer::new(&REQUEST_ID))
            .add_service(echo())
            .serve_with_incoming(TcpIncoming::from(layered_listener)),
    );

    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = channel(&client_runtime, bare_address);
    let layered =
        InjectContextLayer::new(&REQUEST_ID).layer(channel(&client_runtime, layered_address));
    let trace = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        SpanId::from(0x00f0_67aa_0ba9_02b7),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));

    let mut group = c.benchmark_group("grpc_unary");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("without_ctxflow", |b| {
        b.iter_custom(|iters| {
            client_runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(text_grpc::call(bare.clone(), "ping".into()).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("with_client_and_server_layers", |b| {
        b.iter_custom(|iters| {
            let _id = REQUEST_ID.set("req-0123456789".into());
            let calls = async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        text_grpc::call(layered.clone(), "ping".into())
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            };
            client_runtime.block_on(calls.with_context(trace.clone()))
        })
    });
    group.finish();
}

criterion_group!(benches, unary_calls);
criterion_main!(benches);
