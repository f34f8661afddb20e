//! What flows into spawned work: every variable but the non-flowing ones, and nothing at all
//! inside [`suppress_flow`].

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
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            current::set_flow_suppressed(self.0);
        }
    }
    let _restore = Restore(current::set_flow_suppressed(true));
    f()
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
