//! The join handles of runtimes that already do what ctxflow's [`JoinHandle`](crate::JoinHandle)
//! promises (detach on drop, panics and cancellation as errors, abort from synchronous code), so
//! that a ctxflow handle can wrap one instead of allocating a slot of its own.
//!
//! Each runtime feature adds its variant here; the spawning itself lives in that runtime's
//! adapter. The tasks behind these handles return their outcome (see `PreparedTask`), so a
//! panic while dropping the finished future is still the task's panic.

// Without tokio there is no handle to poll, and the arguments go unused.
#![cfg_attr(not(feature = "tokio"), allow(unused_variables))]

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context as TaskContext, Poll};

use crate::join::JoinError;
#[cfg(feature = "tokio")]
use crate::task::Panic;

/// A runtime's own handle to a task whose output is its outcome.
pub(crate) enum RuntimeJoin<T> {
    #[cfg(feature = "tokio")]
    Tokio(::tokio::task::JoinHandle<Result<T, Panic>>),
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
            RuntimeJoin::Never(never, _) => match *never {},
        }
    }

    pub(crate) fn abort(&self) {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeJoin::Tokio(handle) => handle.abort(),
            RuntimeJoin::Never(never, _) => match *never {},
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        match self {
            #[cfg(feature = "tokio")]
            RuntimeJoin::Tokio(handle) => handle.is_finished(),
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
