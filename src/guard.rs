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

use crate::context::Context;
use crate::current::{self, Scope};

thread_local! {
    /// Guards dropped before the guards attached after them: the identity of the scope each
    /// attached, and the scope it replaced, to put back when the first comes back.
    static DROPPED_EARLY: RefCell<Vec<(u64, Scope)>> = const { RefCell::new(Vec::new()) };
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
    /// The scope this guard replaced while it is attached; the one it attached once dropped.
    previous: Scope,
    /// The identity of the scope this guard attached.
    attached: u64,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard {
    #[track_caller]
    pub(crate) fn attach(context: Context) -> Self {
        let mut previous = Scope::identified(context);
        let attached = previous.id();
        #[cfg(feature = "strict")]
        crate::strict::attached(attached, std::panic::Location::caller());
        current::attach(&mut previous);
        ContextGuard {
            previous,
            attached,
            _not_send: PhantomData,
        }
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        #[cfg(feature = "strict")]
        crate::strict::detached(self.attached);
        if !current::is_current(self.attached) {
            let replaced = std::mem::take(&mut self.previous);
            let _ = DROPPED_EARLY.try_with(|early| {
                early.borrow_mut().push((self.attached, replaced));
            });
            return;
        }
        current::exchange(&mut self.previous);
        restore_dropped_early();
    }
}

/// While the scope that came back belongs to a guard that was dropped early, puts back the
/// scope that guard replaced.
fn restore_dropped_early() {
    loop {
        let back = take_dropped_early();
        let Some(mut replaced) = back else { return };
        current::exchange(&mut replaced);
        // `replaced` now holds the early guard's context, released here.
    }
}

fn take_dropped_early() -> Option<Scope> {
    DROPPED_EARLY
        .try_with(|early| {
            let mut early = early.borrow_mut();
            let index = early
                .iter()
                .rposition(|(attached, _)| current::is_current(*attached))?;
            Some(early.swap_remove(index).1)
        })
        .ok()
        .flatten()
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextGuard").finish_non_exhaustive()
    }
}
