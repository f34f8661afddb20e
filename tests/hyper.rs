//! A hyper HTTP/2 server and client on loopback, with a ctxflow spawner as hyper's executor, on
//! every runtime: the stream tasks hyper spawns carry the context they were spawned from, and a
//! pooled client's connections, given `Isolated`, nothing of the requests they serve.

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

each_runtime! {
    /// `Isolated` spawns what hyper hands it in its own context, never the caller's.
    fn an_isolated_executor_spawns_in_its_own_context_not_the_callers(spawner) {
        use ctxflow::hyper::Isolated;
        let fresh = spawn_through_hyper(&Isolated::new(spawner.clone()));
        assert_eq!(fresh.await.unwrap(), None);
        let client = ctxflow::Context::empty().with_value(&CONNECTION_ID, "client".into());
        let given = spawn_through_hyper(&Isolated::with_context(spawner, client));
        assert_eq!(given.await.unwrap().as_deref(), Some("client"));
    }
}

/// hyper-util's pooled client, its executor `Isolated`: the connection task, which the first
/// request makes the client spawn and every later request's body is streamed by, keeps nothing
/// of that first request.
#[cfg(feature = "tokio")]
mod pooled_client {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context as TaskContext, Poll};

    use ctxflow::hyper::Isolated;
    use ctxflow::tokio::TokioSpawner;
    use hyper::body::{Body, Frame};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioIo;

    use super::*;

    static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    static HELD: ContextVar<Arc<()>> = ContextVar::new("held");

    /// A one-frame request body that records the request id seen when it is polled.
    struct RecordingBody {
        frame: Option<Bytes>,
        seen: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl Body for RecordingBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.seen.lock().unwrap().push(REQUEST_ID.get());
            Poll::Ready(self.frame.take().map(|data| Ok(Frame::data(data))))
        }
    }

    /// An HTTP/1 server on loopback that answers every request and counts its connections.
    async fn serve(listener: tokio::net::TcpListener, connections: Arc<AtomicUsize>) {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            connections.fetch_add(1, Ordering::SeqCst);
            let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                let body = request.into_body().collect().await.unwrap().to_bytes();
                Ok::<_, Infallible>(Response::new(Full::new(body)))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            TokioSpawner::current().spawn(connection).detach();
        }
    }

    #[test]
    fn a_pooled_connection_keeps_nothing_of_the_request_that_opened_it() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let spawner = TokioSpawner::current();
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            let uri = format!("http://{}/", listener.local_addr().unwrap());
            let connections = Arc::new(AtomicUsize::new(0));
            spawner.spawn(serve(listener, connections.clone())).detach();

            let client =
                Client::builder(Isolated::new(spawner.clone())).build_http::<RecordingBody>();
            let first_requests_value = Arc::new(());
            for (number, id) in ["req-1", "req-2", "req-3"].into_iter().enumerate() {
                let seen = Arc::new(Mutex::new(Vec::new()));
                let body = RecordingBody {
                    frame: Some(Bytes::from(id)),
                    seen: seen.clone(),
                };
                let request = Request::post(uri.as_str()).body(body).unwrap();
                let held = (number == 0).then(|| first_requests_value.clone());
                let client = client.clone();
                let answer = REQUEST_ID.sync_scope(id.into(), || {
                    let _held = held.map(|held| HELD.set(held));
                    spawner.spawn(async move {
                        let response = client.request(request).await.unwrap();
                        response.into_body().collect().await.unwrap().to_bytes()
                    })
                });
                assert_eq!(answer.await.unwrap(), id);
                let seen = seen.lock().unwrap();
                assert!(!seen.is_empty(), "{id}'s body was never polled");
                assert!(
                    seen.iter().all(Option::is_none),
                    "{id}'s body was streamed in a request's context: {seen:?}"
                );
                assert_eq!(
                    Arc::strong_count(&first_requests_value),
                    1,
                    "the first request's values outlive it, held by the connection"
                );
            }
            assert_eq!(
                connections.load(Ordering::SeqCst),
                1,
                "the connection was pooled"
            );
        });
    }
}
