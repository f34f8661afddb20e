//! Faults: panics, aborts, shutdowns, dropped handles and exiting threads never leave a value
//! behind, never leave a context on a worker thread, and never stop the runtime.
//!
//! After each fault: every value the faulty work held is dropped (a drop counter is back to
//! zero), raw tasks on the runtime's workers see an empty context, and new tasks and blocking
//! closures still run in their own context.

mod common;

use std::future::{pending, Future};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, RawWaker, RawWakerVTable, Waker};

use common::{assert_workers_clean, yield_now, Counted, DropProbe};
use ctxflow::rt::{BlockingTask, Task};
use ctxflow::testing::{each_runtime, Runtime};
use ctxflow::{AnySpawner, Context, ContextVar, InContext, JoinHandle, Spawner};
use futures::channel::oneshot;

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
static HELD: ContextVar<Counted> = ContextVar::new("held");

fn request_id() -> Option<u64> {
    REQUEST_ID.get()
}

/// A context for task `id`: its request id, and a counted value.
fn context_for(id: u64, alive: &Arc<AtomicUsize>) -> Context {
    Context::empty()
        .with_value(&REQUEST_ID, id)
        .with_value(&HELD, Counted::new(alive))
}

/// Raw runtime tasks see no context on any worker, the caller keeps its own, and new tasks and
/// blocking closures still run in theirs.
async fn assert_runtime_healthy(spawner: &AnySpawner) {
    assert_workers_clean(spawner).await;
    let _token = REQUEST_ID.set(1_000);
    let task = REQUEST_ID.sync_scope(1_001, || {
        spawner.spawn(async {
            yield_now().await;
            request_id()
        })
    });
    let blocking = REQUEST_ID.sync_scope(1_002, || spawner.spawn_blocking(request_id));
    assert_eq!(task.await.unwrap(), Some(1_001));
    assert_eq!(blocking.await.unwrap(), Some(1_002));
    assert_eq!(request_id(), Some(1_000));
}

/// Says it started, then waits for good, holding `held` until it is dropped.
async fn started_then_pending<T>(held: T, started: oneshot::Sender<()>) {
    let _held = held;
    started.send(()).unwrap();
    pending::<()>().await;
}

/// Panics when dropped, after recording the request id it sees.
struct PanicsOnDrop(Arc<Mutex<Vec<Option<u64>>>>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(request_id());
        panic!("drop failed");
    }
}

/// Sends on its channel when dropped: tells a test that a context holding it was released.
struct OnRelease(Mutex<Option<oneshot::Sender<()>>>);

impl OnRelease {
    fn new() -> (Self, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        (OnRelease(Mutex::new(Some(sender))), receiver)
    }
}

impl Drop for OnRelease {
    fn drop(&mut self) {
        if let Some(sender) = self.0.get_mut().unwrap().take() {
            let _ = sender.send(());
        }
    }
}

type BoxedTask = Task<Pin<Box<dyn Future<Output = ()> + Send>>>;
type BoxedBlockingTask = BlockingTask<Box<dyn FnOnce() + Send>>;

/// A spawner that keeps what it is given, for tests that poll, run or drop it themselves.
#[derive(Clone, Default)]
struct Manual {
    tasks: Arc<Mutex<Vec<BoxedTask>>>,
    blocking: Arc<Mutex<Vec<BoxedBlockingTask>>>,
}

impl Manual {
    fn take_task(&self) -> BoxedTask {
        self.tasks.lock().unwrap().pop().expect("a spawned task")
    }

    fn take_blocking(&self) -> BoxedBlockingTask {
        self.blocking
            .lock()
            .unwrap()
            .pop()
            .expect("a spawned closure")
    }
}

impl ctxflow::rt::Runtime for Manual {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.lock().unwrap().push(task.boxed());
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        self.blocking.lock().unwrap().push(task.boxed());
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        futures::executor::block_on(future)
    }
}

mod panics {
    use super::*;

