//! For runtime adapters: what a runtime implements so that every [`Spawner`] method works on it.
//!
//! Application code never needs this module: it calls [`Spawner`] (or
//! [`LocalSpawner`](crate::LocalSpawner)), which every [`Runtime`] (or [`LocalRuntime`]) gets
//! for free. An adapter for a runtime ctxflow does not ship implements [`Runtime`], using only
//! what is public here:
//!
//! - ctxflow builds each task: the user's future in its context, kept to the task contract
//!   (run and dropped inside its context, a panic of either is the task's panic, the context
//!   released before the outcome is reported). The runtime only spawns a [`Task`] detached,
//!   runs a [`BlockingTask`] on its blocking pool, and drives a future on the calling thread.
//! - Optionally, a runtime whose own join handle already detaches on drop and cancels from
//!   synchronous code overrides [`Runtime::spawn_prepared`] (and
//!   [`Runtime::spawn_blocking_prepared`]): it spawns the [`Closing`] future of the
//!   [`PreparedTask`], whose output is the task's outcome, and wraps its own handle in a
//!   [`NativeJoin`]. The task then needs no slot of ctxflow's and no allocation of its own.
//!
//! ```
//! use std::future::Future;
//! use ctxflow::rt::{BlockingTask, Runtime, Task};
//! use ctxflow::{ContextVar, Spawner};
//!
//! /// A thread per task, and a thread per blocking closure.
//! #[derive(Clone)]
//! struct ThreadPerTask;
//!
//! impl Runtime for ThreadPerTask {
//!     fn spawn_task<F>(&self, task: Task<F>)
//!     where
//!         F: Future<Output = ()> + Send + 'static,
//!     {
//!         std::thread::spawn(move || futures::executor::block_on(task));
//!     }
//!
//!     fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
//!     where
//!         F: FnOnce() + Send + 'static,
//!     {
//!         std::thread::spawn(move || task.run());
//!     }
//!
//!     fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
//!         futures::executor::block_on(future)
//!     }
//! }
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! let _token = REQUEST_ID.set(7);
//! let task = ThreadPerTask.spawn(async { REQUEST_ID.get() });
//! assert_eq!(ThreadPerTask.block_on(task).unwrap(), Some(7));
//! ```
//!
//! ## Runtimes that offer hooks
//!
//! A task's context for runtimes that reach their tasks only through hooks: install it before a
//! poll and take it off after, from two separate callbacks, with no guard held between them.
//!
//! ctxflow's spawners wrap each task, so the wrapper's `poll` installs the context. A runtime
//! that offers hooks instead (tokio's `on_before_task_poll` and `on_after_task_poll`) cannot
//! wrap anything: it is given the task's id before and after each poll. There a [`TaskScope`] is
//! kept per task, [entered](TaskScope::enter) in the before-poll hook, the [`EnteredScope`] kept
//! on the polling thread until the after-poll hook [leaves](EnteredScope::leave) it. Both move
//! one pointer for the variables, and install or restore the carriers' state as every spawn of
//! ctxflow's does.
//!
//! ```
//! use ctxflow::rt::TaskScope;
//! use ctxflow::ContextVar;
//!
//! static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
//!
//! // The spawn hook, on the spawning thread.
//! let _token = TENANT.set("acme");
//! let parked = TaskScope::inheritable();
//!
//! // The before-poll and after-poll hooks, on a worker.
//! let seen = std::thread::spawn(move || {
//!     let entered = parked.enter();
//!     let seen = TENANT.get();
//!     let _parked_again = entered.leave();
//!     (seen, TENANT.get())
//! });
//! assert_eq!(seen.join().unwrap(), (Some("acme"), None));
//! ```

use std::future::Future;

#[doc(inline)]
pub use crate::__local_spawner_traits as local_spawner_traits;
#[doc(inline)]
pub use crate::__spawner_traits as spawner_traits;

pub use crate::join_error::Panic;
pub use crate::local::LocalRuntime;
pub use crate::native_join::NativeJoin;
pub use crate::rt_scope::{EnteredScope, TaskScope};
pub use crate::task::{
    BlockingTask, Catching, Closing, PollPanics, PreparedBlocking, PreparedTask, Task, Unwinding,
};

use crate::join::JoinHandle;
#[cfg(doc)]
use crate::Spawner;

/// What a runtime adapter implements: spawning ready-made tasks, running ready-made blocking
/// closures, and driving a future on the calling thread. Every type that implements it is a
/// [`Spawner`], with every method provided.
///
/// The tasks and closures come ready-made from ctxflow, with their context attached and their
/// panics caught: implementations only hand them to the runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Spawns `task` on the runtime and lets go of the runtime's own handle: the task reports
    /// its outcome itself.
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Runs `task` on the runtime's blocking pool (or on any thread where blocking is fine),
    /// detached.
    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static;

    /// Runs `future` to completion on the calling thread, as it is: [`Spawner::block_on`]
    /// installs the caller's context around it first.
    fn run_until_complete<F: Future>(&self, future: F) -> F::Output;

    /// Spawns a prepared task and returns its handle; every `spawn` of [`Spawner`] comes here.
    ///
    /// The provided implementation gives the task a slot of ctxflow's to report into and hands
    /// it to [`spawn_task`](Self::spawn_task). Override it only when the runtime's own join
    /// handle detaches on drop and cancels from synchronous code: spawn
    /// [`PreparedTask::into_closing`] and wrap the handle with
    /// [`JoinHandle::from_native`].
    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = task.into_reporting();
        self.spawn_task(task);
        handle
    }

    /// Runs a prepared blocking closure and returns its handle; every `spawn_blocking` of
    /// [`Spawner`] comes here. As with [`spawn_prepared`](Self::spawn_prepared), override it
    /// only for a pool whose own handle behaves as ctxflow's, with
    /// [`PreparedBlocking::into_closing`].
    fn spawn_blocking_prepared<F, R>(&self, f: PreparedBlocking<F>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (task, handle) = f.into_reporting();
        self.spawn_blocking_task(task);
        handle
    }
}

/// What the macros of this module expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use futures_task::{FutureObj, LocalFutureObj, LocalSpawn, Spawn, SpawnError};
}
