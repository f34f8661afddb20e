//! [`TokioSpawner`]: ctxflow's [`Spawner`] over a tokio runtime (feature `tokio`).
//!
//! ctxflow's [`JoinHandle`] wraps tokio's own handle here, which already detaches on drop, reports
//! panics and cancellation, and aborts from synchronous code: a task costs what `tokio::spawn`
//! costs plus its context.
//!
//! tokio's own task names need `--cfg tokio_unstable`, so tokio does not receive the name given to
//! [`spawn_named`](Spawner::spawn_named); [`task_name`](ctxflow_core::task_name) returns it.
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use ::tokio::runtime::{Handle, Runtime};

use ctxflow_core::rt::{
    self, BlockingTask, LocalRuntime, NativeJoin, Panic, PreparedBlocking, PreparedTask, Task,
};

#[cfg(tokio_unstable)]
mod hooks;
#[cfg(not(tokio_unstable))]
mod no_hooks;
#[cfg(doc)]
use ctxflow_core::Spawner;
use ctxflow_core::{JoinError, JoinHandle, NoRuntime};
#[cfg(tokio_unstable)]
pub use hooks::*;
#[cfg(not(tokio_unstable))]
pub use no_hooks::*;

/// Spawns on a tokio runtime through its [`Handle`].
///
/// Built from a [`Runtime`] it owns the runtime, so that [`block_on`](Spawner::block_on) can
/// drive a current-thread runtime (a `Handle` alone cannot). The owned runtime shuts down when
/// the last clone of the spawner drops:
///
/// - outside any tokio runtime, the drop waits, as dropping a `Runtime` does, for the running
///   blocking closures to finish and the worker threads to stop;
/// - inside a tokio runtime (in one of its tasks, or in one of this runtime's own tasks, as when
///   the spawner lives in a server's state), where tokio forbids that wait, the drop hands the
///   runtime to [`Runtime::shutdown_background`] instead. Its tasks are still dropped, with the
///   values they hold: by its worker threads for a multi-thread runtime, at once on the dropping
///   thread for a current-thread one. Only the wait is skipped: blocking closures already
///   running finish on their own.
#[derive(Clone, Debug)]
pub struct TokioSpawner {
    handle: Handle,
    runtime: Option<Arc<OwnedRuntime>>,
}

/// The runtime of a spawner built from one, shut down without blocking when its last owner
/// drops inside asynchronous code.
#[derive(Debug)]
struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    fn get(&self) -> &Runtime {
        self.0
            .as_ref()
            .expect("ctxflow: the owned tokio runtime is only taken when dropped")
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        let Some(runtime) = self.0.take() else {
            return;
        };
        // tokio panics when a runtime is dropped where blocking is not allowed; from inside any
        // runtime, shutting down without waiting is what it allows.
        if Handle::try_current().is_ok() {
            runtime.shutdown_background();
        } else {
            drop(runtime);
        }
    }
}

impl TokioSpawner {
    /// The runtime the caller is running inside.
    ///
    /// # Panics
    /// Outside a tokio runtime, with the message of [`NoRuntime`]; see
    /// [`try_current`](Self::try_current).
    ///
    /// ```
    /// use ctxflow::tokio::TokioSpawner;
    /// use ctxflow::Spawner;
    /// # let runtime = tokio::runtime::Runtime::new().unwrap();
    /// # runtime.block_on(async {
    /// // inside a tokio runtime:
    /// let spawner = TokioSpawner::current();
    /// assert_eq!(spawner.spawn(async { 1 }).await.unwrap(), 1);
    /// # });
    /// ```
    pub fn current() -> Self {
        Self::try_current().unwrap_or_else(|error| panic!("{error}"))
    }

    /// The runtime the caller is running inside, or [`NoRuntime`] outside one.
    ///
    /// ```
    /// use ctxflow::tokio::TokioSpawner;
    /// assert!(TokioSpawner::try_current().is_err());
    /// ```
    pub fn try_current() -> Result<Self, NoRuntime> {
        Handle::try_current()
            .map(Self::from)
            .map_err(|_| NoRuntime::new("tokio"))
    }

    /// The runtime's handle.
    ///
    /// ```
    /// use ctxflow::tokio::TokioSpawner;
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let spawner = TokioSpawner::from(runtime.handle().clone());
    /// assert_eq!(spawner.handle().id(), runtime.handle().id());
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl From<Handle> for TokioSpawner {
    fn from(handle: Handle) -> Self {
        TokioSpawner {
            handle,
            runtime: None,
        }
    }
}

impl From<Runtime> for TokioSpawner {
    fn from(runtime: Runtime) -> Self {
        TokioSpawner {
            handle: runtime.handle().clone(),
            runtime: Some(Arc::new(OwnedRuntime(Some(runtime)))),
        }
    }
}

ctxflow_core::rt::spawner_traits!(TokioSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::executor!(TokioSpawner);

impl rt::Runtime for TokioSpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(task));
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        drop(self.handle.spawn_blocking(move || task.run()));
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.get().block_on(future),
            None => self.handle.block_on(future),
        }
    }

    // tokio's own handle detaches on drop, reports panics and cancellation, and aborts from
    // synchronous code: ctxflow's handle wraps it, and the task carries no slot of its own.
    // tokio catches a panicking poll itself, so ctxflow adds no `catch_unwind` to every poll.
    #[inline]
    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        JoinHandle::from_native(TokioJoin(self.handle.spawn(task.into_closing_unwinding())))
    }

    fn spawn_blocking_prepared<F, R>(&self, f: PreparedBlocking<F>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        JoinHandle::from_native(TokioJoin(self.handle.spawn_blocking(f.into_closing())))
    }
}

/// tokio's handle to a task that returns its outcome.
struct TokioJoin<T>(::tokio::task::JoinHandle<Result<T, Panic>>);

impl<T: Send + 'static> NativeJoin<T> for TokioJoin<T> {
    #[inline]
    fn poll_join(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(outcome) => outcome.map_err(Panic::into_error),
            // A panicking poll unwinds to tokio, which reports it; the task returns only the
            // panic of a drop after it finished.
            Err(error) => Err(match error.try_into_panic() {
                Ok(payload) => JoinError::panic(payload),
                Err(_) => JoinError::cancelled(),
            }),
        })
    }

    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// Spawns `!Send` tasks on the tokio [`LocalSet`](::tokio::task::LocalSet) the caller runs in.
///
/// # Panics
/// Spawning panics outside a `LocalSet` (tokio's own rule for `spawn_local`).
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::tokio::TokioLocalSpawner;
/// use ctxflow::LocalSpawner;
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let answer = tokio::task::LocalSet::new().block_on(&runtime, async {
///     let shared = Rc::new(20);
///     TokioLocalSpawner.spawn_local(async move { *shared + 1 }).await
/// });
/// assert_eq!(answer.unwrap(), 21);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioLocalSpawner;

ctxflow_core::rt::local_spawner_traits!(TokioLocalSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::local_executor!(TokioLocalSpawner);

impl LocalRuntime for TokioLocalSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        drop(::tokio::task::spawn_local(task));
    }
}
