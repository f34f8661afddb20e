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

use std::future::Future;

use ::hyper::rt::Executor;

use crate::{AnyLocalSpawner, AnySpawner, LocalSpawner, Spawner};

macro_rules! spawner_executor {
    ($($spawner:ty),* $(,)?) => {$(
        impl<Fut> Executor<Fut> for $spawner
        where
            Fut: Future + Send + 'static,
            Fut::Output: Send + 'static,
        {
            fn execute(&self, future: Fut) {
                self.spawn(future).detach();
            }
        }
    )*};
}

macro_rules! local_spawner_executor {
    ($($spawner:ty),* $(,)?) => {$(
        impl<Fut> Executor<Fut> for $spawner
        where
            Fut: Future + 'static,
        {
            fn execute(&self, future: Fut) {
                self.spawn_local(future).detach();
            }
        }
    )*};
}

spawner_executor!(AnySpawner);
local_spawner_executor!(AnyLocalSpawner);

#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
spawner_executor!(crate::DefaultSpawner);

#[cfg(feature = "tokio")]
spawner_executor!(crate::tokio::TokioSpawner);
#[cfg(feature = "tokio")]
local_spawner_executor!(crate::tokio::TokioLocalSpawner);

#[cfg(feature = "smol")]
spawner_executor!(crate::smol::SmolSpawner);
#[cfg(feature = "smol")]
local_spawner_executor!(crate::smol::SmolLocalSpawner);

#[cfg(feature = "async-std")]
spawner_executor!(crate::async_std::AsyncStdSpawner);
#[cfg(feature = "async-std")]
local_spawner_executor!(crate::async_std::AsyncStdLocalSpawner);
