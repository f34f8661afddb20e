//! futures' `Spawn` and `LocalSpawn` traits, so that crates written against them carry the
//! context without knowing ctxflow.

use std::fmt;

use futures_task::{FutureObj, LocalFutureObj, LocalSpawn, Spawn, SpawnError};

use crate::future::WithContext;
use crate::handoff::Handoff;

/// Any of futures' `Spawn` (or `LocalSpawn`) implementations, made to carry the caller's
/// context into each future it spawns: for executors ctxflow has no adapter for, such as
/// `futures::executor::ThreadPool`.
///
/// ```
/// use ctxflow::ContextVar;
/// use ctxflow::task::CarryContext;
/// use futures::executor::{block_on, ThreadPool};
/// use futures::task::SpawnExt;
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// let pool = CarryContext::new(ThreadPool::new().unwrap());
/// let _token = REQUEST_ID.set(5);
/// let seen = pool.spawn_with_handle(async { REQUEST_ID.get() }).unwrap();
/// assert_eq!(block_on(seen), Some(5));
/// ```
#[derive(Clone, Default)]
pub struct CarryContext<S> {
    inner: S,
}

impl<S> CarryContext<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        CarryContext { inner }
    }

    /// The wrapped executor.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Spawn> Spawn for CarryContext<S> {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        let future = WithContext::new(future, Handoff::for_spawn());
        self.inner.spawn_obj(FutureObj::new(Box::new(future)))
    }

    fn status(&self) -> Result<(), SpawnError> {
        self.inner.status()
    }
}

impl<S: LocalSpawn> LocalSpawn for CarryContext<S> {
    fn spawn_local_obj(&self, future: LocalFutureObj<'static, ()>) -> Result<(), SpawnError> {
        let future = WithContext::new(future, Handoff::for_spawn());
        self.inner
            .spawn_local_obj(LocalFutureObj::new(Box::new(future)))
    }

    fn status_local(&self) -> Result<(), SpawnError> {
        self.inner.status_local()
    }
}

impl<S: fmt::Debug> fmt::Debug for CarryContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CarryContext")
            .field("inner", &self.inner)
            .finish()
    }
}
