//! [`InjectContextLayer`]: outgoing requests carry the caller's trace context and baggage.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use super::trace_headers::inject_context;
use crate::Propagation;

/// Writes the caller's context into every request a tower client sends: the current
/// OpenTelemetry trace context as W3C `traceparent`/`tracestate`, and the variables the
/// [`Propagation`] lists as W3C `baggage` (see [`inject_context`]). Headers are written when
/// the request is handed to the service (`call`), so call it from inside the request handler or
/// a task spawned through ctxflow.
///
/// Wraps any `tower::Service<http::Request<B>>`, such as hyper-util's legacy `Client`:
///
/// ```
/// use ctxflow::tower::InjectContextLayer;
/// use ctxflow::{ContextVar, Propagation};
/// use http_body_util::Full;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::ServiceBuilder;
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
///
/// let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let client = ServiceBuilder::new()
///     .layer(InjectContextLayer::new(Propagation::new().var(&TENANT)))
///     .service(client);
/// // client.oneshot(request).await, from inside a handler
/// # drop(client);
/// ```
#[derive(Clone, Debug, Default)]
pub struct InjectContextLayer {
    propagation: Arc<Propagation>,
}

impl InjectContextLayer {
    /// A layer that sends the variables `propagation` lists as baggage, with the current trace
    /// context.
    ///
    /// ```
    /// use ctxflow::tower::InjectContextLayer;
    /// use ctxflow::{ContextVar, Propagation};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    ///
    /// let sent_baggage = InjectContextLayer::new(Propagation::new().var(&TENANT)).layer(service_fn(
    ///     |request: http::Request<()>| async move {
    ///         Ok::<_, std::convert::Infallible>(request.headers()["baggage"].clone())
    ///     },
    /// ));
    /// let _token = TENANT.set("acme".into());
    /// let baggage = futures::executor::block_on(sent_baggage.oneshot(http::Request::new(()))).unwrap();
    /// assert_eq!(baggage, "tenant=acme");
    /// ```
    pub fn new(propagation: Propagation) -> Self {
        InjectContextLayer {
            propagation: Arc::new(propagation),
        }
    }
}

impl<S> Layer<S> for InjectContextLayer {
    type Service = InjectContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectContextService {
            inner,
            propagation: self.propagation.clone(),
        }
    }
}

/// The service [`InjectContextLayer`] wraps around a client: it writes the caller's context into
/// each request's headers before handing it on.
///
/// ```
/// use ctxflow::tower::{InjectContextLayer, InjectContextService};
/// use ctxflow::Propagation;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let echo = service_fn(|request: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(request.headers().len())
/// });
/// let client: InjectContextService<_> = InjectContextLayer::new(Propagation::new()).layer(echo);
/// // No trace and no listed variable in the current context: nothing to send.
/// assert_eq!(futures::executor::block_on(client.oneshot(http::Request::new(()))).unwrap(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct InjectContextService<S> {
    inner: S,
    propagation: Arc<Propagation>,
}

impl<S, B> Service<Request<B>> for InjectContextService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        inject_context(&self.propagation, request.headers_mut());
        self.inner.call(request)
    }
}
