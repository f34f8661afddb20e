//! [`Spawner`]: one interface over every runtime, with the context following each task.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::context::Context;
use crate::future::InContext;
use crate::handoff::Handoff;
use crate::join::JoinHandle;
use crate::rt::{PreparedBlocking, PreparedTask, Runtime};

/// Spawns tasks and blocking closures on a runtime, carrying the caller's context into each.
///
/// Application code takes a `Spawner` (or ctxflow's `AnySpawner`) by injection and
/// never names a runtime; the runtime is chosen by a Cargo feature, and tests swap it (see
/// `ctxflow::testing`, feature `testing`).
///
/// Every entry point but the `_in` ones, which take the context they are given, snapshots
/// [`Context::inheritable`] at the call (the current context minus its
/// [non-flowing](crate::ContextVar::non_flowing) variables), and the snapshot is installed
/// around every poll of the task (or around the closure): a child sees what its parent had when
/// it was spawned, its own writes stay its own, and writes the parent makes later never reach it.
///
/// Every method is provided, for every [`Runtime`]: a runtime adapter implements
/// [`Runtime`] (see [`ctxflow::rt`](crate::rt)), never this trait.
///
/// ```
/// use ctxflow::{ContextVar, Spawner};
/// use ctxflow::tokio::TokioSpawner;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// async fn handle_request<S: Spawner>(spawner: &S) -> Option<String> {
///     let _token = REQUEST_ID.set("req-123".into());
///     let background = spawner.spawn(async { REQUEST_ID.get() });
///     background.await.unwrap()
/// }
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let spawner = TokioSpawner::from(runtime);
/// assert_eq!(spawner.block_on(handle_request(&spawner)).as_deref(), Some("req-123"));
/// ```
pub trait Spawner: Runtime {
    /// Spawns `future` as a task that runs in a snapshot of the caller's context. Inside
    /// [`suppress_flow`](crate::suppress_flow) it starts empty.
    #[inline]
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_prepared(PreparedTask::new(Handoff::for_spawn(), None, future))
    }

    /// Spawns `future` as a task named `name`; inside it, [`task_name`](crate::task_name)
    /// returns the name, and runtimes that name tasks get it too.
    fn spawn_named<F>(&self, name: &str, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let name = Some(Arc::from(name));
        self.spawn_prepared(PreparedTask::new(Handoff::for_spawn(), name, future))
    }

    /// Spawns `future` as a task that runs in `context` instead of the caller's context. Nothing
    /// else of the caller's travels either (with the tracing integrations, not its span).
    fn spawn_in<F>(&self, context: Context, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_prepared(PreparedTask::new(Handoff::from(context), None, future))
    }

    /// Runs `f` on the blocking pool in a snapshot of the caller's context.
    /// Arguments travel in the closure's captures.
    fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_prepared(PreparedBlocking::new(f))
    }

    /// Runs `f` on the blocking pool in `context` instead of the caller's context. Nothing else
    /// of the caller's travels either.
    fn spawn_blocking_in<F, R>(&self, context: Context, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_prepared(PreparedBlocking::in_context(context, f))
    }

    /// Runs `future` to completion on the calling thread, in the caller's context.
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.run_until_complete(future.in_current_context())
    }
}

impl<R: Runtime> Spawner for R {}

/// No runtime to spawn on: the spawner was asked for the current runtime outside of one.
///
/// ```
/// use ctxflow::task::NoRuntime;
/// let error = NoRuntime::new("tokio");
/// assert_eq!(error.runtime(), "tokio");
/// assert!(error.to_string().starts_with("no tokio runtime is running on this thread"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRuntime {
    runtime: &'static str,
}

impl NoRuntime {
    /// The error for `runtime` (a name such as `"tokio"`).
    pub fn new(runtime: &'static str) -> Self {
        NoRuntime { runtime }
    }

    /// The runtime that was not running.
    pub fn runtime(&self) -> &'static str {
        self.runtime
    }
}

impl fmt::Display for NoRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no {} runtime is running on this thread: spawn from inside the runtime, \
             or build the spawner from the runtime or its handle",
            self.runtime
        )
    }
}

impl Error for NoRuntime {}
