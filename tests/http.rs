//! `ctxflow::tower` against real servers on 127.0.0.1 (axum, and plain hyper for the second
//! service) with hyper-util's client: request ids, spawned work after the response, trace
//! context and baggage between two services, bad headers, and tower-http's request ids.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use ctxflow::tower::{InjectContextLayer, RequestContextLayer, ResponseBody};
use ctxflow::{ContextVar, Propagation};
use futures::stream::{self, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};
use tower_http::request_id::{MakeRequestId, RequestId, SetRequestIdLayer};
use uuid::Uuid;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");
static PRIORITY: ContextVar<u8> = ContextVar::new("priority");
static SESSION: ContextVar<String> = ContextVar::new("session");

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A server on 127.0.0.1 that stops, connections drained, when told to.
struct Server {
    address: SocketAddr,
    shutdown: oneshot::Sender<()>,
    serving: ctxflow::JoinHandle<()>,
}

impl Server {
    async fn axum(app: Router) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let serving = ctxflow::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Server {
            address,
            shutdown,
            serving,
        }
    }

    /// Plain hyper, HTTP/1, one task per connection spawned through ctxflow, so that each
    /// carries the context the server was started in.
    async fn hyper<S>(service: S) -> Server
    where
        S: tower::Service<
                Request<Incoming>,
                Response = Response<ResponseBody<Full<Bytes>>>,
                Error = Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let serving = ctxflow::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    _ = &mut stop => return,
                };
                let connection = hyper::server::conn::http1::Builder::new().serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service.clone()),
                );
                ctxflow::spawn(connection).detach();
            }
        });
        Server {
            address,
            shutdown,
            serving,
        }
    }

    fn uri(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.serving.await.unwrap();
    }
}

async fn get_text(client: &HttpClient, request: Request<Empty<Bytes>>) -> (HeaderMap, String) {
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (headers, String::from_utf8(body.to_vec()).unwrap())
}

fn echoed_id(headers: &HeaderMap) -> &str {
    headers["x-request-id"].to_str().unwrap()
}

fn assert_uuid_v7(id: &str) {
    let uuid = Uuid::parse_str(id).unwrap_or_else(|error| panic!("{id:?}: {error}"));
    assert_eq!(uuid.get_version(), Some(uuid::Version::SortRand), "{id}");
}

/// Opens the gates of one request's task and blocking closure.
type GateOpeners = (oneshot::Sender<()>, std_mpsc::Sender<()>);

/// Held by the handler's background work until the client has the response.
#[derive(Default)]
struct Gates {
    closed: Mutex<HashMap<String, GateOpeners>>,
}

impl Gates {
    fn close(&self, id: &str) -> (oneshot::Receiver<()>, std_mpsc::Receiver<()>) {
        let (task_gate, task_wait) = oneshot::channel();
        let (blocking_gate, blocking_wait) = std_mpsc::channel();
        let previous = self
            .closed
            .lock()
            .unwrap()
            .insert(id.to_owned(), (task_gate, blocking_gate));
        assert!(previous.is_none(), "two requests with the id {id}");
        (task_wait, blocking_wait)
    }

    fn open(&self, id: &str) {
        let (task_gate, blocking_gate) = self.closed.lock().unwrap().remove(id).unwrap();
        task_gate.send(()).unwrap();
        blocking_gate.send(()).unwrap();
    }
}

#[derive(Debug)]
struct Record {
    spawned_as: &'static str,
    sent_id: String,
    seen_id: Option<String>,
}

struct Background {
    gates: Arc<Gates>,
    records: mpsc::UnboundedSender<Record>,
}

