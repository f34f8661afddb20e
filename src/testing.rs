//! Run one test body on every enabled runtime (feature `testing`).
//!
//! [`each_runtime!`] turns one async test body into one `#[test]` per runtime, and
//! [`each_local_runtime!`] does the same for `!Send` bodies on each runtime's local executor.
//! The runtimes are those of ctxflow's features, so a crate's dev-dependency enables the ones its
//! tests should run on:
//!
//! ```toml
//! [dev-dependencies]
//! ctxflow = { version = "0.2", features = ["testing", "tokio", "smol", "async-std"] }
//! ```
//!
//! ```
//! use ctxflow::{ContextVar, Spawner};
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! ctxflow::testing::each_runtime! {
//!     fn a_child_sees_the_parents_request_id(spawner) {
//!         let _token = REQUEST_ID.set(7);
//!         let child = spawner.spawn(async { REQUEST_ID.get() });
//!         assert_eq!(child.await.unwrap(), Some(7));
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! This generates `a_child_sees_the_parents_request_id::tokio_multi_thread`,
//! `::tokio_current_thread`, `::smol` and `::async_std`, so the output names each runtime's
//! result and `cargo test tokio_current_thread` runs one runtime's tests. A runtime whose feature
//! is off gets an ignored test that names the feature it needs.
//!
//! The functions [`each_runtime()`] and [`each_local_runtime()`] run one body on every runtime in
//! turn inside a single test, for tests that need all of them in one process; [`Runtime`] and
//! [`LocalRuntime`] run a body on one runtime.
//!
//! The `Spawner` contract's checks are in [`contract`], and [`spawner_contract!`] makes one test
//! of each for a spawner: ctxflow's own suite runs them on every runtime, and an adapter for a
//! runtime ctxflow does not ship runs them on its own.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};

pub mod contract;
mod macros;

use crate::task::AnyLocalSpawner;
use crate::{AnySpawner, Context, InContext, JoinError, Spawner};
use ctxflow_core::__private::{unwrapped, unwrapped_blocking};

#[doc(inline)]
pub use crate::__each_local_runtime as each_local_runtime;
#[doc(hidden)]
pub use crate::__each_local_runtime_and_futures as each_local_runtime_and_futures;
#[doc(inline)]
pub use crate::__each_runtime as each_runtime;
#[doc(hidden)]
pub use crate::__each_runtime_and_futures as each_runtime_and_futures;
#[doc(inline)]
pub use crate::__spawner_contract as spawner_contract;

/// A runtime `each_runtime` runs a body on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// tokio's multi-thread runtime with two workers.
    #[cfg(feature = "tokio")]
    TokioMultiThread,
    /// tokio's current-thread runtime.
    #[cfg(feature = "tokio")]
    TokioCurrentThread,
    /// A fresh smol `Executor` run by the test thread and one more thread.
    #[cfg(feature = "smol")]
    Smol,
    /// async-std's global runtime.
    #[cfg(feature = "async-std")]
    AsyncStd,
    /// A fresh futures `ThreadPool` of two threads (feature `futures-executor`). Not in
    /// [`all`](Self::all) nor in `each_runtime!`: futures' pools forbid blocking on a future
    /// inside their tasks, which some libraries do; the conformance suite runs on it.
    #[cfg(feature = "futures-executor")]
    FuturesThreadPool,
}

