//! Sentry's hub flows with the context: tags and breadcrumbs added in spawned tasks and blocking
//! closures land in the events of the request that spawned them, on every runtime, under
//! concurrent requests through a tower service, and never in another request's events.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use ctxflow::testing::each_runtime;
use ctxflow::tower::RequestContextLayer;
use ctxflow::{suppress_flow, yield_now, Context, ContextVar, Spawner};
use sentry_core::protocol::Event;
use sentry_core::test::{with_captured_events, TestTransport};
use sentry_core::{Breadcrumb, ClientOptions, Hub, Level, Scope};
use sentry_tower::NewSentryLayer;
use tokio::sync::{oneshot, Barrier};
use tower::{service_fn, Layer, ServiceExt};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

const CONCURRENT_REQUESTS: usize = 200;

/// What an event says about where it came from: its tags and its breadcrumbs' messages.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Report {
    message: String,
    tags: BTreeMap<String, String>,
    breadcrumbs: BTreeSet<String>,
}

impl Report {
    fn new(message: &str, tags: &[(&str, &str)], breadcrumbs: &[&str]) -> Self {
        Report {
            message: message.to_owned(),
            tags: tags
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            breadcrumbs: breadcrumbs
                .iter()
                .map(|message| message.to_string())
                .collect(),
        }
    }
}

fn reports(events: Vec<Event<'static>>) -> Vec<Report> {
    let mut reports: Vec<Report> = events
        .into_iter()
        .map(|event| Report {
            message: event.message.unwrap_or_default(),
            tags: event.tags.into_iter().collect(),
            breadcrumbs: event
                .breadcrumbs
                .values
                .into_iter()
                .filter_map(|breadcrumb| breadcrumb.message)
                .collect(),
        })
        .collect();
    reports.sort();
    reports
}

/// A hub whose client sends its events to `transport`, as `sentry::init` would set up.
fn application_hub() -> (Arc<Hub>, Arc<TestTransport>) {
    let transport = TestTransport::new();
    let mut options = ClientOptions::default();
    options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    options.transport = Some(Arc::new(transport.clone()));
    let hub = Hub::new(Some(Arc::new(options.into())), Arc::new(Scope::default()));
    (Arc::new(hub), transport)
}

fn breadcrumb(message: String) {
    sentry_core::add_breadcrumb(Breadcrumb {
        message: Some(message),
        ..Breadcrumb::default()
    });
}

fn tag(key: &str, value: &str) {
    sentry_core::configure_scope(|scope| scope.set_tag(key, value));
}

each_runtime! {
    fn tags_and_breadcrumbs_added_in_spawned_work_land_in_their_requests_events_only(spawner) {
        ctxflow::sentry::carry_hub();
        let (application, transport) = application_hub();
        let mut requests = Vec::new();
        for request in ["a", "b"] {
            let hub = Arc::new(Hub::new_from_top(&application));
            // The closure waits for the task: sentry-core edits a hub's scope by copying it and
            // writing the copy back, so two edits of one hub at the same moment keep only one.
            let (task_done, wait_for_task) = std::sync::mpsc::channel::<()>();
            let (task, blocking) = Hub::run(hub.clone(), || {
                tag("request", request);
                let task = spawner.spawn(async move {
                    yield_now().await;
                    breadcrumb(format!("{request}: task"));
                    yield_now().await;
                    tag("task", request);
                });
                let blocking = spawner.spawn_blocking(move || {
                    wait_for_task.recv().unwrap();
                    breadcrumb(format!("{request}: blocking"));
                });
                (task, blocking)
            });
            requests.push((request, hub, task, task_done, blocking));
        }
        for (request, hub, task, task_done, blocking) in requests {
            task.await.unwrap();
            task_done.send(()).unwrap();
            blocking.await.unwrap();
            hub.capture_message(request, Level::Info);
        }

        assert_eq!(
            reports(transport.fetch_and_clear_events()),
            [
                Report::new("a", &[("request", "a"), ("task", "a")], &["a: task", "a: blocking"]),
                Report::new("b", &[("request", "b"), ("task", "b")], &["b: task", "b: blocking"]),
            ]
        );
    }
}

each_runtime! {
    fn work_spawned_inside_suppress_flow_does_not_get_the_spawners_hub(spawner) {
        ctxflow::sentry::carry_hub();
        let request_hub = Arc::new(Hub::new_from_top(Hub::current()));
        let (suppressed, flowing) = Hub::run(request_hub.clone(), || {
            let suppressed = suppress_flow(|| spawner.spawn(async { Hub::current() }));
            (suppressed, spawner.spawn(async { Hub::current() }))
        });
        assert!(!Arc::ptr_eq(&suppressed.await.unwrap(), &request_hub));
        assert!(Arc::ptr_eq(&flowing.await.unwrap(), &request_hub));
    }
}

/// The handler of `GET /{request}`: tags its hub, waits until every request is in flight, then
/// adds a breadcrumb from the handler, from a spawned task and from a blocking closure, and
/// captures one event.
async fn handler(Path(request): Path<String>, barrier: Arc<Barrier>) -> &'static str {
    tag("request", &request);
    if let Some(request_id) = REQUEST_ID.get() {
        tag("request_id", &request_id);
    }
    barrier.wait().await;
    breadcrumb(format!("{request}: handler"));
    let task = ctxflow::spawn({
        let request = request.clone();
        async move {
            yield_now().await;
            breadcrumb(format!("{request}: task"));
            tag("task", &request);
        }
    });
    task.await.unwrap();
    // One after the other: sentry-core edits a hub's scope by copying it and writing the copy
    // back, so two edits of one hub at the same moment keep only one of them.
    let blocking = ctxflow::spawn_blocking({
        let request = request.clone();
        move || breadcrumb(format!("{request}: blocking"))
    });
    blocking.await.unwrap();
    sentry_core::capture_message(&request, Level::Info);
    "ok"
}

