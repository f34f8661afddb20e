//! The thread's current context, and the guard that installs another one for a while.
//!
//! Every install moves one pointer: the snapshot is moved in, the previous one moved out, and
//! moved back when the guard drops, also while unwinding. No reference count is touched.
//!
//! The thread's slot is never destroyed, so a context can be installed at any time, also by a
//! thread-local destructor that runs while the thread exits, after ctxflow's own. What the
//! thread's own scope still holds then is released by [`ThreadExit`].

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::Context;

/// A context as it is installed on a thread: the snapshot, plus the identity tokens check.
///
/// The thread's slot is a scope too, so that an install swaps the two words as one value.
#[derive(Default)]
pub(crate) struct Scope {
    pub(crate) context: Context,
    /// Zero until this scope first issues a token, so installing a scope never touches
    /// the global counter.
    id: u64,
    /// A misuse of a guard seen while this scope was installed, reported when it is next
    /// installed: in the task that made it, not in whatever runs next on the thread.
    #[cfg(feature = "strict")]
    pub(crate) violation: Option<String>,
}

static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

/// The identity of the thread's own scope once [`ThreadExit`] has released it.
const EXITED: u64 = u64::MAX;

impl Scope {
    pub(crate) const fn new(context: Context) -> Self {
        Scope {
            context,
            id: 0,
            #[cfg(feature = "strict")]
            violation: None,
        }
    }

    /// A scope with an identity from the start, so that the code that installed it can tell
    /// later whether it is still the current one.
    pub(crate) fn identified(context: Context) -> Self {
        let mut scope = Scope::new(context);
        scope.id = NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed);
        scope
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

#[cfg(feature = "strict")]
impl Drop for Scope {
    fn drop(&mut self) {
        crate::strict::unreported(self.violation.take());
    }
}

thread_local! {
    /// `ManuallyDrop` has no destructor, so this slot is never destroyed and needs no check of
    /// whether it still exists: [`ThreadExit`] empties it instead.
    /// With feature `strict`, a violation stays with the scope that saw it: the slot's own is
    /// never set.
    static CURRENT: ManuallyDrop<RefCell<Scope>> =
        const { ManuallyDrop::new(RefCell::new(Scope::new(Context::empty()))) };
    /// Registered by the first write to the thread's scope.
    static THREAD_EXIT: ThreadExit = const { ThreadExit };
}

/// Releases what the thread's own scope holds when the thread exits, as a destructor would.
///
/// Afterwards the thread's own scope is marked [`EXITED`]: a write to it from a later
/// destructor goes to a throwaway context, where it is released at once, instead of staying
/// in a slot that is never destroyed. Contexts installed after that work as usual.
struct ThreadExit;

impl Drop for ThreadExit {
    fn drop(&mut self) {
        let left = CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            current.id = EXITED;
            std::mem::take(&mut current.context)
        });
        drop(left);
    }
}

/// Reads the current context. `read` must not run user code: it runs under a shared borrow.
#[inline]
pub(crate) fn read<R>(read: impl FnOnce(&Context) -> R) -> R {
    CURRENT.with(|current| read(&current.borrow().context))
}

/// Changes the current context. `change` must not run user code that could touch the context,
/// so it must hand every replaced value back to the caller instead of dropping it.
#[inline]
pub(crate) fn update<R>(change: impl FnOnce(&mut Context) -> R) -> R {
    if !exit_registered() && CURRENT.with(|current| current.borrow().id) == EXITED {
        return change(&mut Context::empty());
    }
    CURRENT.with(|current| change(&mut current.borrow_mut().context))
}

/// Registers [`ThreadExit`] if it is not yet; `false` once it has run.
#[inline]
fn exit_registered() -> bool {
    THREAD_EXIT.try_with(|_| ()).is_ok()
}

/// The current scope's identity, given on first use so that installing a scope never touches
/// the global counter.
pub(crate) fn scope_id() -> u64 {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if current.id == 0 {
            current.id = NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed);
        }
        current.id
    })
}

/// Whether the scope with identity `id` is the current one.
pub(crate) fn is_current(id: u64) -> bool {
    CURRENT.with(|current| current.borrow().id) == id
}

/// Swaps `scope` with the thread's current one.
// Inlined into each wrapper's poll: out of line, the install and the restore were compiled
// with different store widths, and each poll stalled on a load that could not be forwarded.
#[inline]
pub(crate) fn exchange(scope: &mut Scope) {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        #[cfg(not(feature = "strict"))]
        std::mem::swap(&mut *current, scope);
        #[cfg(feature = "strict")]
        {
            std::mem::swap(&mut current.context, &mut scope.context);
            std::mem::swap(&mut current.id, &mut scope.id);
        }
    });
}

/// Installs `scope` for a guard, which may leave it installed for good.
pub(crate) fn attach(scope: &mut Scope) {
    exit_registered();
    exchange(scope);
}

/// Drops `released`, values of a context nobody holds any more, with an empty context
/// installed: what their `Drop` sets goes nowhere, instead of into the context of whatever runs
/// here next (a worker's, or the caller's). What they set is released the same way in turn.
pub(crate) fn drop_aside<T>(released: T) {
    /// Puts the thread's context back, also when a `Drop` panics.
    struct Aside(Option<Context>);
    impl Drop for Aside {
        fn drop(&mut self) {
            if let Some(context) = &mut self.0 {
                swap_free(context);
            }
        }
    }
    let mut scratch = Context::empty();
    // Only a `Drop` run under a borrow of the slot finds it borrowed; it runs in place then.
    let aside = Aside(swap_free(&mut scratch).then_some(scratch));
    drop(released);
    drop(aside);
}

/// Swaps `context` with the thread's current one unless the slot is borrowed.
fn swap_free(context: &mut Context) -> bool {
    CURRENT.with(|current| match current.try_borrow_mut() {
        Ok(mut current) => {
            std::mem::swap(&mut current.context, context);
            true
        }
        Err(_) => false,
    })
}

/// Keeps a scope installed on this thread until dropped; then the previous scope is back and
/// `slot` holds the installed scope with whatever was set in it.
pub(crate) struct Installed<'a> {
    slot: &'a mut Scope,
    #[cfg(feature = "strict")]
    guards: usize,
}

impl<'a> Installed<'a> {
    /// Installs `slot`.
    ///
    /// # Panics
    /// With feature `strict`, when a misused guard is still unreported (see
    /// [`strict`](crate::strict)).
    #[inline]
    pub(crate) fn new(slot: &'a mut Scope) -> Self {
        #[cfg(feature = "strict")]
        crate::strict::report(&mut slot.violation);
        exchange(slot);
        Installed {
            slot,
            #[cfg(feature = "strict")]
            guards: crate::strict::depth(),
        }
    }
}

impl Drop for Installed<'_> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "strict")]
        crate::strict::leave(self.guards, &mut self.slot.violation);
        exchange(self.slot);
    }
}
