//! The runtimes' own join handles, which a ctxflow [`JoinHandle`](crate::JoinHandle) wraps instead
//! of allocating a slot of its own. tokio's already does what ctxflow's promises (detach on drop,
//! panics and cancellation as errors, abort from synchronous code); smol's and async-std's are
//! adapted to it in `async_task_join`.
//!
//! Each runtime feature adds its variant here; the spawning itself lives in that runtime's
//! adapter. The tasks behind these handles return their outcome (see `PreparedTask`), so a
//! panic while dropping the finished future is still the task's panic.

// Without a runtime there is no handle to poll, and the arguments go unused.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(unused_variables)
)]

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context as TaskContext, Poll};

#[cfg(any(feature = "smol", feature = "async-std"))]
use crate::async_task_join::{AsyncTaskJoin, Finished};
use crate::join::JoinError;
#[cfg(feature = "tokio")]
use crate::task::Panic;

/// A runtime's own handle to a task whose output is its outcome.
pub(crate) enum RuntimeJoin<T> {
    #[cfg(feature = "tokio")]
    Tokio(::tokio::task::JoinHandle<Result<T, Panic>>),
    #[cfg(feature = "smol")]
    Smol(AsyncTaskJoin<T, ::async_task::FallibleTask<Finished<T>>>),
    #[cfg(feature = "async-std")]
    AsyncStd(AsyncTaskJoin<T, crate::async_std::NativeJoin<Finished<T>>>),
    /// Keeps `T` in use when no runtime with such a handle is enabled; never built.
    #[allow(dead_code)]
    Never(Infallible, PhantomData<fn() -> T>),
}

impl<T> RuntimeJoin<T> {
    pub(crate) fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeJoin::Tokio(handle) => std::future::Future::poll(std::pin::Pin::new(handle), cx)
                .map(|outcome| match outcome {
                    Ok(returned) => returned.map_err(Panic::into_error),
                    Err(error) => Err(from_tokio(error)),
                }),
            #[cfg(feature = "smol")]
            RuntimeJoin::Smol(handle) => handle.poll(cx),
            #[cfg(feature = "async-std")]
            RuntimeJoin::AsyncStd(handle) => handle.poll(cx),
            RuntimeJoin::Never(never, _) => match *never {},
        }
    }

    pub(crate) fn abort(&self) {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeJoin::Tokio(handle) => handle.abort(),
            #[cfg(feature = "smol")]
            RuntimeJoin::Smol(handle) => handle.abort(),
            #[cfg(feature = "async-std")]
            RuntimeJoin::AsyncStd(handle) => handle.abort(),
            RuntimeJoin::Never(never, _) => match *never {},
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeJoin::Tokio(handle) => handle.is_finished(),
            #[cfg(feature = "smol")]
            RuntimeJoin::Smol(handle) => handle.is_finished(),
            #[cfg(feature = "async-std")]
            RuntimeJoin::AsyncStd(handle) => handle.is_finished(),
            RuntimeJoin::Never(never, _) => match *never {},
        }
    }
}

#[cfg(feature = "tokio")]
fn from_tokio(error: ::tokio::task::JoinError) -> JoinError {
    match error.try_into_panic() {
        Ok(payload) => JoinError::panic(payload),
        Err(_) => JoinError::cancelled(),
    }
}
