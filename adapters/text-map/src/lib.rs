//! A request's context in any text map: message headers, job rows, RPC metadata (`ctxflow`'s
//! feature `text-map`, on with `tower` and `nats`).
//!
//! A [`ContextPropagator`] writes the current context into a carrier of text pairs and reads it
//! back on the other side: the request id under its own key (`x-request-id` by default), and,
//! with feature `trace-context`, the OpenTelemetry trace context as W3C `traceparent` and
//! `tracestate` and the variables of a [`Propagation`] as W3C `baggage`. A broker or job queue
//! needs only an [`Injector`] for the producer's side and an [`Extractor`] for the consumer's:
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use ctxflow::text_map::{ContextPropagator, Extractor, Injector};
//! use ctxflow::ContextVar;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! /// A job row's `headers` column, as the queue table stores it.
//! #[derive(Default)]
//! struct JobHeaders(BTreeMap<String, String>);
//!
//! impl Injector for JobHeaders {
//!     fn set(&mut self, key: &str, value: String) {
//!         self.0.insert(key.to_owned(), value);
//!     }
//! }
//! impl Extractor for JobHeaders {
//!     fn get(&self, key: &str) -> Option<&str> {
//!         self.0.get(key).map(String::as_str)
//!     }
//! }
//!
//! let carrier = ContextPropagator::new(&REQUEST_ID);
//!
//! // Enqueuing, inside the request:
//! let _token = REQUEST_ID.set("req-42".into());
//! let mut headers = JobHeaders::default();
//! carrier.inject(&mut headers);
//! // INSERT INTO jobs (payload, headers) VALUES ($1, $2)
//!
//! // The worker, for each row it takes:
//! let job = carrier.extract(&headers);
//! assert!(job.error().is_none());
//! let seen = futures::executor::block_on(job.scope(async { REQUEST_ID.get() }));
//! assert_eq!(seen.as_deref(), Some("req-42"));
//! ```
//!
//! Reading never fails: whatever is too long or malformed is left out and reported in
//! [`Extracted::error`] (what is missing is simply absent), and the work runs in a context of
//! its own, with a fresh request id when none usable came, rather than a forged one.
//!
//! [`Injector`] and [`Extractor`] are implemented for `HashMap` and `BTreeMap`, and with this
//! crate's features of the same names for `http::HeaderMap` (`http`), tonic's `MetadataMap`
//! (`tonic`) and async-nats' `HeaderMap` (`async-nats`), which `ctxflow`'s features `tower`,
//! `grpc` and `nats` turn on.
//!
//! This is the `ctxflow-text-map` crate, which the `ctxflow` crate re-exports as
//! `ctxflow::text_map` with its feature `text-map`; its feature `trace-context` is `ctxflow`'s
//! feature of the same name.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "http")]
mod header_map;
#[cfg(feature = "async-nats")]
mod nats_headers;
pub mod request_id;
#[cfg(feature = "tonic")]
mod tonic_metadata;
#[cfg(feature = "trace-context")]
pub mod w3c;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use ctxflow_core::{Context, ContextVar, ImportError, InContext, Propagation, WithContext};
// The consumer's work runs with the producer's OpenTelemetry context, and whatever it spawns
// must carry that context on: linking the carrier's crate registers it.
#[cfg(feature = "trace-context")]
use ctxflow_opentelemetry as _;
use pin_project_lite::pin_project;

use self::request_id::{check_request_id, uuid_v7, InvalidRequestId, DEFAULT_MAX_REQUEST_ID_LEN};

/// Where text pairs are written: message headers, a job row's column, RPC metadata.
pub trait Injector {
    /// Sets `key` to `value`, replacing what was there.
    fn set(&mut self, key: &str, value: String);

    /// Removes `key`: what the carrier held under it before (a forwarded request's headers)
    /// must not go on when the current context has nothing to write there. The default does
    /// nothing, for a carrier that starts empty.
    fn remove(&mut self, _key: &str) {}
}

/// Where text pairs are read from.
pub trait Extractor {
    /// The value of `key`, if there is one; with several, one of them.
    fn get(&self, key: &str) -> Option<&str>;

    /// Every value of `key`, in the carrier's order: W3C lets a request send `baggage` in
    /// several headers, which together are one list. The default gives [`get`](Self::get)'s
    /// one value; a carrier that can hold a key more than once gives them all.
    fn get_all(&self, key: &str) -> Vec<&str> {
        self.get(key).into_iter().collect()
    }
}