    each_runtime! {
        fn tasks_that_panic_in_poll_release_their_values_and_leave_the_workers_clean(spawner) {
            let alive = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..50)
                .map(|id| {
                    spawner.spawn_in(context_for(id, &alive), async move {
                        let _token = REQUEST_ID.set(id + 100);
                        yield_now().await;
                        assert_eq!(request_id(), Some(id + 100));
                        panic!("task {id} failed");
                    })
                })
                .collect();
            for (id, task) in tasks.into_iter().enumerate() {
                let error = task.await.unwrap_err();
                assert_eq!(
                    error.to_string(),
                    format!("task panicked: task {id} failed")
                );
            }
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            assert_runtime_healthy(&spawner).await;
        }
    }

    /// Panics at every poll; what it holds panics when dropped.
    struct PanicsInPoll {
        _guard: PanicsOnDrop,
    }

    impl Future for PanicsInPoll {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
            panic!("poll failed");
        }
    }

    each_runtime! {
        fn a_task_that_panics_in_poll_and_again_when_dropped_reports_the_polls_panic(spawner) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let future = PanicsInPoll {
                _guard: PanicsOnDrop(seen.clone()),
            };
            let cx = Context::empty().with_value(&REQUEST_ID, 9);
            let error = spawner.spawn_in(cx, future).await.unwrap_err();
            assert_eq!(error.to_string(), "task panicked: poll failed");
            assert_eq!(*seen.lock().unwrap(), [Some(9)], "dropped inside its context");
            assert_runtime_healthy(&spawner).await;
        }
    }

    each_runtime! {
        fn a_task_whose_future_panics_when_dropped_does_so_inside_its_context_and_releases_its_values(spawner) {
            let alive = Arc::new(AtomicUsize::new(0));
            let seen = Arc::new(Mutex::new(Vec::new()));
            // One completes and panics as it is dropped; one is aborted and panics the same way.
            let completes = spawner.spawn_in(context_for(1, &alive), {
                let guard = PanicsOnDrop(seen.clone());
                async move {
                    let _guard = guard;
                    yield_now().await;
                }
            });
            let (started, on_start) = oneshot::channel();
            let aborted = spawner.spawn_in(
                context_for(2, &alive),
                started_then_pending(PanicsOnDrop(seen.clone()), started),
            );
            on_start.await.unwrap();
            aborted.abort();
            for task in [completes, aborted] {
                let error = task.await.unwrap_err();
                assert_eq!(error.to_string(), "task panicked: drop failed");
            }
            let mut seen = seen.lock().unwrap().clone();
            seen.sort();
            assert_eq!(seen, [Some(1), Some(2)]);
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            assert_runtime_healthy(&spawner).await;
        }
    }

    each_runtime! {
        fn blocking_closures_that_panic_release_their_values_and_leave_the_pool_clean(spawner) {
            let alive = Arc::new(AtomicUsize::new(0));
            let closures: Vec<_> = (0..20)
                .map(|id| {
                    spawner.spawn_blocking_in(context_for(id, &alive), move || {
                        let _token = REQUEST_ID.set(id + 100);
                        panic!("closure {id} failed");
                    })
                })
                .collect();
            for (id, closure) in closures.into_iter().enumerate() {
                let error = closure.await.unwrap_err();
                assert_eq!(
                    error.to_string(),
                    format!("task panicked: closure {id} failed")
                );
            }
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            // Pool threads that ran the panicking closures run the next ones in their context.
            let seen: Vec<_> = (0..20)
                .map(|id| spawner.spawn_blocking_in(Context::empty(), move || (id, request_id())))
                .collect();
            for (id, closure) in seen.into_iter().enumerate() {
                assert_eq!(closure.await.unwrap(), (id, None));
            }
            assert_runtime_healthy(&spawner).await;
        }
    }
}

/// Panicking drops on top of a panic: the first panic is the task's, the process goes on, and
/// every value is dropped.
mod panics_on_panics {
    use super::*;

    static FAILS_ON_DROP: ContextVar<PanicsOnDrop> = ContextVar::new("fails_on_drop");

    /// A future in a context of its own, a `VAR.scope` future and a guard, each dropped in a
    /// panic with a value whose `Drop` panics: the first panic goes on, no abort.
    #[test]
    fn contexts_released_while_a_panic_unwinds_let_that_panic_go_on() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let in_context = {
            let value = PanicsOnDrop(seen.clone());
            async move {
                std::mem::forget(FAILS_ON_DROP.set(value));
                panic!("the poll failed");
            }
            .in_context(Context::empty())
        };
        let scoped = FAILS_ON_DROP.scope(PanicsOnDrop(seen.clone()), async {
            panic!("the poll failed");
        });
        for outcome in [
            std::panic::catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(in_context))),
            std::panic::catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(scoped))),
        ] {
            let message = outcome.unwrap_err();
            assert_eq!(message.downcast_ref(), Some(&"the poll failed"));
        }
        let guarded = std::panic::catch_unwind(|| {
            let _guard = Context::empty().attach();
            std::mem::forget(FAILS_ON_DROP.set(PanicsOnDrop(seen.clone())));
            panic!("the closure failed");
        });
        assert_eq!(
            guarded.unwrap_err().downcast_ref(),
            Some(&"the closure failed")
        );
        assert_eq!(seen.lock().unwrap().len(), 3, "every value is dropped");
        assert_eq!(request_id(), None);
    }

    /// A wrapped closure dropped unrun in a panic, and a thread whose closure panics, each the
    /// last holder of a value whose `Drop` panics: the first panic goes on, no abort.
    #[test]
    fn wrapped_closures_released_while_a_panic_unwinds_let_that_panic_go_on() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cx = || Context::empty().with_value(&FAILS_ON_DROP, PanicsOnDrop(seen.clone()));
        let job = cx().wrap(|| ());
        let dropped_in_a_panic = std::panic::catch_unwind(AssertUnwindSafe(move || {
            let _job = job;
            panic!("the caller failed");
        }));
        assert_eq!(
            dropped_in_a_panic.unwrap_err().downcast_ref(),
            Some(&"the caller failed")
        );
        let (go, on_go) = std::sync::mpsc::channel::<()>();
        let thread = cx().run(|| {
            ctxflow::thread::spawn(move || {
                on_go.recv().unwrap();
                panic!("the thread failed")
            })
        });
        // The thread's snapshot now holds the value alone.
        go.send(()).unwrap();
        let failed = thread.join().unwrap_err();
        assert_eq!(failed.downcast_ref(), Some(&"the thread failed"));
        assert_eq!(seen.lock().unwrap().len(), 2, "every value is dropped");
    }

    each_runtime! {
        fn a_blocking_closure_that_panics_holding_a_value_whose_drop_panics_reports_its_own_panic(spawner) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let closure = spawner.spawn_blocking_in(Context::empty(), {
                let value = PanicsOnDrop(seen.clone());
                move || {
                    let _token = FAILS_ON_DROP.set(value);
                    panic!("closure failed");
                }
            });
            let error = closure.await.unwrap_err();
            assert_eq!(error.to_string(), "task panicked: closure failed");
            assert_eq!(seen.lock().unwrap().len(), 1, "the value is dropped");
            assert_runtime_healthy(&spawner).await;
        }
    }

    each_runtime! {
        fn a_blocking_closure_whose_context_panics_as_it_is_released_reports_that_panic(spawner) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let cx = Context::empty().with_value(&FAILS_ON_DROP, PanicsOnDrop(seen.clone()));
            // The closure's snapshot holds the only reference: it is released after the run.
            let closure = spawner.spawn_blocking_in(cx, || 1);
            let error = closure.await.unwrap_err();
            assert_eq!(error.to_string(), "task panicked: drop failed");
            assert_eq!(seen.lock().unwrap().len(), 1);
            assert_runtime_healthy(&spawner).await;
        }
    }

    each_runtime! {
        fn an_aborted_task_whose_future_and_context_both_panic_when_dropped_reports_the_futures_panic(spawner) {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let cx = Context::empty()
                .with_value(&REQUEST_ID, 4)
                .with_value(&FAILS_ON_DROP, PanicsOnDrop(seen.clone()));
            let (started, on_start) = oneshot::channel();
            let task = spawner.spawn_in(cx, started_then_pending(PanicsOnDrop(seen.clone()), started));
            on_start.await.unwrap();
            task.abort();
            let error = task.await.unwrap_err();
            assert_eq!(error.to_string(), "task panicked: drop failed");
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen.len(), 2, "both are dropped");
            assert_eq!(seen[0], Some(4), "the future is dropped inside its context");
            assert_runtime_healthy(&spawner).await;
        }
    }
}

