//! The thread's current context, and the guard that installs another one for a while.
//!
//! Every install moves one pointer: the snapshot is moved in, the previous one moved out, and
//! moved back when the guard drops, also while unwinding. No reference count is touched, and no
//! borrow flag is checked: the slot is a plain cell, which a read empties while it looks.
//!
//! The thread's slot is never destroyed, so a context can be installed at any time, also by a
//! thread-local destructor that runs while the thread exits, after ctxflow's own. What the
//! thread's own scope still holds then is released by [`ThreadExit`].

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::Context;

/// A context as it is installed on a thread: the snapshot, plus the identity tokens check.
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
    static CURRENT: ManuallyDrop<Cell<Context>> =
        const { ManuallyDrop::new(Cell::new(Context::empty())) };
    /// The current scope's id, apart from the context: an integer cell needs no destructor,
    /// so it costs no more than a plain load and store, and the context moves alone.
    static SCOPE_ID: Cell<u64> = const { Cell::new(0) };
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
        SCOPE_ID.set(EXITED);
        let left = CURRENT.with(|current| current.take());
        drop(left);
    }
}

/// Reads the current context. `read` must not run user code: the slot is empty while it runs.
#[inline]
pub(crate) fn read<R>(read: impl FnOnce(&Context) -> R) -> R {
    CURRENT.with(|slot| read(&Taken::new(slot, Refill::Read).context))
}

/// Changes the current context. `change` must not run user code that could touch the context,
/// so it must hand every replaced value back to the caller instead of dropping it. Should a
/// `Drop` run meanwhile all the same, what it sets is released, not kept.
#[inline]
pub(crate) fn update<R>(change: impl FnOnce(&mut Context) -> R) -> R {
    if !exit_registered() && SCOPE_ID.get() == EXITED {
        return change(&mut Context::empty());
    }
    CURRENT.with(|slot| change(&mut Taken::new(slot, Refill::Write).context))
}

/// The thread's context, out of its slot until dropped, then put back, also while unwinding:
/// how the slot is read and changed without a borrow flag for every install to check.
struct Taken<'a> {
    slot: &'a Cell<Context>,
    // Always moved back into the slot by `drop`: what is left here is empty, and not dropping
    // it keeps the reference count's decrement out of every read.
    context: ManuallyDrop<Context>,
    refill: Refill,
}

/// What putting the context back does with what is left in the slot.
#[derive(Clone, Copy, PartialEq)]
enum Refill {
    /// Nothing can be left after a read, which runs no user code: it is not even looked at.
    Read,
    /// A `Drop` run during a change may have set something: it is released.
    Write,
}

impl<'a> Taken<'a> {
    #[inline]
    fn new(slot: &'a Cell<Context>, refill: Refill) -> Self {
        Taken {
            context: ManuallyDrop::new(slot.take()),
            slot,
            refill,
        }
    }
}

impl Drop for Taken<'_> {
    #[inline]
    fn drop(&mut self) {
        let left = self.slot.replace(std::mem::take(&mut *self.context));
        if self.refill == Refill::Read {
            debug_assert!(left.is_empty(), "a read of the context wrote to it");
            // Empty: forgetting it releases nothing, and spares every read a test.
            std::mem::forget(left);
        } else {
            drop(left);
        }
    }
}

/// Registers [`ThreadExit`] if it is not yet; `false` once it has run.
#[inline]
fn exit_registered() -> bool {
    THREAD_EXIT.try_with(|_| ()).is_ok()
}

/// The current scope's identity, given on first use so that installing a scope never touches
/// the global counter.
pub(crate) fn scope_id() -> u64 {
    SCOPE_ID.with(|id| {
        if id.get() == 0 {
            id.set(NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed));
        }
        id.get()
    })
}

/// Whether the scope with identity `id` is the current one.
pub(crate) fn is_current(id: u64) -> bool {
    SCOPE_ID.get() == id
}

/// Swaps `scope` with the thread's current one.
// Inlined into each wrapper's poll: out of line, the install and the restore were compiled
// with different store widths, and each poll stalled on a load that could not be forwarded.
#[inline]
pub(crate) fn exchange(scope: &mut Scope) {
    CURRENT.with(|slot| {
        let installed = std::mem::take(&mut scope.context);
        scope.context = slot.replace(installed);
    });
    scope.id = SCOPE_ID.replace(scope.id);
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
    /// Puts the thread's context back, also when a `Drop` panics; what the `Drop`s set is
    /// released with it.
    struct Aside(Context);
    impl Drop for Aside {
        fn drop(&mut self) {
            swap(&mut self.0);
        }
    }
    let mut aside = Aside(Context::empty());
    swap(&mut aside.0);
    drop(released);
    drop(aside);
}

/// Swaps `context` with the thread's current one.
fn swap(context: &mut Context) {
    CURRENT.with(|slot| {
        let taken = std::mem::take(context);
        *context = slot.replace(taken);
    });
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
