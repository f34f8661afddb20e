//! `each_runtime!` and `each_local_runtime!`: one `#[test]` per runtime; `spawner_contract!`:
//! one `#[test]` per check of the `Spawner` contract.
//!
//! A `#[cfg(feature = "tokio")]` written in a macro's expansion would be checked against the
//! features of the crate that calls the macro, not ctxflow's. So ctxflow defines one helper
//! macro per runtime feature, twice under opposite `cfg`s: the one compiled in expands to the
//! real test when ctxflow has the feature and to an ignored test naming the feature when not.

/// Generates one `#[test]` per runtime for each async test body: a module named after the test,
/// holding `tokio_multi_thread`, `tokio_current_thread`, `smol` and `async_std`.
///
/// Each test runs its body once, as a ctxflow task that starts with an empty context on a fresh
/// instance of its runtime (async-std has only its global one), with the runtime's
/// [`AnySpawner`](crate::AnySpawner) bound to the name in parentheses. A panic in the body fails
/// that test with the body's own panic message, so `#[should_panic(expected = "..")]` works.
/// Attributes on a body (doc comments, `#[should_panic]`, `#[ignore]`) go on each of its tests.
///
/// The module brings everything in scope where the macro is called into scope with
/// `use super::*`, so bodies use the file's imports and helpers as they are.
///
/// A runtime whose ctxflow feature (`tokio`, `smol`, `async-std`) is off still gets its test,
/// marked `#[ignore]` with the feature it needs, so `cargo test` lists it as ignored instead of
/// passing without running it.
///
/// ```
/// use ctxflow::{ContextVar, Spawner};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// ctxflow::testing::each_runtime! {
///     /// Generates `a_child_sees_the_parents_request_id::tokio_multi_thread` and so on.
///     fn a_child_sees_the_parents_request_id(spawner) {
///         let _token = REQUEST_ID.set(7);
///         let child = spawner.spawn(async { REQUEST_ID.get() });
///         assert_eq!(child.await.unwrap(), Some(7));
///     }
/// }
/// # fn main() {}
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __each_runtime {
    ($($(#[$attr:meta])* fn $name:ident($spawner:ident) { $($body:tt)* })*) => {
        $crate::__each_runtime_in! {
            no_futures; $($(#[$attr])* fn $name($spawner) { $($body)* })*
        }
    };
}

/// [`each_runtime!`](crate::testing::each_runtime!), plus a test on a futures `ThreadPool`
/// (feature `futures-executor`): for the conformance suite, which proves that an adapter
/// written with the public API alone keeps the contract. Not in `each_runtime!` itself, as
/// futures' pools forbid blocking on a future inside their tasks, which libraries such as
/// OpenTelemetry's simple span processor do.
#[doc(hidden)]
#[macro_export]
macro_rules! __each_runtime_and_futures {
    ($($(#[$attr:meta])* fn $name:ident($spawner:ident) { $($body:tt)* })*) => {
        $crate::__each_runtime_in! {
            with_futures; $($(#[$attr])* fn $name($spawner) { $($body)* })*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __each_runtime_in {
    ($futures:ident; $($(#[$attr:meta])* fn $name:ident($spawner:ident) { $($body:tt)* })*) => {$(
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__ctxflow_if_tokio! {{
                $crate::__each_runtime_test!(
                    tokio_multi_thread, TokioMultiThread, [$(#[$attr])*], $spawner, { $($body)* }
                );
                $crate::__each_runtime_test!(
                    tokio_current_thread, TokioCurrentThread, [$(#[$attr])*], $spawner,
                    { $($body)* }
                );
            } else {
                $crate::__skipped_runtime_test!(
                    tokio_multi_thread, "needs ctxflow's `tokio` feature"
                );
                $crate::__skipped_runtime_test!(
                    tokio_current_thread, "needs ctxflow's `tokio` feature"
                );
            }}
            $crate::__ctxflow_if_smol! {{
                $crate::__each_runtime_test!(smol, Smol, [$(#[$attr])*], $spawner, { $($body)* });
            } else {
                $crate::__skipped_runtime_test!(smol, "needs ctxflow's `smol` feature");
            }}
            $crate::__ctxflow_if_async_std! {{
                $crate::__each_runtime_test!(
                    async_std, AsyncStd, [$(#[$attr])*], $spawner, { $($body)* }
                );
            } else {
                $crate::__skipped_runtime_test!(async_std, "needs ctxflow's `async-std` feature");
            }}
            $crate::__futures_runtime_test! {
                $futures; __each_runtime_test; futures_thread_pool, FuturesThreadPool,
                [$(#[$attr])*], $spawner, { $($body)* }
            }
        }
    )*};
}

/// Generates one `#[test]` per local executor for each async test body, which need not be
/// `Send`: a module named after the test, holding `tokio_local` (a `LocalSet` on a
/// current-thread runtime), `smol_local` (a `LocalExecutor`), `async_std_local`
/// (`spawn_local`) and `compio_local` (a compio runtime, thread-per-core).
///
/// Each test runs its body once on the test thread, in an empty context, with the runtime's
/// [`AnyLocalSpawner`](crate::task::AnyLocalSpawner) bound to the name in parentheses. Everything else
/// (attributes, scope, runtimes whose feature is off) is as for
/// [`each_runtime!`](crate::testing::each_runtime!).
///
/// ```
/// use std::rc::Rc;
/// use ctxflow::{ContextVar, LocalSpawner};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// ctxflow::testing::each_local_runtime! {
///     fn a_local_child_sees_the_parents_request_id(local) {
///         let _token = REQUEST_ID.set(7);
///         let not_send = Rc::new(1);
///         let child = local.spawn_local(async move { (*not_send, REQUEST_ID.get()) });
///         assert_eq!(child.await.unwrap(), (1, Some(7)));
///     }
/// }
/// # fn main() {}
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __each_local_runtime {
    ($($(#[$attr:meta])* fn $name:ident($spawner:ident) { $($body:tt)* })*) => {
        $crate::__each_local_runtime_in! {
            no_futures; $($(#[$attr])* fn $name($spawner) { $($body)* })*
        }
    };
}

/// [`each_local_runtime!`](crate::testing::each_local_runtime!), plus a test on a futures
/// `LocalPool` (feature `futures-executor`), for the conformance suite.
#[doc(hidden)]
#[macro_export]
macro_rules! __each_local_runtime_and_futures {
    ($($(#[$attr:meta])* fn $name:ident($spawner:ident) { $($body:tt)* })*) => {
        $crate::__each_local_runtime_in! {
            with_futures; $($(#[$attr])* fn $name($spawner) { $($body)* })*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __each_local_runtime_in {
    ($futures:ident; $($(#[$attr:meta])* fn $name:ident($spawner:ident) { $($body:tt)* })*) => {$(
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__ctxflow_if_tokio! {{
                $crate::__each_local_runtime_test!(
                    tokio_local, TokioLocal, [$(#[$attr])*], $spawner, { $($body)* }
                );
            } else {
                $crate::__skipped_runtime_test!(tokio_local, "needs ctxflow's `tokio` feature");
            }}
            $crate::__ctxflow_if_smol! {{
                $crate::__each_local_runtime_test!(
                    smol_local, SmolLocal, [$(#[$attr])*], $spawner, { $($body)* }
                );
            } else {
                $crate::__skipped_runtime_test!(smol_local, "needs ctxflow's `smol` feature");
            }}
            $crate::__ctxflow_if_async_std! {{
                $crate::__each_local_runtime_test!(
                    async_std_local, AsyncStdLocal, [$(#[$attr])*], $spawner, { $($body)* }
                );
            } else {
                $crate::__skipped_runtime_test!(
                    async_std_local, "needs ctxflow's `async-std` feature"
                );
            }}
            $crate::__ctxflow_if_compio! {{
                $crate::__each_local_runtime_test!(
                    compio_local, CompioLocal, [$(#[$attr])*], $spawner, { $($body)* }
                );
            } else {
                $crate::__skipped_runtime_test!(compio_local, "needs ctxflow's `compio` feature");
            }}
            $crate::__futures_runtime_test! {
                $futures; __each_local_runtime_test; futures_local_pool, FuturesLocalPool,
                [$(#[$attr])*], $spawner, { $($body)* }
            }
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __each_runtime_test {
    ($test:ident, $runtime:ident, [$($attr:tt)*], $spawner:ident, $body:tt) => {
        #[test]
        $($attr)*
        fn $test() {
            $crate::testing::__private::run_test(
                $crate::testing::Runtime::$runtime,
                |$spawner: $crate::AnySpawner| async move $body,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __each_local_runtime_test {
    ($test:ident, $runtime:ident, [$($attr:tt)*], $spawner:ident, $body:tt) => {
        #[test]
        $($attr)*
        fn $test() {
            $crate::testing::LocalRuntime::$runtime
                .run(|$spawner: $crate::task::AnyLocalSpawner| async move $body);
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __skipped_runtime_test {
    ($test:ident, $reason:literal) => {
        #[test]
        #[ignore = $reason]
        fn $test() {
            panic!("{}: ctxflow was built without it", $reason);
        }
    };
}

#[cfg(feature = "tokio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_tokio {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($with)* };
}

#[cfg(not(feature = "tokio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_tokio {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($without)* };
}

#[cfg(feature = "smol")]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_smol {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($with)* };
}

#[cfg(not(feature = "smol"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_smol {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($without)* };
}

#[cfg(feature = "async-std")]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_async_std {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($with)* };
}

#[cfg(not(feature = "async-std"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_async_std {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($without)* };
}

#[cfg(feature = "compio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_compio {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($with)* };
}

#[cfg(not(feature = "compio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_compio {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($without)* };
}

/// The test on a futures pool, for the `_and_futures` forms only.
#[doc(hidden)]
#[macro_export]
macro_rules! __futures_runtime_test {
    (no_futures; $($rest:tt)*) => {};
    (with_futures; $generate:ident; $test:ident, $runtime:ident, $($rest:tt)*) => {
        $crate::__ctxflow_if_futures_executor! {{
            $crate::$generate!($test, $runtime, $($rest)*);
        } else {
            $crate::__skipped_runtime_test!($test, "needs ctxflow's `futures-executor` feature");
        }}
    };
}

#[cfg(feature = "futures-executor")]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_futures_executor {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($with)* };
}

#[cfg(not(feature = "futures-executor"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __ctxflow_if_futures_executor {
    ({ $($with:tt)* } else { $($without:tt)* }) => { $($without)* };
}

/// Generates one `#[test]` per check of the `Spawner` contract
/// ([`testing::contract`](crate::testing::contract)), each named after its check and run by
/// the [`Harness`](crate::testing::contract::Harness) given: a closure that makes a fresh
/// spawner for each check, or one of ctxflow's own [`Runtime`](crate::testing::Runtime)s. The
/// checks are generic over the closure's spawner type: give it the adapter's own type, not an
/// [`AnySpawner`](crate::AnySpawner), so that its own `spawn_prepared` and join handle are the
/// ones checked (an `AnySpawner` holding a runtime of one's own spawns through ctxflow's join
/// slot).
///
/// For an adapter to a runtime ctxflow does not ship, in a test file of its crate:
///
/// ```
/// # use std::future::Future;
/// # use ctxflow::rt::{BlockingTask, Runtime, Task};
/// /// futures' thread pool for tasks, a thread per blocking closure.
/// #[derive(Clone)]
/// struct PoolRuntime(futures::executor::ThreadPool);
/// # impl Runtime for PoolRuntime {
/// #     fn spawn_task<F: Future<Output = ()> + Send + 'static>(&self, task: Task<F>) {
/// #         self.0.spawn_ok(task);
/// #     }
/// #     fn spawn_blocking_task<F: FnOnce() + Send + 'static>(&self, task: BlockingTask<F>) {
/// #         std::thread::spawn(move || task.run());
/// #     }
/// #     fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
/// #         futures::executor::block_on(future)
/// #     }
/// # }
///
/// mod contract {
///     use super::PoolRuntime;
///
///     ctxflow::testing::spawner_contract!(|| {
///         PoolRuntime(futures::executor::ThreadPool::new().unwrap())
///     });
/// }
/// # fn main() {}
/// ```
///
/// `cargo test contract::` then runs every check, `a_childs_writes_never_reach_its_parent` and
/// the rest, each a test of its own.
#[doc(hidden)]
#[macro_export]
macro_rules! __spawner_contract {
    ($harness:expr) => {
        $crate::__spawner_contract_checks!(tests($harness));
    };
}

/// The names of the contract's checks, each the name of a function of `testing::contract::bodies`,
/// given to [`__spawner_contract_each!`] with what to make of them: the table of checks, or a
/// test for each.
#[doc(hidden)]
#[macro_export]
macro_rules! __spawner_contract_checks {
    ($($mode:tt)*) => {
        $crate::__spawner_contract_each! {
            $($mode)*;
            a_background_task_sees_the_parents_request_id
            a_named_task_sees_its_name_and_the_parents_context
            a_task_spawned_by_a_named_task_is_not_named_after_it
            a_blocking_closure_takes_arguments_returns_a_value_and_sees_the_context
            preserve_context_workers_see_the_callers_context_joined_or_spawned
            a_childs_writes_never_reach_its_parent
            a_parents_writes_after_the_spawn_never_reach_the_child
            a_task_spawned_by_the_runtime_itself_sees_no_context_on_busy_workers
            a_blocking_closure_leaves_nothing_on_the_pool_thread
            a_task_that_sets_a_value_keeps_it_across_many_yields
            ten_thousand_concurrent_tasks_each_see_only_their_own_id_at_every_poll
            spawn_in_runs_the_task_in_the_given_context
            block_on_runs_the_future_in_the_callers_context
            a_panicking_task_gives_a_panic_join_error_and_the_runtime_keeps_serving
            a_panicking_blocking_closure_gives_a_panic_join_error
            a_future_that_panics_when_dropped_after_finishing_gives_that_panic
            abort_cancels_a_pending_task_and_drops_its_future_inside_its_context
            is_finished_turns_true_once_an_aborted_task_is_dropped
            is_finished_asked_in_the_poll_that_awaits_an_aborted_handle_keeps_its_wake_up
            abort_after_the_handle_was_polled_keeps_its_awaiters_wake_up
            abort_after_the_task_finished_keeps_its_result
            dropping_the_handle_detaches_the_task
            a_detached_tasks_output_that_panics_when_dropped_leaves_the_runtime_serving
            is_finished_turns_true_when_the_task_ends
            a_finished_tasks_values_are_released
            a_non_flowing_variable_stays_in_its_task_while_a_flowing_one_follows_spawns
            a_suppressed_spawn_starts_empty_while_its_sibling_gets_the_parents_context
            work_in_a_context_of_its_own_inside_suppress_flow_spawns_as_usual
            queued_jobs_run_with_their_submitters_context_not_the_workers
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __spawner_contract_each {
    (table; $($name:ident)*) => {
        [$(
            Check {
                name: stringify!($name),
                body: |spawner| ::std::boxed::Box::pin(bodies::$name(spawner)),
            }
        ),*]
    };
    (tests($harness:expr); $($name:ident)*) => {$(
        #[test]
        fn $name() {
            $crate::testing::contract::Harness::run(
                &$harness,
                stringify!($name),
                $crate::testing::contract::bodies::$name,
            );
        }
    )*};
}