mod cancellation {
    use super::*;

    each_runtime! {
        fn tasks_aborted_while_pending_are_dropped_inside_their_context_and_release_their_values(spawner) {
            let alive = Arc::new(AtomicUsize::new(0));
            let mut started = Vec::new();
            let mut probes = Vec::new();
            let tasks: Vec<_> = (0..50)
                .map(|id| {
                    let (probe, dropped_in) = DropProbe::new(request_id);
                    let (start, on_start) = oneshot::channel();
                    started.push(on_start);
                    probes.push(dropped_in);
                    spawner.spawn_in(context_for(id, &alive), async move {
                        let _probe = probe;
                        let _token = REQUEST_ID.set(id + 100);
                        start.send(()).unwrap();
                        pending::<()>().await;
                    })
                })
                .collect();
            for on_start in started {
                on_start.await.unwrap();
            }
            for task in &tasks {
                task.abort();
            }
            for task in tasks {
                assert!(task.await.unwrap_err().is_cancelled());
            }
            for (id, probe) in probes.iter().enumerate() {
                assert_eq!(*probe.lock().unwrap(), [Some(id as u64 + 100)]);
            }
            assert_eq!(alive.load(Ordering::SeqCst), 0);
            assert_runtime_healthy(&spawner).await;
        }
    }

    /// A waker that calls `on_clone` each time it is cloned, and does nothing else.
    fn waker_that_calls_on_clone(on_clone: fn()) -> Waker {
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        fn clone(data: *const ()) -> RawWaker {
            // SAFETY: `data` is always the `fn()` given to `waker_that_calls_on_clone`.
            let on_clone = unsafe { std::mem::transmute::<*const (), fn()>(data) };
            on_clone();
            RawWaker::new(data, &VTABLE)
        }
        fn noop(_: *const ()) {}
        // SAFETY: the vtable's functions only use `data` as the function pointer it is.
        unsafe { Waker::from_raw(RawWaker::new(on_clone as *const (), &VTABLE)) }
    }

