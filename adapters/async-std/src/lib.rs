//! [`AsyncStdSpawner`]: ctxflow's [`Spawner`] over async-std's global runtime
//! (feature `async-std`).
//!
//! async-std has been discontinued upstream (its README says so and recommends smol); this
//! adapter keeps existing services working, and runs the whole conformance suite. For new code
//! that should not depend on one runtime, use smol (feature `smol`).
//!
//! ctxflow's [`JoinHandle`] wraps async-std's own handle here (see `async_task_join`): a task is
//! one allocation, as with `task::spawn`.
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use ::async_std::task;

use ctxflow_async_task::{cancelling, poll_for_awaiter, AsyncTaskJoin, Contained, NativeTask};
use ctxflow_core::rt::{self, BlockingTask, LocalRuntime, PreparedTask, Task};
use ctxflow_core::JoinHandle;
#[cfg(doc)]
use ctxflow_core::Spawner;

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

ctxflow_core::rt::spawner_traits!(AsyncStdSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::executor!(AsyncStdSpawner);

impl rt::Runtime for AsyncStdSpawner {
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

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        task::block_on(future)
    }

    // async-std's own handle, detached on drop and cancelled by `abort`, carries the outcome:
    // the task needs no slot of ctxflow's.
    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, name, abort_key) = Contained::new(task);
        let handle = match name {
            Some(name) => task::Builder::new()
                .name(name)
                .spawn(task)
                .expect("async-std refused to spawn a named task"),
            None => task::spawn(task),
        };
        let handle = AsyncTaskJoin::new(
            AsyncStdJoin::new(handle),
            |join, abort_key| cancelling(join.handle.cancel(), abort_key),
            abort_key,
        );
        JoinHandle::from_native(handle)
    }
}

/// async-std's own handle, with the `is_finished` it lacks: that polls the handle with the
/// waker of its last poll, so whoever awaits it stays the one woken.
struct AsyncStdJoin<T> {
    handle: task::JoinHandle<T>,
    /// The output a poll from `is_finished` found; boxed, as it is rare, so that a handle's size
    /// does not depend on its output's.
    output: Option<Box<T>>,
}

// The output is never pinned: only the handle is polled, and it is `Unpin`.
impl<T> Unpin for AsyncStdJoin<T> {}

impl<T> AsyncStdJoin<T> {
    fn new(handle: task::JoinHandle<T>) -> Self {
        AsyncStdJoin {
            handle,
            output: None,
        }
    }
}

impl<T> NativeTask for AsyncStdJoin<T> {
    type Output = T;

    fn poll_output(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        if let Some(output) = self.output.take() {
            return Poll::Ready(Some(*output));
        }
        // Only `cancel` ends an async-std task early, and it consumes the handle: a handle
        // still here is polled to the task's output.
        Pin::new(&mut self.handle).poll(cx).map(Some)
    }

    fn is_finished(&mut self, awaiter: &Waker) -> bool {
        if self.output.is_none() {
            if let Poll::Ready(output) = poll_for_awaiter(&mut self.handle, awaiter) {
                self.output = Some(Box::new(output));
            }
        }
        self.output.is_some()
    }

    fn detach(self) {
        // async-std's handle detaches when dropped.
        drop(self.handle);
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

ctxflow_core::rt::local_spawner_traits!(AsyncStdLocalSpawner);
#[cfg(feature = "hyper")]
ctxflow_hyper::local_executor!(AsyncStdLocalSpawner);

impl LocalRuntime for AsyncStdLocalSpawner {
    fn spawn_local_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + 'static,
    {
        drop(task::spawn_local(task));
    }
}
