//! The contract's checks, each generic over the spawner, so that an adapter's own spawn path
//! (its `spawn_prepared` and join handle) is the one checked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Wake, Waker};

use futures::channel::oneshot;
use futures::FutureExt;

use crate::testing::{spawn_blocking_unwrapped, spawn_unwrapped};
use crate::{
    preserve_context, task_name, yield_now, Context, ContextVar, InContext, JoinHandle, Spawner,
};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
static TX_CALLBACKS: ContextVar<String> = ContextVar::non_flowing("tx_callbacks");

fn request_id() -> Option<String> {
    REQUEST_ID.get()
}

// The seed's scenarios: what fapilog's helpers promise in Python.

pub async fn a_background_task_sees_the_parents_request_id<S: Spawner>(spawner: S) {
    let _token = REQUEST_ID.set("req-123".into());
    let background = spawner.spawn(async { request_id() });
    assert_eq!(background.await.unwrap().as_deref(), Some("req-123"));
}

pub async fn a_named_task_sees_its_name_and_the_parents_context<S: Spawner>(spawner: S) {
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

pub async fn a_task_spawned_by_a_named_task_is_not_named_after_it<S: Spawner>(spawner: S) {
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

pub async fn a_blocking_closure_takes_arguments_returns_a_value_and_sees_the_context<S: Spawner>(
    spawner: S,
) {
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

pub async fn preserve_context_workers_see_the_callers_context_joined_or_spawned<S: Spawner>(
    spawner: S,
) {
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

pub async fn a_childs_writes_never_reach_its_parent<S: Spawner>(spawner: S) {
    let _token = REQUEST_ID.set("parent-value".into());
    let child = spawner.spawn(async {
        let _token = REQUEST_ID.set("child-override".into());
        yield_now().await;
        request_id()
    });
    assert_eq!(child.await.unwrap().as_deref(), Some("child-override"));
    assert_eq!(request_id().as_deref(), Some("parent-value"));
}

pub async fn a_parents_writes_after_the_spawn_never_reach_the_child<S: Spawner>(spawner: S) {
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

// Isolation: nothing one task sets reaches another, or the runtime's threads.

pub async fn a_task_spawned_by_the_runtime_itself_sees_no_context_on_busy_workers<S: Spawner>(
    spawner: S,
) {
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

pub async fn a_blocking_closure_leaves_nothing_on_the_pool_thread<S: Spawner>(spawner: S) {
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

pub async fn a_task_that_sets_a_value_keeps_it_across_many_yields<S: Spawner>(spawner: S) {
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

pub async fn ten_thousand_concurrent_tasks_each_see_only_their_own_id_at_every_poll<S: Spawner>(
    spawner: S,
) {
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

pub async fn spawn_in_runs_the_task_in_the_given_context<S: Spawner>(spawner: S) {
    let _token = REQUEST_ID.set("caller".into());
    let given = Context::empty().with_value(&USER_ID, 5);
    let seen = spawner.spawn_in(given.clone(), async { (request_id(), USER_ID.get()) });
    assert_eq!(seen.await.unwrap(), (None, Some(5)));
    let seen = spawner.spawn_blocking_in(given, || (request_id(), USER_ID.get()));
    assert_eq!(seen.await.unwrap(), (None, Some(5)));
}

pub async fn block_on_runs_the_future_in_the_callers_context<S: Spawner>(spawner: S) {
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

// Join handles: outcomes, panics, aborts and detaching, the same on every runtime.

pub async fn a_panicking_task_gives_a_panic_join_error_and_the_runtime_keeps_serving<S: Spawner>(
    spawner: S,
) {
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

pub async fn a_panicking_blocking_closure_gives_a_panic_join_error<S: Spawner>(spawner: S) {
    let failed = spawner.spawn_blocking(|| -> u32 { panic!("closure failed") });
    let error = failed.await.unwrap_err();
    assert!(error.is_panic());
    assert_eq!(error.to_string(), "task panicked: closure failed");
    let after = spawner.spawn_blocking(|| 7);
    assert_eq!(after.await.unwrap(), 7);
}

pub async fn a_future_that_panics_when_dropped_after_finishing_gives_that_panic<S: Spawner>(
    spawner: S,
) {
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

pub async fn abort_cancels_a_pending_task_and_drops_its_future_inside_its_context<S: Spawner>(
    spawner: S,
) {
    /// Sends, when dropped, the request id its drop sees.
    struct DropProbe(Option<oneshot::Sender<Option<String>>>);
    impl Drop for DropProbe {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(request_id());
        }
    }

    let _token = REQUEST_ID.set("req-abort".into());
    let (dropped, dropped_in) = oneshot::channel();
    let (started, on_start) = oneshot::channel();
    let probe = DropProbe(Some(dropped));
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
    let dropped_in = dropped_in.now_or_never();
    assert_eq!(
        dropped_in,
        Some(Ok(Some("req-abort".to_string()))),
        "dropped inside its context before its handle reported"
    );
}

/// Without awaiting the handle: a loop that waits on `is_finished` alone must end.
pub async fn is_finished_turns_true_once_an_aborted_task_is_dropped<S: Spawner>(spawner: S) {
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

/// A pending task whose future, once aborted, is dropped only after `release`: the check polls
/// its handle while the abort is still under way, whichever thread the runtime drops it on.
struct AbortableOnCue {
    task: JoinHandle<()>,
    release: mpsc::Sender<()>,
    dropped: oneshot::Receiver<()>,
}

impl AbortableOnCue {
    async fn spawn<S: Spawner>(spawner: &S) -> Self {
        /// Blocks its drop until the check releases it (or fails, dropping `release`).
        struct HeldDrop {
            release: mpsc::Receiver<()>,
            dropped: Option<oneshot::Sender<()>>,
        }
        impl Drop for HeldDrop {
            fn drop(&mut self) {
                let _ = self.release.recv();
                let _ = self.dropped.take().unwrap().send(());
            }
        }

        let (release, released) = mpsc::channel();
        let (dropped, on_drop) = oneshot::channel();
        let (started, on_start) = oneshot::channel();
        let held = HeldDrop {
            release: released,
            dropped: Some(dropped),
        };
        let task = spawner.spawn(async move {
            let _held = held;
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        on_start.await.unwrap();
        AbortableOnCue {
            task,
            release,
            dropped: on_drop,
        }
    }

    /// Lets the aborted future's drop go ahead, then checks that `awaiter`, the waker of a poll
    /// of the handle made before, is woken once it is dropped, and that the handle reports the
    /// cancellation.
    async fn assert_the_awaiter_is_woken(self, awaiter: Awaiter, what: &str) {
        let Awaiter { waker, woken } = awaiter;
        // The check's own copy goes: a waker the handle let go of unwoken then ends `woken`.
        drop(waker);
        self.release.send(()).unwrap();
        self.dropped.await.unwrap();
        // The wake-up follows the drop at once, on the thread that dropped; one that was lost
        // never comes, so the wait gives up after many yields instead of hanging.
        let give_up = Box::pin(async {
            for _ in 0..1_000_000 {
                yield_now().await;
            }
        });
        match futures::future::select(woken, give_up).await {
            futures::future::Either::Left((Ok(()), _)) => {}
            futures::future::Either::Left((Err(_), _)) => {
                panic!("{what}: the handle let go of its awaiter's waker without waking it")
            }
            futures::future::Either::Right(_) => {
                panic!("{what}: the awaiter was never woken after the task was dropped")
            }
        }
        let error = self.task.await.unwrap_err();
        assert!(error.is_cancelled(), "{what}: {error}");
    }
}

/// The waker of a task that awaits a handle, apart from the check's own task: `woken` says
/// whether the handle woke it, or let go of it unwoken.
struct Awaiter {
    waker: Waker,
    woken: oneshot::Receiver<()>,
}

impl Awaiter {
    fn new() -> Self {
        struct SendsWhenWoken(Mutex<Option<oneshot::Sender<()>>>);
        impl Wake for SendsWhenWoken {
            fn wake(self: Arc<Self>) {
                self.wake_by_ref();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                let sender = self
                    .0
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .take();
                if let Some(sender) = sender {
                    let _ = sender.send(());
                }
            }
        }
        let (sender, woken) = oneshot::channel();
        let waker = Waker::from(Arc::new(SendsWhenWoken(Mutex::new(Some(sender)))));
        Awaiter { waker, woken }
    }

    fn poll(&self, task: &mut JoinHandle<()>) -> Poll<Result<(), crate::JoinError>> {
        Pin::new(task).poll(&mut std::task::Context::from_waker(&self.waker))
    }
}

/// A poll that asks `is_finished()` right after polling the aborted handle (a progress log,
/// say) still gets woken when the task is dropped.
pub async fn is_finished_asked_in_the_poll_that_awaits_an_aborted_handle_keeps_its_wake_up<
    S: Spawner,
>(
    spawner: S,
) {
    let mut task = AbortableOnCue::spawn(&spawner).await;
    task.task.abort();
    let awaiter = Awaiter::new();
    assert!(awaiter.poll(&mut task.task).is_pending());
    assert!(!task.task.is_finished());
    task.assert_the_awaiter_is_woken(awaiter, "is_finished after the poll")
        .await;
}

/// An abort made after the handle was polled (by a future that wraps it, say) still wakes the
/// task that polled it once the task is dropped.
pub async fn abort_after_the_handle_was_polled_keeps_its_awaiters_wake_up<S: Spawner>(spawner: S) {
    let mut task = AbortableOnCue::spawn(&spawner).await;
    let awaiter = Awaiter::new();
    assert!(awaiter.poll(&mut task.task).is_pending());
    task.task.abort();
    task.assert_the_awaiter_is_woken(awaiter, "abort after the poll")
        .await;
}

pub async fn abort_after_the_task_finished_keeps_its_result<S: Spawner>(spawner: S) {
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

pub async fn dropping_the_handle_detaches_the_task<S: Spawner>(spawner: S) {
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

/// The runtime drops a detached task's output, and a panic of that drop must go no further
/// than the panic hook: async-task drops it where a panic aborts the process. The same for a
/// panic payload whose drop panics.
pub async fn a_detached_tasks_output_that_panics_when_dropped_leaves_the_runtime_serving<
    S: Spawner,
>(
    spawner: S,
) {
    struct PanicsOnDrop(Option<oneshot::Sender<()>>);
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(());
            panic!("the output's drop failed");
        }
    }

    let (finish, on_finish) = oneshot::channel::<()>();
    let (dropped, on_drop) = oneshot::channel();
    // Detached before it finishes, so that the runtime, not the handle, drops the output.
    spawner
        .spawn(async move {
            on_finish.await.unwrap();
            PanicsOnDrop(Some(dropped))
        })
        .detach();
    finish.send(()).unwrap();
    on_drop.await.unwrap();
    assert_eq!(spawner.spawn(async { 3 }).await.unwrap(), 3);

    let (finish, on_finish) = oneshot::channel::<()>();
    let (dropped, on_drop) = oneshot::channel();
    spawner
        .spawn(async move {
            on_finish.await.unwrap();
            std::panic::panic_any(PanicsOnDrop(Some(dropped)))
        })
        .detach();
    finish.send(()).unwrap();
    on_drop.await.unwrap();
    assert_eq!(spawner.spawn(async { 4 }).await.unwrap(), 4);
}

pub async fn is_finished_turns_true_when_the_task_ends<S: Spawner>(spawner: S) {
    let (go, wait) = oneshot::channel::<()>();
    let task = spawner.spawn(async move { wait.await.is_ok() });
    assert!(!task.is_finished());
    go.send(()).unwrap();
    while !task.is_finished() {
        yield_now().await;
    }
    assert!(task.await.unwrap());
}

pub async fn a_finished_tasks_values_are_released<S: Spawner>(spawner: S) {
    static HELD: ContextVar<Arc<()>> = ContextVar::new("held");
    let value = Arc::new(());
    let task = HELD.sync_scope(value.clone(), || spawner.spawn(async { HELD.is_set() }));
    assert!(task.await.unwrap());
    assert_eq!(
        Arc::strong_count(&value),
        1,
        "the snapshot went with the task"
    );
}

// Flow control: non-flowing variables, `suppress_flow`, and contexts handed over by hand.

pub async fn a_non_flowing_variable_stays_in_its_task_while_a_flowing_one_follows_spawns<
    S: Spawner,
>(
    spawner: S,
) {
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

pub async fn a_suppressed_spawn_starts_empty_while_its_sibling_gets_the_parents_context<
    S: Spawner,
>(
    spawner: S,
) {
    let _id = REQUEST_ID.set("req-1".into());
    let (worker, blocking) = crate::suppress_flow(|| {
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

/// Suppression belongs to the context that asked for it: a future polled inside, in a
/// context of its own (as a task polled by a `block_on` is), or a `run`, spawns as usual,
/// while `sync_scope`, a variant of the caller's context, stays suppressed.
pub async fn work_in_a_context_of_its_own_inside_suppress_flow_spawns_as_usual<S: Spawner>(
    spawner: S,
) {
    let _id = REQUEST_ID.set("req-1".into());
    let earlier = {
        let spawner = spawner.clone();
        futures::future::lazy(move |_| spawner.spawn(async { request_id() })).in_current_context()
    };
    let (polled_child, run_child, sync_scope_child) = crate::suppress_flow(|| {
        (
            futures::FutureExt::now_or_never(earlier).expect("ready at its first poll"),
            Context::current().run(|| spawner.spawn(async { request_id() })),
            REQUEST_ID.sync_scope("req-2".into(), || spawner.spawn(async { request_id() })),
        )
    });
    assert_eq!(polled_child.await.unwrap().as_deref(), Some("req-1"));
    assert_eq!(run_child.await.unwrap().as_deref(), Some("req-1"));
    assert_eq!(sync_scope_child.await.unwrap(), None);
    assert!(!crate::context::is_flow_suppressed());
}

pub async fn queued_jobs_run_with_their_submitters_context_not_the_workers<S: Spawner>(spawner: S) {
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