    #[test]
    fn an_abort_that_lands_during_the_first_poll_still_cancels_the_task() {
        static HANDLE: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);
        static ABORTED: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);
        let spawner = Manual::default();
        let alive = Arc::new(AtomicUsize::new(0));
        let (probe, dropped_in) = DropProbe::new(request_id);
        let handle = spawner.spawn_in(context_for(4, &alive), async move {
            let _probe = probe;
            pending::<()>().await;
        });
        *HANDLE.lock().unwrap() = Some(handle);
        // The runtime clones the waker while the task starts its first poll: abort right then.
        let waker = waker_that_calls_on_clone(|| {
            if let Some(handle) = HANDLE.lock().unwrap().take() {
                handle.abort();
                *ABORTED.lock().unwrap() = Some(handle);
            }
        });
        let mut task = spawner.take_task();
        let polled = Pin::new(&mut task).poll(&mut TaskContext::from_waker(&waker));
        let handle = ABORTED
            .lock()
            .unwrap()
            .take()
            .expect("aborted during the poll");
        assert_eq!(polled, Poll::Ready(()), "the task ended at that poll");
        assert!(handle.is_finished());
        let outcome = futures::executor::block_on(handle);
        assert!(outcome.unwrap_err().is_cancelled());
        assert_eq!(*dropped_in.lock().unwrap(), [Some(4)]);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }

    /// Spawners whose tasks run on threads of their own, so that the test thread can act while
    /// a task's poll is under way; each with its runtime's name.
    fn spawners_on_threads_of_their_own() -> Vec<(&'static str, AnySpawner)> {
        let mut spawners = Vec::new();
        #[cfg(feature = "tokio")]
        {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap();
            spawners.push(("tokio", ctxflow::tokio::TokioSpawner::from(runtime).into()));
        }
        #[cfg(feature = "smol")]
        {
            let executor = Arc::new(smol::Executor::new());
            let runner = executor.clone();
            // Runs for the rest of the test process; a runtime's own thread carries no context.
            #[allow(clippy::disallowed_methods, reason = "the executor's own thread")]
            std::thread::spawn(move || smol::block_on(runner.run(pending::<()>())));
            spawners.push(("smol", ctxflow::smol::SmolSpawner::new(executor).into()));
        }
        #[cfg(feature = "async-std")]
        spawners.push((
            "async-std",
            ctxflow::async_std::AsyncStdSpawner::new().into(),
        ));
        spawners
    }

    #[test]
    fn an_abort_that_lands_while_the_last_poll_returns_leaves_the_task_its_outcome() {
        for (runtime, spawner) in spawners_on_threads_of_their_own() {
            for panics in [false, true] {
                let (reached, on_reached) = std::sync::mpsc::channel();
                let (go, on_go) = std::sync::mpsc::channel::<()>();
                let handle = spawner.spawn(async move {
                    reached.send(()).unwrap();
                    on_go.recv().unwrap();
                    if panics {
                        panic!("last poll failed");
                    }
                    7
                });
                on_reached.recv().unwrap();
                // The task is in its last poll, which returns once the abort is done.
                handle.abort();
                go.send(()).unwrap();
                let outcome = handle.join().map_err(|error| error.to_string());
                let expected = match panics {
                    false => Ok(7),
                    true => Err("task panicked: last poll failed".to_string()),
                };
                assert_eq!(outcome, expected, "on {runtime}");
            }
        }
    }

    /// A blocking closure in request 5's context that counts its runs and records, when
    /// dropped, the request id it sees.
    struct Probed {
        handle: JoinHandle<()>,
        ran: Arc<AtomicUsize>,
        dropped_in: Arc<Mutex<Vec<Option<u64>>>>,
        alive: Arc<AtomicUsize>,
    }

    impl Probed {
        fn spawn_blocking(spawner: &impl Spawner) -> Self {
            let alive = Arc::new(AtomicUsize::new(0));
            let (probe, dropped_in) = DropProbe::new(request_id);
            let ran = Arc::new(AtomicUsize::new(0));
            let handle = spawner.spawn_blocking_in(context_for(5, &alive), {
                let ran = ran.clone();
                move || {
                    let _probe = probe;
                    ran.fetch_add(1, Ordering::SeqCst);
                }
            });
            Probed {
                handle,
                ran,
                dropped_in,
                alive,
            }
        }

        /// Checks that it was cancelled unrun, dropped inside its context, its values released.
        async fn assert_cancelled_unrun(self) {
            assert!(self.handle.await.unwrap_err().is_cancelled());
            assert_eq!(self.ran.load(Ordering::SeqCst), 0);
            assert_eq!(*self.dropped_in.lock().unwrap(), [Some(5)]);
            assert_eq!(self.alive.load(Ordering::SeqCst), 0);
        }
    }

    #[test]
    fn a_blocking_closure_aborted_before_it_runs_never_runs_and_is_dropped_inside_its_context() {
        let spawner = Manual::default();
        let closure = Probed::spawn_blocking(&spawner);
        closure.handle.abort();
        spawner.take_blocking().run();
        futures::executor::block_on(closure.assert_cancelled_unrun());
    }

    /// The same on tokio, whose own pool and handle take the closure. Only tokio's pool can be
    /// held full for one test; smol's and async-std's are global.
    #[cfg(feature = "tokio")]
    #[test]
    fn a_blocking_closure_aborted_while_queued_on_tokio_never_runs_and_is_dropped_inside_its_context(
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
        runtime.block_on(async {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let (busy, on_busy) = oneshot::channel();
            let occupying = spawner.spawn_blocking(move || {
                busy.send(()).unwrap();
                wait.recv().unwrap();
            });
            on_busy.await.unwrap();
            let queued = Probed::spawn_blocking(&spawner);
            queued.handle.abort();
            release.send(()).unwrap();
            occupying.await.unwrap();
            queued.assert_cancelled_unrun().await;
        });
    }
}

mod release_before_report {
    use super::*;

    /// A context value that records, when dropped, whether its task's handle had finished, and
    /// then signals its release.
    struct SeesHandle {
        handle: Arc<Mutex<Option<JoinHandle<()>>>>,
        finished: Arc<Mutex<Vec<bool>>>,
        /// A field is dropped after its owner's `drop` has run, so the signal comes after the
        /// record, whatever order the context drops its values in.
        _released: OnRelease,
    }

    impl Drop for SeesHandle {
        fn drop(&mut self) {
            let handle = self.handle.lock().unwrap();
            let finished = handle
                .as_ref()
                .expect("the handle is in place")
                .is_finished();
            self.finished.lock().unwrap().push(finished);
        }
    }

    static SEES_HANDLE: ContextVar<SeesHandle> = ContextVar::new("sees_handle");

