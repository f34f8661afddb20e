//! Faults: panics, aborts, shutdowns, dropped handles and exiting threads never leave a value
//! behind, never leave a context on a worker thread, and never stop the runtime.
//!
//! After each fault: every value the faulty work held is dropped (a drop counter is back to
//! zero), raw tasks on the runtime's workers see an empty context, and new tasks and blocking
//! closures still run in their own context.

mod common;

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, RawWaker, RawWakerVTable, Waker};

use common::{yield_now, Counted, DropProbe};
use ctxflow::testing::{each_runtime, spawn_unwrapped};
use ctxflow::{
    AnySpawner, BlockingTask, Context, ContextVar, InContext, JoinHandle, Spawner, Task,
};
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
    let receivers: Vec<_> = (0..8)
        .map(|_| {
            let (sender, receiver) = oneshot::channel();
            spawn_unwrapped(spawner, async move {
                let before = Context::current().is_empty();
                yield_now().await;
                let _ = sender.send(before && Context::current().is_empty());
            });
            receiver
        })
        .collect();
    for receiver in receivers {
        assert!(receiver.await.unwrap(), "a context was left on a worker");
    }
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

static ON_RELEASE: ContextVar<OnRelease> = ContextVar::new("on_release");

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

impl Spawner for Manual {
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

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        futures::executor::block_on(future.in_current_context())
    }
}

mod cancellation {
    use super::*;

    #[test]
    fn tasks_aborted_while_pending_are_dropped_inside_their_context_and_release_their_values() {
        each_runtime(|spawner| async move {
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
        });
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

    #[test]
    fn a_blocking_closure_aborted_before_it_runs_never_runs_and_is_dropped_inside_its_context() {
        let spawner = Manual::default();
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
        handle.abort();
        spawner.take_blocking().run();
        assert!(futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(*dropped_in.lock().unwrap(), [Some(5)]);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }
}

mod release_before_report {
    use super::*;

    /// A context value that records, when dropped, whether its task's handle had finished.
    struct SeesHandle {
        handle: Arc<Mutex<Option<JoinHandle<()>>>>,
        finished: Arc<Mutex<Vec<bool>>>,
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
    /// returns, and a value that signals its release; `spawn` gets a gate to wait on, opened
    /// once the handle is in place.
    fn watched(
        spawn: impl FnOnce(Context, std::sync::mpsc::Receiver<()>) -> JoinHandle<()>,
    ) -> Watched {
        let slot = Arc::new(Mutex::new(None));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let (on_release, released) = OnRelease::new();
        let cx = Context::empty()
            .with_value(
                &SEES_HANDLE,
                SeesHandle {
                    handle: slot.clone(),
                    finished: finished.clone(),
                },
            )
            .with_value(&ON_RELEASE, on_release);
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

    #[test]
    fn a_task_or_blocking_closure_releases_its_context_before_its_handle_reports() {
        each_runtime(|spawner| async move {
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
        });
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
