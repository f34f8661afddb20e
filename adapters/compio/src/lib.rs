//! [`CompioLocalSpawner`]: ctxflow's [`LocalSpawner`] over compio's thread-per-core runtime
//! (feature `compio`).
//!
//! compio runs one runtime per thread, on io_uring where the kernel allows it and on a polling
//! driver where it does not (an old kernel, a sandbox that forbids io_uring): the choice is
//! compio's, made when the runtime is built, and the same on both. Its tasks never leave their
//! thread, so they need not be `Send`: every one is a local task, and this adapter is a
//! [`LocalSpawner`], with the same context behaviour and the same [`JoinHandle`] as every other.
//!
//! Its tasks report to ctxflow's own join slot: compio's handle cancels its task when dropped,
//! where ctxflow's detaches it, and cancels only from async code, where ctxflow's `abort` is
//! synchronous.
//!
//! ```
//! use std::rc::Rc;
//! use ctxflow::compio::CompioLocalSpawner;
//! use ctxflow::{ContextVar, LocalSpawner};
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! let runtime = compio::runtime::Runtime::new().unwrap();
//! let seen = runtime.block_on(async {
//!     let _token = REQUEST_ID.set(7);
//!     let not_send = Rc::new("client");
//!     let task = CompioLocalSpawner.spawn_local(async move { (*not_send, REQUEST_ID.get()) });
//!     let blocking = CompioLocalSpawner.spawn_blocking(|| REQUEST_ID.get());
//!     (task.await.unwrap(), blocking.await.unwrap())
//! });
//! assert_eq!(seen, (("client", Some(7)), Some(7)));
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;

use ctxflow_core::rt::{LocalRuntime, PreparedBlocking, Task};
use ctxflow_core::{Context, JoinHandle};
#[cfg(doc)]
use ctxflow_core::{LocalSpawner, Spawner};

/// Spawns `!Send` tasks on the compio runtime the caller runs in, and blocking closures on
/// that runtime's thread pool; each starts in a snapshot of the caller's context.
///
/// It holds no runtime: a spawned task keeps nothing of its runtime alive, so dropping the
/// runtime drops its unfinished tasks (inside their contexts), and their handles report them
/// cancelled. A future that panics as it is dropped then has its panic reported by the panic
/// hook and nothing more (ctxflow's task catches it), where compio alone would abort the
/// process.
///
/// # Panics
/// Spawning panics outside a compio runtime (compio's own rule for `compio::runtime::spawn`),
/// with compio's message "not in a compio runtime".
///
/// ```
/// use ctxflow::compio::CompioLocalSpawner;
/// use ctxflow::LocalSpawner;
///
/// let runtime = compio::runtime::Runtime::new().unwrap();
/// let answer = runtime.block_on(async {
///     let shared = std::rc::Rc::new(20);
///     CompioLocalSpawner.spawn_local(async move { *shared + 1 }).await
/// });
/// assert_eq!(answer.unwrap(), 21);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CompioLocalSpawner;

impl CompioLocalSpawner {
    /// Runs `f` on the current compio runtime's blocking pool, in a snapshot of the caller's
    /// context, as [`Spawner::spawn_blocking`] does on the runtimes that have a `Spawner`.
    ///
    /// The handle is ctxflow's: a panic of `f` is a panic [`JoinError`](ctxflow_core::JoinError),
    /// and dropping the handle detaches the closure. A closure that has started runs to its end
    /// whatever the handle does, as on every pool.
    ///
    /// # Panics
    /// Outside a compio runtime, as [spawning](CompioLocalSpawner#panics) does.
    ///
    /// ```
    /// use ctxflow::compio::CompioLocalSpawner;
    /// use ctxflow::ContextVar;
    ///
    /// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
    ///
    /// let runtime = compio::runtime::Runtime::new().unwrap();
    /// let seen = runtime.block_on(async {
    ///     let _token = TENANT.set("acme");
    ///     CompioLocalSpawner.spawn_blocking(|| TENANT.get()).await
    /// });
    /// assert_eq!(seen.unwrap(), Some("acme"));
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        run_on_pool(PreparedBlocking::new(f))
    }

    /// Runs `f` on the current compio runtime's blocking pool in `context` instead of the
    /// caller's, as [`Spawner::spawn_blocking_in`] does.
    ///
    /// # Panics
    /// Outside a compio runtime, as [spawning](CompioLocalSpawner#panics) does.
    ///
    /// ```
    /// use ctxflow::compio::CompioLocalSpawner;
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
    ///
    /// let runtime = compio::runtime::Runtime::new().unwrap();
    /// let context = Context::empty().with_value(&TENANT, "acme");
    /// let seen = runtime.block_on(async {
    ///     CompioLocalSpawner.spawn_blocking_in(context, || TENANT.get()).await
    /// });
    /// assert_eq!(seen.unwrap(), Some("acme"));
    /// ```
    pub fn spawn_blocking_in<F, R>(&self, context: Context, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        run_on_pool(PreparedBlocking::in_context(context, f))
    }
}

/// Hands `prepared` to compio's pool, which keeps no handle: the closure reports to ctxflow's
/// slot, and compio's own task around it only waits for the pool (dropping that task would not
/// stop the closure anyway).
fn run_on_pool<F, R>(prepared: PreparedBlocking<F>) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (task, handle) = prepared.into_reporting();
    compio::runtime::spawn_blocking(move || task.run()).detach();
    handle
}

ctxflow_core::rt::local_spawner_traits!(CompioLocalSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::local_executor!(CompioLocalSpawner);

impl LocalRuntime for CompioLocalSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        compio::runtime::spawn(task).detach();
    }
}
