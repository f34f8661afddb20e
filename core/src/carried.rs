//! [`Carried`]: the carriers' captured state, as a snapshot holds it beside its variables.
//!
//! Every carrier is reached the same way, through [`Captured`], whoever registered it: the
//! integrations' carriers have no path of their own.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::carrier::{self, Captured, Registered};
use crate::saved::SavedState;

/// Which carriers a capture takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taking {
    /// Every carrier: what stays with the current task.
    All,
    /// The carriers that flow into spawned work.
    Flowing,
}

/// The captured state of every carrier that had some, in the order they are installed; `None`
/// when none had any, which is what makes a snapshot with nothing to carry free.
#[derive(Clone, Default)]
pub(crate) struct Carried(Option<Arc<dyn Captured>>);

impl Carried {
    /// The carriers' state current here and now.
    pub(crate) fn capture(taking: Taking) -> Self {
        Carried(capture_each(carrier::registered(), taking))
    }

    /// Whether nothing is carried.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Runs `f` with the captured state installed, then restores the thread's own, panics
    /// included.
    ///
    /// # Panics
    /// When a carrier's capture, install or restore panicked: the panic names the carrier,
    /// and every carrier installed before it is restored.
    #[inline]
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            None => f(),
            Some(top) => enter_all(&**top, f),
        }
    }

    /// Each captured state, in the order of install.
    fn each(&self) -> impl Iterator<Item = &dyn Captured> {
        std::iter::successors(self.0.as_deref(), |captured| captured.below())
    }
}

/// Captures the carriers in `carriers` that `taking` takes, the first one on top.
fn capture_each(
    mut carriers: impl Iterator<Item = &'static dyn Registered>,
    taking: Taking,
) -> Option<Arc<dyn Captured>> {
    let carrier = carriers.find(|carrier| taking == Taking::All || carrier.flows())?;
    let below = capture_each(carriers, taking);
    carrier.capture(below)
}

// Out of line, so that the work is inlined once, into the path with nothing carried that
// every poll outside a span takes.
#[cold]
#[inline(never)]
fn enter_all<R>(top: &dyn Captured, f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let mut output = None;
    top.enter(&mut || {
        let f = f.take().expect("the work runs once");
        output = Some(f());
    });
    output.expect("every carrier runs the rest of the work or panics")
}

/// The carriers' state installed until dropped, for a guard that cannot hold a closure's stack:
/// [`Context::attach`](crate::Context::attach), and a runtime's poll hooks.
pub(crate) struct Attached {
    carried: Carried,
    /// One for each captured state, in the order of install, as far as they were installed:
    /// inline, as this is built around every poll.
    saved: SmallVec<[Option<SavedState>; INLINE_CARRIERS]>,
}

/// How many carriers' saved states an [`Attached`] holds without allocating: the tracing,
/// OpenTelemetry and Sentry carriers, and one of the application's.
const INLINE_CARRIERS: usize = 4;

impl Attached {
    /// Installs `carried`, in the order [`Carried::enter`] does. If a carrier panics, the ones
    /// installed before it are restored as the partly built guard drops.
    pub(crate) fn install(carried: Carried) -> Self {
        let mut attached = Attached {
            carried: carried.clone(),
            saved: SmallVec::new(),
        };
        for captured in carried.each() {
            let saved = captured.install();
            attached.saved.push(saved);
        }
        attached
    }
}

impl Drop for Attached {
    /// Restores every carrier, also after one of them panics; then that panic goes on.
    fn drop(&mut self) {
        let mut first_panic = None;
        let top = self.carried.0.as_deref();
        restore_in_reverse(top, &mut self.saved.drain(..), &mut first_panic);
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }
}

/// Restores `captured` and the states below it that were installed, the last installed first,
/// each given the next of `saved`; keeps the first panic. Recursive, so that the list of
/// captured states, which only links downwards, is not collected to be walked upwards.
fn restore_in_reverse(
    captured: Option<&dyn Captured>,
    saved: &mut impl Iterator<Item = Option<SavedState>>,
    first_panic: &mut Option<Box<dyn Any + Send>>,
) {
    let (Some(captured), Some(state)) = (captured, saved.next()) else {
        return;
    };
    restore_in_reverse(captured.below(), saved, first_panic);
    let restored = panic::catch_unwind(AssertUnwindSafe(|| captured.restore(state)));
    if let Err(payload) = restored {
        first_panic.get_or_insert(payload);
    }
}

impl fmt::Debug for Carried {
    /// Names the carriers; their state is not required to be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.each().map(|captured| captured.name()))
            .finish()
    }
}
