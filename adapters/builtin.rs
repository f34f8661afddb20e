//! The spawners ctxflow ships, held by value inside an [`AnySpawner`](crate::AnySpawner), so that a
//! spawn through one takes the same path as through the spawner itself: no boxed future, and on
//! tokio tokio's own join handle.
//!
//! Each runtime feature adds its variant here; the spawner itself lives in that runtime's adapter.

// With no runtime enabled there is nothing to dispatch to, and the arguments go unused.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(unused_variables)
)]

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;

use crate::rt::{BlockingTask, PreparedBlocking, PreparedTask, Runtime, Task};
use crate::{JoinHandle, Spawner};

/// One of ctxflow's own spawners.
#[derive(Clone, Debug)]
pub(crate) enum Builtin {
    #[cfg(feature = "tokio")]
    Tokio(crate::tokio::TokioSpawner),
    #[cfg(feature = "smol")]
    Smol(crate::smol::SmolSpawner),
    #[cfg(feature = "async-std")]
    AsyncStd(crate::async_std::AsyncStdSpawner),
    #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
    Default(crate::DefaultSpawner),
    /// Keeps the enum inhabited-looking when no runtime feature is enabled; never built.
    #[allow(dead_code)]
    Never(Infallible),
}

impl Builtin {
    /// `spawner` as one of ctxflow's own, or back unchanged when it is another.
    #[allow(unused_mut)]
    pub(crate) fn recognise<S: Spawner>(spawner: S) -> Result<Builtin, S> {
        let mut slot = Some(spawner);
        let mut take = |slot: &mut Option<S>| -> Option<Builtin> {
            let any = slot as &mut dyn Any;
            #[cfg(feature = "tokio")]
            if let Some(spawner) = any.downcast_mut::<Option<crate::tokio::TokioSpawner>>() {
                return spawner.take().map(Builtin::Tokio);
            }
            #[cfg(feature = "smol")]
            if let Some(spawner) = any.downcast_mut::<Option<crate::smol::SmolSpawner>>() {
                return spawner.take().map(Builtin::Smol);
            }
            #[cfg(feature = "async-std")]
            if let Some(spawner) = any.downcast_mut::<Option<crate::async_std::AsyncStdSpawner>>() {
                return spawner.take().map(Builtin::AsyncStd);
            }
            #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
            if let Some(spawner) = any.downcast_mut::<Option<crate::DefaultSpawner>>() {
                return spawner.take().map(Builtin::Default);
            }
            let _ = any;
            None
        };
        match take(&mut slot) {
            Some(builtin) => Ok(builtin),
            None => Err(slot.expect("an unrecognised spawner is left in place")),
        }
    }
}

/// Calls `$call` on whichever spawner `$builtin` holds.
macro_rules! dispatch {
    ($builtin:expr, $spawner:ident => $call:expr) => {
        match $builtin {
            #[cfg(feature = "tokio")]
            Builtin::Tokio($spawner) => $call,
            #[cfg(feature = "smol")]
            Builtin::Smol($spawner) => $call,
            #[cfg(feature = "async-std")]
            Builtin::AsyncStd($spawner) => $call,
            #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
            Builtin::Default($spawner) => $call,
            Builtin::Never(never) => match *never {},
        }
    };
}

impl Runtime for Builtin {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        dispatch!(self, spawner => spawner.spawn_task(task))
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        dispatch!(self, spawner => spawner.spawn_blocking_task(task))
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        dispatch!(self, spawner => spawner.run_until_complete(future))
    }

    fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        dispatch!(self, spawner => spawner.spawn_prepared(task))
    }

    fn spawn_blocking_prepared<F, R>(&self, f: PreparedBlocking<F>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        dispatch!(self, spawner => spawner.spawn_blocking_prepared(f))
    }
}
