//! [`DefaultSpawner`] and the free functions [`spawn`], [`spawn_named`], [`spawn_blocking`] and
//! [`block_on`]: the runtime picked by the enabled features, for code that takes no spawner.

use std::future::Future;

use crate::rt::{BlockingTask, PreparedBlocking, PreparedTask, Runtime, Task};
use crate::{AnySpawner, JoinHandle, Spawner};

/// The runtime the enabled features select, decided at each call.
///
/// The runtimes rank in a fixed order, tokio, then async-std, then smol, and a call takes the
/// first that can serve it:
///
/// 1. inside a tokio runtime (feature `tokio`): that runtime (on a thread that only entered a
///    current-thread runtime with `Runtime::enter`, `block_on` runs the future but no task and
///    no timer of that runtime, as tokio's `Handle::block_on` does);
/// 2. inside an async-std task (feature `async-std`): async-std;
/// 3. otherwise, for [`block_on`](Spawner::block_on): a new current-thread tokio runtime
///    (feature `tokio`), else async-std, else smol;
/// 4. otherwise, for a spawn: async-std, else smol's global executor; with only `tokio`
///    enabled there is no runtime to spawn on, and the spawn panics with [`NoRuntime`]'s
///    message.
///
/// So a dependency that enables `smol` or `async-std` next to `tokio` changes nothing for code
/// that worked with `tokio` alone: `block_on` still runs on tokio, where tokio's timers and I/O
/// work; only a spawn outside any runtime, which panicked, now runs. A runtime ranked higher does
/// move the calls made outside any runtime: with `smol` alone, `block_on` and those spawns run
/// on smol; enabling `async-std` moves both to async-std, which drives the same `async-io`
/// reactor, so smol's timers and I/O keep working there; enabling `tokio` (a default feature)
/// moves `block_on`, and the spawns made inside it, to a tokio runtime, and so it does for code
/// that ran under `block_on` with `async-std` alone. Code that needs one runtime whatever the
/// features names its spawner ([`SmolSpawner`](crate::smol::SmolSpawner),
/// [`AsyncStdSpawner`](crate::async_std::AsyncStdSpawner)).
///
/// ```
/// use ctxflow::{DefaultSpawner, Spawner};
/// let answer = DefaultSpawner.block_on(async { DefaultSpawner.spawn(async { 42 }).await });
/// assert_eq!(answer.unwrap(), 42);
/// ```
///
/// [`NoRuntime`]: crate::task::NoRuntime
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSpawner;

impl DefaultSpawner {
    /// The runtime the caller runs inside, if ctxflow can tell.
    fn current() -> Option<AnySpawner> {
        #[cfg(feature = "tokio")]
        if let Ok(spawner) = crate::tokio::TokioSpawner::try_current() {
            return Some(spawner.into());
        }
        #[cfg(feature = "async-std")]
        if ::async_std::task::try_current().is_some() {
            return Some(crate::async_std::AsyncStdSpawner.into());
        }
        None
    }

    /// The runtime that takes a spawn made outside any runtime ctxflow can tell: `None` when
    /// only tokio is enabled, which has none.
    fn outside_runtime() -> Option<AnySpawner> {
        #[cfg(feature = "async-std")]
        return Some(crate::async_std::AsyncStdSpawner.into());
        #[cfg(all(feature = "smol", not(feature = "async-std")))]
        return Some(crate::smol::SmolSpawner::global().into());
        #[cfg(not(any(feature = "smol", feature = "async-std")))]
        return None;
    }

    /// The spawner for one spawn.
    ///
    /// # Panics
    /// With [`NoRuntime`](crate::task::NoRuntime)'s message when only tokio is enabled and no tokio
    /// runtime runs here.
    fn for_spawn() -> AnySpawner {
        match Self::current().or_else(Self::outside_runtime) {
            Some(spawner) => spawner,
            #[cfg(feature = "tokio")]
            None => crate::tokio::TokioSpawner::current().into(),
            #[cfg(not(feature = "tokio"))]
            None => unreachable!("a runtime other than tokio is always available"),
        }
    }
}

crate::rt::spawner_traits!(DefaultSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::executor!(DefaultSpawner);

impl Runtime for DefaultSpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self::for_spawn().spawn_task(task);
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        Self::for_spawn().spawn_blocking_task(task);
    }

    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Self::for_spawn().spawn_prepared(task)
    }

    fn spawn_blocking_prepared<F, R>(&self, f: PreparedBlocking<F>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        Self::for_spawn().spawn_blocking_prepared(f)
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        if let Some(spawner) = Self::current() {
            return spawner.run_until_complete(future);
        }
        // tokio ranks first, so that enabling smol or async-std never moves tokio code (and its
        // timers) off tokio.
        #[cfg(feature = "tokio")]
        {
            let runtime = ::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("ctxflow: cannot start a tokio runtime for `block_on`");
            crate::tokio::TokioSpawner::from(runtime).run_until_complete(future)
        }
        #[cfg(not(feature = "tokio"))]
        {
            match Self::outside_runtime() {
                Some(spawner) => spawner.run_until_complete(future),
                None => unreachable!("a runtime other than tokio is always available"),
            }
        }
    }
}

/// Spawns `future` on the [`DefaultSpawner`] in a snapshot of the caller's context.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let seen = ctxflow::block_on(async {
///     let _token = REQUEST_ID.set("req-123".into());
///     ctxflow::spawn(async { REQUEST_ID.get() }).await.unwrap()
/// });
/// assert_eq!(seen.as_deref(), Some("req-123"));
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    DefaultSpawner.spawn(future)
}

/// Spawns `future` on the [`DefaultSpawner`] as a task named `name`.
///
/// ```
/// let name = ctxflow::block_on(async {
///     ctxflow::task::spawn_named("process-order-123", async { ctxflow::task_name() }).await.unwrap()
/// });
/// assert_eq!(name.as_deref(), Some("process-order-123"));
/// ```
pub fn spawn_named<F>(name: &str, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    DefaultSpawner.spawn_named(name, future)
}

/// Runs `f` on the [`DefaultSpawner`]'s blocking pool in a snapshot of the caller's context.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// fn process_item(item_id: &str, priority: u8) -> String {
///     format!("{item_id}/{priority} for {}", REQUEST_ID.get().unwrap_or_default())
/// }
///
/// let status = ctxflow::block_on(async {
///     let _token = REQUEST_ID.set("req-456".into());
///     ctxflow::spawn_blocking(|| process_item("item-123", 1)).await.unwrap()
/// });
/// assert_eq!(status, "item-123/1 for req-456");
/// ```
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    DefaultSpawner.spawn_blocking(f)
}

/// Runs `future` to completion on the [`DefaultSpawner`], in the caller's context.
///
/// ```
/// assert_eq!(ctxflow::block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    DefaultSpawner.block_on(future)
}
