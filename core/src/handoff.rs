//! [`Handoff`]: what a closure takes along when it is handed to another thread.

use std::panic::{self, AssertUnwindSafe};

use crate::carried::{Carried, Taking};
use crate::carrier;
use crate::context::Context;
use crate::current;

/// The variables a closure handed to a thread or a pool runs with, and the carriers' state,
/// apart: a spawn keeps the carriers' state beside the variables' table instead of copying the
/// table to hold it. Each run installs both and puts the thread's own back afterwards, panics
/// included.
///
/// The default is the empty handoff: what a thread should see while it runs work that is not
/// the caller's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Handoff {
    /// The variables; what this context carries itself is never installed from here.
    pub(crate) context: Context,
    pub(crate) carried: Carried,
}

impl Handoff {
    /// What any spawn takes along from here: the flowing variables and carriers, or nothing at
    /// all inside [`suppress_flow`](crate::suppress_flow).
    #[inline]
    pub(crate) fn for_spawn() -> Self {
        if crate::is_flow_suppressed() {
            return Handoff::default();
        }
        Handoff {
            context: Context::flowing_variables(),
            carried: capture(Taking::Flowing),
        }
    }

    /// Everything current here: the whole context, for work that stays with this task.
    pub(crate) fn current() -> Self {
        Handoff {
            context: Context::current_variables(),
            carried: capture(Taking::All),
        }
    }

    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.context.run_variables(|| self.carried.enter(f))
    }

    /// `f`, to run in this handoff wherever it is called; dropped unrun (a pool that shuts
    /// down with it queued), it is dropped in this handoff too, as a task's future is.
    pub(crate) fn wrap<F, R>(self, f: F) -> impl FnOnce() -> R
    where
        F: FnOnce() -> R,
    {
        let mut wrapped = Wrapped::new(self, f);
        move || wrapped.run()
    }
}

/// A closure and the handoff it is to run in, until it runs or drops.
pub(crate) struct Wrapped<F> {
    handoff: Handoff,
    // `None` once run.
    f: Option<F>,
}

impl<F> Wrapped<F> {
    pub(crate) fn new(handoff: Handoff, f: F) -> Self {
        Wrapped {
            handoff,
            f: Some(f),
        }
    }

    /// Runs the closure in its handoff.
    ///
    /// # Panics
    /// If it ran already.
    pub(crate) fn run<R>(&mut self) -> R
    where
        F: FnOnce() -> R,
    {
        let f = self.f.take().expect("a wrapped closure runs once");
        self.handoff.run(f)
    }

    /// Drops the closure, if it did not run, inside its handoff, then releases the handoff;
    /// returns the first panic of either, caught: the caller says where it goes.
    pub(crate) fn close(&mut self) -> std::thread::Result<()> {
        let dropped = match self.f.take() {
            Some(f) => panic::catch_unwind(AssertUnwindSafe(|| self.handoff.run(|| drop(f)))),
            None => Ok(()),
        };
        let handoff = std::mem::take(&mut self.handoff);
        let released = panic::catch_unwind(AssertUnwindSafe(|| drop(handoff)));
        dropped.and(released)
    }
}

impl<F> Drop for Wrapped<F> {
    /// Closes here, not as fields, so that a closure that panicked, or one dropped in a panic,
    /// releases its context without aborting the process; the panic of a close goes on, unless
    /// the thread unwinds already (the hook has reported it).
    fn drop(&mut self) {
        if let Err(payload) = self.close() {
            current::resume_unless_unwinding(payload);
        }
    }
}

#[inline]
fn capture(taking: Taking) -> Carried {
    if !carrier::any() {
        return Carried::default();
    }
    Carried::capture(taking)
}

impl From<Context> for Handoff {
    /// Exactly `context`, with what it carries, as every form that is given its context
    /// explicitly (`spawn_in`, `in_context`) does.
    fn from(context: Context) -> Self {
        Handoff {
            carried: context.carried().cloned().unwrap_or_default(),
            context: context.variables_only(),
        }
    }
}
