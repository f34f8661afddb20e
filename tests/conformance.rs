//! The `Spawner` contract, checked on every runtime the features enable, from one suite.
//!
//! Each case is one body that `each_runtime` runs on a fresh tokio multi-thread runtime, tokio
//! current-thread runtime, smol executor and async-std.
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
use std::sync::{Arc, Mutex};

use common::{yield_now, Counted, DropProbe};
// The suite runs on every runtime `each_runtime!` covers, and on futures' pools through
// `ctxflow::futures` (feature `futures-executor`), the adapter written with the public API alone.
use ctxflow::testing::each_runtime_and_futures as each_runtime;
use ctxflow::testing::{spawn_blocking_unwrapped, spawn_unwrapped};
use ctxflow::{preserve_context, task_name, Context, ContextVar, InContext, Spawner};
use futures::channel::oneshot;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");

fn request_id() -> Option<String> {
    REQUEST_ID.get()
}

mod seed_scenarios {
    use super::*;

    each_runtime! {
        fn a_background_task_sees_the_parents_request_id(spawner) {
            let _token = REQUEST_ID.set("req-123".into());
            let background = spawner.spawn(async { request_id() });
            assert_eq!(background.await.unwrap().as_deref(), Some("req-123"));
        }
    }

    each_runtime! {
        fn a_named_task_sees_its_name_and_the_parents_context(spawner) {
            let _token = REQUEST_ID.set("req-123".into());
            let task = spawner.spawn_named("process-order-123", async {
                yield_now().await;
                (task_name().map(|name| name.to_string()), request_id())
            });
            let (name, id) = task.await.unwrap();
            assert_eq!(name.as_deref(), Some("process-order-123"));
            assert_eq!(id.as_deref(), Some("req-123"));
            assert_eq!(task_name(), None, "the name stays inside the named task");
        }
    }

    each_runtime! {
        fn a_task_spawned_by_a_named_task_is_not_named_after_it(spawner) {
            let inner = spawner.clone();
            let child = spawner
                .spawn_named(
                    "parent",
                    async move { inner.spawn(async { task_name() }).await },
                )
                .await
                .unwrap();
            assert_eq!(child.unwrap(), None);
        }
    }

    each_runtime! {
        fn a_blocking_closure_takes_arguments_returns_a_value_and_sees_the_context(spawner) {
            fn process_item(item_id: &str, priority: u8) -> (String, String) {
                let status = format!("done {item_id} at priority {priority}");
                (status, request_id().unwrap_or_default())
            }
            let _token = REQUEST_ID.set("req-456".into());
            let item_id = "item-123".to_string();
            let result = spawner.spawn_blocking(move || process_item(&item_id, 1));
            let (status, seen) = result.await.unwrap();
            assert_eq!(status, "done item-123 at priority 1");
            assert_eq!(seen, "req-456");
        }
    }

    each_runtime! {
        fn preserve_context_workers_see_the_callers_context_joined_or_spawned(spawner) {
            async fn worker() -> Option<u64> {
                yield_now().await;
                USER_ID.get()
            }
            let _token = USER_ID.set(789);
            let joined = futures::join!(preserve_context(worker()), preserve_context(worker()));
            assert_eq!(joined, (Some(789), Some(789)));

            let spawned = spawner.spawn(preserve_context(worker()));
            assert_eq!(spawned.await.unwrap(), Some(789));

            // Like `asyncio.create_task(worker())`: the runtime's own spawn, yet the worker
            // keeps the context it was created in.
            let (sender, receiver) = oneshot::channel();
            let preserved = preserve_context(worker());
            spawn_unwrapped(&spawner, async move {
                let _ = sender.send(preserved.await);
            });
            assert_eq!(receiver.await.unwrap(), Some(789));
        }
    }

    each_runtime! {
        fn a_childs_writes_never_reach_its_parent(spawner) {
            let _token = REQUEST_ID.set("parent-value".into());
            let child = spawner.spawn(async {
                let _token = REQUEST_ID.set("child-override".into());
                yield_now().await;
                request_id()
            });
            assert_eq!(child.await.unwrap().as_deref(), Some("child-override"));
            assert_eq!(request_id().as_deref(), Some("parent-value"));
        }
    }

    each_runtime! {
        fn a_parents_writes_after_the_spawn_never_reach_the_child(spawner) {
            let _token = REQUEST_ID.set("before".into());
            let (go, wait) = oneshot::channel::<()>();
            let child = spawner.spawn(async move {
                wait.await.unwrap();
                request_id()
            });
            let _later = REQUEST_ID.set("after".into());
            go.send(()).unwrap();
            assert_eq!(child.await.unwrap().as_deref(), Some("before"));
        }
    }
}

