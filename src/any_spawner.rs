//! [`AnySpawner`]: a `Spawner` without a type parameter, for injection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::spawner::Spawner;
use crate::task::{BlockingTask, Task};

type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Any [`Spawner`], behind one cloneable type, so that application structs can hold a spawner
/// without a type parameter. It is itself a `Spawner`. Every spawner of this crate converts into
/// it with `From`; any other one with [`AnySpawner::new`].
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use ctxflow::{AnySpawner, Spawner};
/// use ctxflow::tokio::TokioSpawner;
///
/// struct App {
///     spawner: AnySpawner,
/// }
///
/// let app = App { spawner: TokioSpawner::from(tokio::runtime::Runtime::new().unwrap()).into() };
/// let answer = app.spawner.block_on(app.spawner.spawn(async { 42 }));
/// assert_eq!(answer.unwrap(), 42);
/// # }
/// ```
#[derive(Clone)]
pub struct AnySpawner {
    inner: Arc<dyn ErasedSpawner>,
}

impl AnySpawner {
    /// Erases the type of `spawner`.
    ///
    /// ```
    /// use ctxflow::{AnySpawner, DefaultSpawner, Spawner};
    /// let spawner = AnySpawner::new(DefaultSpawner);
    /// assert_eq!(spawner.block_on(async { 3 }), 3);
    /// ```
    pub fn new<S: Spawner>(spawner: S) -> Self {
        AnySpawner {
            inner: Arc::new(spawner),
        }
    }
}

trait ErasedSpawner: Send + Sync + 'static {
    fn spawn_boxed(&self, task: Task<BoxedFuture>);
    fn spawn_blocking_boxed(&self, task: BlockingTask<Box<dyn FnOnce() + Send>>);
    fn block_on_boxed(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>);
}

impl<S: Spawner> ErasedSpawner for S {
    fn spawn_boxed(&self, task: Task<BoxedFuture>) {
        self.spawn_task(task);
    }

    fn spawn_blocking_boxed(&self, task: BlockingTask<Box<dyn FnOnce() + Send>>) {
        self.spawn_blocking_task(task);
    }

    fn block_on_boxed(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.block_on(future);
    }
}

impl Spawner for AnySpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.spawn_boxed(task.boxed());
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.spawn_blocking_boxed(task.boxed());
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut output = None;
        self.inner.block_on_boxed(Box::pin(async {
            output = Some(future.await);
        }));
        output.expect("`block_on` returned before its future completed")
    }
}

impl fmt::Debug for AnySpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnySpawner").finish_non_exhaustive()
    }
}
