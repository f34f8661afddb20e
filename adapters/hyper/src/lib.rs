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

// `ctxflow::rt::spawner_traits!` and `local_spawner_traits!` call these for every spawner, so
// a new spawner is an executor as soon as it has futures' `Spawn`.

/// hyper's `Executor` for a spawner: a detached task in the caller's context.
#[macro_export]
#[doc(hidden)]
macro_rules! __hyper_executor {
    ($spawner:ty) => {
        impl<Fut> $crate::__hyper_private::Executor<Fut> for $spawner
        where
            Fut: ::core::future::Future + ::core::marker::Send + 'static,
            Fut::Output: ::core::marker::Send + 'static,
        {
            fn execute(&self, future: Fut) {
                $crate::Spawner::spawn(self, future).detach();
            }
        }
    };
}

/// hyper's `Executor` for a local spawner, for futures that are not `Send`.
#[macro_export]
#[doc(hidden)]
macro_rules! __hyper_local_executor {
    ($spawner:ty) => {
        impl<Fut> $crate::__hyper_private::Executor<Fut> for $spawner
        where
            Fut: ::core::future::Future + 'static,
        {
            fn execute(&self, future: Fut) {
                $crate::LocalSpawner::spawn_local(self, future).detach();
            }
        }
    };
}

/// What the macros above expand to; not part of the API.
#[doc(hidden)]
pub mod __hyper_private {
    pub use ::hyper::rt::Executor;
}
