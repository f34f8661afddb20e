//! [`spawner_traits!`](crate::rt::spawner_traits) and
//! [`local_spawner_traits!`](crate::rt::local_spawner_traits): the outside traits every spawner
//! implements, for a runtime adapter to add to its spawner in one line.
//!
//! Rust's orphan rule keeps a blanket impl of futures' `Spawn` (or hyper's `Executor`) for
//! every [`Runtime`](crate::rt::Runtime) out of reach, so each spawner type gets its own, from
//! these macros. Which traits they implement follows ctxflow's features (hyper's `Executor`
//! with feature `hyper`), not the features of the crate that calls them.

/// Implements futures' `Spawn` for a [`Spawner`](crate::Spawner) (a
/// [`Runtime`](crate::rt::Runtime)), and with ctxflow's feature `hyper` hyper's
/// `Executor`: a detached task in the caller's context.
///
/// ```
/// # use std::future::Future;
/// # use ctxflow::rt::{BlockingTask, Runtime, Task};
/// #[derive(Clone)]
/// struct ThreadPerTask;
/// # impl Runtime for ThreadPerTask {
/// #     fn spawn_task<F: Future<Output = ()> + Send + 'static>(&self, task: Task<F>) {
/// #         std::thread::spawn(move || futures::executor::block_on(task));
/// #     }
/// #     fn spawn_blocking_task<F: FnOnce() + Send + 'static>(&self, task: BlockingTask<F>) {
/// #         std::thread::spawn(move || task.run());
/// #     }
/// #     fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
/// #         futures::executor::block_on(future)
/// #     }
/// # }
/// ctxflow::rt::spawner_traits!(ThreadPerTask);
///
/// use futures::task::SpawnExt;
/// let answer = ThreadPerTask.spawn_with_handle(async { 6 * 7 }).unwrap();
/// assert_eq!(futures::executor::block_on(answer), 42);
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __spawner_traits {
    ($spawner:ty) => {
        impl $crate::rt::__private::Spawn for $spawner {
            fn spawn_obj(
                &self,
                future: $crate::rt::__private::FutureObj<'static, ()>,
            ) -> ::core::result::Result<(), $crate::rt::__private::SpawnError> {
                $crate::Spawner::spawn(self, future).detach();
                ::core::result::Result::Ok(())
            }
        }
        $crate::__hyper_executor!($spawner);
    };
}

/// Implements futures' `LocalSpawn` for a [`LocalSpawner`](crate::LocalSpawner), and with
/// ctxflow's feature `hyper` hyper's `Executor` for futures that are not `Send`; and the
/// conversion into [`AnyLocalSpawner`](crate::AnyLocalSpawner).
#[macro_export]
#[doc(hidden)]
macro_rules! __local_spawner_traits {
    ($spawner:ty) => {
        impl $crate::rt::__private::LocalSpawn for $spawner {
            fn spawn_local_obj(
                &self,
                future: $crate::rt::__private::LocalFutureObj<'static, ()>,
            ) -> ::core::result::Result<(), $crate::rt::__private::SpawnError> {
                $crate::LocalSpawner::spawn_local(self, future).detach();
                ::core::result::Result::Ok(())
            }
        }
        $crate::__hyper_local_executor!($spawner);
    };
}

/// Without feature `hyper`, spawners implement no hyper trait.
#[cfg(not(feature = "hyper"))]
#[macro_export]
#[doc(hidden)]
macro_rules! __hyper_executor {
    ($spawner:ty) => {};
}

/// Without feature `hyper`, local spawners implement no hyper trait.
#[cfg(not(feature = "hyper"))]
#[macro_export]
#[doc(hidden)]
macro_rules! __hyper_local_executor {
    ($spawner:ty) => {};
}
