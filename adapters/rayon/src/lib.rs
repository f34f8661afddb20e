//! rayon with the caller's context in every closure (feature `rayon`).
//!
//! rayon runs closures on its worker threads, which start with an empty context. Here:
//!
//! - [`spawn`], [`join`], [`scope`] and [`in_place_scope`]: rayon's functions of the same names,
//!   carrying a snapshot of the caller's context into each closure;
//! - [`ThreadPoolExt`]: the same on a `rayon::ThreadPool` of your own, plus `install`;
//! - [`ParallelIteratorExt::with_current_context`]: a parallel iterator whose later stages run
//!   in the caller's context, installed once per chunk of items rather than once per item.
//!
//! Every closure runs inside its own copy of the snapshot: what it sets stays inside, and the
//! worker thread has its own (normally empty) context back once the closure returns or panics.
//! While the calling thread waits in [`join`] or at the end of a [`scope`], rayon may have it run
//! unrelated jobs; it runs them in an empty context, so the caller's values never leak into them.
//!
//! Like every ctxflow spawn, the snapshot holds the caller's flowing variables: not those
//! declared with [`ContextVar::non_flowing`](ctxflow_core::ContextVar::non_flowing), and none at all
//! inside [`suppress_flow`](ctxflow_core::suppress_flow).
//!
//! ```
//! use ctxflow::rayon::ParallelIteratorExt;
//! use ctxflow::ContextVar;
//! use rayon::prelude::*;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//! let _token = REQUEST_ID.set("req-123".into());
//!
//! let (left, right) = ctxflow::rayon::join(|| REQUEST_ID.get(), || REQUEST_ID.get());
//! assert_eq!((left.as_deref(), right.as_deref()), (Some("req-123"), Some("req-123")));
//!
//! let tagged: Vec<String> = (0..4)
//!     .into_par_iter()
//!     .with_current_context()
//!     .map(|item| format!("{}:{item}", REQUEST_ID.get().unwrap()))
//!     .collect();
//! assert_eq!(tagged, ["req-123:0", "req-123:1", "req-123:2", "req-123:3"]);
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use ctxflow_core::rt::PreparedBlocking;
use ctxflow_core::{Context, JoinHandle};

mod iter;
mod pool;
mod scope;

pub use iter::{ContextIter, ParallelIteratorExt};
pub use pool::ThreadPoolExt;
pub use scope::Scope;

/// Spawns `f` on rayon's global pool, like [`rayon::spawn`], to run in a snapshot of the
/// caller's context.
///
/// As with `rayon::spawn`, a panic in `f` goes to the pool's panic handler, and aborts the
/// process if the pool has none. To await the result, or get a panic back as a
/// [`JoinError`](ctxflow_core::JoinError), use [`spawn_with_handle`].
///
/// ```
/// use std::sync::mpsc;
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// let _token = REQUEST_ID.set("req-123".into());
///
/// let (report, seen) = mpsc::channel();
/// ctxflow::rayon::spawn(move || report.send(REQUEST_ID.get()).unwrap());
/// assert_eq!(seen.recv().unwrap().as_deref(), Some("req-123"));
/// ```
pub fn spawn<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    ::rayon::spawn(Context::inheritable().wrap(f));
}

/// Spawns `f` on rayon's global pool, like [`spawn`], and returns a [`JoinHandle`] to its
/// result: await it from async code, or [`join`](JoinHandle::join) it from a thread.
///
/// A panic in `f` is caught and given to the handle as a [`JoinError`](ctxflow_core::JoinError)
/// (`is_panic`), so rayon's panic handler never sees it. Dropping the handle detaches the job:
/// it still runs. As everywhere in ctxflow, `f` runs in a snapshot of the caller's context.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let checksum = ctxflow::block_on(async {
///     let _token = REQUEST_ID.set("req-123".into());
///     ctxflow::rayon::spawn_with_handle(|| {
///         let id = REQUEST_ID.get().unwrap();
///         id.bytes().map(u64::from).sum::<u64>()
///     })
///     .await
///     .unwrap()
/// });
/// assert_eq!(checksum, "req-123".bytes().map(u64::from).sum::<u64>());
/// ```
pub fn spawn_with_handle<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (job, handle) = PreparedBlocking::new(f).into_reporting();
    ::rayon::spawn(move || job.run());
    handle
}

/// Runs `a` and `b`, potentially in parallel, like [`rayon::join`], each in a snapshot of the
/// caller's context.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
/// let _token = USER_ID.set(7);
///
/// let (a, b) = ctxflow::rayon::join(|| USER_ID.get(), || USER_ID.get().map(|id| id * 2));
/// assert_eq!((a, b), (Some(7), Some(14)));
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let context = Context::inheritable();
    while_waiting_in_empty_context(|| ::rayon::join(|| context.run(a), || context.run(b)))
}

/// Opens a fork-join scope on rayon's global pool, like [`rayon::scope`]: `op` and every
/// closure spawned with [`Scope::spawn`] run in the caller's context.
///
/// ```
/// use std::sync::Mutex;
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
/// let _token = REQUEST_ID.set("req-123");
///
/// let seen = Mutex::new(Vec::new());
/// ctxflow::rayon::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|_| seen.lock().unwrap().push(REQUEST_ID.get()));
///     }
/// });
/// assert_eq!(seen.into_inner().unwrap(), [Some("req-123"); 3]);
/// ```
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'_, 'scope>) -> R + Send,
    R: Send,
{
    let context = Context::inheritable();
    while_waiting_in_empty_context(|| {
        ::rayon::scope(|rayon| context.run(|| op(&Scope::new(rayon))))
    })
}

/// Opens a fork-join scope whose `op` runs on the calling thread, like
/// [`rayon::in_place_scope`]; closures spawned with [`Scope::spawn`] run on rayon's global pool,
/// all in the caller's context.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ctxflow::ContextVar;
///
/// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
/// let _token = TENANT.set("acme");
///
/// let acme_jobs = AtomicUsize::new(0);
/// ctxflow::rayon::in_place_scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|_| {
///             if TENANT.get() == Some("acme") {
///                 acme_jobs.fetch_add(1, Ordering::Relaxed);
///             }
///         });
///     }
/// });
/// assert_eq!(acme_jobs.into_inner(), 4);
/// ```
pub fn in_place_scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'_, 'scope>) -> R,
{
    let context = Context::inheritable();
    while_waiting_in_empty_context(|| {
        ::rayon::in_place_scope(|rayon| context.run(|| op(&Scope::new(rayon))))
    })
}

/// Runs `wait`, a call that blocks until rayon has run some closures, with an empty context.
///
/// A worker thread that waits in `join` or at the end of a scope runs other queued jobs in the
/// meantime; those may be unrelated to the caller and must not see its context.
fn while_waiting_in_empty_context<R>(wait: impl FnOnce() -> R) -> R {
    Context::empty().run(wait)
}
