//! Local tasks, task groups and futures' `Spawn` traits, on every runtime.
#![cfg(feature = "testing")]
// A build with compio alone runs the local cases only, and uses little of what the rest imports.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(unused_imports, dead_code)
)]

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{yield_now, Counted, DropProbe};
use ctxflow::task::CarryContext;
use ctxflow::testing::{each_local_runtime, each_runtime};
use ctxflow::{ContextVar, LocalSpawner, TaskGroup};
use futures::channel::oneshot;
use futures::task::{Spawn, SpawnExt};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static ITEM_ID: ContextVar<u32> = ContextVar::new("item_id");

fn request_id() -> Option<String> {
    REQUEST_ID.get()
}

mod local_tasks {
    use super::*;

    each_local_runtime! {
        fn a_thousand_local_tasks_each_keep_their_own_id_across_awaits(local) {
            let not_send = Rc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..1_000u32)
                .map(|id| {
                    let checked = not_send.clone();
                    ITEM_ID.sync_scope(id, || {
                        local.spawn_local(async move {
                            for _ in 0..3 {
                                assert_eq!(ITEM_ID.get(), Some(id));
                                yield_now().await;
                            }
                            checked.fetch_add(1, Ordering::Relaxed);
                            ITEM_ID.get()
                        })
                    })
                })
                .collect();
            for (id, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.unwrap(), Some(id as u32));
            }
            assert_eq!(not_send.load(Ordering::Relaxed), 1_000);
            assert_eq!(ITEM_ID.get(), None);
        }
    }

    each_local_runtime! {
        fn local_handles_behave_like_spawned_ones(local) {
            let _token = REQUEST_ID.set("req-local".into());
            let failed = local.spawn_local(async { panic!("local failure") });
            assert_eq!(
                failed.await.unwrap_err().to_string(),
                "task panicked: local failure"
            );

            let (probe, dropped_in) = DropProbe::new(request_id);
            let (started, on_start) = oneshot::channel();
            let pending = local.spawn_local(async move {
                let _probe = probe;
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            });
            on_start.await.unwrap();
            pending.abort();
            assert!(pending.await.unwrap_err().is_cancelled());
            assert_eq!(*dropped_in.lock().unwrap(), [Some("req-local".to_string())]);

            let (done, on_done) = oneshot::channel();
            drop(local.spawn_local(async move {
                yield_now().await;
                done.send(REQUEST_ID.get()).unwrap();
            }));
            assert_eq!(on_done.await.unwrap().as_deref(), Some("req-local"));
        }
    }
}

mod task_groups {
    use super::*;

    each_runtime! {
        fn a_thousand_members_each_see_only_their_own_id(spawner) {
            let mut group = TaskGroup::new(spawner);
            for id in 0..1_000u32 {
                ITEM_ID.sync_scope(id, || {
                    group.spawn(async move {
                        yield_now().await;
                        (id, ITEM_ID.get())
                    })
                });
            }
            assert_eq!(group.len(), 1_000);
            let outcomes = group.join_all().await;
            assert_eq!(outcomes.len(), 1_000);
            for outcome in outcomes {
                let (id, seen) = outcome.unwrap();
                assert_eq!(seen, Some(id));
            }
        }
    }

    each_runtime! {
        fn results_arrive_in_the_order_members_finish(spawner) {
            let mut group = TaskGroup::new(spawner);
            let mut gates = Vec::new();
            for id in 0..3u32 {
                let (open, gate) = oneshot::channel::<()>();
                gates.push(Some(open));
                group.spawn(async move {
                    gate.await.unwrap();
                    id
                });
            }
            let mut order = Vec::new();
            for id in [2, 0, 1] {
                gates[id].take().unwrap().send(()).unwrap();
                order.push(group.join_next().await.unwrap().unwrap());
            }
            assert_eq!(order, [2, 0, 1]);
            assert!(group.join_next().await.is_none());
            assert!(group.is_empty());
        }
    }

