//! [`ResponseBody`]: a response body that produces its frames inside the request's context.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use ctxflow_core::{Context, InContext, WithContext};
use ctxflow_text_map::{attach, TraceSlot};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response from a [`RequestContextService`](super::RequestContextService):
    /// the inner service's body, each of whose frames is produced inside the request's context
    /// (as the handler left it), with the request's OpenTelemetry context attached, and dropped
    /// inside that context.
    ///
    /// A streamed body, such as axum's `Body::from_stream`, runs its stream after the handler
    /// has returned, while the server writes the response out: wrapped, it still sees the
    /// request id and logs under it.
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum::{routing::get, Router};
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    /// use http_body_util::BodyExt;
    /// use tower::ServiceExt;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// async fn stream_report() -> Body {
    ///     let chunks = futures::stream::iter(0..2).map(|n| {
    ///         // runs when the server asks for the chunk, after `stream_report` returned
    ///         Ok::<_, std::io::Error>(format!("{n}:{} ", REQUEST_ID.get().unwrap()))
    ///     });
    ///     Body::from_stream(chunks)
    /// }
    /// # use futures::StreamExt;
    ///
    /// let app = Router::new()
    ///     .route("/report", get(stream_report))
    ///     .layer(RequestContextLayer::new(&REQUEST_ID));
    /// let request = http::Request::get("/report")
    ///     .header("x-request-id", "req-9")
    ///     .body(Body::empty())
    ///     .unwrap();
    /// let response = futures::executor::block_on(app.oneshot(request)).unwrap();
    /// let body = futures::executor::block_on(response.into_body().collect()).unwrap();
    /// assert_eq!(body.to_bytes(), "0:req-9 1:req-9 ");
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        inner: WithContext<B>,
        trace_context: TraceSlot,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, context: Context, trace_context: TraceSlot) -> Self {
        ResponseBody {
            inner: inner.in_context(context),
            trace_context,
        }
    }

    /// The context the body's frames are produced in.
    pub fn context(&self) -> &Context {
        self.inner.context()
    }

    /// The inner service's body.
    ///
    /// ```
    /// use ctxflow::tower::RequestContextLayer;
    /// use ctxflow::ContextVar;
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// let service = RequestContextLayer::new(&REQUEST_ID).layer(service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new("hello"))
    /// }));
    /// let response = futures::executor::block_on(service.oneshot(http::Request::new(()))).unwrap();
    /// assert_eq!(*response.body().get_ref(), "hello");
    /// ```
    pub fn get_ref(&self) -> &B {
        self.inner.inner()
    }

    /// The inner service's body, mutably.
    pub fn get_mut(&mut self) -> &mut B {
        self.inner.inner_mut()
    }

    /// The inner service's body, no longer bound to the request's context.
    pub fn into_inner(self) -> B {
        self.inner.into_inner()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let _attached = attach(this.trace_context);
        this.inner.run_inner(|body| body.poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.inner().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.inner().size_hint()
    }
}

impl<B: fmt::Debug> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("context", self.inner.context())
            .field("inner", self.inner.inner())
            .finish()
    }
}
