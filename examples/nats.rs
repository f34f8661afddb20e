//! Orders published to NATS inside two requests and handled by a consumer started once: each
//! order is handled under the request id and tenant of the request that published it.
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run --example nats --features nats,trace-context                  # nats://127.0.0.1:4222
//! CTXFLOW_NATS_URL=nats://127.0.0.1:4333 cargo run --example nats --features nats,trace-context
//! ```

use std::error::Error;
use std::fmt::Display;

use ctxflow::text_map::ContextPropagator;
use ctxflow::{ContextVar, Propagation};
use futures::StreamExt;
use tokio::sync::mpsc;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");

/// Every line says which request and tenant it belongs to, wherever it runs.
fn log(role: &str, message: impl Display) {
    let request_id = REQUEST_ID.get().unwrap_or_else(|| "-".into());
    let tenant = TENANT.get().unwrap_or_else(|| "-".into());
    println!("{role:<8} request_id={request_id:<8} tenant={tenant:<7} {message}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("CTXFLOW_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(&url).await.map_err(|error| {
        format!("no NATS server at {url} ({error}): start one, or set CTXFLOW_NATS_URL")
    })?;
    let subject = format!("ctxflow.example.orders.{}", std::process::id());
    let carrier = ContextPropagator::new(&REQUEST_ID).propagation(Propagation::new().var(&TENANT));

    // The consumer, started once, outside any request.
    let mut orders = client.subscribe(subject.clone()).await?;
    client.flush().await?;
    let (handled, mut handled_all) = mpsc::unbounded_channel();
    let consumer = carrier.clone();
    ctxflow::spawn(async move {
        while let Some(order) = orders.next().await {
            let context = ctxflow::nats::extract(&consumer, &order);
            let handled = handled.clone();
            ctxflow::spawn(context.scope(async move {
                log(
                    "consumer",
                    format_args!("handling {:?}", std::str::from_utf8(&order.payload)),
                );
                let _ = handled.send(());
            }))
            .detach();
        }
    })
    .detach();

    // Two requests, each publishing in its own context.
    let requests = [
        ("req-1", "acme", ["2 coffees", "1 croissant"]),
        ("req-2", "initech", ["3 teas", "1 scone"]),
    ];
    for (request_id, tenant, items) in requests {
        let (client, carrier, subject) = (client.clone(), carrier.clone(), subject.clone());
        ctxflow::spawn(async move {
            let _id = REQUEST_ID.set(request_id.into());
            let _tenant = TENANT.set(tenant.into());
            for item in items {
                log("producer", format_args!("publishing {item:?}"));
                ctxflow::nats::publish(&client, &carrier, subject.clone(), item.into()).await?;
            }
            Ok::<_, async_nats::client::PublishError>(())
        })
        .await??;
    }
    client.flush().await?;

    for _ in 0..4 {
        handled_all.recv().await.ok_or("the consumer stopped")?;
    }
    println!("done: 4 orders handled, each under its publisher's request id and tenant");
    Ok(())
}
