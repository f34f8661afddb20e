//! The span current where work was created, entered around each of its polls.

use ::tracing::span::Entered;
use ::tracing::Span;

/// The `tracing` span current where a task, future or closure was created.
#[derive(Clone, Debug)]
pub(crate) struct CarriedSpan(Span);

/// Keeps a carried span entered on this thread until dropped.
pub(crate) type EnteredSpan<'a> = Entered<'a>;

impl Default for CarriedSpan {
    fn default() -> Self {
        CarriedSpan(Span::none())
    }
}

impl CarriedSpan {
    #[inline]
    pub(crate) fn capture() -> Self {
        CarriedSpan(Span::current())
    }

    /// Entered for one poll (or one closure) at a time, as `tracing::Instrument` does: a span
    /// held entered across an `.await` would leak into whatever the thread runs next.
    #[inline]
    pub(crate) fn enter(&self) -> EnteredSpan<'_> {
        self.0.enter()
    }
}