impl Runtime {
    /// Every runtime the enabled features provide.
    ///
    /// ```
    /// use ctxflow::testing::Runtime;
    /// for runtime in Runtime::all() {
    ///     runtime.run(|_spawner| async {}).unwrap();
    ///     assert!(!runtime.name().is_empty());
    /// }
    /// ```
    pub fn all() -> &'static [Runtime] {
        &[
            #[cfg(feature = "tokio")]
            Runtime::TokioMultiThread,
            #[cfg(feature = "tokio")]
            Runtime::TokioCurrentThread,
            #[cfg(feature = "smol")]
            Runtime::Smol,
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd,
        ]
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "tokio")]
            Runtime::TokioMultiThread => "tokio (multi-thread)",
            #[cfg(feature = "tokio")]
            Runtime::TokioCurrentThread => "tokio (current-thread)",
            #[cfg(feature = "smol")]
            Runtime::Smol => "smol",
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => "async-std",
            #[cfg(feature = "futures-executor")]
            Runtime::FuturesThreadPool => "futures (ThreadPool)",
        }
    }

    /// Runs `body` as a ctxflow task with an empty context on a fresh instance of this runtime
    /// (async-std has only its global one), and waits for it.
    pub fn run<B, Fut>(self, body: B) -> Result<(), JoinError>
    where
        B: FnOnce(AnySpawner) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // An empty context, not the test thread's: a current-thread runtime polls on the test
        // thread, where a leftover context would hide missing propagation.
        #[cfg_attr(
            not(any(
                feature = "tokio",
                feature = "smol",
                feature = "async-std",
                feature = "futures-executor"
            )),
            allow(unused_variables)
        )]
        let spawn = |spawner: AnySpawner| spawner.spawn_in(Context::empty(), body(spawner.clone()));
        match self {
            #[cfg(feature = "tokio")]
            Runtime::TokioMultiThread | Runtime::TokioCurrentThread => {
                let mut builder = match self {
                    Runtime::TokioMultiThread => {
                        let mut builder = ::tokio::runtime::Builder::new_multi_thread();
                        builder.worker_threads(2);
                        builder
                    }
                    _ => ::tokio::runtime::Builder::new_current_thread(),
                };
                let runtime = builder.enable_all().build().expect("start a tokio runtime");
                let spawner = crate::tokio::TokioSpawner::from(runtime.handle().clone());
                runtime.block_on(spawn(spawner.into()))
            }
            #[cfg(feature = "smol")]
            Runtime::Smol => {
                let executor = std::sync::Arc::new(::smol::Executor::new());
                let (stop, stopped) = ::smol::channel::bounded::<()>(1);
                let helper = {
                    let executor = executor.clone();
                    std::thread::spawn(move || ::smol::block_on(executor.run(stopped.recv())))
                };
                let spawner = crate::smol::SmolSpawner::new(executor.clone());
                let result = ::smol::block_on(executor.run(spawn(spawner.into())));
                drop(stop);
                let _ = helper.join();
                result
            }
            #[cfg(feature = "async-std")]
            Runtime::AsyncStd => {
                let spawner = crate::async_std::AsyncStdSpawner::new();
                ::async_std::task::block_on(spawn(spawner.into()))
            }
            #[cfg(feature = "futures-executor")]
            Runtime::FuturesThreadPool => {
                let pool = ::futures_executor::ThreadPool::builder()
                    .pool_size(2)
                    .create()
                    .expect("start a futures thread pool");
                let spawner = crate::futures::ThreadPoolSpawner::new(pool);
                ::futures_executor::block_on(spawn(AnySpawner::new(spawner)))
            }
        }
    }
}

/// Runs one async test body on a fresh instance of every enabled runtime in turn, all inside
/// the calling test: tokio multi-thread and current-thread, smol, async-std. The body runs as a
/// ctxflow task that starts with an empty context, and gets the runtime's spawner. A test that
/// runs one body per runtime is better written with
/// [`each_runtime!`](crate::testing::each_runtime!), which gives each runtime its own test; this
/// function is for tests that need every runtime in one process.
///
/// # Panics
/// When the body panics on any runtime, after trying them all, naming each runtime that failed
/// and its panic message. When no runtime is enabled (a build with only `compio`, whose tasks
/// are all local), rather than pass without running the body.
pub fn each_runtime<B, Fut>(body: B)
where
    B: Fn(AnySpawner) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    assert!(!Runtime::all().is_empty(), "{NO_RUNTIME}");
    let outcomes = Runtime::all().iter().map(|runtime| {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| runtime.run(&body)));
        let outcome = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) if error.is_panic() => Err(panic_message(&*error.into_panic())),
            Ok(Err(error)) => Err(error.to_string()),
            Err(payload) => Err(panic_message(&*payload)),
        };
        (runtime.name(), outcome)
    });
    assert_all_passed("each_runtime", outcomes);
}