impl<S: BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }

    fn remove(&mut self, key: &str) {
        HashMap::remove(self, key);
    }
}

impl<S: BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl Injector for BTreeMap<String, String> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }

    fn remove(&mut self, key: &str) {
        BTreeMap::remove(self, key);
    }
}

impl Extractor for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

/// What crosses with a message or a job, and how it is read back: see the [module](self).
#[derive(Clone)]
pub struct ContextPropagator {
    request_id: &'static ContextVar<String>,
    request_id_key: Cow<'static, str>,
    max_request_id_len: usize,
    propagation: Propagation,
    #[cfg(feature = "trace-context")]
    consumer_span: Option<ConsumerSpan>,
}

impl ContextPropagator {
    /// Carries `request_id` under the key `x-request-id`, and with feature `trace-context` the
    /// trace context; no other variable until [`propagation`](Self::propagation) lists some.
    pub fn new(request_id: &'static ContextVar<String>) -> Self {
        ContextPropagator {
            request_id,
            request_id_key: Cow::Borrowed("x-request-id"),
            max_request_id_len: DEFAULT_MAX_REQUEST_ID_LEN,
            propagation: Propagation::new(),
            #[cfg(feature = "trace-context")]
            consumer_span: None,
        }
    }

    /// Writes and reads the request id under `key` instead of `x-request-id`.
    ///
    /// ```
    /// use ctxflow::text_map::ContextPropagator;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let carrier = ContextPropagator::new(&REQUEST_ID).request_id_key("correlation-id");
    /// assert_eq!(carrier.request_id_key_name(), "correlation-id");
    /// ```
    pub fn request_id_key(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        self.request_id_key = key.into();
        self
    }

    /// The key the request id is written and read under.
    pub fn request_id_key_name(&self) -> &str {
        &self.request_id_key
    }

    /// Refuses carried request ids longer than `max` bytes (128 by default).
    pub fn max_request_id_len(mut self, max: usize) -> Self {
        self.max_request_id_len = max;
        self
    }

    /// Carries the variables `propagation` lists as W3C `baggage` (feature `trace-context`;
    /// without it, only the request id crosses).
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// The variables carried as baggage.
    pub fn propagation_ref(&self) -> &Propagation {
        &self.propagation
    }

    /// Writes the current context into `carrier`: the request id when one is set and usable
    /// (an id [`extract`](Self::extract) would refuse is left out), and with feature
    /// `trace-context` the trace context and baggage. When the listed variables cannot be
    /// exported ([`ExportError`](ctxflow_core::ExportError)), none of them is written and a debug-level
    /// event says why; the request id and the other baggage entries still are.
    ///
    /// It writes the current context as it is, as a message sent from here carries it: a
    /// listed non-flowing variable too, and inside [`suppress_flow`](ctxflow_core::suppress_flow)
    /// as well, which changes only what is spawned.
    pub fn inject(&self, carrier: &mut dyn Injector) {
        // An id the receiving side would refuse is not sent: it makes its own instead.
        let id = self.request_id.with(|id| {
            id.filter(|id| check_request_id(id.as_bytes(), self.max_request_id_len).is_ok())
                .cloned()
        });
        match id {
            Some(id) => carrier.set(&self.request_id_key, id),
            None => carrier.remove(&self.request_id_key),
        }
        #[cfg(feature = "trace-context")]
        w3c::inject(&self.propagation, carrier);
    }

