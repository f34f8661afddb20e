//! Messages through a real NATS server, each handled in its publisher's context.
//!
//! The server's URL comes from `CTXFLOW_NATS_URL`, which `.ci/run` sets after starting
//! `nats-server` on a free loopback port. Without it every test here says it was skipped and
//! passes; to run them by hand:
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! CTXFLOW_NATS_URL=nats://127.0.0.1:4222 cargo test --all-features --test nats
//! ```

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use async_nats::{Client, HeaderMap};
use ctxflow::propagation::ImportProblem;
use ctxflow::text_map::request_id::InvalidRequestId;
use ctxflow::text_map::{ContextPropagator, ExtractProblem, RequestIdSource, SpanRelation};
use ctxflow::{ContextVar, Propagation};
use futures::StreamExt;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio::sync::mpsc;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");

const URL_VARIABLE: &str = "CTXFLOW_NATS_URL";

/// A client of the test server, or `None` (with the reason written) when there is none.
async fn connect(test: &str) -> Option<Client> {
    let Ok(url) = std::env::var(URL_VARIABLE) else {
        // Straight to the terminal: the test harness keeps what `println!` and `eprintln!`
        // write in a passing test to itself, and a skip must show in a plain `cargo test`.
        let notice = format!(
            "tests/nats.rs: skipped {test}: {URL_VARIABLE} is not set, so there is no NATS \
             server to test against; .ci/run starts one, or run `nats-server -a 127.0.0.1 -p \
             4222` and set {URL_VARIABLE}=nats://127.0.0.1:4222\n"
        );
        let _ = io::Write::write_all(&mut io::stderr(), notice.as_bytes());
        return None;
    };
    Some(
        async_nats::connect(url)
            .await
            .expect("connect to the test NATS server"),
    )
}

/// A subject no other test uses.
fn subject(test: &str) -> String {
    format!("ctxflow.test.{test}.{}", std::process::id())
}

/// A remote span context standing for request `n`'s trace.
fn trace_of(n: u64) -> SpanContext {
    SpanContext::new(
        TraceId::from(0x4bf9_0000_0000_0000_0000_0000_0000_0000 + u128::from(n) + 1),
        SpanId::from(0x00f0_0000_0000_0000 + n + 1),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    )
}

fn carrier() -> ContextPropagator {
    ContextPropagator::new(&REQUEST_ID).propagation(Propagation::new().var(&TENANT))
}

/// What a handler saw: the request id, trace id and tenant it ran under, and the payload.
#[derive(Debug)]
struct Seen {
    request_id: String,
    trace_id: TraceId,
    tenant: Option<String>,
    payload: String,
    problems: Vec<ExtractProblem>,
}

