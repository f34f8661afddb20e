//! [`AnySpawner`]: a `Spawner` without a type parameter, for injection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::builtin::Builtin;
use crate::join::JoinHandle;
use crate::rt::{BlockingTask, PreparedBlocking, PreparedTask, Runtime, Task};
use crate::spawner::Spawner;

type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Any [`Spawner`], behind one cloneable type, so that application structs can hold a spawner
/// without a type parameter. It is itself a `Spawner`. Every spawner of this crate converts into
/// it with `From`; any other one with [`AnySpawner::new`].
///
/// ctxflow's own spawners are held as they are, so spawning through an `AnySpawner` costs what
/// spawning through them costs; another spawner is held behind a pointer, and each of its tasks
/// is boxed.
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
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    /// ctxflow's own spawners are held as they are, so spawning through `AnySpawner` costs what
    /// spawning through them costs.
    Builtin(Builtin),
    Erased(Arc<dyn ErasedSpawner>),
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
        let inner = match Builtin::recognise(spawner) {
            Ok(builtin) => Inner::Builtin(builtin),
            Err(other) => Inner::Erased(Arc::new(other)),
        };
        AnySpawner { inner }
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
        self.run_until_complete(future);
    }
}

impl Runtime for AnySpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.inner {
            Inner::Builtin(spawner) => spawner.spawn_task(task),
            Inner::Erased(spawner) => spawner.spawn_boxed(task.boxed()),
        }
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        match &self.inner {
            Inner::Builtin(spawner) => spawner.spawn_blocking_task(task),
            Inner::Erased(spawner) => spawner.spawn_blocking_boxed(task.boxed()),
        }
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        let spawner = match &self.inner {
            Inner::Builtin(spawner) => return spawner.run_until_complete(future),
            Inner::Erased(spawner) => spawner,
        };
        let mut output = None;
        spawner.block_on_boxed(Box::pin(async {
            output = Some(future.await);
        }));
        output.expect("`block_on` returned before its future completed")
    }

    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.inner {
            Inner::Builtin(spawner) => spawner.spawn_prepared(task),
            Inner::Erased(spawner) => {
                let (task, handle) = task.into_reporting();
                spawner.spawn_boxed(task.boxed());
                handle
            }
        }
    }

    fn spawn_blocking_prepared<F, R>(&self, f: PreparedBlocking<F>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match &self.inner {
            Inner::Builtin(spawner) => spawner.spawn_blocking_prepared(f),
            Inner::Erased(spawner) => {
                let (task, handle) = f.into_reporting();
                spawner.spawn_blocking_boxed(task.boxed());
                handle
            }
        }
    }
}

impl fmt::Debug for AnySpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnySpawner").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContextVar;

    /// A spawner of one's own, which `AnySpawner` can only hold behind a pointer: a thread per
    /// task.
    #[derive(Clone)]
    struct ThreadPerTask;

    impl Runtime for ThreadPerTask {
        fn spawn_task<F>(&self, task: Task<F>)
        where
            F: Future<Output = ()> + Send + 'static,
        {
            std::thread::spawn(move || futures::executor::block_on(task));
        }

        fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
        where
            F: FnOnce() + Send + 'static,
        {
            std::thread::spawn(move || task.run());
        }

        fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
            futures::executor::block_on(future)
        }
    }

    #[test]
    fn a_spawner_of_ones_own_spawns_through_any_spawner_in_the_callers_context() {
        static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
        let spawner = AnySpawner::new(ThreadPerTask);
        assert!(matches!(spawner.inner, Inner::Erased(_)));
        let _token = REQUEST_ID.set(5);
        let task = spawner.spawn(async { REQUEST_ID.get() });
        let closure = spawner.spawn_blocking(|| REQUEST_ID.get());
        assert_eq!(spawner.block_on(task).unwrap(), Some(5));
        assert_eq!(closure.join().unwrap(), Some(5));
        assert_eq!(spawner.block_on(async { REQUEST_ID.get() }), Some(5));
    }
}
