//! What flows into spawned work: every variable but the non-flowing ones, and nothing at all
//! inside [`suppress_flow`].

use std::cell::RefCell;

use crate::current;

/// Runs `f` so that everything spawned inside it through ctxflow starts with an empty context
/// (and, with the tracing integrations, outside the caller's span): .NET's
/// `ExecutionContext.SuppressFlow`.
///
/// For long-lived work started from inside a request: a worker that keeps the request's id
/// would log every later job under it. `f` itself still runs in the caller's context; only what
/// it spawns starts empty. The suppression covers `f`'s synchronous run on this thread and ends
/// with it, also if `f` panics.
///
/// It belongs to the caller's context, as .NET's does to its `ExecutionContext`: code that runs
/// meanwhile in a context of its own is not suppressed. A task polled inside `f` (by a
/// `block_on`), a pool's job run while `f` waits, `Context::run`, `Context::attach` and
/// `in_context` futures spawn as usual; [`ContextVar::sync_scope`](crate::ContextVar::sync_scope),
/// which only changes one variable of the caller's context, keeps the suppression.
///
/// ```
/// use ctxflow::{Context, ContextVar, Spawner};
///
/// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
///
/// ctxflow::block_on(async {
///     let _token = REQUEST_ID.set("req-1");
///     let worker = ctxflow::suppress_flow(|| {
///         assert_eq!(REQUEST_ID.get(), Some("req-1"));
///         ctxflow::spawn(async { REQUEST_ID.get() })
///     });
///     assert_eq!(worker.await.unwrap(), None);
///     assert!(!ctxflow::context::is_flow_suppressed());
/// });
/// ```
pub fn suppress_flow<R>(f: impl FnOnce() -> R) -> R {
    struct Restore {
        scope: u64,
        was: bool,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SUPPRESSING.try_with(|scopes| scopes.borrow_mut().pop());
            // Otherwise a guard attached inside `f` still holds the caller's scope, and puts it
            // back with its flow as `resume` finds it.
            if current::current_id() == self.scope {
                current::set_flow_suppressed(self.was);
            }
        }
    }
    let scope = current::scope_id();
    let _ = SUPPRESSING.try_with(|scopes| scopes.borrow_mut().push(scope));
    let _restore = Restore {
        scope,
        was: current::set_flow_suppressed(true),
    };
    f()
}

thread_local! {
    /// The identity of the scope each [`suppress_flow`] running on this thread suppressed,
    /// oldest first.
    static SUPPRESSING: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Sets flow for the scope a guard's drop put back: suppressed exactly while a
/// [`suppress_flow`] that suppressed that scope still runs, whatever ended meanwhile.
pub(crate) fn resume() {
    let scope = current::current_id();
    let suppressed = scope != 0
        && SUPPRESSING
            .try_with(|scopes| scopes.borrow().contains(&scope))
            .unwrap_or(false);
    current::set_flow_suppressed(suppressed);
}

/// Whether the caller runs inside [`suppress_flow`].
///
/// ```
/// assert!(!ctxflow::context::is_flow_suppressed());
/// assert!(ctxflow::suppress_flow(ctxflow::context::is_flow_suppressed));
/// ```
// Inline: every spawn asks.
#[inline]
pub fn is_flow_suppressed() -> bool {
    current::is_flow_suppressed()
}
