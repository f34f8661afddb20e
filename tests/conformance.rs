//! The `Spawner` contract, checked on every runtime the features enable, from one suite.
//!
//! The contract's checks live in `ctxflow::testing::contract`, so that an adapter for another
//! runtime runs the same ones (`spawner_contract!`); here they run on a fresh tokio
//! multi-thread runtime, tokio current-thread runtime, smol executor, async-std and futures'
//! pool. The timers, whose driver is chosen among ctxflow's runtimes, and the macros' own
//! behaviour are checked here, each body run by `each_runtime`.
// A build with compio alone runs the local cases only, and uses little of what the rest imports.
#![cfg_attr(
    not(any(
        feature = "tokio",
        feature = "smol",
        feature = "async-std",
        feature = "futures-executor"
    )),
    allow(unused_imports, dead_code)
)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{yield_now, DropProbe};
// The suite runs on every runtime `each_runtime!` covers, and on futures' pools through
// `ctxflow::futures` (feature `futures-executor`), the adapter written with the public API alone.
use ctxflow::testing::each_runtime_and_futures as each_runtime;
use ctxflow::{Context, ContextVar, Spawner};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");

fn request_id() -> Option<String> {
    REQUEST_ID.get()
}

/// The contract's checks (`ctxflow::testing::contract`), one test each, on every runtime, and on
/// a runtime of one's own through `AnySpawner::new`, as an adapter for another runtime runs them.
mod contract {
    #[cfg(feature = "tokio")]
    mod tokio_multi_thread {
        ctxflow::testing::spawner_contract!(ctxflow::testing::Runtime::TokioMultiThread);
    }

    #[cfg(feature = "tokio")]
    mod tokio_current_thread {
        ctxflow::testing::spawner_contract!(ctxflow::testing::Runtime::TokioCurrentThread);
    }

    #[cfg(feature = "smol")]
    mod smol {
        ctxflow::testing::spawner_contract!(ctxflow::testing::Runtime::Smol);
    }

    #[cfg(feature = "async-std")]
    mod async_std {
        ctxflow::testing::spawner_contract!(ctxflow::testing::Runtime::AsyncStd);
    }

    /// futures' pool through `ctxflow::futures`, the adapter written with the public API alone.
    #[cfg(feature = "futures-executor")]
    mod futures_thread_pool {
        ctxflow::testing::spawner_contract!(ctxflow::testing::Runtime::FuturesThreadPool);
    }

    /// The adapter docs/spawner.md writes for a runtime ctxflow does not ship: three methods.
    mod a_runtime_of_ones_own {
        use std::future::Future;

        use ctxflow::rt::{BlockingTask, Runtime, Task};

        #[derive(Clone)]
        struct PoolRuntime(futures::executor::ThreadPool);

        impl Runtime for PoolRuntime {
            fn spawn_task<F: Future<Output = ()> + Send + 'static>(&self, task: Task<F>) {
                self.0.spawn_ok(task);
            }