    /// Reads the context a producer wrote into `carrier`.
    ///
    /// The request id is the carried one under the request id key when it is usable (non-empty,
    /// at most [`max_request_id_len`](Self::max_request_id_len) bytes, made of ASCII letters,
    /// digits and `-_.:/+=@`), else the request id variable's entry in the baggage when the
    /// propagation lists it and it is usable, else a fresh UUID v7. Whatever was refused is in
    /// [`Extracted::error`]; nothing here logs, so that the caller chooses the level.
    pub fn extract(&self, carrier: &dyn Extractor) -> Extracted {
        let mut problems = Vec::new();
        #[cfg(feature = "trace-context")]
        let (mut context, trace_context) = {
            let incoming = w3c::extract(carrier, &self.propagation, &mut problems);
            (incoming.variables, incoming.trace_context)
        };
        #[cfg(not(feature = "trace-context"))]
        let mut context = Context::empty();
        let carried = carrier.get(&self.request_id_key).and_then(|id| {
            match check_request_id(id.as_bytes(), self.max_request_id_len) {
                Ok(()) => Some(id.to_owned()),
                Err(reason) => {
                    problems.push(ExtractProblem::RequestId {
                        source: RequestIdSource::Key,
                        reason,
                    });
                    None
                }
            }
        });
        let from_baggage = || {
            let id = context.get(self.request_id)?;
            match check_request_id(id.as_bytes(), self.max_request_id_len) {
                Ok(()) => Some(id.clone()),
                Err(reason) => {
                    problems.push(ExtractProblem::RequestId {
                        source: RequestIdSource::Baggage,
                        reason,
                    });
                    None
                }
            }
        };
        let id = carried.or_else(from_baggage).unwrap_or_else(uuid_v7);
        context = context.with_value(self.request_id, id);
        #[cfg(feature = "trace-context")]
        let trace_context = match &self.consumer_span {
            Some(span) => span.start(&trace_context),
            None => trace_context,
        };
        Extracted {
            context,
            #[cfg(feature = "trace-context")]
            trace_context,
            error: (!problems.is_empty()).then_some(ExtractError { problems }),
        }
    }
}

impl fmt::Debug for ContextPropagator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextPropagator")
            .field("request_id", &self.request_id.name())
            .field("request_id_key", &self.request_id_key)
            .field("max_request_id_len", &self.max_request_id_len)
            .field("propagation", &self.propagation)
            .finish_non_exhaustive()
    }
}

/// The context read from a carrier: run the consumer's work in it with [`scope`](Self::scope).
#[derive(Debug)]
pub struct Extracted {
    context: Context,
    #[cfg(feature = "trace-context")]
    trace_context: opentelemetry::Context,
    error: Option<ExtractError>,
}

impl Extracted {
    /// The request id and the listed variables, as the producer had them (or a fresh id).
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The producer's trace context and baggage, or with a consumer span the context holding
    /// that span.
    #[cfg(feature = "trace-context")]
    pub fn trace_context(&self) -> &opentelemetry::Context {
        &self.trace_context
    }

    /// What was refused, if anything: the work still runs, without it.
    pub fn error(&self) -> Option<&ExtractError> {
        self.error.as_ref()
    }

    /// Runs `future` inside the extracted context, with the OpenTelemetry context attached
    /// around each poll (feature `trace-context`).
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            inner: future.in_context(self.context),
            #[cfg(feature = "trace-context")]
            trace_context: self.trace_context,
            #[cfg(not(feature = "trace-context"))]
            trace_context: TraceSlot,
        }
    }
}

pin_project! {
    /// A future running inside the context a carrier brought: see [`Extracted::scope`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Scoped<F> {
        #[pin]
        inner: WithContext<F>,
        trace_context: TraceSlot,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = attach(this.trace_context);
        this.inner.poll(cx)
    }
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("context", self.inner.context())
            .finish_non_exhaustive()
    }
}

/// The OpenTelemetry context that work extracted from a text map runs with, for integrations
/// built on this module (`ctxflow::tower`): OpenTelemetry's `Context` with feature
/// `trace-context`, nothing without it. Attach it around each poll with [`attach`].
#[cfg(feature = "trace-context")]
pub type TraceSlot = opentelemetry::Context;
/// The OpenTelemetry context that work extracted from a text map runs with, for integrations
/// built on this module (`ctxflow::tower`): OpenTelemetry's `Context` with feature
/// `trace-context`, nothing without it. Attach it around each poll with [`attach`].
#[cfg(not(feature = "trace-context"))]
#[derive(Clone, Debug, Default)]
pub struct TraceSlot;

/// Attaches `slot` to this thread until the guard is dropped.
#[cfg(feature = "trace-context")]
#[inline]
pub fn attach(slot: &TraceSlot) -> opentelemetry::ContextGuard {
    slot.clone().attach()
}

/// Attaches `slot` to this thread until the guard is dropped: nothing to attach without
/// feature `trace-context`.
#[cfg(not(feature = "trace-context"))]
#[inline]
pub fn attach(_slot: &TraceSlot) -> TraceSlot {
    TraceSlot
}

/// Where a refused request id came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestIdSource {
    /// The carrier's request id key.
    Key,
    /// The request id variable's entry in the baggage.
    Baggage,
}

