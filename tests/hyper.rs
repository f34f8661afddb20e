//! A hyper HTTP/2 server and client on loopback, with a ctxflow spawner as hyper's executor, on
//! every runtime: the stream tasks hyper spawns carry the context they were spawned from.

use std::convert::Infallible;
use std::net::{TcpListener, TcpStream};

use async_io::Async;
use ctxflow::testing::each_runtime;
use ctxflow::{ContextVar, Spawner};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol_hyper::rt::FuturesIo;

static CONNECTION_ID: ContextVar<String> = ContextVar::new("connection_id");

async fn answer_with_connection_id(
    _request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let seen = CONNECTION_ID.get().unwrap_or_else(|| "none".into());
    Ok(Response::new(Full::new(Bytes::from(seen))))
}

each_runtime! {
    fn an_http2_server_on_a_ctxflow_executor_serves_requests_in_the_connections_context(spawner) {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let address = listener.get_ref().local_addr().unwrap();

        let executor = spawner.clone();
        let server = CONNECTION_ID.sync_scope("conn-1".into(), || {
            spawner.spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                hyper::server::conn::http2::Builder::new(executor)
                    .serve_connection(
                        FuturesIo::new(stream),
                        service_fn(answer_with_connection_id),
                    )
                    .await
            })
        });

        let stream = Async::<TcpStream>::connect(address).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(spawner.clone(), FuturesIo::new(stream))
                .await
                .unwrap();
        let driver = spawner.spawn(connection);
        let requests: Vec<_> = (0..20)
            .map(|_| sender.send_request(Request::new(Empty::<Bytes>::new())))
            .collect();
        for response in futures::future::join_all(requests).await {
            let body = response.unwrap().into_body().collect().await.unwrap();
            assert_eq!(body.to_bytes(), "conn-1");
        }
        drop(sender);
        driver.await.unwrap().unwrap();
        server.await.unwrap().unwrap();
    }
}

/// Has `executor`, as hyper's executor, spawn work inside connection `conn-2`'s context, as
/// hyper spawns a connection's tasks; the receiver gets the connection id the work saw.
fn spawn_through_hyper(
    executor: &impl hyper::rt::Executor<futures::future::BoxFuture<'static, ()>>,
) -> futures::channel::oneshot::Receiver<Option<String>> {
    let (sender, receiver) = futures::channel::oneshot::channel();
    CONNECTION_ID.sync_scope("conn-2".into(), || {
        executor.execute(Box::pin(async move {
            sender.send(CONNECTION_ID.get()).unwrap();
        }));
    });
    receiver
}

each_runtime! {
    /// The default spawner, as every other one, is hyper's executor for an application to hand
    /// it, and the tasks hyper spawns through it carry the context they were spawned from.
    fn the_default_spawner_is_a_hyper_executor_as_the_others_carrying_the_context(spawner) {
        let seen = futures::future::join_all([
            spawn_through_hyper(&ctxflow::DefaultSpawner),
            spawn_through_hyper(&spawner),
        ])
        .await;
        for seen in seen {
            assert_eq!(seen.unwrap().as_deref(), Some("conn-2"));
        }
    }
}
