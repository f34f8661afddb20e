//! [`Carried`]: the carriers' captured state, as a snapshot holds it beside its variables.
//!
//! The integrations' carriers are known when the crate is compiled: each has a field, and is
//! installed by a direct call, so that carrying a span costs what entering it does. Carriers
//! registered at run time come after them, through one indirect call each.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::carrier::{self, Capture, Captured, Carrier};

/// Which carriers a capture takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taking {
    /// Every carrier: what stays with the current task.
    All,
    /// The carriers that flow into spawned work.
    Flowing,
}

/// The captured state of every carrier, in the order they are installed.
#[derive(Clone, Default)]
pub(crate) struct Carried {
    #[cfg(feature = "tracing")]
    span: Slot<crate::tracing::SpanCarrier>,
    #[cfg(feature = "opentelemetry")]
    trace_context: Slot<crate::opentelemetry::ContextCarrier>,
    registered: Option<Arc<[Box<dyn Captured>]>>,
}

impl Carried {
    /// The carriers' state current here and now.
    pub(crate) fn capture(taking: Taking) -> Self {
        let registered: Vec<_> = carrier::registered()
            .filter(|carrier| taking == Taking::All || carrier.flows())
            .map(|carrier| carrier.capture())
            .collect();
        Carried {
            #[cfg(feature = "tracing")]
            span: Slot::capture(taking),
            #[cfg(feature = "opentelemetry")]
            trace_context: Slot::capture(taking),
            registered: (!registered.is_empty()).then(|| registered.into()),
        }
    }

    /// Whether nothing is carried.
    pub(crate) fn is_empty(&self) -> bool {
        let empty = self.registered.is_none();
        #[cfg(feature = "tracing")]
        let empty = empty && self.span.0.is_none();
        #[cfg(feature = "opentelemetry")]
        let empty = empty && self.trace_context.0.is_none();
        empty
    }

    /// Runs `f` with the captured state installed, then restores the thread's own, panics
    /// included.
    ///
    /// # Panics
    /// When a carrier's capture, install or restore panicked: the panic names the carrier,
    /// and every carrier installed before it is restored.
    #[inline]
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        // The span first, so that the trace context is left before the span is exited.
        #[cfg(feature = "tracing")]
        let _span = self.span.enter();
        #[cfg(feature = "opentelemetry")]
        let _trace_context = self.trace_context.enter();
        match &self.registered {
            None => f(),
            Some(registered) => enter_registered(registered, f),
        }
    }

    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let builtin: [Option<&'static str>; 2] = [
            #[cfg(feature = "tracing")]
            self.span.name(),
            #[cfg(not(feature = "tracing"))]
            None,
            #[cfg(feature = "opentelemetry")]
            self.trace_context.name(),
            #[cfg(not(feature = "opentelemetry"))]
            None,
        ];
        let registered = self.registered.iter().flat_map(|all| all.iter());
        builtin
            .into_iter()
            .flatten()
            .chain(registered.map(|captured| captured.name()))
    }
}

/// The carriers' state installed until dropped, for a guard that cannot hold a closure's stack:
/// [`Context::attach`](crate::Context::attach).
pub(crate) struct Attached {
    carried: Carried,
    #[cfg(feature = "tracing")]
    span: Option<<crate::tracing::SpanCarrier as Carrier>::Saved>,
    #[cfg(feature = "opentelemetry")]
    trace_context: Option<<crate::opentelemetry::ContextCarrier as Carrier>::Saved>,
    /// One for each of `carried.registered`, as far as they were installed.
    registered: Vec<Option<Box<dyn Any>>>,
}

impl Attached {
    /// Installs `carried`, in the order [`Carried::enter`] does. If a carrier panics, the ones
    /// installed before it are restored as the partly built guard drops.
    pub(crate) fn install(carried: Carried) -> Self {
        let mut attached = Attached {
            carried,
            #[cfg(feature = "tracing")]
            span: None,
            #[cfg(feature = "opentelemetry")]
            trace_context: None,
            registered: Vec::new(),
        };
        #[cfg(feature = "tracing")]
        {
            attached.span = attached.carried.span.install();
        }
        #[cfg(feature = "opentelemetry")]
        {
            attached.trace_context = attached.carried.trace_context.install();
        }
        if let Some(registered) = attached.carried.registered.clone() {
            attached.registered.reserve_exact(registered.len());
            for captured in registered.iter() {
                let saved = captured.install();
                attached.registered.push(saved);
            }
        }
        attached
    }
}

