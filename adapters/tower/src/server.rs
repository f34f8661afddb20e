//! [`RequestContextLayer`]: every request handled in a fresh context of its own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};

#[cfg(feature = "trace-context")]
use ctxflow_core::Propagation;
use ctxflow_core::{ContextVar, InContext, WithContext};
use ctxflow_text_map::request_id::DEFAULT_MAX_REQUEST_ID_LEN;
use ctxflow_text_map::TraceSlot;
use http::{HeaderName, HeaderValue, Request, Response};
#[cfg(feature = "trace-context")]
use opentelemetry::context::FutureExt as _;
use pin_project_lite::pin_project;
use tower_http::request_id::MakeRequestId;
use tower_layer::Layer;
use tower_service::Service;

use super::request_id::{IdRules, IncomingRequestId, MakeRequestUuidV7};
use super::response_body::ResponseBody;
#[cfg(feature = "trace-context")]
use super::trace_headers;

/// Gives every request its own context: a [`tower::Layer`](Layer) for axum's `Router::layer`,
/// tower's `ServiceBuilder`, and hyper services (through hyper-util's `TowerToHyperService`).
///
/// For each request it
/// 1. starts from an empty context, whatever the serving task had;
/// 2. with feature `trace-context`, extracts the W3C `traceparent`, `tracestate` and `baggage`
///    headers with OpenTelemetry's propagators, and sets the variables the `propagation`
///    lists from the baggage;
/// 3. sets `request_id` to the id tower-http's `SetRequestIdLayer` chose when it ran first
///    (its `RequestId` extension), else the `x-request-id` header (its first value only, when
///    it is sent more than once; the others are neither read nor logged), else the request id
///    variable's entry in the baggage, else a fresh id from the [`MakeRequestId`] (a UUID v7
///    by default), and records the id on the request as `SetRequestIdLayer` does; see
///    [`incoming_request_id`](Self::incoming_request_id) to trust less;
/// 4. runs the inner service's `call`, every poll of its future and every frame of its
///    response's body (a [`ResponseBody`]) inside that context, with the extracted
///    OpenTelemetry context attached;
/// 5. sets the id on the response's header.
///
/// Tasks and blocking closures spawned through ctxflow from the handler keep the request's
/// context after the response is sent. A header that is too long or malformed never fails the
/// request: it is ignored with a debug-level `tracing` event.
///
/// A request id, whether from the header, the baggage, the `RequestId` extension or the
/// [`MakeRequestId`],
/// is used only when it is non-empty, at most [`max_request_id_len`](Self::max_request_id_len)
/// bytes long, and made of ASCII letters, digits and `-` `_` `.` `:` `/` `+` `=` `@`: enough
/// for UUIDs, ULIDs, base64 ids, `host:pid` or `name@host`, and nothing that could add a field
/// or a line where the id is logged (no space, tab, control character, quote, backslash, `,`,
/// `;` or `%`). Any other id is replaced by a fresh one.
///
/// ```
/// use axum::{routing::get, Router};
/// use ctxflow::tower::RequestContextLayer;
/// use ctxflow::ContextVar;
/// use tower::ServiceExt;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// async fn handler() -> String {
///     REQUEST_ID.get().unwrap_or_default()
/// }
///
/// let app = Router::new()
///     .route("/", get(handler))
///     .layer(RequestContextLayer::new(&REQUEST_ID));
///
/// let request = http::Request::builder()
///     .uri("/")
///     .header("x-request-id", "req-123")
///     .body(axum::body::Body::empty())
///     .unwrap();
/// let response = futures::executor::block_on(app.oneshot(request)).unwrap();
/// assert_eq!(response.headers()["x-request-id"], "req-123");
/// ```
pub struct RequestContextLayer<M = MakeRequestUuidV7> {
    settings: Arc<Settings>,
    make_request_id: M,
}

#[derive(Clone)]
struct Settings {
    request_id: &'static ContextVar<String>,
    header: HeaderName,
    max_request_id_len: usize,
    incoming: IncomingRequestId,
    #[cfg(feature = "trace-context")]
    propagation: Propagation,
    span: bool,
}

