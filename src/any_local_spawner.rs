//! [`AnyLocalSpawner`]: a `LocalSpawner` without a type parameter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::rt::{LocalRuntime, Task};
use crate::LocalSpawner;

type LocalBoxedFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Any [`LocalSpawner`] behind one cloneable type; itself a `LocalSpawner`.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::rc::Rc;
/// use ctxflow::smol::SmolLocalSpawner;
/// use ctxflow::task::AnyLocalSpawner;
/// use ctxflow::LocalSpawner;
///
/// let executor = Rc::new(smol::LocalExecutor::new());
/// let local = AnyLocalSpawner::new(SmolLocalSpawner::new(executor.clone()));
/// let answer = smol::block_on(executor.run(local.spawn_local(async { 5 })));
/// assert_eq!(answer.unwrap(), 5);
/// # }
/// ```
#[derive(Clone)]
pub struct AnyLocalSpawner {
    inner: Rc<dyn ErasedLocalSpawner>,
}

impl AnyLocalSpawner {
    /// Erases the type of `spawner`.
    pub fn new<S: LocalSpawner>(spawner: S) -> Self {
        AnyLocalSpawner {
            inner: Rc::new(spawner),
        }
    }
}

trait ErasedLocalSpawner {
    fn spawn_boxed(&self, task: Task<LocalBoxedFuture>);
}

impl<S: LocalSpawner> ErasedLocalSpawner for S {
    fn spawn_boxed(&self, task: Task<LocalBoxedFuture>) {
        self.spawn_local_task(task);
    }
}

impl LocalRuntime for AnyLocalSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        self.inner.spawn_boxed(task.boxed_local());
    }
}

impl fmt::Debug for AnyLocalSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyLocalSpawner").finish_non_exhaustive()
    }
}

crate::rt::local_spawner_traits!(AnyLocalSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::local_executor!(AnyLocalSpawner);

/// ctxflow's own local spawners convert into it; any other with [`AnyLocalSpawner::new`].
macro_rules! builtin_local_spawners {
    ($($feature:literal => $spawner:ty,)*) => {
        $(
            #[cfg(feature = $feature)]
            impl From<$spawner> for AnyLocalSpawner {
                fn from(spawner: $spawner) -> Self {
                    AnyLocalSpawner::new(spawner)
                }
            }
        )*
    };
}

builtin_local_spawners! {
    "tokio" => crate::tokio::TokioLocalSpawner,
    "smol" => crate::smol::SmolLocalSpawner,
    "async-std" => crate::async_std::AsyncStdLocalSpawner,
    "compio" => crate::compio::CompioLocalSpawner,
}
