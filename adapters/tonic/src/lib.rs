//! gRPC with tonic (`ctxflow`'s feature `grpc`): the HTTP layers as they are, and an
//! interceptor for clients built with `with_interceptor`.
//!
//! tonic is built on tower and carries gRPC metadata as HTTP/2 headers, so the `tower` layers
//! work unchanged:
//!
//! - servers: `Server::builder().layer(RequestContextLayer::new(&REQUEST_ID))` gives every call
//!   a context of its own, with the caller's request id, trace context and listed baggage;
//! - clients: `InjectContextLayer::new(&REQUEST_ID).layer(channel)` is a `Channel` that sends
//!   them with every call, and goes wherever a generated client takes a service
//!   (`GreeterClient::new(..)`).
//!
//! ```no_run
//! use ctxflow::tower::{InjectContextLayer, RequestContextLayer};
//! use ctxflow::ContextVar;
//! use tower::Layer;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
//! let channel = InjectContextLayer::new(&REQUEST_ID).layer(channel);
//! // let client = GreeterClient::new(channel);
//!
//! let server = tonic::transport::Server::builder().layer(RequestContextLayer::new(&REQUEST_ID));
//! // server.add_service(GreeterServer::new(greeter)).serve(address).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A client that already has an interceptor adds [`ContextInterceptor`] to it, which writes
//! the same entries into the call's metadata through a [`ContextPropagator`].
//!
//! This is the `ctxflow-tonic` crate, which the `ctxflow` crate re-exports as `ctxflow::grpc`
//! with its feature `grpc`.
#![cfg_attr(docsrs, feature(doc_cfg))]

use ctxflow_text_map::ContextPropagator;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A tonic [`Interceptor`] that writes the caller's context into each call's metadata: the
/// request id, and with feature `trace-context` the trace context and listed variables.
///
/// It runs when the call is made, in the caller's context:
///
/// ```
/// use ctxflow::text_map::ContextPropagator;
/// use ctxflow::grpc::ContextInterceptor;
/// use ctxflow::ContextVar;
/// use tonic::service::Interceptor;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let mut interceptor = ContextInterceptor::new(ContextPropagator::new(&REQUEST_ID));
/// let _id = REQUEST_ID.set("req-3".into());
/// let request = interceptor.call(tonic::Request::new(())).unwrap();
/// assert_eq!(request.metadata().get("x-request-id").unwrap(), "req-3");
/// // SomeClient::with_interceptor(channel, interceptor)
/// ```
#[derive(Clone, Debug)]
pub struct ContextInterceptor {
    carrier: ContextPropagator,
}

impl ContextInterceptor {
    /// Writes what `carrier` carries.
    pub fn new(carrier: ContextPropagator) -> Self {
        ContextInterceptor { carrier }
    }
}

impl Interceptor for ContextInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.carrier.inject(request.metadata_mut());
        Ok(request)
    }
}
