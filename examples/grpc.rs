//! Two gRPC services with tonic, `orders` calling `inventory`, each behind
//! `RequestContextLayer`; `orders` calls `inventory` through a channel wrapped in
//! `InjectContextLayer`. A request id set by the client, or made by `orders` for a call that
//! brings none, is the one both services log under, with the caller's trace and tenant.
//!
//! ```text
//! cargo run --example grpc --features grpc,trace-context                 # serves 127.0.0.1:50051 and :50052
//! cargo run --example grpc --features grpc,trace-context -- --self-test  # calls itself, then exits
//! ```
//!
//! The services take UTF-8 text messages through a codec written against tonic's `Codec`
//! trait (`tests/support/text_grpc.rs`), so no protobuf compiler is needed; services generated
//! by `tonic-build` take the same layers.

#[path = "../tests/support/text_grpc.rs"]
mod text_grpc;

use std::error::Error;
use std::fmt::Display;
use std::net::{Ipv4Addr, SocketAddr};

use ctxflow::tower::{InjectContextLayer, RequestContextLayer};
use ctxflow::{ContextVar, Propagation};
use text_grpc::TextServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tower::Layer;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");

/// Every line says which service wrote it, for which request and tenant.
fn log(service: &str, message: impl Display) {
    let request_id = REQUEST_ID.get().unwrap_or_else(|| "-".into());
    let tenant = TENANT.get().unwrap_or_else(|| "-".into());
    println!("{service:<9} request_id={request_id:<36} tenant={tenant:<7} {message}");
}

fn listed() -> Propagation {
    Propagation::new().var(&TENANT)
}

fn inventory() -> TextServer {
    TextServer::new(|item: String| async move {
        log("inventory", format_args!("reserving {item}"));
        Ok(format!("{item} reserved"))
    })
}

fn orders(inventory: Channel) -> TextServer {
    let inventory = InjectContextLayer::new(&REQUEST_ID)
        .propagation(listed())
        .layer(inventory);
    TextServer::new(move |item: String| {
        let inventory = inventory.clone();
        async move {
            log("orders", format_args!("order received: {item}"));
            let reserved = text_grpc::call(inventory, item).await?;
            log("orders", format_args!("inventory answered: {reserved}"));
            Ok(format!("order placed, {reserved}"))
        }
    })
}

fn channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .expect("a loopback address is a valid URI")
        .connect_lazy()
}

/// Serves `service` on `listener` behind `RequestContextLayer` until `stop` fires.
fn serve(
    listener: TcpListener,
    service: TextServer,
    stop: oneshot::Receiver<()>,
) -> ctxflow::JoinHandle<Result<(), tonic::transport::Error>> {
    let router = Server::builder()
        .layer(RequestContextLayer::new(&REQUEST_ID).propagation(listed()))
        .add_service(service);
    ctxflow::spawn(
        router.serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = stop.await;
        }),
    )
}

async fn self_test() -> Result<(), Box<dyn Error>> {
    let inventory_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let orders_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let (inventory_address, orders_address) = (
        inventory_listener.local_addr()?,
        orders_listener.local_addr()?,
    );
    println!("self-test: orders on {orders_address}, inventory on {inventory_address}");
    let (stop_inventory, inventory_stopped) = oneshot::channel();
    let (stop_orders, orders_stopped) = oneshot::channel();
    let inventory_server = serve(inventory_listener, inventory(), inventory_stopped);
    let orders_server = serve(
        orders_listener,
        orders(channel(inventory_address)),
        orders_stopped,
    );

    // The client sends its context too: the id it sets is the one both services use.
    let client = InjectContextLayer::new(&REQUEST_ID)
        .propagation(listed())
        .layer(channel(orders_address));
    let calls = [
        (Some("req-1"), "acme", "2 coffees"),
        (None, "initech", "3 teas"),
    ];
    for (request_id, tenant, item) in calls {
        let client = client.clone();
        // Each call in a task of its own, as a request handler would be.
        let answer = ctxflow::spawn(async move {
            let _id = request_id.map(|id| REQUEST_ID.set(id.into()));
            let _tenant = TENANT.set(tenant.into());
            text_grpc::call(client, item.into()).await
        })
        .await??;
        println!("client: {answer}");
    }

    let _ = stop_orders.send(());
    let _ = stop_inventory.send(());
    orders_server.await??;
    inventory_server.await??;
    println!("self-test: done");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    if std::env::args().any(|arg| arg == "--self-test") {
        return self_test().await;
    }
    let inventory_address = SocketAddr::from((Ipv4Addr::LOCALHOST, 50052));
    let inventory_listener = TcpListener::bind(inventory_address).await?;
    let orders_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 50051)).await?;
    println!(
        "orders on 127.0.0.1:50051, inventory on 127.0.0.1:50052 (method {})",
        text_grpc::METHOD
    );
    let (_stop_inventory, inventory_stopped) = oneshot::channel();
    let (_stop_orders, orders_stopped) = oneshot::channel();
    let inventory_server = serve(inventory_listener, inventory(), inventory_stopped);
    let orders_server = serve(
        orders_listener,
        orders(channel(inventory_address)),
        orders_stopped,
    );
    orders_server.await??;
    inventory_server.await??;
    Ok(())
}