/// Runs one async test body, which need not be `Send`, on the local executor of every enabled
/// runtime in turn, all inside the calling test: a tokio `LocalSet` on a current-thread runtime,
/// a smol `LocalExecutor`, async-std's `spawn_local`, a compio runtime. The body runs on the
/// test thread in an empty context and gets the runtime's local spawner. A test that runs one
/// body per runtime is better written with
/// [`each_local_runtime!`](crate::testing::each_local_runtime!), which gives each runtime its
/// own test.
///
/// # Panics
/// When the body panics on any runtime, after trying them all, naming each runtime that failed
/// and its panic message. When no runtime is enabled, rather than pass without running the body.
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::{ContextVar, LocalSpawner};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// ctxflow::testing::each_local_runtime(|local| async move {
///     let _token = REQUEST_ID.set(7);
///     let not_send = Rc::new(1);
///     let child = local.spawn_local(async move { (*not_send, REQUEST_ID.get()) });
///     assert_eq!(child.await.unwrap(), (1, Some(7)));
/// });
/// ```
pub fn each_local_runtime<B, Fut>(body: B)
where
    B: Fn(AnyLocalSpawner) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    assert!(!LocalRuntime::all().is_empty(), "{NO_LOCAL_RUNTIME}");
    let outcomes = LocalRuntime::all().iter().map(|runtime| {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| runtime.run(&body)));
        (
            runtime.name(),
            outcome.map_err(|payload| panic_message(&*payload)),
        )
    });
    assert_all_passed("each_local_runtime", outcomes);
}

/// A local executor `each_local_runtime` runs a body on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalRuntime {
    /// A tokio `LocalSet` on a current-thread runtime.
    #[cfg(feature = "tokio")]
    TokioLocal,
    /// A smol `LocalExecutor`.
    #[cfg(feature = "smol")]
    SmolLocal,
    /// async-std's `spawn_local`.
    #[cfg(feature = "async-std")]
    AsyncStdLocal,
    /// A compio runtime, on io_uring or on its polling driver, whichever compio chooses.
    #[cfg(feature = "compio")]
    CompioLocal,
    /// A futures `LocalPool` (feature `futures-executor`); as
    /// [`Runtime::FuturesThreadPool`], not in [`all`](Self::all).
    #[cfg(feature = "futures-executor")]
    FuturesLocalPool,
}

impl LocalRuntime {
    /// Every local executor the enabled features provide.
    pub fn all() -> &'static [LocalRuntime] {
        &[
            #[cfg(feature = "tokio")]
            LocalRuntime::TokioLocal,
            #[cfg(feature = "smol")]
            LocalRuntime::SmolLocal,
            #[cfg(feature = "async-std")]
            LocalRuntime::AsyncStdLocal,
            #[cfg(feature = "compio")]
            LocalRuntime::CompioLocal,
        ]
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "tokio")]
            LocalRuntime::TokioLocal => "tokio (LocalSet)",
            #[cfg(feature = "smol")]
            LocalRuntime::SmolLocal => "smol (LocalExecutor)",
            #[cfg(feature = "async-std")]
            LocalRuntime::AsyncStdLocal => "async-std (spawn_local)",
            #[cfg(feature = "compio")]
            LocalRuntime::CompioLocal => "compio",
            #[cfg(feature = "futures-executor")]
            LocalRuntime::FuturesLocalPool => "futures (LocalPool)",
        }
    }

    /// Runs `body` on the test thread in an empty context on a fresh instance of this local
    /// executor, and waits for it; a panic in the body unwinds out of `run`.
    pub fn run<B, Fut>(self, body: B)
    where
        B: FnOnce(AnyLocalSpawner) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        match self {
            #[cfg(feature = "tokio")]
            LocalRuntime::TokioLocal => {
                let runtime = ::tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("start a tokio runtime");
                let spawner = crate::tokio::TokioLocalSpawner;
                let body = body(spawner.into()).in_context(Context::empty());
                ::tokio::task::LocalSet::new().block_on(&runtime, body);
            }
            #[cfg(feature = "smol")]
            LocalRuntime::SmolLocal => {
                let executor = std::rc::Rc::new(::smol::LocalExecutor::new());
                let spawner = crate::smol::SmolLocalSpawner::new(executor.clone());
                let body = body(spawner.into()).in_context(Context::empty());
                ::smol::block_on(executor.run(body));
            }
            #[cfg(feature = "async-std")]
            LocalRuntime::AsyncStdLocal => {
                let spawner = crate::async_std::AsyncStdLocalSpawner;
                ::async_std::task::block_on(body(spawner.into()).in_context(Context::empty()));
            }
            #[cfg(feature = "compio")]
            LocalRuntime::CompioLocal => {
                let runtime = ::compio::runtime::Runtime::new().expect("start a compio runtime");
                let spawner = crate::compio::CompioLocalSpawner;
                runtime.block_on(body(spawner.into()).in_context(Context::empty()));
            }
            #[cfg(feature = "futures-executor")]
            LocalRuntime::FuturesLocalPool => {
                let mut pool = ::futures_executor::LocalPool::new();
                let spawner = crate::futures::LocalPoolSpawner::new(pool.spawner());
                let body = body(AnyLocalSpawner::new(spawner)).in_context(Context::empty());
                pool.run_until(body);
            }
        }
    }
}