/// Handles every message of `subscriber` in its publisher's context, each in a task of its own,
/// reporting what each handler saw.
fn consume(
    mut subscriber: async_nats::Subscriber,
    carrier: ContextPropagator,
) -> mpsc::UnboundedReceiver<Seen> {
    let (seen, receiver) = mpsc::unbounded_channel();
    ctxflow::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let extracted = ctxflow::nats::extract(&carrier, &message);
            let problems = extracted
                .error()
                .map(|error| error.problems().to_vec())
                .unwrap_or_default();
            let handle = async move {
                // A hop through the runtime: the context must hold across it.
                tokio::task::yield_now().await;
                let trace_context = opentelemetry::Context::current();
                Seen {
                    request_id: REQUEST_ID.get().unwrap_or_default(),
                    trace_id: trace_context.span().span_context().trace_id(),
                    tenant: TENANT.get(),
                    payload: String::from_utf8(message.payload.to_vec()).unwrap(),
                    problems,
                }
            };
            let handling = ctxflow::spawn(extracted.scope(handle));
            // Reported once the handler's task is over and its future dropped, consumer span
            // and all.
            let seen = seen.clone();
            ctxflow::spawn(async move {
                if let Ok(handled) = handling.await {
                    let _ = seen.send(handled);
                }
            })
            .detach();
        }
    })
    .detach();
    receiver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_from_a_hundred_concurrent_requests_are_each_handled_in_their_own_requests_context(
) {
    let Some(client) = connect("ten_thousand_messages").await else {
        return;
    };
    let subject = subject("ten_thousand");
    let mut seen = consume(client.subscribe(subject.clone()).await.unwrap(), carrier());
    client.flush().await.unwrap();

    const REQUESTS: u64 = 100;
    const MESSAGES: u64 = 100;
    let mut requests = Vec::new();
    for n in 0..REQUESTS {
        let (client, subject) = (client.clone(), subject.clone());
        let trace = opentelemetry::Context::new().with_remote_span_context(trace_of(n));
        let request = async move {
            let _id = REQUEST_ID.set(format!("req-{n}"));
            let _tenant = TENANT.set(format!("tenant-{n}"));
            let carrier = carrier();
            for i in 0..MESSAGES {
                // Hops between messages, so that requests interleave on both workers.
                tokio::task::yield_now().await;
                let payload = format!("{n} {i}");
                ctxflow::nats::publish(&client, &carrier, subject.clone(), payload.into())
                    .await
                    .unwrap();
            }
        };
        // Each request in a task of its own, as a handler would be.
        requests.push(ctxflow::spawn(request.with_context(trace)));
    }
    for request in requests {
        request.await.unwrap();
    }
    client.flush().await.unwrap();

    let mut mismatches = Vec::new();
    let mut payloads = HashSet::new();
    for _ in 0..REQUESTS * MESSAGES {
        let seen = seen.recv().await.unwrap();
        let n: u64 = seen.payload.split(' ').next().unwrap().parse().unwrap();
        let expected = (
            format!("req-{n}"),
            trace_of(n).trace_id(),
            Some(format!("tenant-{n}")),
        );
        if (seen.request_id.clone(), seen.trace_id, seen.tenant.clone()) != expected
            || !seen.problems.is_empty()
        {
            mismatches.push(seen);
        } else {
            payloads.insert(seen.payload);
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches: {:?}",
        mismatches.len(),
        &mismatches[..1]
    );
    assert_eq!(payloads.len() as u64, REQUESTS * MESSAGES);
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

/// The warnings of the whole test binary, from a global subscriber: a subscriber of one thread
/// would miss events whose callsites another test's thread registered first.
fn warnings() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn assert_uuid_v7(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("{id:?} is not a UUID"));
    assert_eq!(uuid.get_version(), Some(uuid::Version::SortRand), "{id}");
}

/// What a message is, the headers it carries, and the one problem they must be reported as.
type HostileCase = (&'static str, Vec<(&'static str, String)>, ExtractProblem);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_hostile_headers_is_handled_in_a_fresh_context_with_a_typed_error_and_a_warning(
) {
    let Some(client) = connect("hostile_headers").await else {
        return;
    };
    let captured = warnings();
    let subject = subject("hostile");
    let mut seen = consume(client.subscribe(subject.clone()).await.unwrap(), carrier());
    client.flush().await.unwrap();

    let request_id_refused = |reason| ExtractProblem::RequestId {
        source: RequestIdSource::Key,
        reason,
    };
    let cases: Vec<HostileCase> = vec![
        (
            "an oversized request id",
            vec![("x-request-id", "x".repeat(10_000))],
            request_id_refused(InvalidRequestId::TooLong {
                len: 10_000,
                max_len: 128,
            }),
        ),
        (
            "a forged request id",
            vec![("x-request-id", "abc user=admin".into())],
            request_id_refused(InvalidRequestId::ForbiddenByte {
                index: 3,
                byte: b' ',
            }),
        ),
        (
            "an empty request id",
            vec![("x-request-id", String::new())],
            request_id_refused(InvalidRequestId::Empty),
        ),
        (
            "a malformed traceparent",
            vec![("traceparent", "00-1-1-01".into())],
            ExtractProblem::Traceparent,
        ),
        (
            "an oversized baggage",
            vec![("baggage", format!("tenant={}", "a".repeat(9000)))],
            ExtractProblem::BaggageTooLarge {
                bytes: 9007,
                max: 8192,
            },
        ),
        (
            "a baggage request id that could forge a field",
            vec![("baggage", "request_id=abc%20user%3Dadmin".into())],
            ExtractProblem::RequestId {
                source: RequestIdSource::Baggage,
                reason: InvalidRequestId::ForbiddenByte {
                    index: 3,
                    byte: b' ',
                },
            },
        ),
    ];
    // The request id variable is listed too, so that the baggage may carry it.
    let listing_the_id = ContextPropagator::new(&REQUEST_ID)
        .propagation(Propagation::new().var(&TENANT).var(&REQUEST_ID));
    let mut listing = consume(
        client
            .subscribe(format!("{subject}.listing"))
            .await
            .unwrap(),
        listing_the_id,
    );
    client.flush().await.unwrap();

    for (n, (case, pairs, _)) in cases.iter().enumerate() {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.as_str());
        }
        let subject = match n {
            5 => format!("{subject}.listing"),
            _ => subject.clone(),
        };
        client
            .publish_with_headers(subject, headers, case.to_string().into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();

    let mut handled = Vec::new();
    for _ in 0..cases.len() - 1 {
        handled.push(seen.recv().await.unwrap());
    }
    handled.push(listing.recv().await.unwrap());
    let mut ids = HashSet::new();
    for (case, _, expected) in &cases {
        let seen = handled
            .iter()
            .find(|seen| seen.payload == *case)
            .unwrap_or_else(|| panic!("{case}: not handled"));
        assert_uuid_v7(&seen.request_id);
        assert!(ids.insert(seen.request_id.clone()), "{case}: a reused id");
        assert_eq!(seen.trace_id, TraceId::INVALID, "{case}");
        assert_eq!(seen.tenant, None, "{case}");
        assert_eq!(seen.problems, std::slice::from_ref(expected), "{case}");
    }

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains(&subject))
        .collect();
    assert_eq!(warnings.len(), cases.len(), "{log}");
    assert!(warnings
        .iter()
        .all(|line| line.contains("message handled in a fresh context")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_does_not_parse_leaves_the_listed_variables_unset_with_a_typed_error() {
    static PRIORITY: ContextVar<u8> = ContextVar::new("priority");
    let Some(client) = connect("unparsable_baggage").await else {
        return;
    };
    let subject = subject("unparsable");
    let carrier = carrier().propagation(Propagation::new().var(&TENANT).var(&PRIORITY));
    let mut seen = consume(client.subscribe(subject.clone()).await.unwrap(), carrier);
    client.flush().await.unwrap();

    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", "req-kept");
    headers.insert("baggage", "tenant=acme,priority=high");
    client
        .publish_with_headers(subject, headers, "unparsable".into())
        .await
        .unwrap();

    let seen = seen.recv().await.unwrap();
    assert_eq!((seen.request_id.as_str(), seen.tenant), ("req-kept", None));
    let [ExtractProblem::Variables(error)] = &seen.problems[..] else {
        panic!("{:?}", seen.problems);
    };
    assert!(matches!(
        error.problems(),
        [ImportProblem::Unparsable { key, .. }] if key == "priority"
    ));
}

/// One exporter for the test binary: OpenTelemetry's tracer provider is global.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider);
        exporter
    })
}

