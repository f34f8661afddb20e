//! OpenTelemetry's own context follows every spawn (`ctxflow`'s feature `opentelemetry`).
//!
//! The [`opentelemetry::Context`] current where a task, blocking closure or
//! [`in_current_context`](ctxflow_core::InContext::in_current_context) future is created travels with
//! it and is attached around each poll and around the closure, so inside it
//! `opentelemetry::Context::current()` is the creator's: the same trace, the same active span,
//! the same baggage. Spans started there are children of the creator's span, with no
//! `FutureExt::with_context` and no context passed by hand.
//!
//! It is carried by [`ContextCarrier`], a [`Carrier`] captured with every
//! [`ctxflow::Context`](ctxflow_core::Context) snapshot, so
//! [`Context::current`](ctxflow_core::Context::current)`().wrap(f)` and a job's
//! [`Context::inheritable`](ctxflow_core::Context::inheritable) carry it too.
//! [`spawn_in`](ctxflow_core::Spawner::spawn_in) and [`in_context`](ctxflow_core::InContext::in_context) carry
//! the OpenTelemetry context their snapshot holds; given [`Context::empty`](ctxflow_core::Context::empty),
//! or a snapshot taken where the OpenTelemetry context had no span, no baggage and no
//! suppression, their work sees the polling thread's own: empty on a multi-thread runtime's
//! worker, but on a current-thread runtime (and in `block_on`) whatever the driving thread
//! attached and still holds. For work that must start with no trace whatever the thread holds,
//! wrap it in `.with_context(opentelemetry::Context::new())`.
//!
//! ```
//! use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
//! use opentelemetry::Context;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//!
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(exporter.clone())
//!     .build();
//! let tracer = provider.tracer("checkout");
//!
//! let request = Context::current_with_span(tracer.start("handle_request"));
//! let request_span = request.span().span_context().clone();
//! let _attached = request.attach();
//!
//! ctxflow::block_on(async move {
//!     let background = ctxflow::spawn(async move { tracer.start("charge_card").end() });
//!     background.await.unwrap();
//! });
//!
//! let charge = &exporter.get_finished_spans().unwrap()[0];
//! assert_eq!(charge.name, "charge_card");
//! assert_eq!(charge.span_context.trace_id(), request_span.trace_id());
//! assert_eq!(charge.parent_span_id, request_span.span_id());
//! ```
//!
//! This is the `ctxflow-opentelemetry` crate, which the `ctxflow` crate re-exports as
//! `ctxflow::opentelemetry` with its feature `opentelemetry`.
#![cfg_attr(docsrs, feature(doc_cfg))]

use ::opentelemetry::baggage::BaggageExt;
use ::opentelemetry::trace::TraceContextExt;
use ::opentelemetry::{Context, ContextGuard};
use ctxflow_core::Carrier;

/// Carries OpenTelemetry's current [`Context`]: captured with every
/// snapshot and attached around each poll (or closure) that runs in it, as its own
/// `FutureExt::with_context` does. It is registered with
/// [`static_carrier!`](ctxflow_core::static_carrier) with feature `opentelemetry`: nothing needs to
/// register it.
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextCarrier;

ctxflow_core::static_carrier!(ContextCarrier);

impl Carrier for ContextCarrier {
    type Captured = Context;
    type Saved = ContextGuard;
    const CATCH_PANICS: bool = false;
    const NAME: &'static str = "OpenTelemetry context";

    #[inline]
    fn capture(&self) -> Context {
        Context::current()
    }

    /// Attaches a captured context for one poll or one closure.
    #[inline]
    fn install(&self, captured: &Context) -> ContextGuard {
        captured.clone().attach()
    }

    #[inline]
    fn restore(&self, _captured: &Context, attached: ContextGuard) {
        drop(attached);
    }

    /// A context with no active span, no baggage and telemetry not suppressed carries nothing
    /// that OpenTelemetry itself reads, so a snapshot leaves it out (and allocates nothing for
    /// it): work created there sees the polling thread's context, as work given
    /// [`Context::empty`](ctxflow_core::Context::empty) does. Values of one's own put in such a
    /// context with `Context::with_value` do not flow; attach them beside a span.
    #[inline]
    fn is_empty(&self, captured: &Context) -> bool {
        !captured.has_active_span()
            && captured.baggage().is_empty()
            && !captured.is_telemetry_suppressed()
    }
}