impl Drop for Attached {
    /// Restores every carrier, also after one of them panics; then that panic goes on.
    fn drop(&mut self) {
        let mut first_panic = None;
        let mut restore = |restore: &mut dyn FnMut()| {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(restore)) {
                first_panic.get_or_insert(payload);
            }
        };
        if let Some(registered) = &self.carried.registered {
            let installed = registered.iter().zip(self.registered.drain(..));
            for (captured, saved) in installed.rev() {
                let mut saved = Some(saved);
                restore(&mut || captured.restore(saved.take().flatten()));
            }
        }
        #[cfg(feature = "opentelemetry")]
        restore(&mut || {
            self.carried
                .trace_context
                .restore(self.trace_context.take())
        });
        #[cfg(feature = "tracing")]
        restore(&mut || self.carried.span.restore(self.span.take()));
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }
}

#[cold]
fn enter_registered<R>(registered: &[Box<dyn Captured>], f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let mut output = None;
    enter_each(registered, &mut || {
        let f = f.take().expect("the work runs once");
        output = Some(f());
    });
    output.expect("every carrier runs the rest of the work or panics")
}

/// Each carrier installs its state and runs the next one inside it, so every carrier's saved
/// state stays on the stack, and an unwinding panic restores them all in reverse order.
fn enter_each(registered: &[Box<dyn Captured>], work: &mut dyn FnMut()) {
    match registered.split_first() {
        None => work(),
        Some((first, rest)) => first.enter(&mut || enter_each(rest, work)),
    }
}

impl fmt::Debug for Carried {
    /// Names the carriers; their state is not required to be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// One of the integrations' carriers, compiled in with its feature.
#[cfg_attr(
    not(any(feature = "tracing", feature = "opentelemetry")),
    allow(dead_code)
)]
pub(crate) trait Builtin: Carrier {
    const CARRIER: &'static Self;
}

/// The captured state of one of the integrations' carriers; `None` when it was not captured.
#[cfg_attr(
    not(any(feature = "tracing", feature = "opentelemetry")),
    allow(dead_code)
)]
struct Slot<C: Carrier>(Option<Capture<C>>);

#[cfg_attr(
    not(any(feature = "tracing", feature = "opentelemetry")),
    allow(dead_code)
)]
impl<C: Builtin> Slot<C> {
    #[inline]
    fn capture(taking: Taking) -> Self {
        let takes = taking == Taking::All || C::FLOWS;
        Slot(takes.then(|| carrier::capture(C::CARRIER)))
    }

    /// Installs the state for one poll. The integrations' carriers are called directly, with
    /// no `catch_unwind` around them (it kept each call out of line, and cost more than the
    /// span's own enter): a panicking subscriber unwinds as it does through
    /// `tracing::Instrument`, restoring what was installed before it.
    #[inline]
    fn enter(&self) -> Option<Entered<'_, C>> {
        match self.0.as_ref()? {
            Ok(captured) => Some(Entered {
                captured,
                saved: Some(C::CARRIER.install(captured)),
            }),
            Err(_) => {
                // Raises the capture's panic, named; leaves the state out while unwinding.
                let saved = self.install();
                debug_assert!(saved.is_none());
                None
            }
        }
    }

    fn install(&self) -> Option<C::Saved> {
        carrier::install(C::CARRIER, self.0.as_ref()?)
    }

    fn restore(&self, saved: Option<C::Saved>) {
        if let Some(captured) = &self.0 {
            carrier::restore(C::CARRIER, captured, saved);
        }
    }

    fn name(&self) -> Option<&'static str> {
        self.0.as_ref().map(|_| C::NAME)
    }
}

/// Keeps one of the integrations' carriers installed until dropped.
struct Entered<'a, C: Builtin> {
    captured: &'a C::Captured,
    saved: Option<C::Saved>,
}

impl<C: Builtin> Drop for Entered<'_, C> {
    #[inline]
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            C::CARRIER.restore(self.captured, saved);
        }
    }
}

impl<C: Carrier> Default for Slot<C> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<C: Carrier> Clone for Slot<C>
where
    C::Captured: Clone,
{
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}
