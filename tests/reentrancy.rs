//! Reentrancy: contexts installed inside other installs (a `block_on` inside a blocking
//! closure, a wrapped future polled inside another's poll, `Context::run` inside a poll), and
//! one snapshot installed on several threads at once. Each sees its own context, and each
//! caller gets its own back.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;

use common::{poll_once, yield_now, Counted};
use ctxflow::testing::each_runtime;
use ctxflow::{Context, ContextVar, InContext, Spawner};

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
static STEP: ContextVar<u64> = ContextVar::new("step");
static HELD: ContextVar<Counted> = ContextVar::new("held");

fn request_id() -> Option<u64> {
    REQUEST_ID.get()
}

mod block_on {
    use super::*;

    each_runtime! {
        fn block_on_inside_a_blocking_closure_runs_in_the_closures_context_and_gives_it_back(spawner) {
            let _token = REQUEST_ID.set(1);
            let inner = spawner.clone();
            let seen = spawner.spawn_blocking(move || {
                let _token = REQUEST_ID.set(2);
                let in_block_on = inner.block_on(async {
                    let before = request_id();
                    let _token = STEP.set(3);
                    yield_now().await;
                    let child = inner.spawn(async { (request_id(), STEP.get()) });
                    (before, STEP.get(), child.await.unwrap())
                });
                // A block_on inside a block_on, in another context.
                let nested = Context::empty().with_value(&REQUEST_ID, 4).run(|| {
                    inner.block_on(async {
                        yield_now().await;
                        request_id()
                    })
                });
                (in_block_on, nested, request_id(), STEP.get())
            });
            let (in_block_on, nested, after, step_after) = seen.await.unwrap();
            assert_eq!(in_block_on, (Some(2), Some(3), (Some(2), Some(3))));
            assert_eq!(nested, Some(4));
            assert_eq!(
                (after, step_after),
                (Some(2), None),
                "the closure's own, as before"
            );
            assert_eq!(request_id(), Some(1));
        }
    }

    each_runtime! {
        fn a_block_on_that_panics_inside_a_blocking_closure_gives_the_closure_its_context_back(spawner) {
            let inner = spawner.clone();
            let seen =
                spawner.spawn_blocking_in(Context::empty().with_value(&REQUEST_ID, 5), move || {
                    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                        inner.block_on(async {
                            let _token = REQUEST_ID.set(6);
                            yield_now().await;
                            panic!("inside block_on");
                        })
                    }));
                    (outcome.is_err(), request_id())
                });
            assert_eq!(seen.await.unwrap(), (true, Some(5)));
        }
    }
}

mod nested_polls {
    use super::*;

    #[test]
    fn a_wrapped_future_polled_inside_another_wrapped_futures_poll_sees_only_its_own_context() {
        let outer_cx = Context::empty().with_value(&REQUEST_ID, 1);
        let inner_cx = Context::empty().with_value(&REQUEST_ID, 2);
        let outer = async move {
            let mut seen = Vec::new();
            let mut inner = pin!(async {
                let mut seen = vec![request_id()];
                let _token = STEP.set(20);
                yield_now().await;
                seen.push(request_id());
                seen.push(STEP.get());
                seen
            }
            .in_context(inner_cx));
            let _token = STEP.set(10);
            // The inner future is polled by hand, from inside this future's own polls.
            loop {
                seen.push((request_id(), STEP.get()));
                match poll_once(inner.as_mut()) {
                    Poll::Ready(inner_seen) => {
                        seen.push((request_id(), STEP.get()));
                        break (seen, inner_seen);
                    }
                    Poll::Pending => {
                        seen.push((request_id(), STEP.get()));
                        yield_now().await;
                    }
                }
            }
        }
        .in_context(outer_cx);
        let _poller = REQUEST_ID.set(0);
        let (outer_seen, inner_seen) = futures::executor::block_on(outer);
        assert!(
            outer_seen.iter().all(|seen| *seen == (Some(1), Some(10))),
            "{outer_seen:?}"
        );
        assert_eq!(inner_seen, [Some(2), Some(2), Some(20)]);
        assert_eq!((request_id(), STEP.get()), (Some(0), None));
    }

