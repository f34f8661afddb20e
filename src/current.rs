//! The thread's current context, and the guard that installs another one for a while.
//!
//! Every install is a swap of two words: the snapshot is moved in, the previous one moved out,
//! and moved back when the guard drops, also while unwinding. No reference count is touched.

use std::cell::RefCell;
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
    const EMPTY: Scope = Scope {
        context: Context::empty(),
        id: 0,
    };

    pub(crate) const fn new(context: Context) -> Self {
        Scope { context, id: 0 }
    }

    pub(crate) fn id(&mut self) -> u64 {
        if self.id == 0 {
            self.id = NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed);
        }
        self.id
    }
}

thread_local! {
    static CURRENT: RefCell<Scope> = const { RefCell::new(Scope::EMPTY) };
}

/// Reads the current context. `read` must not change the current context: it runs under a
/// shared borrow.
///
/// While the thread's storage is being destroyed, its context is empty: the values it held are
/// being dropped, and a `Drop` that reads a variable must not abort the process (a panic in a
/// thread-local destructor does).
pub(crate) fn read<R>(read: impl FnOnce(&Context) -> R) -> R {
    let mut read = Some(read);
    let mut call = |context: &Context| (read.take().expect("`read` is called once"))(context);
    match CURRENT.try_with(|current| call(&current.borrow().context)) {
        Ok(value) => value,
        Err(_) => call(&Context::empty()),
    }
}

/// Changes the current scope. `change` must not run user code that could touch the context,
/// so it must hand every replaced value back to the caller instead of dropping it.
///
/// While the thread's storage is being destroyed, the change goes to a throwaway empty scope,
/// for the same reason as in [`read`].
pub(crate) fn update<R>(change: impl FnOnce(&mut Scope) -> R) -> R {
    let mut change = Some(change);
    let mut call = |scope: &mut Scope| (change.take().expect("`change` is called once"))(scope);
    match CURRENT.try_with(|current| call(&mut current.borrow_mut())) {
        Ok(value) => value,
        Err(_) => call(&mut Scope::default()),
    }
}

/// Swaps `scope` with the thread's current one; `false` when the thread's storage is already
/// destroyed (the thread is exiting).
fn swap(scope: &mut Scope) -> bool {
    CURRENT
        .try_with(|current| std::mem::swap(&mut *current.borrow_mut(), scope))
        .is_ok()
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
    pub(crate) fn new(slot: &'a mut Scope) -> Self {
        let guard = Self::or_skip(slot);
        assert!(
            guard.installed,
            "ctxflow: cannot install a context while this thread's storage is being destroyed"
        );
        guard
    }

    /// Installs `slot` if the thread's storage still exists; for drops during thread exit.
    pub(crate) fn or_skip(slot: &'a mut Scope) -> Self {
        #[cfg(feature = "strict")]
        crate::strict::report();
        let installed = swap(slot);
        Installed {
            slot,
            installed,
            #[cfg(feature = "strict")]
            guards: crate::strict::depth(),
        }
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        #[cfg(feature = "strict")]
        crate::strict::leave(self.guards);
        if self.installed {
            swap(self.slot);
        }
    }
}
