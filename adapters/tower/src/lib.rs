//! HTTP requests with a context of their own, across services (`ctxflow`'s feature `tower`): for
//! axum, hyper and anything built on tower.
//!
//! - [`RequestContextLayer`] (servers): every request runs in a fresh context holding its request
//!   id (from tower-http's `SetRequestIdLayer`, `x-request-id`, the baggage, or a new UUID v7,
//!   echoed on the response; an id with a character that could forge a log field, such as a
//!   space, is replaced), and with feature `trace-context` the variables of a
//!   [`Propagation`](ctxflow_core::Propagation) found in its W3C `baggage` and the OpenTelemetry
//!   context of its W3C `traceparent` attached.
//! - [`InjectContextLayer`] (clients, tonic's `Channel` too): an outgoing request carries the
//!   caller's request id, and with `trace-context` its trace context and listed variables;
//!   [`ContextPropagator`](ctxflow_text_map::ContextPropagator) fills the headers of any other client,
//!   such as reqwest.
//!
//! Tasks spawned through ctxflow from a handler keep the request id after the response is sent:
//!
//! ```
//! use axum::{http::StatusCode, routing::post, Router};
//! use ctxflow::tower::RequestContextLayer;
//! use ctxflow::ContextVar;
//! use tower::ServiceExt;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! async fn create_order() -> StatusCode {
//!     ctxflow::spawn(async {
//!         // runs after the response went out, under the same request id
//!         println!("request_id={} notification sent", REQUEST_ID.get().unwrap());
//!     })
//!     .detach();
//!     StatusCode::ACCEPTED
//! }
//!
//! let app = Router::new()
//!     .route("/orders", post(create_order))
//!     .layer(RequestContextLayer::new(&REQUEST_ID));
//! # let runtime = tokio::runtime::Runtime::new().unwrap();
//! # runtime.block_on(async {
//! let request = http::Request::post("/orders").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::ACCEPTED);
//! assert!(response.headers().contains_key("x-request-id"));
//! # });
//! ```
//!
//! The layer itself needs no runtime: it only wraps the inner service's futures. The request id
//! types of tower-http 0.7 are the ones recognised; tower-http 0.6's `SetRequestIdLayer` works
//! through the header it writes. See `docs/http.md` for setups with tower-http, a custom
//! `MakeRequestId`, calls between services, and gRPC.
//!
//! This is the `ctxflow-tower` crate, which the `ctxflow` crate re-exports as `ctxflow::tower`
//! with its feature `tower`; its feature `trace-context` is `ctxflow`'s feature of the same name.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod request_id;
mod response_body;
mod server;
#[cfg(feature = "trace-context")]
mod trace_headers;

pub use client::{InjectContextLayer, InjectContextService};
pub use request_id::{IncomingRequestId, MakeRequestUuidV7};
pub use response_body::ResponseBody;
pub use server::{RequestContextLayer, RequestContextService, ResponseFuture};
#[cfg(feature = "trace-context")]
pub use trace_headers::inject_context;
