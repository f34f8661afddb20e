//! [`Handoff`]: what a closure takes along when it is handed to another thread.

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
        let mut wrapped = Wrapped {
            handoff: self,
            f: Some(f),
        };
        move || {
            let f = wrapped.f.take().expect("a wrapped closure runs once");
            wrapped.handoff.run(f)
        }
    }
}

/// A closure and the handoff it runs in, until it runs or drops.
struct Wrapped<F> {
    handoff: Handoff,
    // `None` once run.
    f: Option<F>,
}

impl<F> Drop for Wrapped<F> {
    fn drop(&mut self) {
        // Here, not as fields, so that a closure that panicked, or one dropped in a panic,
        // releases its context without aborting the process.
        if let Some(f) = self.f.take() {
            current::without_abort(|| self.handoff.run(|| drop(f)));
        }
        let handoff = std::mem::take(&mut self.handoff);
        current::without_abort(|| drop(handoff));
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
