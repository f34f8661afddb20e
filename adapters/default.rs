//! [`DefaultSpawner`] and the free functions [`spawn`], [`spawn_named`], [`spawn_blocking`] and
//! [`block_on`]: the runtime picked by the enabled features, for code that takes no spawner.

use std::future::Future;

use crate::builtin::Builtin;
use crate::{BlockingTask, JoinHandle, PreparedBlocking, PreparedTask, Spawner, Task};

/// The runtime the enabled features select, decided at each call.
///
/// 1. with feature `tokio`, inside a tokio runtime: that runtime;
/// 2. with feature `async-std`, inside an async-std task: async-std;
/// 3. otherwise the first enabled of smol (its global executor), async-std, tokio.
///
/// Outside any runtime with only `tokio` enabled, spawning panics with [`NoRuntime`]'s message
/// and `block_on` runs the future on a new current-thread tokio runtime.
///
/// ```
/// use ctxflow::{DefaultSpawner, Spawner};
/// let answer = DefaultSpawner.block_on(async { DefaultSpawner.spawn(async { 42 }).await });
/// assert_eq!(answer.unwrap(), 42);
/// ```
///
/// [`NoRuntime`]: crate::NoRuntime
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSpawner;

impl DefaultSpawner {
    /// The spawner for one call; `None` when only tokio is enabled and no tokio runtime runs
    /// here.
    fn choose() -> Option<Builtin> {
        #[cfg(feature = "tokio")]
        if let Ok(spawner) = crate::tokio::TokioSpawner::try_current() {
            return Some(Builtin::Tokio(spawner));
        }
        #[cfg(feature = "async-std")]
        if ::async_std::task::try_current().is_some() {
            return Some(Builtin::AsyncStd(crate::async_std::AsyncStdSpawner));
        }
        #[cfg(feature = "smol")]
        return Some(Builtin::Smol(crate::smol::SmolSpawner::global()));
        #[cfg(all(feature = "async-std", not(feature = "smol")))]
        return Some(Builtin::AsyncStd(crate::async_std::AsyncStdSpawner));
        #[cfg(all(feature = "tokio", not(feature = "smol"), not(feature = "async-std")))]
        return None;
    }

    /// The spawner for one spawn.
    ///
    /// # Panics
    /// With [`NoRuntime`](crate::NoRuntime)'s message when only tokio is enabled and no tokio
    /// runtime runs here.
    fn for_spawn() -> Builtin {
        match Self::choose() {
            Some(spawner) => spawner,
            #[cfg(feature = "tokio")]
            None => Builtin::Tokio(crate::tokio::TokioSpawner::current()),
            #[cfg(not(feature = "tokio"))]
            None => unreachable!("a runtime other than tokio is always available"),
        }
    }
}

crate::futures_spawn::spawner_impls!(DefaultSpawner);

impl Spawner for DefaultSpawner {
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

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        if let Some(spawner) = Self::choose() {
            return spawner.block_on(future);
        }
        #[cfg(feature = "tokio")]
        {
            let runtime = ::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("ctxflow: cannot start a tokio runtime for `block_on`");
            crate::tokio::TokioSpawner::from(runtime).block_on(future)
        }
        #[cfg(not(feature = "tokio"))]
        unreachable!("a runtime other than tokio is always available")
    }
}

/// Spawns `future` on the [`DefaultSpawner`] in a snapshot of the caller's context: the Rust
/// form of fapilog's `create_task_with_context`.
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
///     ctxflow::spawn_named("process-order-123", async { ctxflow::task_name() }).await.unwrap()
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

/// Runs `f` on the [`DefaultSpawner`]'s blocking pool in a snapshot of the caller's context:
/// the Rust form of fapilog's `run_in_executor_with_context(None, f)`.
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
