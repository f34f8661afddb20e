//! hyper's executor (feature `hyper`).
//!
//! hyper spawns tasks of its own: connection drivers, and on HTTP/2 one task per stream, where
//! the service runs. It spawns them through `hyper::rt::Executor`, which users usually fill with
//! hyper-util's `TokioExecutor`. Every ctxflow spawner implements it, so a hyper server or
//! client runs on any of the three runtimes, and the tasks hyper spawns carry the context of the
//! code that made hyper spawn them.
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use ctxflow::tokio::TokioSpawner;
//!
//! fn server_builder(spawner: TokioSpawner) -> hyper::server::conn::http2::Builder<TokioSpawner> {
//!     hyper::server::conn::http2::Builder::new(spawner)
//! }
//! # }
//! ```

// `spawn_impl!` and `local_spawn_impl!` call these for every spawner of the crate, so a new
// spawner is an executor as soon as it has futures' `Spawn`.

/// hyper's `Executor` for a spawner of this crate: a detached task in the caller's context.
macro_rules! executor_impl {
    ($spawner:ty) => {
        impl<Fut> ::hyper::rt::Executor<Fut> for $spawner
        where
            Fut: std::future::Future + Send + 'static,
            Fut::Output: Send + 'static,
        {
            fn execute(&self, future: Fut) {
                $crate::Spawner::spawn(self, future).detach();
            }
        }
    };
}

/// hyper's `Executor` for a local spawner of this crate, for futures that are not `Send`.
macro_rules! local_executor_impl {
    ($spawner:ty) => {
        impl<Fut> ::hyper::rt::Executor<Fut> for $spawner
        where
            Fut: std::future::Future + 'static,
        {
            fn execute(&self, future: Fut) {
                $crate::LocalSpawner::spawn_local(self, future).detach();
            }
        }
    };
}

pub(crate) use {executor_impl, local_executor_impl};