/// Publishes one message inside a span of a producer and returns that span's context with the
/// consumer span's data.
async fn consumer_span(
    test: &str,
    relation: SpanRelation,
) -> Option<(SpanContext, opentelemetry_sdk::trace::SpanData)> {
    let client = connect(test).await?;
    let exporter = exporter();
    let subject = subject(test);
    let span_name = format!("process {test}");
    let carrier = carrier().consumer_span(span_name.clone(), relation);
    let mut seen = consume(
        client.subscribe(subject.clone()).await.unwrap(),
        carrier.clone(),
    );
    client.flush().await.unwrap();

    let producer = opentelemetry::global::tracer("producer").start("publish");
    let producer = opentelemetry::Context::current_with_span(producer);
    let producer_span = producer.span().span_context().clone();
    let headers = {
        let _attached = producer.attach();
        let _id = REQUEST_ID.set("req-span".into());
        ctxflow::nats::headers(&carrier)
    };
    client
        .publish_with_headers(subject, headers, "span".into())
        .await
        .unwrap();
    let seen = seen.recv().await.unwrap();
    assert_eq!(seen.request_id, "req-span");

    let spans = exporter.get_finished_spans().unwrap();
    let consumer = spans
        .into_iter()
        .find(|span| span.name == span_name)
        .expect("the consumer span ended with its handler");
    assert_eq!(consumer.span_kind, opentelemetry::trace::SpanKind::Consumer);
    // The handler ran inside the consumer's span.
    assert_eq!(seen.trace_id, consumer.span_context.trace_id());
    Some((producer_span, consumer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_child_the_consumers_span_is_in_the_producers_trace_under_its_span() {
    let Some((producer, consumer)) = consumer_span("child_span", SpanRelation::Child).await else {
        return;
    };
    assert_eq!(consumer.span_context.trace_id(), producer.trace_id());
    assert_eq!(consumer.parent_span_id, producer.span_id());
    assert!(consumer.links.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_link_the_consumers_span_starts_a_trace_of_its_own_linked_to_the_producers() {
    let Some((producer, consumer)) = consumer_span("linked_span", SpanRelation::Link).await else {
        return;
    };
    assert_ne!(consumer.span_context.trace_id(), producer.trace_id());
    assert_eq!(consumer.parent_span_id, SpanId::INVALID);
    let links: Vec<(TraceId, SpanId)> = consumer
        .links
        .iter()
        .map(|link| (link.span_context.trace_id(), link.span_context.span_id()))
        .collect();
    assert_eq!(links, [(producer.trace_id(), producer.span_id())]);
}
