//! What `RequestContextLayer` adds to a request: the same axum app with and without it, called
//! directly through `tower::ServiceExt::oneshot` (the layer's own cost, nothing else), and served
//! over HTTP/1 on 127.0.0.1 to hyper-util's client (the cost a real request sees), the last
//! also with `InjectContextLayer` on the client sending the caller's request id, so that both
//! ends of a hop between services are measured. Each bench takes 1 s of warm-up and 3 s of
//! measurement.
#![allow(
    clippy::disallowed_methods,
    reason = "the runtimes' own spawns are the baselines measured against"
)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use ctxflow::tower::{InjectContextLayer, RequestContextLayer};
use ctxflow::ContextVar;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn handler() -> &'static str {
    "ok"
}

fn without_layer() -> Router {
    Router::new().route("/", get(handler))
}

fn with_layer() -> Router {
    without_layer().layer(RequestContextLayer::new(&REQUEST_ID))
}

fn call(app: &Router, request: http::Request<Body>) {
    let response = futures::executor::block_on(app.clone().oneshot(request)).unwrap();
    black_box(response);
}

fn plain_request() -> http::Request<Body> {
    http::Request::get("/").body(Body::empty()).unwrap()
}

fn request_from_upstream() -> http::Request<Body> {
    http::Request::get("/")
        .header("x-request-id", "req-0123456789")
        .header("traceparent", TRACEPARENT)
        .body(Body::empty())
        .unwrap()
}

fn through_the_tower_service(c: &mut Criterion) {
    let (plain, layered) = (without_layer(), with_layer());
    let mut group = c.benchmark_group("oneshot");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("without_layer", |b| {
        b.iter(|| call(&plain, plain_request()))
    });
    group.bench_function("with_layer_fresh_id", |b| {
        b.iter(|| call(&layered, plain_request()))
    });
    group.bench_function("with_layer_id_and_traceparent", |b| {
        b.iter(|| call(&layered, request_from_upstream()))
    });
    group.finish();
}

/// Serves `app` on 127.0.0.1 from `runtime`; returns its address.
fn serve(runtime: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .unwrap();
    let uri = format!("http://{}/", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    uri
}

fn over_loopback_http(c: &mut Criterion) {
    // One server thread for both apps, as busy with one as with the other.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let plain_uri = serve(&server_runtime, without_layer());
    let layered_uri = serve(&server_runtime, with_layer());
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    // One request after another on one kept-alive connection, `iters` of them per sample.
    let sequential_requests = |uri: &str, iters: u64| {
        client_runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let request = http::Request::get(uri).body(Empty::new()).unwrap();
                let response = client.request(request).await.unwrap();
                black_box(response.into_body().collect().await.unwrap());
            }
            start.elapsed()
        })
    };

    let mut group = c.benchmark_group("loopback_http1");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("without_layer", |b| {
        b.iter_custom(|iters| sequential_requests(&plain_uri, iters))
    });
    group.bench_function("with_layer_fresh_id", |b| {
        b.iter_custom(|iters| sequential_requests(&layered_uri, iters))
    });
    // Both ends of a hop: the client layer sends the caller's id, the server layer reads it.
    let injecting = InjectContextLayer::new(&REQUEST_ID).layer(client.clone());
    group.bench_function("with_client_and_server_layers", |b| {
        b.iter_custom(|iters| {
            let _id = REQUEST_ID.set("req-0123456789".into());
            client_runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let request = http::Request::get(&layered_uri).body(Empty::new()).unwrap();
                    let response = injecting.clone().oneshot(request).await.unwrap();
                    black_box(response.into_body().collect().await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, through_the_tower_service, over_loopback_http);
criterion_main!(benches);
