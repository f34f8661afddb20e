//! [`Carried`]: the carriers' captured state, as a snapshot holds it beside its variables.
//!
//! Every carrier is reached the same way, through [`Captured`], whoever registered it: the
//! integrations' carriers have no path of their own.

use std::fmt;
use std::sync::Arc;

use crate::captured::{self, Attached, Captured};
use crate::carrier::{self, Registered};

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
            Some(top) => captured::enter(&**top, f),
        }
    }

    /// Installs the captured state until the returned guard drops; `None` when there is none.
    ///
    /// # Panics
    /// As [`Carried::enter`].
    pub(crate) fn attach(self) -> Option<Attached> {
        self.0.map(Attached::new)
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

impl fmt::Debug for Carried {
    /// Names the carriers; their state is not required to be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.each().map(|captured| captured.name()))
            .finish()
    }
}
