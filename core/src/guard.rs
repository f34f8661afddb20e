//! [`ContextGuard`]: a context attached to the thread until the guard drops, whatever order
//! guards drop in.
//!
//! A guard dropped in order puts back the context it replaced. A guard dropped while a guard
//! attached after it is still current changes nothing yet: it leaves the context it replaced
//! with the thread, to be put back when its own context comes back, once the later guards have
//! dropped. So guards dropped in any order leave the thread with the context it had before the
//! first of them.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};

use crate::captured::Attached;
use crate::carried::Carried;
use crate::context::Context;
use crate::current::{self, Scope};

thread_local! {
    /// Guards dropped before the guards attached after them: the identity of the scope each
    /// attached, and the scope it replaced, to put back when the first comes back.
    /// The carriers it installed are restored at the same time, so that they too come back in
    /// the reverse order of their installs.
    static DROPPED_EARLY: DroppedEarly = const { DroppedEarly(RefCell::new(Vec::new())) };
}

/// What guards dropped early left with the thread.
struct DroppedEarly(RefCell<Vec<(u64, Scope, Option<Attached>)>>);

/// A panic out of a thread-local's destructor aborts the process: a left value whose `Drop`
/// panics, as the thread exits, has its panic reported by the hook and goes no further.
impl Drop for DroppedEarly {
    fn drop(&mut self) {
        let left = std::mem::take(self.0.get_mut());
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(left)));
    }
}

/// Keeps a context attached to this thread; see [`Context::attach`].
///
/// It cannot leave its thread:
///
/// ```compile_fail
/// let guard = ctxflow::Context::empty().attach();
/// std::thread::spawn(move || drop(guard));
/// ```
#[must_use = "the context is detached again as soon as the guard drops"]
pub struct ContextGuard {
    /// The carriers' state the context carried, installed after its variables.
    carried: Option<Attached>,
    /// The scope this guard replaced while it is attached; the one it attached once dropped.
    previous: Scope,
    /// The identity of the scope this guard attached.
    attached: u64,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard {
    #[track_caller]
    pub(crate) fn attach(context: Context) -> Self {
        let carried = context
            .carried()
            .filter(|carried| !carried.is_empty())
            .cloned();
        let mut previous = Scope::identified(context.variables_only());
        let attached = previous.id();
        #[cfg(feature = "strict")]
        crate::strict::attached(attached, std::panic::Location::caller());
        current::attach(&mut previous);
        let mut guard = ContextGuard {
            carried: None,
            previous,
            attached,
            _not_send: PhantomData,
        };
        // If a carrier panics, the guard drops: the ones installed before it and the
        // variables are restored.
        guard.carried = carried.and_then(Carried::attach);
        guard
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        #[cfg(feature = "strict")]
        crate::strict::detached(self.attached);
        let carried = self.carried.take();
        if !current::is_current(self.attached) {
            let replaced = std::mem::take(&mut self.previous);
            let _ = DROPPED_EARLY.try_with(|early| {
                early
                    .0
                    .borrow_mut()
                    .push((self.attached, replaced, carried));
            });
            // The current scope may be a closure's or a poll's, installed after this guard's
            // and not a guard's: its end must look for this guard's scope.
            current::left_behind();
            return;
        }
        // The variables come back also when a carrier's restore panics; then the panic goes on.
        let restored = panic::catch_unwind(AssertUnwindSafe(|| drop(carried)));
        put_back(&mut self.previous);
        restore_dropped_early();
        // `previous` now holds this guard's own context: released here, not while the thread
        // unwinds (a guard dropped in a panic) as a field, where a panicking `Drop` aborts.
        let attached = std::mem::take(&mut self.previous);
        current::without_abort(|| drop(attached));
        if let Err(payload) = restored {
            panic::resume_unwind(payload);
        }
    }
}

/// After an install marked [`current::left_behind`] ends: puts back what guards dropped
/// meanwhile left, and, while some guard's scope is still away, marks the scope now current,
/// since the guard's may come back when that one ends in turn.
#[cold]
pub(crate) fn put_back_left() {
    restore_dropped_early();
    let waiting = DROPPED_EARLY
        .try_with(|early| !early.0.borrow().is_empty())
        .unwrap_or(false);
    if waiting {
        current::left_behind();
    }
}

/// While the scope that came back belongs to a guard that was dropped early, puts back the
/// scope that guard replaced.
fn restore_dropped_early() {
    loop {
        let back = take_dropped_early();
        let Some((mut replaced, carried)) = back else {
            return;
        };
        // A panic here is lost: this runs in another guard's drop, and the thread is left
        // as it should be all the same.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(carried)));
        put_back(&mut replaced);
        // `replaced` now holds the early guard's context.
        current::without_abort(|| drop(replaced));
    }
}

/// Puts back `replaced`, the scope a guard replaced, with flow suppressed in it only if a
/// `suppress_flow` that suppressed it still runs: one that ended while the guard was attached
/// could not end the suppression of a scope the guard held.
fn put_back(replaced: &mut Scope) {
    current::exchange(replaced);
    crate::flow::resume();
}

fn take_dropped_early() -> Option<(Scope, Option<Attached>)> {
    DROPPED_EARLY
        .try_with(|early| {
            let mut early = early.0.borrow_mut();
            let index = early
                .iter()
                .rposition(|(attached, _, _)| current::is_current(*attached))?;
            let (_, replaced, carried) = early.swap_remove(index);
            Some((replaced, carried))
        })
        .ok()
        .flatten()
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextGuard").finish_non_exhaustive()
    }
}
