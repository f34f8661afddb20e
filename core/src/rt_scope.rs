//! [`TaskScope`] and [`EnteredScope`], re-exported by [`rt`](crate::rt), whose docs explain them.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::captured::Attached;
use crate::carried::Carried;
use crate::current::{self, Scope};
use crate::handoff::Handoff;
use crate::Context;

/// A task's context while the task is not being polled: what it started with and what it set
/// since. It can move to any thread.
pub struct TaskScope {
    scope: Scope,
    carried: Carried,
}

impl TaskScope {
    /// What a task spawned here and now starts with: [`Context::inheritable`], with the
    /// carriers that flow. Call it where the task is spawned (a spawn hook runs there).
    pub fn inheritable() -> Self {
        TaskScope::from_handoff(Handoff::for_spawn())
    }

    /// Exactly `context`, with what it carries.
    pub fn new(context: Context) -> Self {
        TaskScope::from_handoff(Handoff::from(context))
    }

    fn from_handoff(handoff: Handoff) -> Self {
        TaskScope {
            scope: Scope::new(handoff.context),
            carried: handoff.carried,
        }
    }

    /// Installs the task's context on this thread until [`EnteredScope::leave`]: its variables,
    /// then the carriers' state.
    ///
    /// A carrier that panics while it is installed is left out for this poll (the panic hook has
    /// reported it): there is no task to give the panic to from a runtime's hook, and unwinding
    /// out of one would take the worker down.
    pub fn enter(self) -> EnteredScope {
        let TaskScope { mut scope, carried } = self;
        current::exchange(&mut scope);
        let attached = match carried.is_empty() {
            true => None,
            false => panic::catch_unwind(AssertUnwindSafe(|| carried.clone().attach()))
                .ok()
                .flatten(),
        };
        EnteredScope {
            entered: Some(Entered {
                displaced: scope,
                carried,
                attached,
            }),
        }
    }
}

/// A task's context installed on this thread by [`TaskScope::enter`]. It stays on the thread:
/// [`leave`](Self::leave) it there, after the poll. Dropped without `leave`, it leaves all the
/// same, and what the task set is dropped.
///
/// It cannot leave its thread, as what it restores is the thread's own:
///
/// ```compile_fail
/// use ctxflow_core::{rt::TaskScope, Context};
///
/// let entered = TaskScope::new(Context::empty()).enter();
/// std::thread::spawn(move || drop(entered.leave()));
/// ```
#[must_use = "the task's context stays installed until `leave` is called"]
pub struct EnteredScope {
    entered: Option<Entered>,
}

struct Entered {
    /// What the thread had before: the task's context comes back into it at the exchange.
    displaced: Scope,
    carried: Carried,
    attached: Option<Attached>,
}

impl EnteredScope {
    /// Puts back what [`TaskScope::enter`] replaced: first the carriers' state, then the
    /// variables. The task's context comes back with whatever the task set in it.
    pub fn leave(mut self) -> TaskScope {
        self.take_off()
            .expect("a scope is taken off once, when it leaves or drops")
    }

    fn take_off(&mut self) -> Option<TaskScope> {
        let Entered {
            mut displaced,
            carried,
            attached,
        } = self.entered.take()?;
        // A restore that panics is reported by the panic hook; the variables come back all the
        // same, and the hook does not unwind.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(attached)));
        current::exchange_back(&mut displaced);
        Some(TaskScope {
            scope: displaced,
            carried,
        })
    }
}

impl Drop for EnteredScope {
    fn drop(&mut self) {
        drop(self.take_off());
    }
}

impl fmt::Debug for TaskScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskScope")
            .field("context", &self.scope.context)
            .field("carriers", &self.carried)
            .finish()
    }
}

impl fmt::Debug for EnteredScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnteredScope").finish_non_exhaustive()
    }
}