/// Sends `CONCURRENT_REQUESTS` requests at once through `app`, each from a task of its own on
/// a multi-thread tokio runtime, and returns what their events say.
fn serve_concurrently(app: Router) -> Vec<Report> {
    let events = with_captured_events(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        // Spawned through ctxflow, the clients carry this thread's hub, whose client captures
        // the events: each request's hub is made from its top.
        let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
        let clients: Vec<_> = (0..CONCURRENT_REQUESTS)
            .map(|n| {
                let request = http::Request::builder()
                    .uri(format!("/{n}"))
                    .header("x-request-id", format!("req-{n}"))
                    .body(axum::body::Body::empty())
                    .unwrap();
                spawner.spawn(app.clone().oneshot(request))
            })
            .collect();
        runtime.block_on(async {
            for client in clients {
                assert_eq!(client.await.unwrap().unwrap().status(), 200);
            }
        });
    });
    reports(events)
}

fn expected_reports() -> Vec<Report> {
    let mut expected: Vec<Report> = (0..CONCURRENT_REQUESTS)
        .map(|n| {
            let n = n.to_string();
            let request_id = format!("req-{n}");
            Report::new(
                &n,
                &[("request", &n), ("request_id", &request_id), ("task", &n)],
                &[
                    &format!("{n}: handler"),
                    &format!("{n}: task"),
                    &format!("{n}: blocking"),
                ],
            )
        })
        .collect();
    expected.sort();
    expected
}

fn orders_router(barrier: Arc<Barrier>) -> Router {
    Router::new().route(
        "/{request}",
        get(move |path: Path<String>| handler(path, barrier.clone())),
    )
}

#[test]
fn concurrent_requests_through_the_sentry_layer_each_report_only_their_own_scope() {
    ctxflow::sentry::carry_hub();
    let barrier = Arc::new(Barrier::new(CONCURRENT_REQUESTS));
    let app = orders_router(barrier)
        .layer(RequestContextLayer::new(&REQUEST_ID))
        .layer(NewSentryLayer::new_from_top());
    assert_eq!(serve_concurrently(app), expected_reports());
}

#[test]
fn concurrent_requests_keep_their_own_scope_with_the_sentry_layer_inside_the_context_layer() {
    ctxflow::sentry::carry_hub();
    let barrier = Arc::new(Barrier::new(CONCURRENT_REQUESTS));
    let app = orders_router(barrier)
        .layer(NewSentryLayer::new_from_top())
        .layer(RequestContextLayer::new(&REQUEST_ID));
    assert_eq!(serve_concurrently(app), expected_reports());
}

/// Request `a` leaves behind a task and a snapshot that hold its hub; both run on the same
/// thread while request `b` is handled, and between requests.
#[test]
fn the_hub_of_an_ended_request_never_reaches_the_next_request_on_the_same_thread() {
    ctxflow::sentry::carry_hub();
    let stale: Arc<Mutex<Option<Context>>> = Arc::default();
    let (release_late_task, late_task_released) = oneshot::channel::<()>();
    // A request to a tower service that handles it in a hub of its own, as `NewSentryLayer`
    // gives every request, running `body` in its handler.
    let handle_request = |name: &'static str, body: Box<dyn FnOnce() + Send>| {
        let stale = stale.clone();
        let mut body = Some(body);
        let service = service_fn(move |()| {
            let body = body.take().expect("one request per service");
            let stale = stale.clone();
            async move {
                tag("request", name);
                breadcrumb(format!("{name}: handler"));
                body();
                *stale.lock().unwrap() = Some(Context::current());
                sentry_core::capture_message(name, Level::Info);
                Ok::<_, Infallible>(())
            }
        });
        NewSentryLayer::new_from_top().layer(service).oneshot(())
    };

    let events = with_captured_events(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
        runtime.block_on(async {
            let late_spawner = spawner.clone();
            let late_task = Arc::new(Mutex::new(None));
            let late_task_slot = late_task.clone();
            let request_a = handle_request(
                "a",
                Box::new(move || {
                    let task = late_spawner.spawn(async move {
                        late_task_released.await.unwrap();
                        breadcrumb("a: late task".to_owned());
                        sentry_core::capture_message("a: late", Level::Info);
                    });
                    *late_task_slot.lock().unwrap() = Some(task);
                }),
            );
            request_a.await.unwrap();
            sentry_core::capture_message("after a", Level::Info);

            let stale_context = stale.lock().unwrap().take().unwrap();
            let late_task = late_task.lock().unwrap().take().unwrap();
            let request_b = handle_request(
                "b",
                Box::new(move || {
                    stale_context.run(|| breadcrumb("a: stale snapshot".to_owned()));
                    release_late_task.send(()).unwrap();
                }),
            );
            let (response, late) = futures::join!(request_b, late_task);
            response.unwrap();
            late.unwrap();
            sentry_core::capture_message("after b", Level::Info);
        });
    });

    assert_eq!(
        reports(events),
        [
            Report::new("a", &[("request", "a")], &["a: handler"]),
            Report::new(
                "a: late",
                &[("request", "a")],
                &["a: handler", "a: stale snapshot", "a: late task"]
            ),
            Report::new("after a", &[], &[]),
            Report::new("after b", &[], &[]),
            Report::new("b", &[("request", "b")], &["b: handler"]),
        ]
    );
}