    /// What a watched task leaves to look at: its handle, the signal that its context was
    /// released, and whether its handle had finished at that moment.
    struct Watched {
        slot: Arc<Mutex<Option<JoinHandle<()>>>>,
        released: oneshot::Receiver<()>,
        finished: Arc<Mutex<Vec<bool>>>,
    }

    /// Spawns through `spawn` in a context holding a `SeesHandle` on the handle `spawn`
    /// returns; `spawn` gets a gate to wait on, opened once the handle is in place.
    fn watched(
        spawn: impl FnOnce(Context, std::sync::mpsc::Receiver<()>) -> JoinHandle<()>,
    ) -> Watched {
        let slot = Arc::new(Mutex::new(None));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let (on_release, released) = OnRelease::new();
        let cx = Context::empty().with_value(
            &SEES_HANDLE,
            SeesHandle {
                handle: slot.clone(),
                finished: finished.clone(),
                _released: on_release,
            },
        );
        let (open, gate) = std::sync::mpsc::channel();
        let handle = spawn(cx, gate);
        *slot.lock().unwrap() = Some(handle);
        // A closure dropped unrun has dropped its gate too.
        let _ = open.send(());
        Watched {
            slot,
            released,
            finished,
        }
    }

    each_runtime! {
        fn a_task_or_blocking_closure_releases_its_context_before_its_handle_reports(spawner) {
            let task = watched(|cx, gate| {
                spawner.spawn_in(cx, async move {
                    yield_now().await;
                    gate.recv().unwrap();
                })
            });
            let blocking =
                watched(|cx, gate| spawner.spawn_blocking_in(cx, move || gate.recv().unwrap()));
            for (
                kind,
                Watched {
                    slot,
                    released,
                    finished,
                },
            ) in [("task", task), ("closure", blocking)]
            {
                released.await.unwrap();
                assert_eq!(*finished.lock().unwrap(), [false], "{kind}");
                let handle = slot.lock().unwrap().take().unwrap();
                handle.await.unwrap();
            }
        }
    }

    #[test]
    fn a_task_whose_future_panics_when_dropped_releases_its_context_before_its_handle_reports() {
        /// Ready at once; panics when dropped.
        struct ReadyThenPanicsOnDrop {
            _guard: PanicsOnDrop,
        }
        impl Future for ReadyThenPanicsOnDrop {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
                Poll::Ready(())
            }
        }
        let spawner = Manual::default();
        for aborted in [false, true] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let future = ReadyThenPanicsOnDrop {
                _guard: PanicsOnDrop(seen.clone()),
            };
            let Watched {
                slot,
                mut released,
                finished,
            } = watched(|cx, _gate| spawner.spawn_in(cx.with_value(&REQUEST_ID, 3), future));
            if aborted {
                slot.lock().unwrap().as_ref().unwrap().abort();
            }
            let mut task = spawner.take_task();
            let polled = Pin::new(&mut task).poll(&mut TaskContext::from_waker(Waker::noop()));
            assert_eq!(polled, Poll::Ready(()));
            assert_eq!(
                released.try_recv(),
                Ok(Some(())),
                "released at its last poll"
            );
            assert_eq!(*finished.lock().unwrap(), [false]);
            assert_eq!(
                *seen.lock().unwrap(),
                [Some(3)],
                "dropped inside its context"
            );
            let handle = slot.lock().unwrap().take().unwrap();
            let error = futures::executor::block_on(handle).unwrap_err();
            assert_eq!(error.to_string(), "task panicked: drop failed");
        }
    }

    #[test]
    fn a_blocking_closure_dropped_unrun_releases_its_context_before_its_handle_reports() {
        let spawner = Manual::default();
        let Watched {
            slot,
            mut released,
            finished,
        } = watched(|cx, _gate| spawner.spawn_blocking_in(cx, || ()));
        drop(spawner.take_blocking());
        assert_eq!(released.try_recv(), Ok(Some(())));
        assert_eq!(*finished.lock().unwrap(), [false]);
        let handle = slot.lock().unwrap().take().unwrap();
        assert!(futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
    }

    #[test]
    fn a_blocking_closure_aborted_before_it_runs_releases_its_context_before_its_handle_reports() {
        let spawner = Manual::default();
        let Watched {
            slot,
            mut released,
            finished,
        } = watched(|cx, _gate| spawner.spawn_blocking_in(cx, || ()));
        slot.lock().unwrap().as_ref().unwrap().abort();
        spawner.take_blocking().run();
        assert_eq!(released.try_recv(), Ok(Some(())));
        assert_eq!(*finished.lock().unwrap(), [false]);
    }
}

mod shutdown {
    use super::*;

