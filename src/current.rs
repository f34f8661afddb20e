//! The thread's current context, and the guard that installs another one for a while.
//!
//! Every install moves one pointer: the snapshot is moved in, the previous one moved out, and
//! moved back when the guard drops, also while unwinding. No reference count is touched.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::Context;

/// A context as it is installed on a thread: the snapshot, plus the identity tokens check.
#[derive(Default)]
pub(crate) struct Scope {
    pub(crate) context: Context,
    /// Zero until this scope first issues a token, so installing a scope never touches
    /// the global counter.
    id: u64,
}

static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

impl Scope {
    pub(crate) const fn new(context: Context) -> Self {
        Scope { context, id: 0 }
    }
}

thread_local! {
    static CURRENT: RefCell<Context> = const { RefCell::new(Context::empty()) };
    /// The current scope's id, apart from the context: an integer cell needs no destructor,
    /// so it costs no more than a plain load and store, and the context moves alone.
    static SCOPE_ID: Cell<u64> = const { Cell::new(0) };
}

/// Reads the current context. `read` must not change the current context: it runs under a
/// shared borrow.
///
/// While the thread's storage is being destroyed, its context is empty: the values it held are
/// being dropped, and a `Drop` that reads a variable must not abort the process (a panic in a
/// thread-local destructor does).
#[inline]
pub(crate) fn read<R>(read: impl FnOnce(&Context) -> R) -> R {
    // One thread-local access, not a check and then an access: every `get` comes through here.
    let mut read = Some(read);
    let mut call = |context: &Context| (read.take().expect("`read` is called once"))(context);
    match CURRENT.try_with(|current| call(&current.borrow())) {
        Ok(value) => value,
        Err(_) => call(&Context::empty()),
    }
}

/// Changes the current context. `change` must not run user code that could touch the context,
/// so it must hand every replaced value back to the caller instead of dropping it.
///
/// While the thread's storage is being destroyed, the change goes to a throwaway empty context,
/// for the same reason as in [`read`].
#[inline]
pub(crate) fn update<R>(change: impl FnOnce(&mut Context) -> R) -> R {
    if storage_is_gone() {
        return change(&mut Context::empty());
    }
    CURRENT.with(|current| change(&mut current.borrow_mut()))
}

/// Whether this thread's storage is already destroyed: the thread is exiting.
#[inline]
fn storage_is_gone() -> bool {
    CURRENT.try_with(|_| ()).is_err()
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

/// Swaps `scope` with the thread's current one; `false` when the thread's storage is already
/// destroyed (the thread is exiting).
// Inlined into each wrapper's poll: out of line, the install and the restore were compiled
// with different store widths, and each poll stalled on a load that could not be forwarded.
#[inline]
pub(crate) fn exchange(scope: &mut Scope) -> bool {
    let swapped = CURRENT
        .try_with(|current| std::mem::swap(&mut *current.borrow_mut(), &mut scope.context))
        .is_ok();
    if swapped {
        scope.id = SCOPE_ID.with(|id| id.replace(scope.id));
    }
    swapped
}

/// Keeps a scope installed on this thread until dropped; then the previous scope is back and
/// `slot` holds the installed scope with whatever was set in it.
pub(crate) struct Installed<'a> {
    slot: &'a mut Scope,
    installed: bool,
    #[cfg(feature = "strict")]
    guards: usize,
}

impl<'a> Installed<'a> {
    /// Installs `slot`.
    ///
    /// # Panics
    /// When the thread is exiting and its storage is gone: running the caller's code without
    /// its context would silently lose it.
    #[inline]
    pub(crate) fn new(slot: &'a mut Scope) -> Self {
        let guard = Self::or_skip(slot);
        assert!(
            guard.installed,
            "ctxflow: cannot install a context while this thread's storage is being destroyed"
        );
        guard
    }

    /// Installs `slot` if the thread's storage still exists; for drops during thread exit.
    #[inline]
    pub(crate) fn or_skip(slot: &'a mut Scope) -> Self {
        #[cfg(feature = "strict")]
        crate::strict::report();
        let installed = exchange(slot);
        Installed {
            slot,
            installed,
            #[cfg(feature = "strict")]
            guards: crate::strict::depth(),
        }
    }
}

impl Drop for Installed<'_> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "strict")]
        crate::strict::leave(self.guards);
        if self.installed {
            exchange(self.slot);
        }
    }
}