impl RequestContextLayer {
    /// A layer that sets `request_id` in each request's context, reading and echoing the
    /// `x-request-id` header and making UUID v7 ids for requests without one. No baggage
    /// variable is read until [`propagation`](Self::propagation) lists some.
    ///
    /// ```
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let layer = RequestContextLayer::new(&REQUEST_ID);
    /// assert_eq!(layer.header_name(), "x-request-id");
    /// ```
    pub fn new(request_id: &'static ContextVar<String>) -> Self {
        RequestContextLayer {
            settings: Arc::new(Settings {
                request_id,
                header: HeaderName::from_static("x-request-id"),
                max_request_id_len: DEFAULT_MAX_REQUEST_ID_LEN,
                incoming: IncomingRequestId::default(),
                #[cfg(feature = "trace-context")]
                propagation: Propagation::new(),
                span: false,
            }),
            make_request_id: MakeRequestUuidV7,
        }
    }
}

impl<M> RequestContextLayer<M> {
    /// Reads and echoes the request id under `header` instead of `x-request-id`; give
    /// tower-http's `SetRequestIdLayer` the same name when it runs first.
    ///
    /// ```
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    /// use http::HeaderName;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let layer = RequestContextLayer::new(&REQUEST_ID)
    ///     .header(HeaderName::from_static("x-correlation-id"));
    /// assert_eq!(layer.header_name(), "x-correlation-id");
    /// ```
    pub fn header(mut self, header: HeaderName) -> Self {
        Arc::make_mut(&mut self.settings).header = header;
        self
    }

    /// The header the request id is read from and echoed on.
    ///
    /// ```
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// assert_eq!(RequestContextLayer::new(&REQUEST_ID).header_name(), "x-request-id");
    /// ```
    pub fn header_name(&self) -> &HeaderName {
        &self.settings.header
    }

    /// Ignores incoming request ids longer than `max` bytes (128 by default): they are logged
    /// with every line of the request. Ids within the length must still be made of the request
    /// id characters (see [`RequestContextLayer`]).
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    /// use tower::ServiceExt;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// let app = Router::new()
    ///     .route("/", get(|| async { "ok" }))
    ///     .layer(RequestContextLayer::new(&REQUEST_ID).max_request_id_len(8));
    /// let request = http::Request::builder()
    ///     .uri("/")
    ///     .header("x-request-id", "longer-than-eight")
    ///     .body(axum::body::Body::empty())
    ///     .unwrap();
    /// let response = futures::executor::block_on(app.oneshot(request)).unwrap();
    /// assert_ne!(response.headers()["x-request-id"], "longer-than-eight");
    /// ```
    pub fn max_request_id_len(mut self, max: usize) -> Self {
        Arc::make_mut(&mut self.settings).max_request_id_len = max;
        self
    }

    /// Which of the ids a request brings are used: by default the request id header, else the
    /// request id variable's entry in the baggage, else a fresh id (see [`IncomingRequestId`]).
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use ctxflow::tower::{IncomingRequestId, RequestContextLayer};
    /// use ctxflow::ContextVar;
    /// use tower::ServiceExt;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// let edge = Router::new()
    ///     .route("/", get(|| async { "ok" }))
    ///     .layer(RequestContextLayer::new(&REQUEST_ID).incoming_request_id(IncomingRequestId::Fresh));
    /// let request = http::Request::builder()
    ///     .uri("/")
    ///     .header("x-request-id", "chosen-by-the-caller")
    ///     .body(axum::body::Body::empty())
    ///     .unwrap();
    /// let response = futures::executor::block_on(edge.oneshot(request)).unwrap();
    /// assert_ne!(response.headers()["x-request-id"], "chosen-by-the-caller");
    /// ```
    pub fn incoming_request_id(mut self, incoming: IncomingRequestId) -> Self {
        Arc::make_mut(&mut self.settings).incoming = incoming;
        self
    }

