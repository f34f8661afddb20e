//! [`InjectContextLayer`]: outgoing requests carry the caller's request id, trace context and
//! baggage.

use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use ctxflow_core::ContextVar;
#[cfg(feature = "trace-context")]
use ctxflow_core::Propagation;
use ctxflow_text_map::ContextPropagator;
use http::{HeaderName, Request};
use tower_layer::Layer;
use tower_service::Service;

/// Writes the caller's context into every request a tower client sends: the current request id
/// under `x-request-id` (the header [`RequestContextLayer`](super::RequestContextLayer) reads),
/// and with feature `trace-context` the current OpenTelemetry trace context as W3C
/// `traceparent`/`tracestate` and the variables the [`propagation`](Self::propagation) lists as
/// W3C `baggage` (see [`inject_context`](super::inject_context)). Headers are written when the
/// request is handed to the service (`call`), so call it from inside the request handler or a
/// task spawned through ctxflow.
///
/// Wraps any `tower::Service<http::Request<B>>`, such as hyper-util's legacy `Client` or
/// tonic's `Channel`:
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
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
///
/// let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let client = ServiceBuilder::new()
///     .layer(InjectContextLayer::new(&REQUEST_ID).propagation(Propagation::new().var(&TENANT)))
///     .service(client);
/// // client.oneshot(request).await, from inside a handler
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct InjectContextLayer {
    settings: Arc<Settings>,
}

/// What a request carries is what a message does: the layer writes through the text map's
/// propagator, into the request's headers.
#[derive(Clone)]
struct Settings {
    propagator: ContextPropagator,
    header: HeaderName,
}

impl InjectContextLayer {
    /// A layer that sends the current value of `request_id` under `x-request-id`, with the
    /// current trace context (feature `trace-context`). No baggage variable is sent until
    /// [`propagation`](Self::propagation) lists some.
    ///
    /// ```
    /// use ctxflow::tower::InjectContextLayer;
    /// use ctxflow::ContextVar;
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// let sent_id = InjectContextLayer::new(&REQUEST_ID).layer(service_fn(
    ///     |request: http::Request<()>| async move {
    ///         Ok::<_, std::convert::Infallible>(request.headers()["x-request-id"].clone())
    ///     },
    /// ));
    /// let _token = REQUEST_ID.set("req-1".into());
    /// let id = futures::executor::block_on(sent_id.oneshot(http::Request::new(()))).unwrap();
    /// assert_eq!(id, "req-1");
    /// ```
    pub fn new(request_id: &'static ContextVar<String>) -> Self {
        InjectContextLayer {
            settings: Arc::new(Settings {
                propagator: ContextPropagator::new(request_id),
                header: HeaderName::from_static("x-request-id"),
            }),
        }
    }

    /// Sends the request id under `header` instead of `x-request-id`: give the next service's
    /// [`RequestContextLayer::header`](super::RequestContextLayer::header) the same name.
    pub fn header(mut self, header: HeaderName) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        settings.propagator = (settings.propagator.clone()).request_id_key(header.to_string());
        settings.header = header;
        self
    }

    /// Sends the variables `propagation` lists as W3C `baggage` (feature `trace-context`).
    ///
    /// ```
    /// use ctxflow::tower::InjectContextLayer;
    /// use ctxflow::{ContextVar, Propagation};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    ///
    /// let layer = InjectContextLayer::new(&REQUEST_ID).propagation(Propagation::new().var(&TENANT));
    /// let sent_baggage = layer.layer(service_fn(|request: http::Request<()>| async move {
    ///     Ok::<_, std::convert::Infallible>(request.headers()["baggage"].clone())
    /// }));
    /// let _token = TENANT.set("acme".into());
    /// let baggage = futures::executor::block_on(sent_baggage.oneshot(http::Request::new(()))).unwrap();
    /// assert_eq!(baggage, "tenant=acme");
    /// ```
    #[cfg(feature = "trace-context")]
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        settings.propagator = (settings.propagator.clone()).propagation(propagation);
        self
    }

    /// The header the request id is sent under.
    pub fn header_name(&self) -> &HeaderName {
        &self.settings.header
    }
}

impl fmt::Debug for InjectContextLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectContextLayer")
            .field("propagator", &self.settings.propagator)
            .finish()
    }
}

impl<S> Layer<S> for InjectContextLayer {
    type Service = InjectContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectContextService {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service [`InjectContextLayer`] wraps around a client: it writes the caller's context into
/// each request's headers before handing it on.
///
/// ```
/// use ctxflow::tower::{InjectContextLayer, InjectContextService};
/// use ctxflow::ContextVar;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let echo = service_fn(|request: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(request.headers().len())
/// });
/// let client: InjectContextService<_> = InjectContextLayer::new(&REQUEST_ID).layer(echo);
/// // No request id, no trace and no listed variable in the current context: nothing to send.
/// assert_eq!(futures::executor::block_on(client.oneshot(http::Request::new(()))).unwrap(), 0);
/// ```
#[derive(Clone)]
pub struct InjectContextService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for InjectContextService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectContextService")
            .field("inner", &self.inner)
            .field("propagator", &self.settings.propagator)
            .finish()
    }
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
        // An id the next service would refuse is not sent, and neither is one a forwarded
        // request carried in: the next service makes its own.
        self.settings.propagator.inject(request.headers_mut());
        self.inner.call(request)
    }
}
