//! NATS messages handled in their publisher's context, through async-nats (`ctxflow`'s feature
//! `nats`).
//!
//! [`publish`] writes the current context into the message's headers with a
//! [`ContextPropagator`]: the request id, and with feature `trace-context` the W3C `traceparent`,
//! `tracestate` and the [`Propagation`](ctxflow_core::Propagation)'s variables as `baggage`. On the
//! consumer's side, [`extract`] reads them back, and the handler runs inside them with
//! [`Extracted::scope`]:
//!
//! ```no_run
//! use ctxflow::text_map::ContextPropagator;
//! use ctxflow::ContextVar;
//! use futures::StreamExt;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let carrier = ContextPropagator::new(&REQUEST_ID);
//!
//! // The consumer: every message handled in its publisher's context.
//! let mut orders = client.subscribe("orders").await?;
//! let consumer = carrier.clone();
//! ctxflow::spawn(async move {
//!     while let Some(message) = orders.next().await {
//!         let context = ctxflow::nats::extract(&consumer, &message);
//!         let handle = async move {
//!             println!("request_id={} {:?}", REQUEST_ID.get().unwrap(), message.payload);
//!         };
//!         ctxflow::spawn(context.scope(handle)).detach();
//!     }
//! })
//! .detach();
//!
//! // The publisher, inside a request:
//! let _id = REQUEST_ID.set("req-1".into());
//! ctxflow::nats::publish(&client, &carrier, "orders", "2 coffees".into()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A message whose headers are hostile (an oversized or forged request id, a malformed
//! `traceparent`, oversized or unparsable baggage) is still handled, in a context of its own
//! that leaves out what was refused (a refused request id is replaced by a fresh one):
//! [`extract`] reports what it refused with a warning through `tracing` (target
//! `ctxflow::nats`), and [`Extracted::error`] gives the typed
//! [`ExtractError`](ctxflow_text_map::ExtractError).
//!
//! This is the `ctxflow-nats` crate, which the `ctxflow` crate re-exports as `ctxflow::nats`
//! with its feature `nats`.
#![cfg_attr(docsrs, feature(doc_cfg))]

use async_nats::client::PublishError;
use async_nats::{Client, HeaderMap, Message, Subject};
use bytes::Bytes;
use ctxflow_text_map::{ContextPropagator, Extracted};

/// The current context as message headers, for publishing with async-nats' own calls
/// (`publish_with_headers`, `request_with_headers`, JetStream's `send_publish`).
pub fn headers(carrier: &ContextPropagator) -> HeaderMap {
    let mut headers = HeaderMap::new();
    carrier.inject(&mut headers);
    headers
}

/// Publishes `payload` on `subject` with the current context in its headers.
pub async fn publish(
    client: &Client,
    carrier: &ContextPropagator,
    subject: impl Into<Subject>,
    payload: Bytes,
) -> Result<(), PublishError> {
    let headers = headers(carrier);
    client
        .publish_with_headers(subject.into(), headers, payload)
        .await
}

/// The context `message` was published in, to handle it in with [`Extracted::scope`]: a fresh
/// one with a new request id when the message has no headers. What was refused is logged as a
/// warning and kept in [`Extracted::error`].
pub fn extract(carrier: &ContextPropagator, message: &Message) -> Extracted {
    let extracted = match &message.headers {
        Some(headers) => carrier.extract(headers),
        None => carrier.extract(&HeaderMap::new()),
    };
    if let Some(error) = extracted.error() {
        tracing::warn!(
            target: "ctxflow::nats",
            subject = message.subject.as_str(),
            %error,
            "message handled in a fresh context"
        );
    }
    extracted
}
