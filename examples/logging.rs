//! Request ids on every log line: a handler binds `request_id`, and every line that its
//! background task, blocking closure and `preserve_context` workers write carries it, inside the
//! handler's span, with no `.instrument(..)` and no id passed by hand.
//!
//! ```text
//! cargo run --example logging --features tracing-json            # text lines
//! cargo run --example logging --features tracing-json -- --json  # JSON lines
//! ```

use ctxflow::tracing::{LogFields, LogFieldsExt as _};
use ctxflow::{preserve_context, ContextVar};
use tracing::{info, instrument};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");

async fn send_receipt() {
    info!("background task: receipt sent");
}

fn total_in_cents(prices: &[u64]) -> u64 {
    let total = prices.iter().sum();
    info!(total, "blocking closure: total computed");
    total
}

async fn reserve(sku: &str) {
    info!(sku, "worker: stock reserved");
}

#[instrument(name = "request", skip_all, fields(route = "/orders"))]
async fn handle_request(request_id: &str, user_id: u64) {
    let _request = REQUEST_ID.set(request_id.to_string());
    let _user = USER_ID.set(user_id);
    info!("handler: order received");

    let receipt = ctxflow::spawn(send_receipt());
    let total = ctxflow::spawn_blocking(|| total_in_cents(&[1250, 990]));
    futures::join!(
        preserve_context(reserve("sku-1")),
        preserve_context(reserve("sku-2"))
    );
    receipt.await.unwrap();
    let total = total.await.unwrap();

    // A child's own value stays in the child.
    ctxflow::spawn(async {
        let _retry = REQUEST_ID.set(format!("{}-retry", REQUEST_ID.get().unwrap_or_default()));
        info!("child: retrying under its own id");
    })
    .await
    .unwrap();
    info!(total, "handler: order done");
}

fn main() {
    let fields = LogFields::new().field(&REQUEST_ID).field(&USER_ID);
    if std::env::args().any(|arg| arg == "--json") {
        tracing_subscriber::fmt()
            .json()
            .map_event_format(|format| fields.wrap(format))
            .init();
    } else {
        tracing_subscriber::fmt()
            .map_event_format(|format| fields.wrap(format))
            .init();
    }

    info!("server: started");
    ctxflow::block_on(async {
        let first = ctxflow::spawn(handle_request("req-123", 42));
        let second = ctxflow::spawn(handle_request("req-456", 7));
        first.await.unwrap();
        second.await.unwrap();
    });
    info!("server: idle");
}
