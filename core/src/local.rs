//! [`LocalSpawner`]: tasks that stay on one thread, for futures that are not `Send`.

use std::future::Future;

use crate::context::Context;
use crate::handoff::Handoff;
use crate::join::JoinHandle;
use crate::task::{PreparedTask, Task};

/// Spawns `!Send` futures (an `Rc`, a client that is not thread-safe) as tasks that stay on the
/// current thread, with the same context behaviour and the same [`JoinHandle`] as
/// [`Spawner::spawn`](crate::Spawner::spawn): the task starts with the caller's inheritable
/// context, dropping the handle detaches it, `abort` cancels it, and a panic is a
/// [`JoinError`](crate::JoinError).
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::tokio::TokioLocalSpawner;
/// use ctxflow::{ContextVar, LocalSpawner};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let local = tokio::task::LocalSet::new();
/// let seen = local.block_on(&runtime, async {
///     let _token = REQUEST_ID.set(7);
///     let not_send = Rc::new("client");
///     TokioLocalSpawner.spawn_local(async move { (*not_send, REQUEST_ID.get()) }).await
/// });
/// assert_eq!(seen.unwrap(), ("client", Some(7)));
/// ```
pub trait LocalSpawner: LocalRuntime {
    /// Spawns `future` on this thread, in a snapshot of the caller's context.
    fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_local_prepared(PreparedTask::new(Handoff::for_spawn(), None, future))
    }

    /// Spawns `future` on this thread, in `context` instead of the caller's.
    fn spawn_local_in<F>(&self, context: Context, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_local_prepared(PreparedTask::new(Handoff::from(context), None, future))
    }
}

impl<R: LocalRuntime> LocalSpawner for R {}

/// What a runtime adapter implements for tasks that stay on one thread; every type that
/// implements it is a [`LocalSpawner`], with every method provided. See
/// [`ctxflow::rt`](crate::rt).
pub trait LocalRuntime: Clone + 'static {
    /// Hands a ready-made task to the runtime's local executor, detached.
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static;

    /// Spawns a prepared task on this thread and returns its handle; every `spawn_local` comes
    /// here. The provided implementation gives the task a slot of ctxflow's to report into.
    fn spawn_local_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, handle) = task.into_reporting();
        self.spawn_local_task(task);
        handle
    }
}