/// One thing a carrier held that was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractProblem {
    /// A request id was refused; a fresh one was used unless another source had a usable one.
    RequestId {
        /// Where it was carried.
        source: RequestIdSource,
        /// Why it was refused.
        reason: InvalidRequestId,
    },
    /// The `traceparent` was outside W3C's grammar or refused by OpenTelemetry: the work has
    /// no remote parent (a span it starts, with an SDK tracer provider, begins a new trace).
    Traceparent,
    /// The `baggage` held no valid entry.
    Baggage,
    /// The `baggage`, its headers together, was over W3C's limit: none of it was read.
    BaggageTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The baggage's entries for the listed variables were refused: none of them is set.
    Variables(ImportError),
}

impl fmt::Display for ExtractProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractProblem::RequestId { source, reason } => {
                let source = match source {
                    RequestIdSource::Key => "request id",
                    RequestIdSource::Baggage => "request id in the baggage",
                };
                write!(f, "{source} refused: {reason}")
            }
            ExtractProblem::Traceparent => f.write_str("malformed traceparent"),
            ExtractProblem::Baggage => f.write_str("baggage with no valid entry"),
            ExtractProblem::BaggageTooLarge { bytes, max } => {
                write!(f, "baggage of {bytes} bytes, over the {max} allowed")
            }
            ExtractProblem::Variables(error) => write!(f, "{error}"),
        }
    }
}

/// Everything a carrier held that was not used: see [`Extracted::error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractError {
    problems: Vec<ExtractProblem>,
}

impl ExtractError {
    /// Each problem, in the order found.
    pub fn problems(&self) -> &[ExtractProblem] {
        &self.problems
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ignored part of the carried context: ")?;
        for (n, problem) in self.problems.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl Error for ExtractError {}

/// How the consumer's span relates to the producer's (feature `trace-context`).
///
/// OpenTelemetry's messaging conventions suggest a link for work that is not part of the
/// producer's operation, such as a batch or a message handled long after; a child keeps one
/// trace from the request to its last consumer.
#[cfg(feature = "trace-context")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanRelation {
    /// The consumer's span is a child of the producer's, in the same trace.
    Child,
    /// The consumer's span starts a new trace, with a link to the producer's span.
    Link,
}

#[cfg(feature = "trace-context")]
#[derive(Clone, Debug)]
struct ConsumerSpan {
    name: Cow<'static, str>,
    relation: SpanRelation,
}

#[cfg(feature = "trace-context")]
impl ConsumerSpan {
    fn start(&self, producer: &opentelemetry::Context) -> opentelemetry::Context {
        use opentelemetry::trace::{Link, SpanKind, TraceContextExt, Tracer};
        let tracer = opentelemetry::global::tracer("ctxflow");
        let builder = tracer
            .span_builder(self.name.clone())
            .with_kind(SpanKind::Consumer);
        let producer_span = producer.span().span_context().clone();
        let parent = match self.relation {
            SpanRelation::Child => producer.clone(),
            // A new trace, keeping the baggage.
            SpanRelation::Link => {
                use opentelemetry::baggage::BaggageExt;
                {
                    let baggage: opentelemetry::baggage::Baggage = producer
                        .baggage()
                        .iter()
                        .map(|(key, entry)| (key.clone(), entry.clone()))
                        .collect();
                    opentelemetry::Context::new().with_baggage(baggage)
                }
            }
        };
        let builder = match (self.relation, producer_span.is_valid()) {
            (SpanRelation::Link, true) => {
                builder.with_links(vec![Link::with_context(producer_span)])
            }
            _ => builder,
        };
        let span = builder.start_with_context(&tracer, &parent);
        parent.with_span(span)
    }
}

#[cfg(feature = "trace-context")]
impl ContextPropagator {
    /// Starts a span of kind `Consumer` named `name` for each extracted context, through
    /// OpenTelemetry's global tracer provider, as a child of the producer's span or linked to
    /// it: the consumer's work runs inside it, and it ends when the work is done. Without this,
    /// the work runs directly under the producer's (remote) span.
    ///
    /// The span is recorded only when an SDK tracer provider is installed with
    /// `opentelemetry::global::set_tracer_provider`.
    pub fn consumer_span(
        mut self,
        name: impl Into<Cow<'static, str>>,
        relation: SpanRelation,
    ) -> Self {
        self.consumer_span = Some(ConsumerSpan {
            name: name.into(),
            relation,
        });
        self
    }
}