    #[test]
    fn a_runtime_shut_down_with_pending_tasks_drops_each_inside_its_context_and_releases_every_value(
    ) {
        for &runtime in Runtime::all() {
            let alive = Arc::new(AtomicUsize::new(0));
            let handles = Arc::new(Mutex::new(Vec::new()));
            let probes = Arc::new(Mutex::new(Vec::new()));
            let body = {
                let (alive, handles, probes) = (alive.clone(), handles.clone(), probes.clone());
                move |spawner: AnySpawner| async move {
                    let mut awaited = Vec::new();
                    for id in 0..50 {
                        let (probe, dropped_in) = DropProbe::new(request_id);
                        let (start, on_start) = oneshot::channel();
                        let task = spawner.spawn_in(context_for(id, &alive), async move {
                            let _probe = probe;
                            let _token = REQUEST_ID.set(id + 100);
                            let _ = start.send(());
                            pending::<()>().await;
                        });
                        // Every other task is left to start, or not, before the shutdown.
                        if id % 2 == 0 {
                            awaited.push(on_start);
                            probes.lock().unwrap().push((None, dropped_in));
                        } else {
                            probes.lock().unwrap().push((Some(on_start), dropped_in));
                        }
                        handles.lock().unwrap().push(task);
                    }
                    for on_start in awaited {
                        on_start.await.unwrap();
                    }
                }
            };
            runtime.run(body).unwrap();
            let handles = std::mem::take(&mut *handles.lock().unwrap());
            if !handles.iter().all(JoinHandle::is_finished) {
                // async-std has one global runtime that never shuts down: its tasks are still
                // pending, and aborting them is the way to end them.
                assert_eq!(runtime.name(), "async-std");
                handles.iter().for_each(JoinHandle::abort);
            }
            for handle in handles {
                let outcome = futures::executor::block_on(handle);
                assert!(outcome.unwrap_err().is_cancelled(), "{}", runtime.name());
            }
            for (id, (on_start, probe)) in probes.lock().unwrap().iter_mut().enumerate() {
                let started = on_start
                    .as_mut()
                    .is_none_or(|on_start| on_start.try_recv() == Ok(Some(())));
                // It is dropped in the context it had: with its own write if it started.
                let expected = if started { id as u64 + 100 } else { id as u64 };
                assert_eq!(
                    *probe.lock().unwrap(),
                    [Some(expected)],
                    "{}",
                    runtime.name()
                );
            }
            assert_eq!(alive.load(Ordering::SeqCst), 0, "{}", runtime.name());
            assert!(Context::current().is_empty());
        }
        // Kept on the function: the point is that after every runtime above was shut down with
        // tasks pending, a fresh instance of each still works in the same process.
        each_runtime(|spawner| async move { assert_runtime_healthy(&spawner).await });
    }
}

mod shutdown_with_a_panicking_drop {
    use std::cell::RefCell;
    use std::rc::Rc;

    use ctxflow::testing::LocalRuntime;
    use ctxflow::LocalSpawner;

    use super::*;

    /// Pending for good; panics when its runtime drops it.
    struct PanicsWhenDropped;

    impl Future for PanicsWhenDropped {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl Drop for PanicsWhenDropped {
        fn drop(&mut self) {
            panic!("drop failed at shutdown");
        }
    }

    /// Whether `handle` reports its task ended by the shutdown: cancelled, or, on tokio, whose
    /// harness catches the drop's panic itself, with that panic. async-std's global runtime
    /// never shuts down: its task is aborted instead, which reports the drop's panic (see
    /// `panics::a_task_whose_future_panics_when_dropped_does_so_inside_its_context_and_releases_its_values`).
    fn reported_ended(handle: JoinHandle<()>, runtime: &str) -> bool {
        if !handle.is_finished() {
            assert!(
                runtime.starts_with("async-std"),
                "{runtime} left its task running"
            );
            handle.abort();
            return futures::executor::block_on(handle).is_err_and(|error| error.is_panic());
        }
        let error = futures::executor::block_on(handle).expect_err("the task never finished");
        error.is_cancelled() || (runtime.starts_with("tokio") && error.is_panic())
    }

    #[test]
    fn a_runtime_shut_down_with_a_task_whose_future_panics_when_dropped_goes_on_and_reports_it_ended(
    ) {
        for &runtime in Runtime::all() {
            let handle = Arc::new(Mutex::new(None));
            let kept = handle.clone();
            let run = runtime.run(move |spawner: AnySpawner| async move {
                let (started, on_start) = oneshot::channel();
                let task = spawner.spawn(async move {
                    let _ = started.send(());
                    PanicsWhenDropped.await
                });
                on_start.await.unwrap();
                *kept.lock().unwrap() = Some(task);
            });
            assert!(run.is_ok(), "{}", runtime.name());
            let task = handle.lock().unwrap().take().unwrap();
            assert!(reported_ended(task, runtime.name()), "{}", runtime.name());
        }
        each_runtime(|spawner| async move { assert_runtime_healthy(&spawner).await });
    }

    #[test]
    fn a_local_executor_dropped_with_a_task_whose_future_panics_when_dropped_goes_on_and_reports_it_ended(
    ) {
        for &runtime in LocalRuntime::all() {
            if runtime.name().starts_with("async-std") {
                // Its local tasks outlive the `block_on` that ran them: nothing is shut down.
                continue;
            }
            let handle = Rc::new(RefCell::new(None));
            let kept = handle.clone();
            runtime.run(move |local| async move {
                let (started, on_start) = oneshot::channel();
                let task = local.spawn_local(async move {
                    let _ = started.send(());
                    PanicsWhenDropped.await
                });
                on_start.await.unwrap();
                *kept.borrow_mut() = Some(task);
            });
            let task = handle.borrow_mut().take().unwrap();
            assert!(reported_ended(task, runtime.name()), "{}", runtime.name());
        }
    }
}

mod dropped_handles {
    use super::*;