            #[allow(
                clippy::disallowed_methods,
                reason = "the adapter's blocking pool: the closure carries its own context"
            )]
            fn spawn_blocking_task<F: FnOnce() + Send + 'static>(&self, task: BlockingTask<F>) {
                std::thread::spawn(move || task.run());
            }

            fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
                futures::executor::block_on(future)
            }
        }

        ctxflow::testing::spawner_contract!(|| {
            let pool = futures::executor::ThreadPool::builder()
                .pool_size(2)
                .create()
                .unwrap();
            PoolRuntime(pool)
        });

        /// The checks run on the adapter's own type, so its own spawn path is the one checked:
        /// an override of `spawn_prepared` that drops the task and hands back a handle saying
        /// it was cancelled fails them, with the body's own panic (through an `AnySpawner`,
        /// ctxflow's join slot would have been used instead).
        #[test]
        fn an_adapters_own_join_handle_is_the_one_checked() {
            use std::task::{Context as TaskContext, Poll};

            use ctxflow::rt::{NativeJoin, PreparedTask};
            use ctxflow::testing::contract::{bodies, Harness};
            use ctxflow::{JoinError, JoinHandle};

            struct Cancelled;

            impl<T> NativeJoin<T> for Cancelled {
                fn poll_join(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
                    Poll::Ready(Err(JoinError::cancelled()))
                }

                fn abort(&self) {}

                fn is_finished(&self) -> bool {
                    true
                }
            }

            #[derive(Clone)]
            struct DropsPrepared(PoolRuntime);

            impl Runtime for DropsPrepared {
                fn spawn_task<F: Future<Output = ()> + Send + 'static>(&self, task: Task<F>) {
                    self.0.spawn_task(task);
                }

                fn spawn_blocking_task<F: FnOnce() + Send + 'static>(&self, task: BlockingTask<F>) {
                    self.0.spawn_blocking_task(task);
                }

                fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
                    self.0.run_until_complete(future)
                }

                fn spawn_prepared<F>(&self, task: PreparedTask<F>) -> JoinHandle<F::Output>
                where
                    F: Future + Send + 'static,
                    F::Output: Send + 'static,
                {
                    drop(task);
                    JoinHandle::from_native(Cancelled)
                }
            }

            let pool = futures::executor::ThreadPool::new().unwrap();
            let harness = move || DropsPrepared(PoolRuntime(pool.clone()));
            let failed = std::panic::catch_unwind(|| {
                harness.run(
                    "a_background_task_sees_the_parents_request_id",
                    bodies::a_background_task_sees_the_parents_request_id,
                )
            })
            .unwrap_err();
            let message = failed.downcast_ref::<String>().unwrap();
            assert!(message.contains("task was cancelled"), "{message}");
        }
    }
}

each_runtime! {
    #[should_panic(expected = "the body's own message")]
    fn a_failing_body_fails_its_runtimes_test_with_the_bodys_own_message(_spawner) {
        panic!("the body's own message");
    }
}

ctxflow::testing::each_local_runtime_and_futures! {
    #[should_panic(expected = "the local body's own message")]
    fn a_failing_local_body_fails_its_runtimes_test_with_the_bodys_own_message(_local) {
        panic!("the local body's own message");
    }
}

#[test]
fn each_runtime_names_the_runtime_that_failed() {
    let outcome = std::panic::catch_unwind(|| {
        ctxflow::testing::each_runtime(|_spawner| async { panic!("always fails") });
    });
    let message = *outcome.unwrap_err().downcast::<String>().unwrap();
    for runtime in ctxflow::testing::Runtime::all() {
        assert!(
            message.contains(&format!("on {}: always fails", runtime.name())),
            "{message}"
        );
    }
}

/// Only a build without tokio, smol and async-std has no runtime for `each_runtime`; run it with
/// `cargo test --no-default-features --features compio,testing --test conformance`.
#[cfg(not(any(feature = "tokio", feature = "smol", feature = "async-std")))]
#[test]
fn each_runtime_without_a_runtime_fails_instead_of_passing_unrun() {
    let outcome = std::panic::catch_unwind(|| ctxflow::testing::each_runtime(|_spawner| async {}));
    let message = *outcome.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("no runtime is enabled"), "{message}");
    assert!(message.contains("each_local_runtime"), "{message}");
}

mod timers {
    use super::*;

    use std::future::Future;
    use std::pin::pin;
    use std::task::Poll;
    use std::time::{Duration, Instant};

    use ctxflow::time::{interval, sleep, sleep_until, timeout};
    use futures::future::{self, Either};

    const SHORT: Duration = Duration::from_millis(10);

    /// Runs `future` against a short sleep and says whether it finished first.
    async fn finishes_before_a_short_sleep<F: Future>(future: F) -> bool {
        matches!(
            future::select(pin!(future), pin!(sleep(SHORT))).await,
            Either::Left(_)
        )
    }

    each_runtime! {
        fn code_generic_over_the_spawner_sleeps_in_its_tasks_on_every_runtime(spawner) {
            async fn retry_later<S: Spawner>(spawner: &S) -> Option<String> {
                let retry = spawner.spawn(async {
                    sleep(Duration::from_millis(2)).await;
                    request_id()
                });
                retry.await.unwrap()
            }
            let _token = REQUEST_ID.set("req-retry".into());
            assert_eq!(retry_later(&spawner).await.as_deref(), Some("req-retry"));
        }
    }

