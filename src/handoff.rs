//! [`Handoff`]: what a closure takes along when it is handed to another thread.

use crate::context::Context;

/// The context a closure handed to a thread or a pool runs in, with the carriers' state it
/// captured. Each run installs both and puts the thread's own back afterwards, panics
/// included.
///
/// The default is the empty handoff: what a thread should see while it runs work that is not
/// the caller's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Handoff {
    pub(crate) context: Context,
}

impl Handoff {
    /// What any spawn takes along from here: the flowing variables and carriers, or nothing at
    /// all inside [`suppress_flow`](crate::suppress_flow).
    pub(crate) fn for_spawn() -> Self {
        Handoff {
            context: Context::inheritable(),
        }
    }

    /// Everything current here: the whole context, for work that stays with this task.
    pub(crate) fn current() -> Self {
        Handoff {
            context: Context::current(),
        }
    }

    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.context.run(f)
    }

    pub(crate) fn wrap<F, R>(self, f: F) -> impl FnOnce() -> R
    where
        F: FnOnce() -> R,
    {
        move || self.run(f)
    }
}

impl From<Context> for Handoff {
    /// Exactly `context`, with what it carries, as every form that is given its context
    /// explicitly (`spawn_in`, `in_context`) does.
    fn from(context: Context) -> Self {
        Handoff { context }
    }
}