    /// A held value, then the signal that it was released: a tuple drops its fields in order,
    /// whatever order the context drops its values in.
    static HELD_THEN_RELEASED: ContextVar<(Counted, OnRelease)> =
        ContextVar::new("held_then_released");

    each_runtime! {
        fn a_task_whose_handle_is_dropped_before_during_or_after_its_run_finishes_in_its_context_and_releases_its_values(spawner) {
            for when in [
                "before it starts",
                "while it is pending",
                "after it finished",
            ] {
                let alive = Arc::new(AtomicUsize::new(0));
                let results = Arc::new(AtomicUsize::new(0));
                let (on_release, released) = OnRelease::new();
                let (go, wait) = oneshot::channel::<()>();
                let (started, on_start) = oneshot::channel();
                let (done, on_done) = oneshot::channel();
                let cx = Context::empty()
                    .with_value(&REQUEST_ID, 7)
                    .with_value(&HELD_THEN_RELEASED, (Counted::new(&alive), on_release));
                let result = results.clone();
                let task = spawner.spawn_in(cx, async move {
                    started.send(()).unwrap();
                    wait.await.unwrap();
                    let _token = REQUEST_ID.set(8);
                    yield_now().await;
                    done.send(request_id()).unwrap();
                    // The result holds a value of its own: it goes with the handle.
                    Counted::new(&result)
                });
                let mut task = Some(task);
                match when {
                    "before it starts" => drop(task.take()),
                    "while it is pending" => {
                        on_start.await.unwrap();
                        drop(task.take());
                    }
                    _ => {}
                }
                go.send(()).unwrap();
                assert_eq!(on_done.await.unwrap(), Some(8), "{when}");
                released.await.unwrap();
                assert_eq!(alive.load(Ordering::SeqCst), 0, "{when}");
                if let Some(task) = task {
                    while !task.is_finished() {
                        yield_now().await;
                    }
                    drop(task);
                    assert_eq!(results.load(Ordering::SeqCst), 0, "{when}");
                }
            }
            assert_runtime_healthy(&spawner).await;
        }
    }

    each_runtime! {
        fn a_finished_tasks_unread_result_is_released_with_its_handle(spawner) {
            let results = Arc::new(AtomicUsize::new(0));
            let result = results.clone();
            let task = spawner.spawn(async move { Counted::new(&result) });
            while !task.is_finished() {
                yield_now().await;
            }
            assert_eq!(results.load(Ordering::SeqCst), 1, "kept for the handle");
            drop(task);
            assert_eq!(results.load(Ordering::SeqCst), 0);
        }
    }
}

mod thread_exit {
    use super::*;

    /// When dropped, records the request id it sees.
    struct ReadsOnDrop(Arc<Mutex<Vec<Option<u64>>>>);

    impl Drop for ReadsOnDrop {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(request_id());
        }
    }

    static READS_ON_DROP: ContextVar<ReadsOnDrop> = ContextVar::new("reads_on_drop");

    /// Panics when dropped, after counting the drop.
    struct PanicsOnDrop(Arc<AtomicUsize>);

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("a value's drop panicked");
        }
    }

    static PANICS_ON_DROP: ContextVar<PanicsOnDrop> = ContextVar::new("panics_on_drop");

    // A panic out of a thread-local's destructor would abort the whole test binary.
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread whose exit destroys the context is the subject"
    )]
    #[test]
    fn a_value_whose_drop_panics_when_its_thread_exits_does_not_abort_the_process() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let value = PanicsOnDrop(dropped.clone());
        std::thread::spawn(move || {
            let _value = PANICS_ON_DROP.set(value);
        })
        .join()
        .unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread whose exit destroys the context is the subject"
    )]
    #[test]
    fn a_value_dropped_when_its_thread_exits_can_read_the_context_and_sees_it_empty() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let probe = ReadsOnDrop(seen.clone());
        std::thread::spawn(move || {
            let _id = REQUEST_ID.set(7);
            let _probe = READS_ON_DROP.set(probe);
            // Both stay in the thread's context until its storage is destroyed.
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), [None]);
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread whose exit destroys the context is the subject"
    )]
    #[test]
    fn a_value_dropped_when_its_thread_exits_can_set_a_variable_that_goes_nowhere() {
        struct SetsOnDrop(Arc<Mutex<Option<Option<u64>>>>);
        impl Drop for SetsOnDrop {
            fn drop(&mut self) {
                let _token = REQUEST_ID.set(9);
                *self.0.lock().unwrap() = Some(request_id());
            }
        }
        static SETS_ON_DROP: ContextVar<SetsOnDrop> = ContextVar::new("sets_on_drop");
        let seen = Arc::new(Mutex::new(None));
        let probe = SetsOnDrop(seen.clone());
        std::thread::spawn(move || {
            let _probe = SETS_ON_DROP.set(probe);
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), Some(None));
    }
}

mod thread_exit_after_storage {
    use super::*;
    use std::cell::RefCell;
    use std::sync::mpsc;

    /// What a thread-local destructor that runs after ctxflow's storage is gone observed.
    #[derive(Debug, PartialEq)]
    struct Observed {
        /// Whether the values left in the thread's context had been released already.
        context_released: bool,
        sync_scope: Option<u64>,
        run: Option<u64>,
        scope: Option<u64>,
        after: Option<u64>,
    }