    /// Opens an info-level `tracing` span named `request` around each request's future and
    /// `call`, with fields `method`, `path` (the request's URI path) and `request_id`, as
    /// tower-http's `TraceLayer` does; tasks spawned from the handler through ctxflow carry it
    /// with feature `tracing`. Off by default.
    pub fn trace_span(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.settings).span = enabled;
        self
    }

    /// Sets the variables `propagation` lists from the request's W3C `baggage` header
    /// (feature `trace-context`); the
    /// client side sends them with [`InjectContextLayer`](super::InjectContextLayer) or
    /// [`inject_context`](super::inject_context). Values that do not parse, or baggage over
    /// the propagation's limits, are ignored with a debug-level event, all of them at once.
    /// Other systems' entries, under names the propagation does not list, are passed on
    /// whatever they hold, and are a reason to ignore the listed ones only by their number and
    /// size: every entry counts towards the propagation's limits (whose defaults are
    /// OpenTelemetry's own caps on a `baggage` header, so only lowered limits can be reached).
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::{ContextVar, Propagation};
    /// use tower::ServiceExt;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    ///
    /// let app = Router::new()
    ///     .route("/", get(|| async { TENANT.get().unwrap_or_default() }))
    ///     .layer(RequestContextLayer::new(&REQUEST_ID).propagation(Propagation::new().var(&TENANT)));
    /// let request = http::Request::builder()
    ///     .uri("/")
    ///     .header("baggage", "tenant=acme,other=ignored")
    ///     .body(axum::body::Body::empty())
    ///     .unwrap();
    /// let response = futures::executor::block_on(app.oneshot(request)).unwrap();
    /// # use http_body_util::BodyExt;
    /// let body = futures::executor::block_on(response.into_body().collect()).unwrap();
    /// assert_eq!(body.to_bytes(), "acme");
    /// ```
    #[cfg(feature = "trace-context")]
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        Arc::make_mut(&mut self.settings).propagation = propagation;
        self
    }

    /// Makes the ids of requests that arrive without one with `make_request_id`, such as a
    /// tower-http [`MakeRequestId`] of your own. When it makes none, or one that is not a
    /// usable id, a UUID v7 is used.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// use axum::{routing::get, Router};
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    /// use tower::ServiceExt;
    /// use tower_http::request_id::{MakeRequestId, RequestId};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// #[derive(Clone, Default)]
    /// struct Counter(Arc<AtomicU64>);
    ///
    /// impl MakeRequestId for Counter {
    ///     fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
    ///         let n = self.0.fetch_add(1, Ordering::Relaxed);
    ///         Some(RequestId::new(format!("req-{n}").parse().unwrap()))
    ///     }
    /// }
    ///
    /// let app = Router::new()
    ///     .route("/", get(|| async { "ok" }))
    ///     .layer(RequestContextLayer::new(&REQUEST_ID).make_request_id(Counter::default()));
    /// let request = http::Request::new(axum::body::Body::empty());
    /// let response = futures::executor::block_on(app.oneshot(request)).unwrap();
    /// assert_eq!(response.headers()["x-request-id"], "req-0");
    /// ```
    pub fn make_request_id<N: MakeRequestId>(self, make_request_id: N) -> RequestContextLayer<N> {
        RequestContextLayer {
            settings: self.settings,
            make_request_id,
        }
    }
}

impl<M: Clone> Clone for RequestContextLayer<M> {
    fn clone(&self) -> Self {
        RequestContextLayer {
            settings: self.settings.clone(),
            make_request_id: self.make_request_id.clone(),
        }
    }
}

impl<M: fmt::Debug> fmt::Debug for RequestContextLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContextLayer")
            .field("request_id", &self.settings.request_id.name())
            .field("header", &self.settings.header)
            .field("max_request_id_len", &self.settings.max_request_id_len)
            .field("incoming", &self.settings.incoming)
            .field("make_request_id", &self.make_request_id)
            .finish_non_exhaustive()
    }
}

impl<S, M: Clone> Layer<S> for RequestContextLayer<M> {
    type Service = RequestContextService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContextService {
            inner,
            settings: self.settings.clone(),
            make_request_id: self.make_request_id.clone(),
        }
    }
}

/// The service [`RequestContextLayer`] wraps around another: it handles each request in a
/// fresh context of its own.
///
/// ```
/// use ctxflow::tower::RequestContextLayer;
/// use ctxflow::ContextVar;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let service = RequestContextLayer::new(&REQUEST_ID).layer(service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(REQUEST_ID.get().unwrap()))
/// }));
/// let request = http::Request::builder().header("x-request-id", "req-7").body(()).unwrap();
/// let response = futures::executor::block_on(service.oneshot(request)).unwrap();
/// assert_eq!(response.body().get_ref(), "req-7");
/// ```
pub struct RequestContextService<S, M = MakeRequestUuidV7> {
    inner: S,
    settings: Arc<Settings>,
    make_request_id: M,
}

