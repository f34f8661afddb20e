//! gRPC calls with tonic across two real hops on loopback (client → A → B): the request id,
//! `traceparent` and listed baggage reach B.

use std::net::{Ipv4Addr, SocketAddr};

use ctxflow::grpc::ContextInterceptor;
use ctxflow::text_map::ContextPropagator;
use ctxflow::tower::{InjectContextLayer, RequestContextLayer};
use ctxflow::{ContextVar, Propagation};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use text_grpc::TextServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tower::Layer;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");

fn listed() -> Propagation {
    Propagation::new().var(&TENANT)
}

/// A tonic server on 127.0.0.1 behind `RequestContextLayer`, stopped when dropped's sender
/// fires.
struct GrpcServer {
    address: SocketAddr,
    shutdown: oneshot::Sender<()>,
    serving: ctxflow::JoinHandle<()>,
}

impl GrpcServer {
    async fn start(service: TextServer) -> GrpcServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let router = Server::builder()
            .layer(RequestContextLayer::new(&REQUEST_ID).propagation(listed()))
            .add_service(service);
        let serving = ctxflow::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        GrpcServer {
            address,
            shutdown,
            serving,
        }
    }

    fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect_lazy()
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.serving.await.unwrap();
    }
}

/// B: reports the context each call reached it with.
fn service_b() -> TextServer {
    TextServer::new(|text: String| async move {
        let trace_context = opentelemetry::Context::current();
        let span = trace_context.span();
        let remote = span.span_context();
        Ok(format!(
            "{text}: request_id={} trace_id={} parent={} tenant={}",
            REQUEST_ID.get().unwrap_or_default(),
            remote.trace_id(),
            remote.span_id(),
            TENANT.get().unwrap_or_else(|| "-".into()),
        ))
    })
}

/// A: calls B from inside each call, through a channel that sends the caller's context.
fn service_a(b: Channel) -> TextServer {
    let to_b = InjectContextLayer::new(&REQUEST_ID)
        .propagation(listed())
        .layer(b);
    TextServer::new(move |text: String| {
        let to_b = to_b.clone();
        async move { text_grpc::call(to_b, text).await }
    })
}

fn remote_parent(n: u64) -> opentelemetry::Context {
    let span = SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_0000 + u128::from(n)),
        SpanId::from(0x00f0_67aa_0ba9_0000 + n),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(span)
}

fn expected_report(n: u64) -> String {
    let parent = remote_parent(n);
    let span = parent.span();
    let span = span.span_context();
    format!(
        "call {n}: request_id=grpc-{n} trace_id={} parent={} tenant=tenant-{n}",
        span.trace_id(),
        span.span_id()
    )
}

/// Call `n` from a client whose context holds request id `grpc-n`, tenant `tenant-n` and a
/// trace of its own, through `channel`.
async fn call_in_context<T>(n: u64, channel: T) -> String
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError>,
    T::Error: Into<tonic::codegen::StdError>,
{
    let call = async move {
        let _id = REQUEST_ID.set(format!("grpc-{n}"));
        let _tenant = TENANT.set(format!("tenant-{n}"));
        text_grpc::call(channel, format!("call {n}")).await.unwrap()
    };
    call.with_context(remote_parent(n)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_trace_and_baggage_cross_two_grpc_hops_for_each_of_a_hundred_concurrent_calls(
) {
    let b = GrpcServer::start(service_b()).await;
    let a = GrpcServer::start(service_a(b.channel())).await;
    let to_a = InjectContextLayer::new(&REQUEST_ID)
        .propagation(listed())
        .layer(a.channel());

    let calls: Vec<_> = (0..100)
        .map(|n| ctxflow::spawn(call_in_context(n, to_a.clone())))
        .collect();
    for (n, call) in (0..).zip(calls) {
        assert_eq!(call.await.unwrap(), expected_report(n));
    }

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_context_interceptor_sends_the_same_context() {
    let b = GrpcServer::start(service_b()).await;
    let a = GrpcServer::start(service_a(b.channel())).await;
    let interceptor =
        ContextInterceptor::new(ContextPropagator::new(&REQUEST_ID).propagation(listed()));
    let to_a = InterceptedService::new(a.channel(), interceptor);

    assert_eq!(call_in_context(7, to_a).await, expected_report(7));

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_request_id_gets_a_fresh_one_that_the_next_hop_runs_under_too() {
    let b = GrpcServer::start(service_b()).await;
    let a_reports = TextServer::new({
        let to_b = InjectContextLayer::new(&REQUEST_ID).layer(b.channel());
        move |text: String| {
            let to_b = to_b.clone();
            async move {
                let here = REQUEST_ID.get().unwrap();
                let there = text_grpc::call(to_b, text).await?;
                Ok(format!("{here} | {there}"))
            }
        }
    });
    let a = GrpcServer::start(a_reports).await;

    let answer = text_grpc::call(a.channel(), "bare".into()).await.unwrap();
    let (here, there) = answer.split_once(" | ").unwrap();
    let uuid = uuid::Uuid::parse_str(here).unwrap();
    assert_eq!(uuid.get_version(), Some(uuid::Version::SortRand));
    assert!(
        there.starts_with(&format!("bare: request_id={here} ")),
        "{there}"
    );

    a.stop().await;
    b.stop().await;
}
