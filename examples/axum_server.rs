//! The seed's FastAPI scenario on axum: `POST /orders` runs under the request's id (from
//! `x-request-id`, or a fresh UUID v7), responds at once, and the work it sends off, a
//! `send_notification` task and an invoice rendered on the blocking pool, still logs under that
//! request id after the response has gone out.
//!
//! ```text
//! cargo run --example axum_server --features tower                  # serves 127.0.0.1:3000
//! curl -i -X POST -H 'x-request-id: req-1' -d '2 coffees' http://127.0.0.1:3000/orders
//!
//! cargo run --example axum_server --features tower -- --self-test   # three requests to itself, then exits
//! ```

use std::error::Error;
use std::fmt::Display;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use ctxflow::tower::RequestContextLayer;
use ctxflow::ContextVar;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

/// Every line says which request it belongs to, wherever it runs.
fn log(message: impl Display) {
    let request_id = REQUEST_ID.get().unwrap_or_else(|| "-".into());
    println!("request_id={request_id:<36} {message}");
}

#[derive(Clone)]
struct Shop {
    next_order: Arc<AtomicU64>,
    /// One permit per piece of background work finished, so the self-test knows when to stop.
    background_done: Arc<Semaphore>,
}

async fn create_order(State(shop): State<Shop>, items: String) -> (StatusCode, String) {
    let order = shop.next_order.fetch_add(1, Ordering::Relaxed) + 1;
    log(format_args!("order {order} received: {items}"));

    let done = shop.background_done.clone();
    ctxflow::spawn(async move {
        send_notification(order).await;
        done.add_permits(1);
    })
    .detach();
    let done = shop.background_done.clone();
    ctxflow::spawn_blocking(move || {
        render_invoice(order);
        done.add_permits(1);
    })
    .detach();

    log(format_args!("order {order} accepted, responding now"));
    (StatusCode::ACCEPTED, format!("order {order} accepted\n"))
}

async fn send_notification(order: u64) {
    // Stands in for the round trip to a mail service.
    tokio::time::sleep(Duration::from_millis(20)).await;
    log(format_args!("notification sent for order {order}"));
}

fn render_invoice(order: u64) {
    log(format_args!(
        "invoice rendered for order {order} on a blocking thread"
    ));
}

impl Shop {
    fn new() -> Self {
        Shop {
            next_order: Arc::default(),
            background_done: Arc::new(Semaphore::new(0)),
        }
    }
}

fn app(shop: Shop) -> Router {
    Router::new()
        .route("/orders", post(create_order))
        .with_state(shop)
        .layer(RequestContextLayer::new(&REQUEST_ID))
}

/// Starts on a free port of 127.0.0.1, sends itself a few orders, waits for their background
/// work, and stops.
async fn self_test() -> Result<(), Box<dyn Error>> {
    let shop = Shop::new();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address: SocketAddr = listener.local_addr()?;
    println!("self-test: serving on http://{address}");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = axum::serve(listener, app(shop.clone())).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let server = ctxflow::spawn(async move { serving.await });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let orders = [
        (Some("req-1"), "2 coffees"),
        (Some("req-2"), "1 croissant"),
        (None, "3 teas"),
    ];
    for (request_id, items) in orders {
        let mut request = http::Request::post(format!("http://{address}/orders"));
        if let Some(request_id) = request_id {
            request = request.header("x-request-id", request_id);
        }
        let response = client.request(request.body(Full::from(items))?).await?;
        let echoed = response.headers()["x-request-id"].to_str()?.to_owned();
        println!(
            "client: POST /orders -> {} with x-request-id {echoed}",
            response.status()
        );
    }

    let background_per_order = 2;
    let expected = u32::try_from(orders.len() * background_per_order)?;
    drop(shop.background_done.acquire_many(expected).await?);
    drop(client);
    let _ = stop.send(());
    server.await??;
    println!("self-test: done");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    if std::env::args().any(|arg| arg == "--self-test") {
        return self_test().await;
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 3000)).await?;
    println!(
        "serving on http://{}; try: curl -i -X POST -H 'x-request-id: req-1' -d '2 coffees' http://127.0.0.1:3000/orders",
        listener.local_addr()?
    );
    axum::serve(listener, app(Shop::new())).await?;
    Ok(())
}
