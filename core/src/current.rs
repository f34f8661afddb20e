//! The thread's current context, and the guard that installs another one for a while.
//!
//! Every install moves one pointer: the snapshot is moved in, the previous one moved out, and
//! moved back when the guard drops, also while unwinding. No reference count is touched, and no
//! borrow flag is checked: the slot is a plain cell.
//!
//! One of the three modules where the core lets `unsafe` code in: a snapshot, and a variable's
//! read, look at the context where it lies in the slot instead of taking it out and putting it
//! back, which made `Context::current()` 11% dearer (4.04 against 3.53–3.61 ns in
//! `context/current`, docs/performance.md). The argument is local: only [`peek`] borrows the
//! slot, and only this module's readers call it, each with code that clones or compares what
//! the context holds and runs nothing else (no user code, no allocation), so nothing can change
//! the slot meanwhile.
//!
//! The thread's slot is never destroyed, so a context can be installed at any time, also by a
//! thread-local destructor that runs while the thread exits, after ctxflow's own. What the
//! thread's own scope still holds then is released by [`ThreadExit`].

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::{Context, Value};
use crate::var::VarInfo;

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

/// The bit of a scope's id that says flow is suppressed in it ([`suppress_flow`]): kept with
/// the id, it is swapped with it at every install, so work polled or run meanwhile in a scope of
/// its own (another task, a pool's job) is not suppressed, at no cost to the install. Ids never
/// reach it.
///
/// [`suppress_flow`]: crate::suppress_flow
const SUPPRESSED: u64 = 1 << 63;

/// The bit of a scope's id that says a guard was dropped while this scope, installed after the
/// guard's own, was current ([`left_behind`]): when this scope is taken off, the guard's may be
/// back, and then the scope the guard replaced must be put back. Kept with the id, it costs an
/// install's end one test of a value already loaded. Ids never reach it.
const LEFT_BEHIND: u64 = 1 << 62;

/// The bits of a scope's id that are its identity.
const IDENTITY: u64 = LEFT_BEHIND - 1;

/// The identity of the thread's own scope once [`ThreadExit`] has released it.
const EXITED: u64 = IDENTITY;

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
        self.id & IDENTITY
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
        // A panic out of a thread-local's destructor aborts the process: a value whose `Drop`
        // panics has its panic reported by the hook, and goes no further, as in a task.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(left)));
    }
}

/// Looks at the current context in its slot. Private, and given only the readers below: `read`
/// must only look up, compare and clone what the context holds (reference counts), which runs
/// no user code and allocates nothing, so that nothing writes to the slot while it is borrowed.
#[allow(unsafe_code)]
#[inline(always)]
fn peek<R>(read: impl FnOnce(&Context) -> R) -> R {
    CURRENT.with(|slot| {
        // SAFETY: the slot is this thread's (`Cell` is not `Sync`), every write to it is a
        // `set`, `replace` or `take` made outside `peek`, and `read` runs none (see above), so
        // the borrow ends before the slot next changes.
        read(unsafe { &*slot.as_ptr() })
    })
}

/// A snapshot of the current context: one reference count.
#[inline]
pub(crate) fn snapshot() -> Context {
    peek(Context::clone)
}

/// A snapshot of the current context, if every variable set in it flows (as in almost every
/// context); `None` otherwise.
#[inline]
pub(crate) fn snapshot_if_all_flow() -> Option<Context> {
    peek(|cx| cx.all_flow().then(|| cx.clone()))
}

/// The current value of `var`, held by a reference count of its own, so that the caller may
/// clone it with code that reads or changes the context.
#[inline]
pub(crate) fn value(var: &'static VarInfo) -> Option<Value> {
    peek(|cx| cx.value(var).cloned())
}

/// Whether `var` is set in the current context.
#[inline]
pub(crate) fn is_set(var: &'static VarInfo) -> bool {
    peek(|cx| cx.value(var).is_some())
}

/// Reads the current context out of its slot, which is empty meanwhile: for a read that
/// allocates, and so may run a global allocator's code.
pub(crate) fn read<R>(read: impl FnOnce(&Context) -> R) -> R {
    CURRENT.with(|slot| read(&Taken::new(slot).context))
}

/// Changes the current context. `change` must not run user code that could touch the context,
/// so it must hand every replaced value back to the caller instead of dropping it. Should a
/// `Drop` run meanwhile all the same, what it sets is released, not kept.
#[inline]
pub(crate) fn update<R>(change: impl FnOnce(&mut Context) -> R) -> R {
    if !exit_registered() && current_id() == EXITED {
        return change(&mut Context::empty());
    }
    CURRENT.with(|slot| change(&mut Taken::new(slot).context))
}

/// The thread's context, out of its slot until dropped, then put back, also while unwinding:
/// how the slot is changed without a borrow flag for every install to check. What code run
/// meanwhile left in the slot is released.
struct Taken<'a> {
    slot: &'a Cell<Context>,
    // Always moved back into the slot by `drop`: what is left here is empty, and not dropping
    // it keeps the reference count's decrement out of every change.
    context: ManuallyDrop<Context>,
}

impl<'a> Taken<'a> {
    #[inline]
    fn new(slot: &'a Cell<Context>) -> Self {
        Taken {
            context: ManuallyDrop::new(slot.take()),
            slot,
        }
    }
}

impl Drop for Taken<'_> {
    #[inline]
    fn drop(&mut self) {
        drop(self.slot.replace(std::mem::take(&mut *self.context)));
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
    SCOPE_ID.with(|cell| {
        let id = cell.get() & IDENTITY;
        if id != 0 {
            return id;
        }
        let id = NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed);
        cell.set(id | cell.get() & !IDENTITY);
        id
    })
}