/// The panic message of [`each_runtime()`] in a build that enables no runtime to run it on.
const NO_RUNTIME: &str = "ctxflow::testing::each_runtime: no runtime is enabled to run the \
    body on: enable ctxflow's `tokio`, `smol` or `async-std` feature (compio's tasks are local: \
    use `each_local_runtime`)";

/// The panic message of [`each_local_runtime()`] in a build that enables no runtime.
const NO_LOCAL_RUNTIME: &str = "ctxflow::testing::each_local_runtime: no runtime is enabled to \
    run the body on: enable ctxflow's `tokio`, `smol`, `async-std` or `compio` feature";

/// What the test macros expand to; not an API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Runs `body` on `runtime` and fails the calling test with the body's own panic, so that
    /// `#[should_panic(expected = ..)]` sees its message.
    pub fn run_test<B, Fut>(runtime: Runtime, body: B)
    where
        B: FnOnce(AnySpawner) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        fail_with_the_bodys_panic(runtime.run(body), format_args!("on {}", runtime.name()));
    }
}

/// Fails the calling test when a test body's task failed: with the body's own panic, so that
/// `#[should_panic(expected = ..)]` sees its message, or, prefixed by `place`, with why it ended.
fn fail_with_the_bodys_panic(outcome: Result<(), JoinError>, place: fmt::Arguments<'_>) {
    match outcome {
        Ok(()) => {}
        Err(error) if error.is_panic() => panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("{place}: {error}"),
    }
}

fn assert_all_passed<'a>(
    helper: &str,
    outcomes: impl Iterator<Item = (&'a str, Result<(), String>)>,
) {
    let failures: Vec<String> = outcomes
        .filter_map(|(runtime, outcome)| Some(format!("on {runtime}: {}", outcome.err()?)))
        .collect();
    assert!(
        failures.is_empty(),
        "{helper}: the body failed {}",
        failures.join("; ")
    );
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|message| message.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Spawns `future` on `spawner`'s runtime exactly as the runtime would without ctxflow: no
/// context is installed around it. Tests use it to show that nothing leaks onto worker threads.
///
/// ```
/// use ctxflow::{ContextVar, testing};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// testing::each_runtime(|spawner| async move {
///     let _token = REQUEST_ID.set(1);
///     let (sender, receiver) = futures::channel::oneshot::channel();
///     testing::spawn_unwrapped(&spawner, async move {
///         sender.send(REQUEST_ID.get()).unwrap();
///     });
///     assert_eq!(receiver.await.unwrap(), None);
/// });
/// ```
pub fn spawn_unwrapped<S, F>(spawner: &S, future: F)
where
    S: Spawner,
    F: Future<Output = ()> + Send + 'static,
{
    spawner.spawn_task(unwrapped(future));
}

/// Runs `f` on `spawner`'s blocking pool exactly as the runtime would without ctxflow: no
/// context is installed around it. Tests use it to show that nothing leaks onto pool threads.
///
/// ```
/// use ctxflow::{ContextVar, testing};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// testing::each_runtime(|spawner| async move {
///     let _token = REQUEST_ID.set(1);
///     let (sender, receiver) = futures::channel::oneshot::channel();
///     testing::spawn_blocking_unwrapped(&spawner, move || {
///         sender.send(REQUEST_ID.get()).unwrap();
///     });
///     assert_eq!(receiver.await.unwrap(), None);
/// });
/// ```
pub fn spawn_blocking_unwrapped<S, F>(spawner: &S, f: F)
where
    S: Spawner,
    F: FnOnce() + Send + 'static,
{
    spawner.spawn_blocking_task(unwrapped_blocking(f));
}
