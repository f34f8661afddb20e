//! hyper's executor for ctxflow's spawners (feature `hyper`).
//!
//! hyper spawns tasks of its own: connection drivers, and on HTTP/2 one task per stream, where
//! the service runs. It spawns them through `hyper::rt::Executor`, which users usually fill with
//! hyper-util's `TokioExecutor`. With feature `hyper`, every ctxflow spawner implements it, so a
//! hyper server or client runs on any of ctxflow's runtimes, and the tasks hyper spawns carry the
//! context of the code that made hyper spawn them: on a server, the connection's, then each
//! HTTP/2 stream's; on a client, the connection driver's, which is where hyper spawns the tasks
//! that stream request bodies.
//!
//! ```
//! use ctxflow::tokio::TokioSpawner;
//!
//! fn server_builder(spawner: TokioSpawner) -> hyper::server::conn::http2::Builder<TokioSpawner> {
//!     hyper::server::conn::http2::Builder::new(spawner)
//! }
//! ```
//!
//! Rust's orphan rule keeps a blanket impl for every spawner out of reach, so each spawner type
//! gets its own from [`executor!`] (or [`local_executor!`]), called by the crate that defines the
//! spawner, behind a `hyper` feature of that crate:
//!
//! ```
//! # use std::future::Future;
//! # use ctxflow::rt::{BlockingTask, Runtime, Task};
//! #[derive(Clone)]
//! struct ThreadPerTask;
//! # impl Runtime for ThreadPerTask {
//! #     fn spawn_task<F: Future<Output = ()> + Send + 'static>(&self, task: Task<F>) {
//! #         std::thread::spawn(move || futures::executor::block_on(task));
//! #     }
//! #     fn spawn_blocking_task<F: FnOnce() + Send + 'static>(&self, task: BlockingTask<F>) {
//! #         std::thread::spawn(move || task.run());
//! #     }
//! #     fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
//! #         futures::executor::block_on(future)
//! #     }
//! # }
//! ctxflow::hyper::executor!(ThreadPerTask);
//!
//! use hyper::rt::Executor;
//!
//! ThreadPerTask.execute(async { /* runs on a thread of its own, in this context */ });
//! ```
//!
//! A client's connection pool is the exception: a pooled connection's task outlives the request
//! that opened it and serves the requests after it. Give a pool [`Isolated`], which spawns every
//! task in a context of its own.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod isolated;

pub use isolated::Isolated;

/// Implements hyper's `Executor` for a [`Spawner`](ctxflow_core::Spawner): each future is a
/// detached task in the caller's context.
#[macro_export]
macro_rules! executor {
    ($spawner:ty) => {
        impl<Fut> $crate::__private::Executor<Fut> for $spawner
        where
            Fut: ::core::future::Future + ::core::marker::Send + 'static,
            Fut::Output: ::core::marker::Send + 'static,
        {
            fn execute(&self, future: Fut) {
                $crate::__private::Spawner::spawn(self, future).detach();
            }
        }
    };
}

/// Implements hyper's `Executor` for a [`LocalSpawner`](ctxflow_core::LocalSpawner), for futures
/// that are not `Send`: each is a detached task on this thread in the caller's context.
#[macro_export]
macro_rules! local_executor {
    ($spawner:ty) => {
        impl<Fut> $crate::__private::Executor<Fut> for $spawner
        where
            Fut: ::core::future::Future + 'static,
        {
            fn execute(&self, future: Fut) {
                $crate::__private::LocalSpawner::spawn_local(self, future).detach();
            }
        }
    };
}

/// What the macros above expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use ::ctxflow_core::{LocalSpawner, Spawner};
    pub use ::hyper::rt::Executor;
}