/// Binds nothing itself: the layer did. Sends work off and returns at once; the work records
/// the request id it sees once the client has the response.
async fn send_work_off(State(state): State<Arc<Background>>, headers: HeaderMap) -> &'static str {
    let sent_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let (task_wait, blocking_wait) = state.gates.close(&sent_id);

    let records = state.records.clone();
    let task_sent_id = sent_id.clone();
    ctxflow::spawn(async move {
        task_wait.await.unwrap();
        let seen_id = REQUEST_ID.get();
        let spawned_as = "task";
        let sent_id = task_sent_id;
        records
            .send(Record {
                spawned_as,
                sent_id,
                seen_id,
            })
            .unwrap();
    })
    .detach();

    let records = state.records.clone();
    ctxflow::spawn_blocking(move || {
        blocking_wait.recv().unwrap();
        let seen_id = REQUEST_ID.get();
        let spawned_as = "blocking";
        records
            .send(Record {
                spawned_as,
                sent_id,
                seen_id,
            })
            .unwrap();
    })
    .detach();
    "accepted"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_a_handler_sends_off_keeps_its_own_request_id_after_the_response_for_a_thousand_concurrent_requests(
) {
    const REQUESTS: usize = 1_000;
    const IN_FLIGHT: usize = 200;

    let gates = Arc::new(Gates::default());
    let (records, mut recorded) = mpsc::unbounded_channel();
    let background = Arc::new(Background {
        gates: gates.clone(),
        records,
    });
    let app = Router::new()
        .route("/orders", get(send_work_off))
        .with_state(background)
        .layer(RequestContextLayer::new(&REQUEST_ID));
    let server = Server::axum(app).await;

    let client = client();
    let uri = server.uri("/orders");
    stream::iter(0..REQUESTS)
        .map(|n| {
            let (client, uri, gates) = (&client, &uri, &gates);
            async move {
                let id = format!("req-{n:04}");
                let request = Request::get(uri)
                    .header("x-request-id", &id)
                    .body(Empty::new())
                    .unwrap();
                let (headers, body) = get_text(client, request).await;
                assert_eq!(
                    (echoed_id(&headers), body.as_str()),
                    (id.as_str(), "accepted")
                );
                gates.open(&id);
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;

    // Once the server is gone, the records channel closes when the last piece of work is done.
    drop(client);
    server.stop().await;
    let mut seen: HashMap<(String, &str), usize> = HashMap::new();
    while let Some(record) = recorded.recv().await {
        assert_eq!(
            record.seen_id.as_deref(),
            Some(record.sent_id.as_str()),
            "{record:?}"
        );
        *seen.entry((record.sent_id, record.spawned_as)).or_default() += 1;
    }
    assert_eq!(seen.len(), 2 * REQUESTS);
    assert!(seen.values().all(|&count| count == 1));
}

async fn ids_seen_by_handler_and_task() -> String {
    let in_task = ctxflow::spawn(async { REQUEST_ID.get() }).await.unwrap();
    format!("{} {}", REQUEST_ID.get().unwrap(), in_task.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_an_id_gets_a_uuid_v7_that_the_handler_sees_and_the_response_echoes() {
    let app = Router::new()
        .route("/", get(ids_seen_by_handler_and_task))
        .layer(RequestContextLayer::new(&REQUEST_ID));
    let server = Server::axum(app).await;
    let client = client();

    let mut ids = Vec::new();
    for _ in 0..3 {
        let request = Request::get(server.uri("/")).body(Empty::new()).unwrap();
        let (headers, body) = get_text(&client, request).await;
        let id = echoed_id(&headers).to_owned();
        assert_uuid_v7(&id);
        assert_eq!(body, format!("{id} {id}"));
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every request gets its own id: {ids:?}");

    drop(client);
    server.stop().await;
}

async fn session_before_setting_it(
    _: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let before = SESSION.get().unwrap_or_else(|| "-".into());
    let _token = SESSION.set(REQUEST_ID.get().unwrap());
    Ok(Response::new(Full::new(Bytes::from(before))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_starts_from_an_empty_context_whatever_the_server_or_the_previous_request_set(
) {
    // Its connection tasks carry the context the server started in; requests must not.
    let service = ServiceBuilder::new()
        .layer(RequestContextLayer::new(&REQUEST_ID))
        .service_fn(session_before_setting_it);
    let server = SESSION
        .scope("server-wide".into(), Server::hyper(service))
        .await;
    let client = client();

    // One client, one kept-alive connection: the second request follows the first on it.
    for _ in 0..2 {
        let request = Request::get(server.uri("/")).body(Empty::new()).unwrap();
        let (_, session_seen) = get_text(&client, request).await;
        assert_eq!(session_seen, "-");
    }

    drop(client);
    server.stop().await;
}

/// Service B: reports what reached it from service A.
async fn report_what_arrived(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let trace_context = opentelemetry::Context::current();
    let span = trace_context.span();
    let remote = span.span_context();
    let vendor = trace_context
        .baggage()
        .get("vendor")
        .map_or_else(|| "-".into(), |value| value.to_string());
    let report = format!(
        "trace_id={} parent={} tenant={} priority={} session={} vendor={vendor}",
        remote.trace_id(),
        remote.span_id(),
        TENANT.get().unwrap_or_else(|| "-".into()),
        PRIORITY.get().map_or_else(|| "-".into(), |p| p.to_string()),
        SESSION.get().unwrap_or_else(|| "-".into()),
    );
    Ok(Response::new(Full::new(Bytes::from(report))))
}

type Downstream = ctxflow::tower::InjectContextService<HttpClient>;

/// Service A: adds variables of its own, then calls B from inside the request.
async fn call_b(State((b, uri)): State<(Downstream, String)>) -> String {
    let _priority = PRIORITY.set(7);
    let _session = SESSION.set("a-private-session".into());
    let request = Request::get(uri).body(Empty::new()).unwrap();
    let response = b.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_called_from_inside_a_request_sees_the_callers_trace_and_listed_baggage() {
    // B reads every variable it knows of; A decides which ones leave it.
    let everything = Propagation::new().var(&TENANT).var(&PRIORITY).var(&SESSION);
    let b = Server::hyper(
        ServiceBuilder::new()
            .layer(RequestContextLayer::new(&REQUEST_ID).propagation(everything))
            .service_fn(report_what_arrived),
    )
    .await;

    let leaves_a = Propagation::new().var(&TENANT).var(&PRIORITY);
    let downstream = ServiceBuilder::new()
        .layer(InjectContextLayer::new(&REQUEST_ID).propagation(leaves_a.clone()))
        .service(client());
    let a = Server::axum(
        Router::new()
            .route("/checkout", get(call_b))
            .with_state((downstream, b.uri("/report")))
            .layer(RequestContextLayer::new(&REQUEST_ID).propagation(leaves_a)),
    )
    .await;

    let client = client();
    let request = Request::get(a.uri("/checkout"))
        .header("traceparent", TRACEPARENT)
        .header("baggage", "tenant=acme,vendor=kept%20as%20is")
        .body(Empty::new())
        .unwrap();
    let (_, report) = get_text(&client, request).await;
    assert_eq!(
        report,
        format!(
            "trace_id={TRACE_ID} parent={PARENT_SPAN_ID} tenant=acme priority=7 session=- vendor=kept as is"
        )
    );

    drop(client);
    a.stop().await;
    b.stop().await;
}

/// Service A with a span of its own: it calls B inside it.
async fn call_b_in_a_span(State((b, uri)): State<(Downstream, String)>) -> String {
    let tracer = SdkTracerProvider::builder().build().tracer("service-a");
    let in_span = opentelemetry::Context::current_with_span(tracer.start("call-b"));
    let ids = {
        let span = in_span.span();
        let span_context = span.span_context();
        format!("{} {}", span_context.trace_id(), span_context.span_id())
    };
    let request = Request::get(uri).body(Empty::new()).unwrap();
    let response = b.oneshot(request).with_context(in_span).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    format!("{ids} | {}", String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_called_inside_a_span_of_the_caller_sees_that_span_as_its_parent() {
    let b = Server::hyper(
        ServiceBuilder::new()
            .layer(RequestContextLayer::new(&REQUEST_ID))
            .service_fn(report_what_arrived),
    )
    .await;
    let downstream = ServiceBuilder::new()
        .layer(InjectContextLayer::new(&REQUEST_ID))
        .service(client());
    let a = Server::axum(
        Router::new()
            .route("/checkout", get(call_b_in_a_span))
            .with_state((downstream, b.uri("/report")))
            .layer(RequestContextLayer::new(&REQUEST_ID)),
    )
    .await;

    let client = client();
    let request = Request::get(a.uri("/checkout")).body(Empty::new()).unwrap();
    let (_, answer) = get_text(&client, request).await;
    let (a_ids, report) = answer.split_once(" | ").unwrap();
    let (trace_id, span_id) = a_ids.split_once(' ').unwrap();
    assert_ne!(trace_id, "00000000000000000000000000000000");
    assert_eq!(
        report,
        format!("trace_id={trace_id} parent={span_id} tenant=- priority=- session=- vendor=-")
    );

    drop(client);
    a.stop().await;
    b.stop().await;
}

async fn what_the_handler_sees() -> String {
    let trace_context = opentelemetry::Context::current();
    format!(
        "{} trace={} tenant={} priority={}",
        REQUEST_ID.get().unwrap(),
        trace_context.has_active_span(),
        TENANT.get().unwrap_or_else(|| "-".into()),
        PRIORITY.get().map_or_else(|| "-".into(), |p| p.to_string()),
    )
}

fn bad_headers() -> Vec<(&'static str, &'static str, HeaderValue)> {
    let long_id = HeaderValue::from_str(&"x".repeat(129)).unwrap();
    let not_utf8 = HeaderValue::from_bytes(b"req-\xff\xfe").unwrap();
    let long_baggage = HeaderValue::from_str(&format!("tenant={}", "a".repeat(9000))).unwrap();
    vec![
        ("an oversized request id", "x-request-id", long_id),
        ("a non-UTF-8 request id", "x-request-id", not_utf8),
        (
            "an empty request id",
            "x-request-id",
            HeaderValue::from_static(""),
        ),
        (
            "a malformed traceparent",
            "traceparent",
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"),
        ),
        ("an oversized baggage", "baggage", long_baggage),
        (
            "a baggage value that does not parse",
            "baggage",
            HeaderValue::from_static("tenant=acme,priority=high"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_a_bad_header_still_succeeds_with_a_fresh_id_and_the_bad_header_ignored() {
    let propagation = Propagation::new().var(&TENANT).var(&PRIORITY);
    let app = Router::new()
        .route("/", get(what_the_handler_sees))
        .layer(RequestContextLayer::new(&REQUEST_ID).propagation(propagation));
    let server = Server::axum(app).await;
    let client = client();

    for (case, name, value) in bad_headers() {
        let request = Request::get(server.uri("/"))
            .header(name, value)
            .body(Empty::new())
            .unwrap();
        let (headers, seen) = get_text(&client, request).await;
        let id = echoed_id(&headers);
        assert_uuid_v7(id);
        assert_eq!(
            seen,
            format!("{id} trace=false tenant=- priority=-"),
            "with {case}"
        );
    }

    drop(client);
    server.stop().await;
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_ignored_header_is_reported_at_debug_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let service = RequestContextLayer::new(&REQUEST_ID)
        .propagation(Propagation::new().var(&PRIORITY))
        .layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));

    tracing::subscriber::with_default(subscriber, || {
        for (_, name, value) in bad_headers() {
            let request = Request::builder().header(name, value).body(()).unwrap();
            let response = futures::executor::block_on(service.clone().oneshot(request)).unwrap();
            assert_uuid_v7(echoed_id(response.headers()));
        }
    });

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), bad_headers().len(), "{log}");
    assert!(lines.iter().all(|line| line.contains("DEBUG")), "{log}");
    // Under the facade's name, so that `RUST_LOG=ctxflow=debug` shows them.
    assert!(
        lines
            .iter()
            .all(|line| line.contains(" DEBUG ctxflow::tower::")),
        "{log}"
    );
    for expected in [
        "longer than the 128 taken",
        "outside the request id set",
        "empty",
        "malformed traceparent",
        "bytes, over the 8192 allowed",
        "`priority`: invalid digit found in string",
    ] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
}

/// A `MakeRequestId` that counts, with a prefix naming who made the id.
#[derive(Clone)]
struct Counter {
    prefix: &'static str,
    next: Arc<AtomicU64>,
}

impl Counter {
    fn new(prefix: &'static str) -> Self {
        Counter {
            prefix,
            next: Arc::default(),
        }
    }
}

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.prefix);
        Some(RequestId::new(HeaderValue::from_str(&id).unwrap()))
    }
}

async fn request_id_seen() -> String {
    REQUEST_ID.get().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_tower_https_set_request_id_layer_runs_first_its_request_id_is_the_one_used() {
    // Under another header name, so only its `RequestId` extension can carry the id across.
    let app = Router::new()
        .route("/", get(request_id_seen))
        .layer(RequestContextLayer::new(&REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            http::HeaderName::from_static("x-tower-http-id"),
            Counter::new("tower-http"),
        ));
    let server = Server::axum(app).await;
    let client = client();

    for n in 0..2 {
        let request = Request::get(server.uri("/")).body(Empty::new()).unwrap();
        let (headers, seen) = get_text(&client, request).await;
        let expected = format!("tower-http-{n}");
        assert_eq!(
            (seen.as_str(), echoed_id(&headers)),
            (expected.as_str(), expected.as_str())
        );
    }

    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_make_request_id_plugged_into_the_layer_makes_the_ids_of_requests_that_bring_none() {
    let app = Router::new()
        .route("/", get(request_id_seen))
        .layer(RequestContextLayer::new(&REQUEST_ID).make_request_id(Counter::new("custom")));
    let server = Server::axum(app).await;
    let client = client();

    let request = Request::get(server.uri("/")).body(Empty::new()).unwrap();
    let (headers, seen) = get_text(&client, request).await;
    assert_eq!(
        (seen.as_str(), echoed_id(&headers)),
        ("custom-0", "custom-0")
    );

    let request = Request::get(server.uri("/"))
        .header("x-request-id", "from-the-caller")
        .body(Empty::new())
        .unwrap();
    let (headers, seen) = get_text(&client, request).await;
    assert_eq!(
        (seen.as_str(), echoed_id(&headers)),
        ("from-the-caller", "from-the-caller")
    );

    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_header_name_is_read_and_echoed() {
    let app = Router::new().route("/", get(request_id_seen)).layer(
        RequestContextLayer::new(&REQUEST_ID)
            .header(http::HeaderName::from_static("x-correlation-id")),
    );
    let server = Server::axum(app).await;
    let client = client();

    let request = Request::get(server.uri("/"))
        .header("x-correlation-id", "corr-1")
        .header("x-request-id", "not-this-one")
        .body(Empty::new())
        .unwrap();
    let (headers, seen) = get_text(&client, request).await;
    assert_eq!(
        (seen.as_str(), headers["x-correlation-id"].to_str().unwrap()),
        ("corr-1", "corr-1")
    );

    drop(client);
    server.stop().await;
}

mod request_id_characters {
    use super::*;

    /// The request id the handler of `app` sees for `request`, checked to be the one the
    /// response echoes.
    fn id_seen(app: Router, request: Request<axum::body::Body>) -> String {
        futures::executor::block_on(async {
            let response = app.oneshot(request).await.unwrap();
            let echoed = echoed_id(response.headers()).to_owned();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, echoed);
            echoed
        })
    }

    fn id_seen_for(sent: HeaderValue) -> String {
        let app = Router::new()
            .route("/", get(request_id_seen))
            .layer(RequestContextLayer::new(&REQUEST_ID));
        let request = Request::get("/")
            .header("x-request-id", sent)
            .body(axum::body::Body::empty())
            .unwrap();
        id_seen(app, request)
    }

    const FORGING_IDS: [&str; 10] = [
        "abc user=admin role=root",
        "req\t1",
        "req\"1",
        "req'1",
        "req\\1",
        "req,1",
        "req;1",
        "req%0Auser%3Dadmin",
        "<script>",
        " ",
    ];

    #[test]
    fn an_incoming_id_with_a_character_outside_the_set_is_replaced_by_a_fresh_one() {
        for sent in FORGING_IDS {
            assert_uuid_v7(&id_seen_for(HeaderValue::from_static(sent)));
        }
        let obs_text = HeaderValue::from_bytes(b"req-\x80").unwrap();
        assert_uuid_v7(&id_seen_for(obs_text));
    }

    #[test]
    fn an_incoming_id_made_of_the_set_is_kept() {
        let sent = "01J9Z-abc_DEF.1:2/3+4=@host";
        assert_eq!(id_seen_for(HeaderValue::from_static(sent)), sent);
    }

    /// A `MakeRequestId` that always makes the same id.
    #[derive(Clone)]
    struct Fixed(&'static str);

    impl MakeRequestId for Fixed {
        fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
            Some(RequestId::new(HeaderValue::from_static(self.0)))
        }
    }

    fn id_seen_after_set_request_id(made: &'static str) -> String {
        id_seen_after_set_request_id_with(made, Request::new(axum::body::Body::empty()))
    }

    fn id_seen_after_set_request_id_with(
        made: &'static str,
        request: Request<axum::body::Body>,
    ) -> String {
        // Under another header name, so only its `RequestId` extension can carry the id across.
        let app = Router::new()
            .route("/", get(request_id_seen))
            .layer(RequestContextLayer::new(&REQUEST_ID))
            .layer(SetRequestIdLayer::new(
                http::HeaderName::from_static("x-tower-http-id"),
                Fixed(made),
            ));
        id_seen(app, request)
    }

    #[test]
    fn an_id_from_tower_https_request_id_extension_outside_the_set_is_replaced_by_a_fresh_one() {
        for made in FORGING_IDS {
            assert_uuid_v7(&id_seen_after_set_request_id(made));
        }
        assert_eq!(id_seen_after_set_request_id("tower-http:1"), "tower-http:1");
    }

    #[test]
    fn a_refused_id_from_tower_https_extension_leaves_the_header_its_turn() {
        let request = Request::get("/")
            .header("x-request-id", "req-7")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(
            id_seen_after_set_request_id_with("abc user=admin", request),
            "req-7"
        );
    }

    #[test]
    fn an_id_from_the_layers_make_request_id_outside_the_set_is_replaced_by_a_uuid_v7() {
        for made in FORGING_IDS {
            let app = Router::new()
                .route("/", get(request_id_seen))
                .layer(RequestContextLayer::new(&REQUEST_ID).make_request_id(Fixed(made)));
            assert_uuid_v7(&id_seen(app, Request::new(axum::body::Body::empty())));
        }
    }
}

mod streamed_bodies {
    use super::*;

    /// A body streamed in three chunks, each written when the server asks for it, long after
    /// the handler returned: `n:request id:trace id;`, as the chunk's poll sees them.
    async fn stream_what_each_chunk_sees() -> axum::body::Body {
        let chunks = stream::iter(0..3).then(|n| async move {
            // Each chunk in a poll of its own.
            tokio::task::yield_now().await;
            let trace_context = opentelemetry::Context::current();
            let span = trace_context.span();
            let chunk = format!(
                "{n}:{}:{};",
                REQUEST_ID.get().unwrap_or_else(|| "none".into()),
                span.span_context().trace_id(),
            );
            Ok::<_, io::Error>(chunk)
        });
        axum::body::Body::from_stream(chunks)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_chunk_of_a_streamed_body_runs_in_its_requests_context() {
        let app = Router::new()
            .route("/stream", get(stream_what_each_chunk_sees))
            .layer(RequestContextLayer::new(&REQUEST_ID));
        let server = Server::axum(app).await;
        let client = client();

        let responses = (0..16).map(|n| {
            let request = Request::get(server.uri("/stream"))
                .header("x-request-id", format!("req-{n}"))
                .header("traceparent", TRACEPARENT)
                .body(Empty::new())
                .unwrap();
            let client = &client;
            async move { (n, get_text(client, request).await.1) }
        });
        for (n, body) in futures::future::join_all(responses).await {
            let expected: String = (0..3)
                .map(|chunk| format!("{chunk}:req-{n}:{TRACE_ID};"))
                .collect();
            assert_eq!(body, expected);
        }

        drop(client);
        server.stop().await;
    }
}

/// One hop of a chain of services: the id this service runs under, then what the next one
/// answered.
async fn forward(State((next, uri)): State<(Downstream, String)>) -> String {
    let request = Request::get(uri).body(Empty::new()).unwrap();
    let response = next.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    format!(
        "{} > {}",
        REQUEST_ID.get().unwrap(),
        String::from_utf8(body.to_vec()).unwrap()
    )
}

fn calling(next: &Server) -> (Downstream, String) {
    let client = ServiceBuilder::new()
        .layer(InjectContextLayer::new(&REQUEST_ID))
        .service(client());
    (client, next.uri("/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_chosen_at_the_edge_is_the_one_every_service_down_the_line_runs_under() {
    let c = Server::axum(
        Router::new()
            .route("/", get(request_id_seen))
            .layer(RequestContextLayer::new(&REQUEST_ID)),
    )
    .await;
    let b = Server::axum(
        Router::new()
            .route("/", get(forward))
            .with_state(calling(&c))
            .layer(RequestContextLayer::new(&REQUEST_ID)),
    )
    .await;
    let a = Server::axum(
        Router::new()
            .route("/", get(forward))
            .with_state(calling(&b))
            .layer(RequestContextLayer::new(&REQUEST_ID)),
    )
    .await;
    let client = client();

    let request = Request::get(a.uri("/"))
        .header("x-request-id", "edge-1")
        .body(Empty::new())
        .unwrap();
    let (_, chain) = get_text(&client, request).await;
    assert_eq!(chain, "edge-1 > edge-1 > edge-1");

    // Without one, the first service's fresh id is the one the others use.
    let request = Request::get(a.uri("/")).body(Empty::new()).unwrap();
    let (headers, chain) = get_text(&client, request).await;
    let id = echoed_id(&headers);
    assert_uuid_v7(id);
    assert_eq!(chain, format!("{id} > {id} > {id}"));

    drop(client);
    for server in [a, b, c] {
        server.stop().await;
    }
}

#[test]
fn the_client_layer_sends_the_request_id_under_the_header_it_is_given() {
    let sent = InjectContextLayer::new(&REQUEST_ID)
        .header(http::HeaderName::from_static("x-correlation-id"))
        .layer(service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(request.headers().clone())
        }));
    let _id = REQUEST_ID.set("req-77".into());
    let headers = futures::executor::block_on(sent.oneshot(Request::new(()))).unwrap();
    assert_eq!(headers["x-correlation-id"], "req-77");
    assert!(!headers.contains_key("x-request-id"));
}

#[test]
fn an_id_set_in_process_that_no_header_can_hold_is_not_sent() {
    let sent =
        InjectContextLayer::new(&REQUEST_ID).layer(service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(request.headers().clone())
        }));
    let _id = REQUEST_ID.set("line\nbreak".into());
    let headers = futures::executor::block_on(sent.oneshot(Request::new(()))).unwrap();
    assert!(!headers.contains_key("x-request-id"));
}

/// An id every receiver would refuse (one that could forge a log field, or too long) is not sent,
/// and neither is the one a forwarded request carried in already: the next service makes its own.
#[test]
fn an_id_a_receiver_would_refuse_is_not_sent_nor_the_one_the_request_carried() {
    let sent =
        InjectContextLayer::new(&REQUEST_ID).layer(service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(request.headers().clone())
        }));
    for refused in ["abc user=admin".to_string(), "a".repeat(200)] {
        let _id = REQUEST_ID.set(refused);
        let request = Request::get("/")
            .header("x-request-id", "victim-id")
            .body(())
            .unwrap();
        let headers = futures::executor::block_on(sent.clone().oneshot(request)).unwrap();
        assert!(!headers.contains_key("x-request-id"), "{headers:?}");
    }
}

mod request_id_from_baggage {
    use super::*;
    use ctxflow::tower::IncomingRequestId;

    fn id_seen(incoming: IncomingRequestId, headers: &[(&str, &str)]) -> String {
        let app = Router::new().route("/", get(request_id_seen)).layer(
            RequestContextLayer::new(&REQUEST_ID)
                .propagation(Propagation::new().var(&REQUEST_ID))
                .incoming_request_id(incoming),
        );
        let mut request = Request::get("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        futures::executor::block_on(async {
            let response = app.oneshot(request).await.unwrap();
            let echoed = echoed_id(response.headers()).to_owned();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, echoed);
            echoed
        })
    }

    #[test]
    fn an_id_that_arrives_only_in_the_baggage_is_the_one_used() {
        let id = id_seen(
            IncomingRequestId::default(),
            &[("baggage", "request_id=from-baggage")],
        );
        assert_eq!(id, "from-baggage");
    }

    #[test]
    fn the_header_comes_before_the_baggage() {
        let id = id_seen(
            IncomingRequestId::default(),
            &[
                ("x-request-id", "from-header"),
                ("baggage", "request_id=from-baggage"),
            ],
        );
        assert_eq!(id, "from-header");
    }

    #[test]
    fn the_baggage_is_used_when_the_header_is_refused() {
        let id = id_seen(
            IncomingRequestId::default(),
            &[
                ("x-request-id", "two words"),
                ("baggage", "request_id=from-baggage"),
            ],
        );
        assert_eq!(id, "from-baggage");
    }

    #[test]
    fn an_id_in_the_baggage_that_could_forge_a_log_field_gets_a_fresh_id() {
        let id = id_seen(
            IncomingRequestId::default(),
            &[("baggage", "request_id=abc%20user%3Dadmin")],
        );
        assert_uuid_v7(&id);
    }

    #[test]
    fn with_header_only_the_baggage_id_is_not_used() {
        let id = id_seen(
            IncomingRequestId::Header,
            &[("baggage", "request_id=from-baggage")],
        );
        assert_uuid_v7(&id);
    }

    #[test]
    fn with_fresh_neither_the_header_nor_the_baggage_is_used() {
        let id = id_seen(
            IncomingRequestId::Fresh,
            &[
                ("x-request-id", "from-header"),
                ("baggage", "request_id=from-baggage"),
            ],
        );
        assert_uuid_v7(&id);
    }
}

fn log_of_one_request(layer: RequestContextLayer) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async {
                tracing::info!("order handled");
            }),
        )
        .layer(layer);
    tracing::subscriber::with_default(subscriber, || {
        let request = Request::get("/orders")
            .header("x-request-id", "req-5")
            .body(axum::body::Body::empty())
            .unwrap();
        futures::executor::block_on(app.oneshot(request)).unwrap();
    });
    let log = captured.0.lock().unwrap().clone();
    String::from_utf8(log).unwrap()
}

#[test]
fn with_a_trace_span_every_event_of_the_request_is_inside_a_span_naming_its_method_path_and_id() {
    let log = log_of_one_request(RequestContextLayer::new(&REQUEST_ID).trace_span(true));
    assert!(
        log.contains("request{method=GET path=\"/orders\" request_id=\"req-5\"}: "),
        "{log}"
    );
    assert!(log.contains("order handled"), "{log}");
}

#[test]
fn without_a_trace_span_no_span_is_opened() {
    let log = log_of_one_request(RequestContextLayer::new(&REQUEST_ID));
    assert!(log.contains("order handled"), "{log}");
    assert!(!log.contains("request{"), "{log}");
}

#[derive(Clone)]
struct Counter06(Arc<AtomicU64>);

impl tower_http_0_6::request_id::MakeRequestId for Counter06 {
    fn make_request_id<B>(
        &mut self,
        _: &Request<B>,
    ) -> Option<tower_http_0_6::request_id::RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let id = HeaderValue::from_str(&format!("tower-http-0-6-{n}")).unwrap();
        Some(tower_http_0_6::request_id::RequestId::new(id))
    }
}

#[test]
fn tower_http_0_6s_set_request_id_layer_running_first_under_the_same_header_gives_the_id_used() {
    let app = Router::new()
        .route("/", get(request_id_seen))
        .layer(RequestContextLayer::new(&REQUEST_ID))
        .layer(tower_http_0_6::request_id::SetRequestIdLayer::x_request_id(
            Counter06(Arc::default()),
        ));
    let request = Request::get("/").body(axum::body::Body::empty()).unwrap();
    let (echoed, seen) = futures::executor::block_on(async {
        let response = app.oneshot(request).await.unwrap();
        let echoed = echoed_id(response.headers()).to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (echoed, body)
    });
    assert_eq!(
        (echoed.as_str(), &seen[..]),
        ("tower-http-0-6-0", &b"tower-http-0-6-0"[..])
    );
}

/// Other systems' baggage entries travel with ours; whatever they hold, they never cost the
/// listed variables their values.
mod other_systems_baggage {
    use super::*;

    async fn tenant_and_vendor_entry() -> String {
        let trace_context = opentelemetry::Context::current();
        let vendor = trace_context.baggage().get("vendor").map(|v| v.to_string());
        format!(
            "tenant={} vendor={vendor:?}",
            TENANT.get().unwrap_or_else(|| "-".into())
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unlisted_baggage_entry_with_a_control_character_leaves_the_listed_ones_set() {
        let propagation = Propagation::new().var(&TENANT).var(&PRIORITY);
        let app = Router::new()
            .route("/", get(tenant_and_vendor_entry))
            .layer(RequestContextLayer::new(&REQUEST_ID).propagation(propagation));
        let server = Server::axum(app).await;
        let client = client();

        let cases = [
            ("tenant=acme,vendor=a%0Ab", "a\nb"),
            ("vendor=a%00b,tenant=acme", "a\0b"),
            ("tenant=acme,vendor=%7F", "\u{7f}"),
        ];
        for (baggage, vendor) in cases {
            let request = Request::get(server.uri("/"))
                .header("baggage", baggage)
                .body(Empty::new())
                .unwrap();
            let (_, seen) = get_text(&client, request).await;
            assert_eq!(
                seen,
                format!("tenant=acme vendor={:?}", Some(vendor)),
                "with baggage {baggage:?}"
            );
        }

        drop(client);
        server.stop().await;
    }

    #[tokio::test]
    async fn baggage_sent_in_several_headers_is_read_as_one_list() {
        let propagation = Propagation::new().var(&TENANT);
        let app = Router::new()
            .route("/", get(tenant_and_vendor_entry))
            .layer(RequestContextLayer::new(&REQUEST_ID).propagation(propagation));
        let request = Request::get("/")
            .header("baggage", "vendor=x")
            .header("baggage", "tenant=acme")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"tenant=acme vendor=Some(\"x\")");
    }

    #[test]
    fn listed_values_that_cannot_be_exported_are_all_left_out_and_other_entries_still_sent() {
        let propagation = Propagation::new().var(&TENANT).var(&PRIORITY);
        let _tenant = TENANT.set("acme\r\nx-admin: yes".into());
        let _priority = PRIORITY.set(3);
        let _otel = opentelemetry::Context::current_with_baggage([opentelemetry::KeyValue::new(
            "vendor", "x",
        )])
        .attach();

        let mut headers = HeaderMap::new();
        ctxflow::tower::inject_context(&propagation, &mut headers);

        assert_eq!(headers["baggage"], "vendor=x");
    }
}