    #[test]
    fn a_wrapped_future_that_panics_inside_another_wrapped_futures_poll_gives_each_its_own_back() {
        let outer = async {
            let _token = STEP.set(1);
            let mut failing = Box::pin(
                async {
                    let _token = STEP.set(2);
                    panic!("inner poll failed");
                }
                .in_context(Context::empty().with_value(&REQUEST_ID, 2)),
            );
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| poll_once(failing.as_mut())));
            yield_now().await;
            (outcome.is_err(), request_id(), STEP.get())
        }
        .in_context(Context::empty().with_value(&REQUEST_ID, 1));
        assert_eq!(futures::executor::block_on(outer), (true, Some(1), Some(1)));
        assert_eq!((request_id(), STEP.get()), (None, None));
    }

    each_runtime! {
        fn context_run_inside_a_tasks_poll_is_undone_before_the_poll_ends(spawner) {
            let task = spawner.spawn_in(Context::empty().with_value(&REQUEST_ID, 1), async {
                let other = Context::empty().with_value(&REQUEST_ID, 2);
                let mut seen = Vec::new();
                for _ in 0..10 {
                    let inside = other.run(|| {
                        let _token = STEP.set(3);
                        let nested = Context::empty().run(request_id);
                        let failed = panic::catch_unwind(AssertUnwindSafe(|| {
                            other.run(|| {
                                let _token = REQUEST_ID.set(4);
                                panic!("run failed");
                            })
                        }));
                        (request_id(), STEP.get(), nested, failed.is_err())
                    });
                    seen.push((inside, request_id(), STEP.get()));
                    yield_now().await;
                }
                seen
            });
            for seen in task.await.unwrap() {
                assert_eq!(seen, ((Some(2), Some(3), None, true), Some(1), None));
            }
        }
    }
}

mod shared_snapshots {
    use super::*;

    #[allow(
        clippy::disallowed_methods,
        reason = "plain threads, each installing the snapshot itself"
    )]
    #[test]
    fn one_snapshot_installed_on_several_threads_at_once_is_seen_by_each_and_changed_by_none() {
        const THREADS: u64 = 8;
        let alive = Arc::new(AtomicUsize::new(0));
        let cx = Context::empty()
            .with_value(&REQUEST_ID, 7)
            .with_value(&HELD, Counted::new(&alive));
        let barrier = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (cx, barrier) = (cx.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // Half run it, half attach it; all at once.
                    let body = || {
                        barrier.wait();
                        let before = request_id();
                        let _token = REQUEST_ID.set(100 + thread);
                        let _step = STEP.set(thread);
                        barrier.wait();
                        let own = (request_id(), STEP.get());
                        barrier.wait();
                        (before, own)
                    };
                    let seen = if thread % 2 == 0 {
                        cx.run(body)
                    } else {
                        let _guard = cx.attach();
                        body()
                    };
                    (seen, request_id(), STEP.get())
                })
            })
            .collect();
        for (thread, handle) in threads.into_iter().enumerate() {
            let thread = thread as u64;
            let (seen, after, step_after) = handle.join().unwrap();
            assert_eq!(seen, (Some(7), (Some(100 + thread), Some(thread))));
            assert_eq!((after, step_after), (None, None));
        }
        assert_eq!((cx.get(&REQUEST_ID), cx.get(&STEP)), (Some(&7), None));
        assert_eq!(alive.load(Ordering::SeqCst), 1, "shared, never copied");
        drop(cx);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }

    each_runtime! {
        fn one_snapshot_given_to_many_tasks_and_closures_at_once_is_seen_by_each_and_changed_by_none(spawner) {
            let alive = Arc::new(AtomicUsize::new(0));
            let cx = Context::empty()
                .with_value(&REQUEST_ID, 7)
                .with_value(&HELD, Counted::new(&alive));
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    spawner.spawn_in(cx.clone(), async move {
                        let before = request_id();
                        let _token = REQUEST_ID.set(100 + i);
                        yield_now().await;
                        (before, request_id())
                    })
                })
                .collect();
            let closures: Vec<_> = (0..20)
                .map(|i| {
                    spawner.spawn_blocking_in(cx.clone(), move || {
                        let before = request_id();
                        let _token = REQUEST_ID.set(200 + i);
                        (before, request_id())
                    })
                })
                .collect();
            for (i, task) in tasks.into_iter().enumerate() {
                assert_eq!(task.await.unwrap(), (Some(7), Some(100 + i as u64)));
            }
            for (i, closure) in closures.into_iter().enumerate() {
                assert_eq!(closure.await.unwrap(), (Some(7), Some(200 + i as u64)));
            }
            assert_eq!(cx.get(&REQUEST_ID), Some(&7));
            assert_eq!(alive.load(Ordering::SeqCst), 1);
            drop(cx);
            assert_eq!(alive.load(Ordering::SeqCst), 0);
        }
    }
}
