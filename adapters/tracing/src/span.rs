//! The span current where work was created, entered around each of its polls.

use ::tracing::Span;
use ctxflow_core::Carrier;

/// Carries the current [`tracing::Span`](::tracing::Span): captured with every snapshot and
/// entered around each poll (or closure) that runs in it, as `tracing::Instrument` does. It is
/// registered with [`static_carrier!`](ctxflow_core::static_carrier) with feature `tracing`: nothing
/// needs to register it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanCarrier;

ctxflow_core::static_carrier!(SpanCarrier);

impl Carrier for SpanCarrier {
    type Captured = Span;
    type Saved = ();
    const CATCH_PANICS: bool = false;
    const NAME: &'static str = "tracing span";

    #[inline]
    fn capture(&self) -> Span {
        Span::current()
    }

    /// Entered for one poll (or one closure) at a time, as `tracing::Instrument` does: a span
    /// held entered across an `.await` would leak into whatever the thread runs next.
    #[inline]
    fn install(&self, span: &Span) {
        span.with_subscriber(|(id, subscriber)| subscriber.enter(id));
    }

    #[inline]
    fn restore(&self, span: &Span, (): ()) {
        span.with_subscriber(|(id, subscriber)| subscriber.exit(id));
    }

    /// Outside any span there is nothing to enter, so a snapshot holds nothing for it.
    #[inline]
    fn is_empty(&self, span: &Span) -> bool {
        span.is_none()
    }
}
