//! [`AnySpawner`]: a `Spawner` without a type parameter, for injection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::rt::{BlockingTask, PreparedBlocking, PreparedTask, Runtime, Task};
use crate::JoinHandle;
#[cfg(doc)]
use crate::Spawner;

type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Any [`Spawner`], behind one cloneable type, so that application structs can hold a spawner
/// without a type parameter. It is itself a `Spawner`. The runtimes' spawners (tokio's, smol's,
/// async-std's) and [`DefaultSpawner`](crate::DefaultSpawner) convert into it with `From`; any
/// other one, futures' `ThreadPoolSpawner` or a spawner of one's own, with [`AnySpawner::new`].
///
/// The spawners that convert with `From` are held as they are, so spawning through an
/// `AnySpawner` costs what spawning through them costs; another spawner is held behind a
/// pointer, and each of its tasks is boxed.
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

/// ctxflow's own spawners, held as they are, so that spawning through an `AnySpawner` takes the
/// same path as through them (on tokio, tokio's own join handle); and any other behind a pointer.
///
/// Adding a runtime to ctxflow adds its variant here, with its `From` impl, its arm in
/// [`dispatch!`], and its line in [`AnySpawner::new`].
#[derive(Clone)]
enum Inner {
    #[cfg(feature = "tokio")]
    Tokio(crate::tokio::TokioSpawner),
    #[cfg(feature = "smol")]
    Smol(crate::smol::SmolSpawner),
    #[cfg(feature = "async-std")]
    AsyncStd(crate::async_std::AsyncStdSpawner),
    #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
    Default(crate::DefaultSpawner),
    Custom(Arc<dyn ErasedSpawner>),
}

/// Calls `$call` on whichever of ctxflow's own spawners `$inner` holds, or evaluates `$custom`
/// with the custom one.
macro_rules! dispatch {
    ($inner:expr, $spawner:ident => $call:expr, Custom($custom:ident) => $other:expr) => {
        match $inner {
            #[cfg(feature = "tokio")]
            Inner::Tokio($spawner) => $call,
            #[cfg(feature = "smol")]
            Inner::Smol($spawner) => $call,
            #[cfg(feature = "async-std")]
            Inner::AsyncStd($spawner) => $call,
            #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
            Inner::Default($spawner) => $call,
            Inner::Custom($custom) => $other,
        }
    };
}

/// The `From` impl of each of ctxflow's own spawners, and the type check [`AnySpawner::new`]
/// recognises it by.
macro_rules! builtin_spawners {
    ($($feature:meta => $variant:ident($spawner:ty),)*) => {
        $(
            #[cfg($feature)]
            impl From<$spawner> for AnySpawner {
                fn from(spawner: $spawner) -> Self {
                    AnySpawner {
                        inner: Inner::$variant(spawner),
                    }
                }
            }
        )*

        impl AnySpawner {
            /// `spawner` as ctxflow's own spawner it is, or back unchanged when it is another.
            fn recognise<S: Runtime>(spawner: S) -> Result<Self, S> {
                #[allow(
                    unused_mut,
                    reason = "with no runtime feature, no spawner of ctxflow's is taken out"
                )]
                let mut slot = Some(spawner);
                $(
                    #[cfg($feature)]
                    if let Some(builtin) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<$spawner>>() {
                        return Ok(builtin.take().expect("the slot is full until taken").into());
                    }
                )*
                Err(slot.expect("an unrecognised spawner is left in place"))
            }
        }
    };
}

builtin_spawners! {
    feature = "tokio" => Tokio(crate::tokio::TokioSpawner),
    feature = "smol" => Smol(crate::smol::SmolSpawner),
    feature = "async-std" => AsyncStd(crate::async_std::AsyncStdSpawner),
    any(feature = "tokio", feature = "smol", feature = "async-std") => Default(crate::DefaultSpawner),
}

crate::rt::spawner_traits!(AnySpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::executor!(AnySpawner);

impl AnySpawner {
    /// Erases the type of `spawner`.
    ///
    /// ctxflow's own spawners are recognised by their type (a `TypeId` comparison, made once
    /// here) and held as they are, exactly as their `From` impls hold them; any other is held
    /// behind a pointer, and spawns through its `spawn_task` and ctxflow's join slot: an
    /// override of `spawn_prepared` (a runtime's own join handle) is not used through it.
    ///
    /// ```
    /// use ctxflow::{AnySpawner, DefaultSpawner, Spawner};
    /// let spawner = AnySpawner::new(DefaultSpawner);
    /// assert_eq!(spawner.block_on(async { 3 }), 3);
    /// ```
    pub fn new<S: Runtime>(spawner: S) -> Self {
        Self::recognise(spawner).unwrap_or_else(|custom| AnySpawner {
            inner: Inner::Custom(Arc::new(custom)),
        })
    }
}

trait ErasedSpawner: Send + Sync + 'static {
    fn spawn_boxed(&self, task: Task<BoxedFuture>);
    fn spawn_blocking_boxed(&self, task: BlockingTask<Box<dyn FnOnce() + Send>>);
    fn block_on_boxed(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>);
}

impl<S: Runtime> ErasedSpawner for S {
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
        dispatch!(&self.inner, spawner => spawner.spawn_task(task),
            Custom(spawner) => spawner.spawn_boxed(task.boxed()))
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        dispatch!(&self.inner, spawner => spawner.spawn_blocking_task(task),
            Custom(spawner) => spawner.spawn_blocking_boxed(task.boxed()))
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        dispatch!(&self.inner, spawner => spawner.run_until_complete(future),
        Custom(spawner) => {
            let mut output = None;
            spawner.block_on_boxed(Box::pin(async {
                output = Some(future.await);
            }));
            output.expect("`block_on` returned before its future completed")
        })
    }

    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        dispatch!(&self.inner, spawner => spawner.spawn_prepared(task),
        Custom(spawner) => {
            let (task, handle) = task.into_reporting();
            spawner.spawn_boxed(task.boxed());
            handle
        })
    }

    fn spawn_blocking_prepared<F, R>(&self, f: PreparedBlocking<F>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        dispatch!(&self.inner, spawner => spawner.spawn_blocking_prepared(f),
        Custom(spawner) => {
            let (task, handle) = f.into_reporting();
            spawner.spawn_blocking_boxed(task.boxed());
            handle
        })
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
    use crate::{ContextVar, Spawner};

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
        assert!(matches!(spawner.inner, Inner::Custom(_)));
        let _token = REQUEST_ID.set(5);
        let task = spawner.spawn(async { REQUEST_ID.get() });
        let closure = spawner.spawn_blocking(|| REQUEST_ID.get());
        assert_eq!(spawner.block_on(task).unwrap(), Some(5));
        assert_eq!(closure.join().unwrap(), Some(5));
        assert_eq!(spawner.block_on(async { REQUEST_ID.get() }), Some(5));
    }
}