    /// When dropped, uses every form that installs a context and reports what each saw.
    struct InstallsOnDrop {
        report: mpsc::Sender<Observed>,
        released: Arc<AtomicUsize>,
    }

    impl Drop for InstallsOnDrop {
        fn drop(&mut self) {
            let sync_scope = REQUEST_ID.sync_scope(1, request_id);
            let run = Context::empty().with_value(&REQUEST_ID, 2).run(request_id);
            let scope = futures::executor::block_on(REQUEST_ID.scope(3, async {
                yield_now().await;
                request_id()
            }));
            let _ = self.report.send(Observed {
                context_released: self.released.load(Ordering::SeqCst) == 0,
                sync_scope,
                run,
                scope,
                after: request_id(),
            });
        }
    }

    thread_local! {
        static INSTALLS_ON_DROP: RefCell<Option<InstallsOnDrop>> = const { RefCell::new(None) };
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread, so that its thread-locals are registered in a known order"
    )]
    fn sync_scope_run_and_scope_work_in_a_thread_local_destructor_that_runs_after_ctxflows() {
        let (report, observed) = mpsc::channel();
        let alive = Arc::new(AtomicUsize::new(0));
        let released = alive.clone();
        std::thread::spawn(move || {
            // Registered first, so destroyed last: after ctxflow's own storage.
            INSTALLS_ON_DROP.with(|slot| {
                *slot.borrow_mut() = Some(InstallsOnDrop { report, released });
            });
            let _held = HELD.set(Counted::new(&alive));
        })
        .join()
        .unwrap();
        assert_eq!(
            observed.recv().unwrap(),
            Observed {
                context_released: true,
                sync_scope: Some(1),
                run: Some(2),
                scope: Some(3),
                after: None,
            }
        );
    }
}

mod drops_that_write {
    use super::*;

    /// Sets the request id when dropped, and drops the token: a write meant to stay.
    struct SetsOnDrop;

    impl Drop for SetsOnDrop {
        fn drop(&mut self) {
            let _token = REQUEST_ID.set(666);
        }
    }

    static SETS_ON_DROP: ContextVar<SetsOnDrop> = ContextVar::new("sets_on_drop");

    fn writes_on_release() -> Context {
        Context::empty().with_value(&SETS_ON_DROP, SetsOnDrop)
    }

    /// Raw blocking closures, which ctxflow does not wrap, see no context on the pool threads.
    async fn assert_pool_clean(spawner: &AnySpawner) {
        for _ in 0..16 {
            let (sender, receiver) = oneshot::channel();
            ctxflow::testing::spawn_blocking_unwrapped(spawner, move || {
                let _ = sender.send(request_id());
            });
            assert_eq!(
                receiver.await.unwrap(),
                None,
                "a write reached a pool thread"
            );
        }
    }

    each_runtime! {
        fn a_released_value_whose_drop_sets_a_variable_never_reaches_the_workers(spawner) {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    spawner.spawn_in(writes_on_release(), async {
                        yield_now().await;
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            assert_workers_clean(&spawner).await;
            let closures: Vec<_> = (0..8)
                .map(|_| spawner.spawn_blocking_in(writes_on_release(), || ()))
                .collect();
            for closure in closures {
                closure.await.unwrap();
            }
            assert_pool_clean(&spawner).await;
            assert_eq!(request_id(), None);
        }
    }

    #[test]
    fn a_released_value_whose_drop_sets_a_variable_never_reaches_the_thread_that_ran_it() {
        let spawner = Manual::default();
        let task = spawner.spawn_in(writes_on_release(), async {});
        let closure = spawner.spawn_blocking_in(writes_on_release(), || ());
        let mut raw = spawner.take_task();
        let polled = Pin::new(&mut raw).poll(&mut TaskContext::from_waker(Waker::noop()));
        assert_eq!(polled, Poll::Ready(()));
        assert_eq!(request_id(), None, "after a task");
        spawner.take_blocking().run();
        assert_eq!(request_id(), None, "after a blocking closure");
        futures::executor::block_on(async {
            task.await.unwrap();
            closure.await.unwrap();
        });
    }

    // A value replaced by a later `set` is held by that set's token alone, which may be dropped
    // or reset anywhere: in a context with a request id of its own here.
    #[test]
    fn a_value_a_token_held_last_is_released_with_no_context_installed() {
        Context::empty().run(|| {
            let _first = SETS_ON_DROP.set(SetsOnDrop);
            let second = SETS_ON_DROP.set(SetsOnDrop);
            let _id = REQUEST_ID.set(1);
            drop(second);
            assert_eq!(request_id(), Some(1), "after the token was dropped");

            let third = SETS_ON_DROP.set(SetsOnDrop);
            SETS_ON_DROP.reset(third).unwrap();
            assert_eq!(request_id(), Some(1), "after a reset");
        });
    }

    #[test]
    fn a_value_set_inside_run_or_a_guard_whose_drop_sets_a_variable_never_reaches_the_caller() {
        Context::empty().run(|| {
            let _token = SETS_ON_DROP.set(SetsOnDrop);
        });
        assert_eq!(request_id(), None, "after run");
        let guard = Context::empty().attach();
        let _token = SETS_ON_DROP.set(SetsOnDrop);
        drop(guard);
        assert_eq!(request_id(), None, "after a guard");
        drop(writes_on_release());
        assert_eq!(request_id(), None, "after a dropped snapshot");
    }
}