    each_runtime! {
        fn dropping_the_group_aborts_its_pending_members(spawner) {
            let alive = Arc::new(AtomicUsize::new(0));
            let mut group = TaskGroup::new(spawner.clone());
            let mut started = Vec::new();
            for _ in 0..10 {
                let value = Counted::new(&alive);
                let (running, on_running) = oneshot::channel();
                started.push(on_running);
                group.spawn(async move {
                    let _value = value;
                    running.send(()).unwrap();
                    std::future::pending::<()>().await;
                });
            }
            for running in started {
                running.await.unwrap();
            }
            assert_eq!(alive.load(Ordering::SeqCst), 10);
            drop(group);
            while alive.load(Ordering::SeqCst) > 0 {
                yield_now().await;
            }
        }
    }

    each_runtime! {
        fn aborted_and_panicking_members_are_joined_with_their_errors(spawner) {
            let mut group = TaskGroup::new(spawner);
            group.spawn(std::future::pending::<u32>());
            group.spawn(async { panic!("member failed") });
            let panicked = group.join_next().await.unwrap().unwrap_err();
            assert_eq!(panicked.to_string(), "task panicked: member failed");
            group.abort_all();
            let aborted = group.join_next().await.unwrap().unwrap_err();
            assert!(aborted.is_cancelled());
            assert!(group.join_next().await.is_none());
        }
    }

    each_runtime! {
        fn members_detached_from_a_group_never_show_up_among_its_later_members(spawner) {
            use futures::StreamExt;
            let mut group = TaskGroup::new(spawner);
            let mut gates = Vec::new();
            let (finished, mut on_finished) = futures::channel::mpsc::unbounded();
            for id in 0..5u32 {
                let (open, gate) = oneshot::channel::<()>();
                gates.push(open);
                let finished = finished.clone();
                group.spawn(async move {
                    gate.await.unwrap();
                    finished.unbounded_send(id).unwrap();
                    id
                });
            }
            group.detach_all();
            assert!(group.is_empty());
            let (open, gate) = oneshot::channel::<()>();
            group.spawn(async move {
                gate.await.unwrap();
                100
            });
            // The detached members end first, each in a place a later member may reuse.
            for open in gates {
                open.send(()).unwrap();
            }
            for _ in 0..5 {
                on_finished.next().await.unwrap();
            }
            open.send(()).unwrap();
            assert_eq!(group.join_next().await.unwrap().unwrap(), 100);
            assert!(group.join_next().await.is_none());
        }
    }

    each_runtime! {
        fn the_seeds_items_processed_in_one_group_each_log_their_own_item_id(spawner) {
            fn process() -> String {
                let item_id = ITEM_ID.get().map_or("-".into(), |id| id.to_string());
                format!("processed item_id={item_id}")
            }
            let mut group = TaskGroup::new(spawner);
            for item in 0..50u32 {
                ITEM_ID.sync_scope(item, || group.spawn_blocking(move || (item, process())));
            }
            while let Some(outcome) = group.join_next().await {
                let (item, line) = outcome.unwrap();
                assert_eq!(line, format!("processed item_id={item}"));
            }
        }
    }
}

mod futures_traits {
    use super::*;

    /// Knows nothing of ctxflow.
    fn start_background(spawner: &impl Spawn) -> futures::future::RemoteHandle<Option<String>> {
        spawner
            .spawn_with_handle(async { REQUEST_ID.get() })
            .expect("spawn")
    }

    each_runtime! {
        fn code_written_against_futures_spawn_carries_the_callers_context(spawner) {
            let _token = REQUEST_ID.set("req-spawn".into());
            let seen = start_background(&spawner).await;
            assert_eq!(seen.as_deref(), Some("req-spawn"));
        }
    }

    #[test]
    fn a_wrapped_thread_pool_carries_the_callers_context() {
        let pool = CarryContext::new(futures::executor::ThreadPool::new().unwrap());
        let _token = REQUEST_ID.set("req-pool".into());
        let seen = futures::executor::block_on(start_background(&pool));
        assert_eq!(seen.as_deref(), Some("req-pool"));

        let plain = futures::executor::ThreadPool::new().unwrap();
        let seen = futures::executor::block_on(start_background(&plain));
        assert_eq!(
            seen, None,
            "without the wrapper the pool's thread sees nothing"
        );
    }
}
