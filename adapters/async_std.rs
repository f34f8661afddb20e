//! [`AsyncStdSpawner`]: ctxflow's [`Spawner`] over async-std's global runtime
//! (feature `async-std`).
//!
//! async-std has been discontinued upstream (its README says so and recommends smol); this
//! adapter keeps existing services working, and runs the whole conformance suite. For new code
//! that should not depend on one runtime, use smol (feature `smol`).

use std::future::Future;

use ::async_std::task;

use crate::{BlockingTask, InContext, LocalSpawner, Spawner, Task};

/// Spawns on async-std's global runtime; task names are handed to async-std.
///
/// ```
/// use ctxflow::async_std::AsyncStdSpawner;
/// use ctxflow::{ContextVar, Spawner};
///
/// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
///
/// let spawner = AsyncStdSpawner::new();
/// let seen = spawner.block_on(async {
///     let _token = REQUEST_ID.set("req-1");
///     spawner
///         .spawn_named("child", async {
///             (async_std::task::current().name().map(str::to_owned), REQUEST_ID.get())
///         })
///         .await
///         .unwrap()
/// });
/// assert_eq!(seen, (Some("child".to_owned()), Some("req-1")));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdSpawner;

impl AsyncStdSpawner {
    /// The spawner for async-std's global runtime.
    pub fn new() -> Self {
        AsyncStdSpawner
    }
}

crate::futures_spawn::spawner_impls!(AsyncStdSpawner);

impl Spawner for AsyncStdSpawner {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = match task.name() {
            Some(name) => task::Builder::new()
                .name(name.to_owned())
                .spawn(task)
                .expect("async-std refused to spawn a named task"),
            None => task::spawn(task),
        };
        drop(handle);
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        drop(task::spawn_blocking(move || task.run()));
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        task::block_on(future.in_current_context())
    }
}

/// Spawns `!Send` tasks with async-std's `spawn_local`; they run on the thread that spawned
/// them, while it runs `block_on`.
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::async_std::AsyncStdLocalSpawner;
/// use ctxflow::LocalSpawner;
///
/// let shared = Rc::new(3);
/// let answer = async_std::task::block_on(AsyncStdLocalSpawner.spawn_local(async move { *shared }));
/// assert_eq!(answer.unwrap(), 3);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdLocalSpawner;

crate::futures_spawn::local_spawner_impls!(AsyncStdLocalSpawner);

impl LocalSpawner for AsyncStdLocalSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        drop(task::spawn_local(task));
    }
}
