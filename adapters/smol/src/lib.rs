//! [`SmolSpawner`]: ctxflow's [`Spawner`] over smol's executors (feature `smol`).
//!
//! ctxflow's [`JoinHandle`] wraps smol's own `Task` here (see `async_task_join`): a task is one
//! allocation, as with `Executor::spawn`, and dropping the handle detaches it.
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use std::rc::Rc;

use ::smol::{Executor, LocalExecutor};
use ctxflow_async_task::{cancelling, AsyncTaskJoin, Contained};
use ctxflow_core::rt::{self, BlockingTask, LocalRuntime, PreparedTask, Task};
use ctxflow_core::JoinHandle;
#[cfg(doc)]
use ctxflow_core::Spawner;

/// Spawns on an [`Executor`] (smol's global one, or one of the application's); blocking
/// closures go to the `blocking` crate's pool, as `smol::unblock` does.
///
/// ```
/// use std::sync::Arc;
/// use ctxflow::smol::SmolSpawner;
/// use ctxflow::{ContextVar, Spawner};
///
/// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
///
/// let spawner = SmolSpawner::new(Arc::new(smol::Executor::new()));
/// let seen = spawner.block_on(async {
///     let _token = REQUEST_ID.set("req-1");
///     spawner.spawn(async { REQUEST_ID.get() }).await.unwrap()
/// });
/// assert_eq!(seen, Some("req-1"));
///
/// let global = SmolSpawner::global();
/// assert_eq!(global.block_on(global.spawn_blocking(|| 2)).unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct SmolSpawner {
    /// `None` for smol's global executor.
    executor: Option<Arc<Executor<'static>>>,
}

impl SmolSpawner {
    /// smol's global executor, the one behind `smol::spawn`; its threads start on first use.
    pub fn global() -> Self {
        SmolSpawner { executor: None }
    }

    /// An executor of the application's. Tasks run while some thread runs the executor;
    /// [`block_on`](Spawner::block_on) runs it on the calling thread.
    pub fn new(executor: Arc<Executor<'static>>) -> Self {
        SmolSpawner {
            executor: Some(executor),
        }
    }
}

ctxflow_core::rt::spawner_traits!(SmolSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::executor!(SmolSpawner);

impl rt::Runtime for SmolSpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => ::smol::spawn(task).detach(),
        }
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        ::smol::unblock(move || task.run()).detach();
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        match &self.executor {
            Some(executor) => ::smol::block_on(executor.run(future)),
            None => ::smol::block_on(future),
        }
    }

    // smol's own task, detached on drop and cancelled by `abort`, carries the outcome: the task
    // needs no slot of ctxflow's.
    #[inline]
    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, _name, abort_key) = Contained::new(task);
        let task = match &self.executor {
            Some(executor) => executor.spawn(task),
            None => ::smol::spawn(task),
        };
        let handle = AsyncTaskJoin::new(
            task.fallible(),
            |task, abort_key| cancelling(task.cancel(), abort_key),
            abort_key,
        );
        JoinHandle::from_native(handle)
    }
}

impl fmt::Debug for SmolSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let executor = match self.executor {
            Some(_) => "custom",
            None => "global",
        };
        f.debug_struct("SmolSpawner")
            .field("executor", &executor)
            .finish()
    }
}

/// Spawns `!Send` tasks on a [`LocalExecutor`]; they run while the executor is run on its
/// thread.
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::smol::SmolLocalSpawner;
/// use ctxflow::LocalSpawner;
///
/// let executor = Rc::new(smol::LocalExecutor::new());
/// let local = SmolLocalSpawner::new(executor.clone());
/// let shared = Rc::new(1);
/// let answer = smol::block_on(executor.run(local.spawn_local(async move { *shared + 1 })));
/// assert_eq!(answer.unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct SmolLocalSpawner {
    executor: Rc<LocalExecutor<'static>>,
}

impl SmolLocalSpawner {
    /// Spawns on `executor`.
    pub fn new(executor: Rc<LocalExecutor<'static>>) -> Self {
        SmolLocalSpawner { executor }
    }
}

ctxflow_core::rt::local_spawner_traits!(SmolLocalSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::local_executor!(SmolLocalSpawner);

impl LocalRuntime for SmolLocalSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        self.executor.spawn(task).detach();
    }
}

impl fmt::Debug for SmolLocalSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolLocalSpawner").finish_non_exhaustive()
    }
}
