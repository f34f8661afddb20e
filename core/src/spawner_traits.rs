//! [`spawner_traits!`](crate::rt::spawner_traits) and
//! [`local_spawner_traits!`](crate::rt::local_spawner_traits): the outside traits every spawner
//! implements, for a runtime adapter to add to its spawner in one line.
//!
//! Rust's orphan rule keeps a blanket impl of futures' `Spawn` for every
//! [`Runtime`](crate::rt::Runtime) out of reach, so each spawner type gets its own, from these
//! macros. hyper's `Executor` comes the same way from the `ctxflow-hyper` crate's macros, which
//! an adapter calls behind a `hyper` feature of its own.

/// Implements futures' `Spawn` for a [`Spawner`](crate::Spawner) (a
/// [`Runtime`](crate::rt::Runtime)): a detached task in the caller's context.
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
    };
}

/// Implements futures' `LocalSpawn` for a [`LocalSpawner`](crate::LocalSpawner): a detached
/// task on this thread in the caller's context.
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
    };
}