mod isolation {
    use super::*;

    each_runtime! {
        fn a_task_spawned_by_the_runtime_itself_sees_no_context_on_busy_workers(spawner) {
            let _token = REQUEST_ID.set("parent".into());
            let handles: Vec<_> = (0..100)
                .map(|i| {
                    spawner.spawn(async move {
                        let _token = REQUEST_ID.set(format!("task-{i}"));
                        yield_now().await;
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
            let mut seen = Vec::new();
            for _ in 0..10 {
                let (sender, receiver) = oneshot::channel();
                spawn_unwrapped(&spawner, async move {
                    let before = request_id();
                    yield_now().await;
                    let _ = sender.send((before, request_id()));
                });
                seen.push(receiver.await.unwrap());
            }
            assert!(seen.iter().all(|seen| *seen == (None, None)), "{seen:?}");
        }
    }

    each_runtime! {
        fn a_blocking_closure_leaves_nothing_on_the_pool_thread(spawner) {
            let _token = REQUEST_ID.set("caller".into());
            for i in 0..20 {
                spawner
                    .spawn_blocking(move || {
                        // Its token is never reset: only the closure's end can undo the set.
                        std::mem::forget(REQUEST_ID.set(format!("job-{i}")));
                    })
                    .await
                    .unwrap();
                let (sender, receiver) = oneshot::channel();
                spawn_blocking_unwrapped(&spawner, move || {
                    let _ = sender.send(request_id());
                });
                assert_eq!(receiver.await.unwrap(), None, "left on a pool thread");
            }
        }
    }

    each_runtime! {
        fn a_task_that_sets_a_value_keeps_it_across_many_yields(spawner) {
            let task = spawner.spawn(async {
                let _token = USER_ID.set(42);
                for _ in 0..200 {
                    yield_now().await;
                    assert_eq!(USER_ID.get(), Some(42));
                }
            });
            task.await.unwrap();
            assert_eq!(USER_ID.get(), None);
        }
    }

    each_runtime! {
        fn ten_thousand_concurrent_tasks_each_see_only_their_own_id_at_every_poll(spawner) {
            let mismatches = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..10_000u64)
                .map(|id| {
                    let mismatches = mismatches.clone();
                    USER_ID.sync_scope(id, || {
                        spawner.spawn(async move {
                            for _ in 0..3 {
                                if USER_ID.get() != Some(id) {
                                    mismatches.fetch_add(1, Ordering::Relaxed);
                                }
                                yield_now().await;
                            }
                            USER_ID.get()
                        })
                    })
                })
                .collect();
            for (id, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.unwrap(), Some(id as u64));
            }
            assert_eq!(mismatches.load(Ordering::Relaxed), 0);
        }
    }

    each_runtime! {
        fn spawn_in_runs_the_task_in_the_given_context(spawner) {
            let _token = REQUEST_ID.set("caller".into());
            let given = Context::empty().with_value(&USER_ID, 5);
            let seen = spawner.spawn_in(given.clone(), async { (request_id(), USER_ID.get()) });
            assert_eq!(seen.await.unwrap(), (None, Some(5)));
            let seen = spawner.spawn_blocking_in(given, || (request_id(), USER_ID.get()));
            assert_eq!(seen.await.unwrap(), (None, Some(5)));
        }
    }

    each_runtime! {
        fn block_on_runs_the_future_in_the_callers_context(spawner) {
            let _token = REQUEST_ID.set("req-block".into());
            let inner = spawner.clone();
            let seen = spawner
                .spawn_blocking(move || {
                    inner.block_on(async {
                        yield_now().await;
                        request_id()
                    })
                })
                .await
                .unwrap();
            assert_eq!(seen.as_deref(), Some("req-block"));
        }
    }
}

mod handles {
    use super::*;

    each_runtime! {
        fn a_panicking_task_gives_a_panic_join_error_and_the_runtime_keeps_serving(spawner) {
            let _token = REQUEST_ID.set("req".into());
            let failed = spawner.spawn(async {
                let _token = REQUEST_ID.set("inside".into());
                yield_now().await;
                panic!("task failed");
            });
            let error = failed.await.unwrap_err();
            assert!(error.is_panic() && !error.is_cancelled());
            assert_eq!(error.to_string(), "task panicked: task failed");
            assert_eq!(
                *error.into_panic().downcast::<&str>().unwrap(),
                "task failed"
            );
            let after = spawner.spawn(async { request_id() });
            assert_eq!(after.await.unwrap().as_deref(), Some("req"));
            let (sender, receiver) = oneshot::channel();
            spawn_unwrapped(&spawner, async move {
                let _ = sender.send(request_id());
            });
            assert_eq!(
                receiver.await.unwrap(),
                None,
                "no context left on the worker"
            );
        }
    }

    each_runtime! {
        fn a_panicking_blocking_closure_gives_a_panic_join_error(spawner) {
            let failed = spawner.spawn_blocking(|| -> u32 { panic!("closure failed") });
            let error = failed.await.unwrap_err();
            assert!(error.is_panic());
            assert_eq!(error.to_string(), "task panicked: closure failed");
            let after = spawner.spawn_blocking(|| 7);
            assert_eq!(after.await.unwrap(), 7);
        }
    }

    each_runtime! {
        fn a_future_that_panics_when_dropped_after_finishing_gives_that_panic(spawner) {
            struct ReadyButPanicsOnDrop;
            impl std::future::Future for ReadyButPanicsOnDrop {
                type Output = u8;
                fn poll(
                    self: std::pin::Pin<&mut Self>,
                    _: &mut std::task::Context<'_>,
                ) -> std::task::Poll<u8> {
                    std::task::Poll::Ready(1)
                }
            }
            impl Drop for ReadyButPanicsOnDrop {
                fn drop(&mut self) {
                    panic!("drop failed");
                }
            }
            let error = spawner.spawn(ReadyButPanicsOnDrop).await.unwrap_err();
            assert_eq!(error.to_string(), "task panicked: drop failed");
            assert_eq!(spawner.spawn(async { 2 }).await.unwrap(), 2);
        }
    }

    each_runtime! {
        fn abort_cancels_a_pending_task_and_drops_its_future_inside_its_context(spawner) {
            let _token = REQUEST_ID.set("req-abort".into());
            let (probe, dropped_in) = DropProbe::new(request_id);
            let (started, on_start) = oneshot::channel();
            let task = spawner.spawn(async move {
                let _probe = probe;
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            });
            on_start.await.unwrap();
            assert!(!task.is_finished());
            task.abort();
            let error = task.await.unwrap_err();
            assert!(error.is_cancelled() && !error.is_panic());
            assert_eq!(error.to_string(), "task was cancelled");
            assert_eq!(*dropped_in.lock().unwrap(), [Some("req-abort".to_string())]);
        }
    }

    // Without awaiting the handle: a loop that waits on `is_finished` alone must end.
    each_runtime! {
        fn is_finished_turns_true_once_an_aborted_task_is_dropped(spawner) {
            let (started, on_start) = oneshot::channel();
            let task = spawner.spawn(async move {
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            });
            on_start.await.unwrap();
            task.abort();
            let mut yields = 0;
            while !task.is_finished() && yields < 100_000 {
                yield_now().await;
                yields += 1;
            }
            assert!(task.is_finished(), "still unfinished after {yields} yields");
            assert!(task.await.unwrap_err().is_cancelled());
        }
    }

    each_runtime! {
        fn abort_after_the_task_finished_keeps_its_result(spawner) {
            let (done, on_done) = oneshot::channel();
            let task = spawner.spawn(async move {
                done.send(()).unwrap();
                11
            });
            on_done.await.unwrap();
            while !task.is_finished() {
                yield_now().await;
            }
            task.abort();
            assert_eq!(task.await.unwrap(), 11);
        }
    }

    each_runtime! {
        fn dropping_the_handle_detaches_the_task(spawner) {
            let _token = REQUEST_ID.set("detached".into());
            let (go, wait) = oneshot::channel::<()>();
            let (done, on_done) = oneshot::channel();
            drop(spawner.spawn(async move {
                wait.await.unwrap();
                done.send(request_id()).unwrap();
            }));
            go.send(()).unwrap();
            assert_eq!(on_done.await.unwrap().as_deref(), Some("detached"));

            let (done, on_done) = oneshot::channel();
            spawner
                .spawn(async move {
                    yield_now().await;
                    done.send(()).unwrap();
                })
                .detach();
            on_done.await.unwrap();
        }
    }

    each_runtime! {
        fn is_finished_turns_true_when_the_task_ends(spawner) {
            let (go, wait) = oneshot::channel::<()>();
            let task = spawner.spawn(async move { wait.await.is_ok() });
            assert!(!task.is_finished());
            go.send(()).unwrap();
            while !task.is_finished() {
                yield_now().await;
            }
            assert!(task.await.unwrap());
        }
    }

    each_runtime! {
        fn a_finished_tasks_values_are_released(spawner) {
            static HELD: ContextVar<Counted> = ContextVar::new("held");
            let alive = Arc::new(AtomicUsize::new(0));
            let seen = Arc::new(Mutex::new(0));
            let task = HELD.sync_scope(Counted::new(&alive), || {
                let seen = seen.clone();
                spawner.spawn(async move {
                    *seen.lock().unwrap() = usize::from(HELD.is_set());
                })
            });
            task.await.unwrap();
            assert_eq!(*seen.lock().unwrap(), 1);
            assert_eq!(
                alive.load(Ordering::SeqCst),
                0,
                "the snapshot went with the task"
            );
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

mod flow {
    use super::*;

    static TX_CALLBACKS: ContextVar<String> = ContextVar::non_flowing("tx_callbacks");

    each_runtime! {
        fn a_non_flowing_variable_stays_in_its_task_while_a_flowing_one_follows_spawns(spawner) {
            let _tx = TX_CALLBACKS.set("tx-1".into());
            let _id = REQUEST_ID.set("req-1".into());
            let read = || (TX_CALLBACKS.get(), request_id());

            let task = spawner.spawn(async move { read() });
            let blocking = spawner.spawn_blocking(read);
            let expected = (None, Some("req-1".to_string()));
            assert_eq!(task.await.unwrap(), expected);
            assert_eq!(blocking.await.unwrap(), expected);

            for _ in 0..20 {
                yield_now().await;
            }
            let here = (Some("tx-1".to_string()), Some("req-1".to_string()));
            assert_eq!(read(), here);
            let joined = futures::join!(async { read() }, async {
                yield_now().await;
                read()
            });
            assert_eq!(joined, (here.clone(), here));
        }
    }

    each_runtime! {
        fn a_suppressed_spawn_starts_empty_while_its_sibling_gets_the_parents_context(spawner) {
            let _id = REQUEST_ID.set("req-1".into());
            let (worker, blocking) = ctxflow::suppress_flow(|| {
                (
                    spawner.spawn(async { request_id() }),
                    spawner.spawn_blocking(request_id),
                )
            });
            let sibling = spawner.spawn(async { request_id() });
            assert_eq!(worker.await.unwrap(), None);
            assert_eq!(blocking.await.unwrap(), None);
            assert_eq!(sibling.await.unwrap().as_deref(), Some("req-1"));
            assert_eq!(request_id().as_deref(), Some("req-1"));
        }
    }

    // Suppression belongs to the context that asked for it: a future polled inside, in a
    // context of its own (as a task polled by a `block_on` is), or a `run`, spawns as usual,
    // while `sync_scope`, a variant of the caller's context, stays suppressed.
    each_runtime! {
        fn work_in_a_context_of_its_own_inside_suppress_flow_spawns_as_usual(spawner) {
            let _id = REQUEST_ID.set("req-1".into());
            let earlier = {
                let spawner = spawner.clone();
                futures::future::lazy(move |_| spawner.spawn(async { request_id() }))
                    .in_current_context()
            };
            let (polled_child, run_child, sync_scope_child) = ctxflow::suppress_flow(|| {
                (
                    futures::FutureExt::now_or_never(earlier).expect("ready at its first poll"),
                    Context::current().run(|| spawner.spawn(async { request_id() })),
                    REQUEST_ID.sync_scope("req-2".into(), || spawner.spawn(async { request_id() })),
                )
            });
            assert_eq!(polled_child.await.unwrap().as_deref(), Some("req-1"));
            assert_eq!(run_child.await.unwrap().as_deref(), Some("req-1"));
            assert_eq!(sync_scope_child.await.unwrap(), None);
            assert!(!ctxflow::context::is_flow_suppressed());
        }
    }

    each_runtime! {
        fn queued_jobs_run_with_their_submitters_context_not_the_workers(spawner) {
            type Job = (Context, u64);
            let (submit, queue) = futures::channel::mpsc::unbounded::<Job>();
            let queue = Arc::new(futures::lock::Mutex::new(queue));
            let (report, reports) = futures::channel::mpsc::unbounded();
            let _startup = REQUEST_ID.set("startup".into());
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let queue = queue.clone();
                    let report = report.clone();
                    spawner.spawn(async move {
                        use futures::StreamExt;
                        while let Some((context, job)) = queue.lock().await.next().await {
                            let seen = context.run(request_id);
                            report.unbounded_send((job, seen)).unwrap();
                        }
                    })
                })
                .collect();
            drop(report);
            for job in 0..1_000u64 {
                REQUEST_ID.sync_scope(format!("req-{job}"), || {
                    submit
                        .unbounded_send((Context::inheritable(), job))
                        .unwrap();
                });
            }
            drop(submit);
            use futures::StreamExt;
            let reports: Vec<(u64, Option<String>)> = reports.collect().await;
            assert_eq!(reports.len(), 1_000);
            for (job, seen) in reports {
                assert_eq!(seen, Some(format!("req-{job}")));
            }
            for worker in workers {
                worker.await.unwrap();
            }
        }
    }
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
