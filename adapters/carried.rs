//! What a task carries besides its [`Context`](crate::Context): the "current" state that
//! outside libraries keep for themselves, captured where a task, future or closure is created
//! and entered around each of its polls (or around the closure).
//!
//! Each integration feature adds its piece here; the piece itself lives in that feature's
//! adapter. With none enabled, this is empty and every call compiles to nothing.

use std::marker::PhantomData;

/// The captured state of every enabled integration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Carried {
    #[cfg(feature = "tracing")]
    span: crate::tracing::CarriedSpan,
    #[cfg(feature = "opentelemetry")]
    trace_context: crate::opentelemetry::CarriedContext,
}

// Every task and every `WithContext` holds a `Carried`: without integrations it must cost nothing.
#[cfg(not(any(feature = "tracing", feature = "opentelemetry")))]
const _: () = assert!(std::mem::size_of::<Carried>() == 0);

impl Carried {
    /// The state current here and now.
    #[inline]
    pub(crate) fn capture() -> Self {
        Carried {
            #[cfg(feature = "tracing")]
            span: crate::tracing::CarriedSpan::capture(),
            #[cfg(feature = "opentelemetry")]
            trace_context: crate::opentelemetry::CarriedContext::capture(),
        }
    }

    /// Makes the captured state current until the guard drops.
    #[inline]
    pub(crate) fn enter(&self) -> Entered<'_> {
        // The span first, so that the trace context is left before the span is exited.
        #[cfg(feature = "tracing")]
        let span = self.span.enter();
        #[cfg(feature = "opentelemetry")]
        let trace_context = self.trace_context.attach();
        Entered {
            #[cfg(feature = "opentelemetry")]
            _trace_context: trace_context,
            #[cfg(feature = "tracing")]
            _span: span,
            _carried: PhantomData,
        }
    }
}

/// Keeps the captured state current; restores the previous state when dropped.
pub(crate) struct Entered<'a> {
    // Fields drop in declaration order: the reverse of the order `enter` entered them.
    #[cfg(feature = "opentelemetry")]
    _trace_context: crate::opentelemetry::AttachedContext,
    #[cfg(feature = "tracing")]
    _span: crate::tracing::EnteredSpan<'a>,
    _carried: PhantomData<&'a Carried>,
}
