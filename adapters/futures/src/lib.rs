//! Spawners over the `futures` crate's executors (feature `futures-executor`):
//! [`ThreadPoolSpawner`] over its `ThreadPool`, [`LocalPoolSpawner`] over its `LocalPool`.
//!
//! This adapter uses nothing but ctxflow's public API: it is what a crate adding ctxflow to a
//! runtime ctxflow does not ship looks like (see [`ctxflow::rt`](ctxflow_core::rt)). Each spawner
//! implements [`Runtime`] (or [`LocalRuntime`]), so every [`Spawner`](ctxflow_core::Spawner) (or
//! [`LocalSpawner`](ctxflow_core::LocalSpawner)) method works on it, and its tasks report to ctxflow's
//! own join slot, as futures' pools have no join handle of their own.
//!
//! futures' pools have no blocking pool: blocking closures go to the `blocking` crate's pool
//! (the one behind `smol::unblock`), which starts threads as closures wait and stops them when
//! idle.
//!
//! ```
//! use ctxflow::futures::ThreadPoolSpawner;
//! use ctxflow::{ContextVar, Spawner};
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! let spawner = ThreadPoolSpawner::new(futures::executor::ThreadPool::new().unwrap());
//! let _token = REQUEST_ID.set(3);
//! let task = spawner.spawn(async { REQUEST_ID.get() });
//! let closure = spawner.spawn_blocking(|| REQUEST_ID.get());
//! assert_eq!(spawner.block_on(task).unwrap(), Some(3));
//! assert_eq!(spawner.block_on(closure).unwrap(), Some(3));
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::future::Future;

use futures_executor::{LocalSpawner, ThreadPool};
use futures_task::{LocalFutureObj, LocalSpawn};

use ctxflow_core::rt::{BlockingTask, LocalRuntime, Runtime, Task};

/// Spawns on a futures `ThreadPool`; blocking closures go to the `blocking` crate's pool, and
/// [`block_on`](ctxflow_core::Spawner::block_on) is futures' `block_on`.
#[derive(Clone, Debug)]
pub struct ThreadPoolSpawner {
    pool: ThreadPool,
}

impl ThreadPoolSpawner {
    /// Spawns on `pool`.
    pub fn new(pool: ThreadPool) -> Self {
        ThreadPoolSpawner { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }
}

impl From<ThreadPool> for ThreadPoolSpawner {
    fn from(pool: ThreadPool) -> Self {
        ThreadPoolSpawner::new(pool)
    }
}

impl Runtime for ThreadPoolSpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.pool.spawn_ok(task);
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        blocking::unblock(move || task.run()).detach();
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        futures_executor::block_on(future)
    }
}

ctxflow_core::rt::spawner_traits!(ThreadPoolSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::executor!(ThreadPoolSpawner);

/// Spawns `!Send` tasks on a futures `LocalPool`, through its spawner: they run while the pool
/// runs on its thread.
///
/// A task spawned after its pool has been dropped never runs: its handle reports it cancelled.
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::futures::LocalPoolSpawner;
/// use ctxflow::LocalSpawner;
///
/// let mut pool = futures::executor::LocalPool::new();
/// let local = LocalPoolSpawner::new(pool.spawner());
/// let shared = Rc::new(20);
/// let task = local.spawn_local(async move { *shared + 1 });
/// assert_eq!(pool.run_until(task).unwrap(), 21);
/// ```
#[derive(Clone)]
pub struct LocalPoolSpawner {
    spawner: LocalSpawner,
}

impl LocalPoolSpawner {
    /// Spawns through `spawner`, from `LocalPool::spawner`.
    pub fn new(spawner: LocalSpawner) -> Self {
        LocalPoolSpawner { spawner }
    }
}

impl LocalRuntime for LocalPoolSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        // Refused only once the pool is gone: the task is dropped, and its handle reports the
        // cancellation.
        let _ = self
            .spawner
            .spawn_local_obj(LocalFutureObj::new(Box::new(task)));
    }
}

ctxflow_core::rt::local_spawner_traits!(LocalPoolSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::local_executor!(LocalPoolSpawner);

impl fmt::Debug for LocalPoolSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPoolSpawner").finish_non_exhaustive()
    }
}