impl<S: Clone, M: Clone> Clone for RequestContextService<S, M> {
    fn clone(&self) -> Self {
        RequestContextService {
            inner: self.inner.clone(),
            settings: self.settings.clone(),
            make_request_id: self.make_request_id.clone(),
        }
    }
}

impl<S: fmt::Debug, M: fmt::Debug> fmt::Debug for RequestContextService<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContextService")
            .field("inner", &self.inner)
            .field("request_id", &self.settings.request_id.name())
            .field("header", &self.settings.header)
            .field("make_request_id", &self.make_request_id)
            .finish()
    }
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for RequestContextService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: MakeRequestId,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let settings = &*self.settings;
        #[cfg(feature = "trace-context")]
        let trace_headers::Incoming {
            variables,
            trace_context,
            ..
        } = trace_headers::extract(request.headers(), &settings.propagation);
        #[cfg(not(feature = "trace-context"))]
        let variables = ctxflow_core::Context::empty();
        let rules = IdRules {
            header: &settings.header,
            max_len: settings.max_request_id_len,
            incoming: settings.incoming,
        };
        let id = rules.choose(
            &mut request,
            &mut self.make_request_id,
            variables.get(settings.request_id),
        );
        let span = match settings.span {
            true => tracing::info_span!(
                "request",
                method = %request.method(),
                path = request.uri().path(),
                request_id = id.text.as_str(),
            ),
            false => tracing::Span::none(),
        };
        let context = variables.with_value(settings.request_id, id.text);
        // Whatever the inner service does before returning its future already belongs to the
        // request: axum runs extractors there, other services may spawn.
        let inner = context.run(|| {
            #[cfg(feature = "trace-context")]
            let _attached = trace_context.clone().attach();
            let _entered = span.enter();
            self.inner.call(request)
        });
        #[cfg(feature = "trace-context")]
        let inner = inner.with_context(trace_context.clone());
        ResponseFuture {
            inner: inner.in_context(context),
            #[cfg(feature = "trace-context")]
            trace_context,
            // Not the unit value: ctxflow-text-map may have `trace-context` for another crate.
            #[cfg(not(feature = "trace-context"))]
            trace_context: TraceSlot::default(),
            span,
            echo: Some((settings.header.clone(), id.header_value)),
        }
    }
}

#[cfg(feature = "trace-context")]
type RequestScoped<F> = WithContext<opentelemetry::context::WithContext<F>>;
#[cfg(not(feature = "trace-context"))]
type RequestScoped<F> = WithContext<F>;

pin_project! {
    /// The response of a [`RequestContextService`]: the inner service's future, polled inside the
    /// request's context with its OpenTelemetry context attached, and its response given the
    /// request id header and a [`ResponseBody`] that produces its frames in the same contexts.
    ///
    /// ```
    /// use ctxflow::tower::{RequestContextLayer, ResponseFuture};
    /// use ctxflow::ContextVar;
    /// use tower::{service_fn, Layer, Service};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// let mut service = RequestContextLayer::new(&REQUEST_ID).layer(service_fn(|_: http::Request<()>| {
    ///     std::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(())))
    /// }));
    /// let future: ResponseFuture<_> = service.call(http::Request::new(()));
    /// let response = futures::executor::block_on(future).unwrap();
    /// assert!(response.headers().contains_key("x-request-id"));
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: RequestScoped<F>,
        // For the body, which goes on being polled after the future is done.
        trace_context: TraceSlot,
        span: tracing::Span,
        echo: Option<(HeaderName, HeaderValue)>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let response = {
            let _entered = this.span.enter();
            ready!(this.inner.as_mut().poll(cx))?
        };
        // The context as the handler left it, so the body sees what the handler set.
        let context = this.inner.context().clone();
        let trace_context = std::mem::take(this.trace_context);
        let mut response = response.map(|body| ResponseBody::new(body, context, trace_context));
        if let Some((header, value)) = this.echo.take() {
            response.headers_mut().insert(header, value);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("context", self.inner.context())
            .finish_non_exhaustive()
    }
}