    each_runtime! {
        fn a_sleep_never_ends_before_its_deadline_and_keeps_the_tasks_context(_spawner) {
            let _token = REQUEST_ID.set("req-sleep".into());
            // Lower bounds only: a timer never fires early; how late it fires is not asserted.
            let start = Instant::now();
            sleep(SHORT).await;
            assert!(start.elapsed() >= SHORT);
            assert_eq!(request_id().as_deref(), Some("req-sleep"));

            let deadline = Instant::now() + SHORT;
            sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
            assert_eq!(request_id().as_deref(), Some("req-sleep"));
        }
    }

    each_runtime! {
        fn tasks_woken_by_their_timers_each_see_only_their_own_id(spawner) {
            let handles: Vec<_> = (0..200u64)
                .map(|id| {
                    USER_ID.sync_scope(id, || {
                        spawner.spawn(async move {
                            for round in 0..3 {
                                sleep(Duration::from_millis((id + round) % 4)).await;
                                assert_eq!(USER_ID.get(), Some(id));
                            }
                            // Long enough for any load: only the context is under test.
                            let ticks = timeout(Duration::from_secs(60), async {
                                let mut ticks = interval(Duration::from_millis(1));
                                ticks.tick().await;
                                ticks.tick().await;
                                USER_ID.get()
                            });
                            ticks.await.unwrap()
                        })
                    })
                })
                .collect();
            for (id, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.unwrap(), Some(id as u64));
            }
            assert_eq!(USER_ID.get(), None);
        }
    }

    ctxflow::testing::each_local_runtime_and_futures! {
        fn local_tasks_sleep_and_time_out_on_every_runtimes_local_executor(local) {
            use ctxflow::LocalSpawner;
            let _token = REQUEST_ID.set("req-local".into());
            let not_send = std::rc::Rc::new(1);
            let task = local.spawn_local(async move {
                sleep(Duration::from_millis(1)).await;
                let stuck = timeout(Duration::from_millis(1), std::future::pending::<()>());
                (*not_send, stuck.await.is_err(), request_id())
            });
            let seen = task.await.unwrap();
            assert_eq!(seen, (1, true, Some("req-local".to_string())));
        }
    }

    each_runtime! {
        fn yield_now_is_pending_once_then_ready_and_keeps_the_context(_spawner) {
            let _token = REQUEST_ID.set("req-yield".into());
            let mut turn = pin!(ctxflow::yield_now());
            assert!(futures::poll!(turn.as_mut()).is_pending());
            assert!(futures::poll!(turn.as_mut()).is_ready());
            ctxflow::yield_now().await;
            assert_eq!(request_id().as_deref(), Some("req-yield"));
        }
    }

    each_runtime! {
        fn a_zero_or_past_deadline_yields_once_then_completes(_spawner) {
            for mut elapsed in [
                Box::pin(sleep(Duration::ZERO)),
                Box::pin(sleep_until(Instant::now())),
            ] {
                assert!(futures::poll!(elapsed.as_mut()).is_pending());
                assert!(futures::poll!(elapsed.as_mut()).is_ready());
                assert!(
                    futures::poll!(elapsed.as_mut()).is_ready(),
                    "still ready after completing"
                );
            }
        }
    }

    each_runtime! {
        fn a_zero_timeout_lets_a_ready_future_win_and_gives_up_on_a_pending_one_after_one_yield(_spawner) {
            assert_eq!(timeout(Duration::ZERO, async { 5 }).await, Ok(5));

            let polls = AtomicUsize::new(0);
            let stuck = future::poll_fn(|_| {
                polls.fetch_add(1, Ordering::SeqCst);
                Poll::<()>::Pending
            });
            let mut timed = pin!(timeout(Duration::ZERO, stuck));
            assert!(futures::poll!(timed.as_mut()).is_pending());
            assert!(matches!(
                futures::poll!(timed.as_mut()),
                Poll::Ready(Err(_))
            ));
            assert_eq!(polls.load(Ordering::SeqCst), 2);
        }
    }

    each_runtime! {
        fn a_future_that_times_out_is_dropped_at_the_deadline_inside_the_awaiting_tasks_context(_spawner) {
            let _token = REQUEST_ID.set("req-timeout".into());
            let (probe, dropped_in) = DropProbe::new(request_id);
            let late = async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            };
            let mut timed = Box::pin(timeout(SHORT, late));
            let error = timed.as_mut().await.unwrap_err();
            assert_eq!(error.to_string(), "deadline has elapsed");
            // The `Timeout` goes later and elsewhere; the late future went at the deadline.
            Context::empty().run(|| drop(timed));
            assert_eq!(
                *dropped_in.lock().unwrap(),
                [Some("req-timeout".to_string())]
            );
            assert_eq!(request_id().as_deref(), Some("req-timeout"));
        }
    }

    each_runtime! {
        fn a_future_that_finishes_in_time_gives_its_output_and_sees_the_context(spawner) {
            let _token = REQUEST_ID.set("req-in-time".into());
            let child = spawner.spawn(async {
                yield_now().await;
                request_id()
            });
            let seen = timeout(Duration::from_secs(60), child).await;
            assert_eq!(seen.unwrap().unwrap().as_deref(), Some("req-in-time"));
            let direct = timeout(Duration::from_secs(60), async {
                sleep(Duration::from_millis(1)).await;
                request_id()
            });
            assert_eq!(direct.await.unwrap().as_deref(), Some("req-in-time"));
        }
    }

    each_runtime! {
        fn duration_max_saturates_instead_of_overflowing_and_never_fires(_spawner) {
            assert_eq!(timeout(Duration::MAX, async { 1 }).await, Ok(1));
            let never = timeout(Duration::MAX, std::future::pending::<()>());
            assert!(!finishes_before_a_short_sleep(never).await);

            let forever = sleep(Duration::MAX);
            let a_year = Duration::from_secs(86_400 * 365);
            assert!(forever.deadline() > Instant::now() + a_year);
            assert!(!finishes_before_a_short_sleep(forever).await);

            let mut once = interval(Duration::MAX);
            once.tick().await;
            assert!(!finishes_before_a_short_sleep(once.tick()).await);
        }
    }

    each_runtime! {
        fn an_interval_ticks_at_once_then_once_per_period(_spawner) {
            let _token = REQUEST_ID.set("req-tick".into());
            let period = Duration::from_millis(5);
            let created = Instant::now();
            let mut ticks = interval(period);
            let first = {
                let mut first = pin!(ticks.tick());
                assert!(futures::poll!(first.as_mut()).is_pending(), "one yield");
                match futures::poll!(first.as_mut()) {
                    Poll::Ready(due) => due,
                    Poll::Pending => panic!("the first tick waited for a timer"),
                }
            };
            assert!(first >= created);
            let second = ticks.tick().await;
            let third = ticks.tick().await;
            assert!(second - first >= period && third - second >= period);
            assert!(Instant::now() >= third);
            assert_eq!(request_id().as_deref(), Some("req-tick"));
        }
    }

    each_runtime! {
        fn a_late_tick_is_not_followed_by_a_burst_of_catch_up_ticks(_spawner) {
            let period = Duration::from_millis(5);
            let mut ticks = interval(period);
            let first = ticks.tick().await;
            sleep(period * 4).await; // three ticks missed
            let late = ticks.tick().await;
            let next = ticks.tick().await;
            // Catching up would put `next` at `first + 2 * period`.
            assert!(next - late >= period);
            assert!(next - first >= period * 5, "{:?}", next - first);
        }
    }

    /// Timers made here, before any runtime starts, and the body that awaits them inside one.
    fn timers_made_before_the_runtime() -> impl std::future::Future<Output = ()> {
        let delay = sleep(Duration::from_millis(1));
        let bounded = timeout(Duration::from_secs(60), async { 3 });
        let mut ticks = interval(Duration::from_millis(1));
        async move {
            delay.await;
            assert_eq!(bounded.await, Ok(3));
            ticks.tick().await;
            ticks.tick().await;
        }
    }

    // Kept on the functions: their closures build the timers before the runtime starts, which a
    // body given to `each_runtime!` cannot do.
    #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
    #[test]
    fn timers_made_outside_any_runtime_run_on_the_runtime_that_awaits_them() {
        ctxflow::testing::each_runtime(|_spawner| timers_made_before_the_runtime());
    }

    #[test]
    fn timers_made_outside_any_runtime_run_on_the_local_executor_that_awaits_them() {
        ctxflow::testing::each_local_runtime(|_local| timers_made_before_the_runtime());
    }
}