/// Whether the scope with identity `id` is the current one.
pub(crate) fn is_current(id: u64) -> bool {
    current_id() == id
}

/// The current scope's identity as it stands (zero until it issues a token), without the
/// bits it carries.
#[inline]
pub(crate) fn current_id() -> u64 {
    SCOPE_ID.get() & IDENTITY
}

/// Marks the current scope: a guard whose own scope was installed before it was dropped
/// meanwhile, and the scope that guard replaced waits for the guard's to come back. The mark
/// makes the end of this scope's install look for it ([`Installed`], [`exchange_back`]).
pub(crate) fn left_behind() {
    SCOPE_ID.set(SCOPE_ID.get() | LEFT_BEHIND);
}

/// Swaps `scope`, the scope an install replaced, back with the thread's current one; if the
/// scope taken off was marked [`left_behind`], puts back what dropped guards left.
#[inline]
pub(crate) fn exchange_back(scope: &mut Scope) {
    exchange(scope);
    if scope.id & LEFT_BEHIND != 0 {
        scope.id &= !LEFT_BEHIND;
        crate::guard::put_back_left();
    }
}

/// Whether flow is suppressed in the current scope.
#[inline]
pub(crate) fn is_flow_suppressed() -> bool {
    SCOPE_ID.get() & SUPPRESSED != 0
}

/// Suppresses flow in the current scope, or ends that; returns whether it was suppressed.
pub(crate) fn set_flow_suppressed(suppressed: bool) -> bool {
    SCOPE_ID.with(|cell| {
        let id = cell.get();
        cell.set(match suppressed {
            true => id | SUPPRESSED,
            false => id & !SUPPRESSED,
        });
        id & SUPPRESSED != 0
    })
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

/// Drops `released`, values of a context nobody holds any more, in a scope of their own with
/// an empty context: what their `Drop` sets goes nowhere, instead of into the context of
/// whatever runs here next (a worker's, or the caller's), and a token it makes or resets is
/// another scope's, so the caller's refuses it. What they set is released the same way in turn.
pub(crate) fn drop_aside<T>(released: T) {
    /// Puts the thread's scope back, also when a `Drop` panics; what the `Drop`s set is
    /// released with it.
    struct Aside(Scope);
    impl Drop for Aside {
        fn drop(&mut self) {
            exchange(&mut self.0);
        }
    }
    let mut aside = Aside(Scope::new(Context::empty()));
    // Once the thread's own scope is released, what a `Drop` sets goes to a throwaway context,
    // here as anywhere then.
    if current_id() == EXITED {
        aside.0.id = EXITED;
    }
    exchange(&mut aside.0);
    drop(released);
    drop(aside);
}

/// Runs `f`, a release of values, without aborting the process: while the thread unwinds,
/// where a second panic would abort it, a panic of `f` is reported by the hook and goes no
/// further.
pub(crate) fn without_abort(f: impl FnOnce()) {
    if std::thread::panicking() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    } else {
        f();
    }
}

/// Lets `payload`, the panic of a release, go on, unless the thread unwinds already, where a
/// second panic would abort the process: then the hook has reported it, and it goes no further.
pub(crate) fn resume_unless_unwinding(payload: Box<dyn std::any::Any + Send>) {
    if !std::thread::panicking() {
        std::panic::resume_unwind(payload);
    }
}

/// Keeps a scope installed on this thread until dropped; then the previous scope is back and
/// `slot` holds the installed scope with whatever was set in it.
pub(crate) struct Installed<'a> {
    slot: &'a mut Scope,
    #[cfg(feature = "strict")]
    guards: crate::strict::Depth,
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
        Installed::unreported(slot)
    }

    /// Installs `slot` and leaves a misuse seen in it unreported: for code that must run inside
    /// it first, and then report.
    #[inline]
    pub(crate) fn unreported(slot: &'a mut Scope) -> Self {
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
        exchange_back(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Context, ContextVar};

    static STEP: ContextVar<u64> = ContextVar::new("step");
    static LOCAL: ContextVar<u64> = ContextVar::non_flowing("local");
    static REENTRANT: ContextVar<Reentrant> = ContextVar::new("reentrant");

    /// A value whose `Clone` reads, sets and installs context, between two reads in place.
    struct Reentrant(u64);

    impl Clone for Reentrant {
        fn clone(&self) -> Self {
            let outer = STEP.get().unwrap_or(0);
            let token = STEP.set(self.0);
            let step = STEP.get().unwrap();
            STEP.reset(token).unwrap();
            let scoped = STEP.sync_scope(10, || Context::current().get(&STEP).copied().unwrap());
            let _guard = Context::empty().attach();
            Reentrant(outer + step + scoped + u64::from(STEP.is_set()))
        }
    }

    // Run under Miri in CI: the reads in place must not outlive a write to the slot.
    #[test]
    fn every_read_in_place_sees_the_writes_made_between_reads() {
        let _value = REENTRANT.set(Reentrant(5));
        let _step = STEP.set(1);
        // The reader's own step (1), the clone's (5), its scope's (10), none under an empty guard.
        assert_eq!(REENTRANT.get().map(|value| value.0), Some(16));
        assert_eq!(REENTRANT.with(|value| value.map(|value| value.0)), Some(5));
        assert!(STEP.is_set());
        assert_eq!(Context::current().get(&STEP), Some(&1));
        assert_eq!(Context::inheritable().get(&STEP), Some(&1));

        let _local = LOCAL.set(2);
        let inherited = Context::inheritable();
        assert_eq!(
            (inherited.get(&LOCAL), inherited.get(&STEP)),
            (None, Some(&1))
        );
        assert_eq!(Context::current().get(&LOCAL), Some(&2));
    }
}
