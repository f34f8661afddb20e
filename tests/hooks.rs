//! ctxflow's tokio task hooks: context follows tasks that ctxflow does not spawn.
//!
//! Every test here spawns through tokio itself, or through a crate that does (hyper-util,
//! `JoinSet`): that is what the hooks are for. Built only with `--cfg tokio_unstable`; `.ci/run`
//! runs them in a target directory of their own.
#![cfg(tokio_unstable)]
#![allow(
    clippy::disallowed_methods,
    reason = "these tests spawn through tokio and the crates on it on purpose"
)]

mod common;

use std::cell::Cell;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use ctxflow::tokio::ContextHooks;
use ctxflow::{register_carrier, Carrier, Context, ContextVar, InContext};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::{oneshot, Barrier};

use common::{yield_now, Counted, DropProbe};

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
static STEP: ContextVar<u64> = ContextVar::new("step");
static HELD: ContextVar<Counted> = ContextVar::new("held");

/// A multi-thread and a current-thread runtime, both with ctxflow's hooks.
fn hooked_runtimes() -> [(&'static str, Runtime); 2] {
    let multi_thread = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .carry_context()
        .build()
        .unwrap();
    let current_thread = Builder::new_current_thread()
        .enable_all()
        .carry_context()
        .build()
        .unwrap();
    [
        ("multi-thread", multi_thread),
        ("current-thread", current_thread),
    ]
}

/// Runs `body` as a task of each hooked runtime, starting from an empty context.
fn on_each_hooked_runtime<F, Fut>(body: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    for (flavor, runtime) in hooked_runtimes() {
        let outcome = runtime.block_on(runtime.spawn(body()));
        if let Err(error) = outcome {
            panic!("on the {flavor} runtime: {error}");
        }
    }
}

#[test]
fn a_raw_spawn_inherits_the_spawners_context() {
    on_each_hooked_runtime(|| async {
        let token = REQUEST_ID.set(7);
        let (go, wait) = oneshot::channel::<()>();
        let seen = tokio::spawn(async {
            wait.await.unwrap();
            REQUEST_ID.get()
        });
        // Gone from the parent (and from this thread) before the child reads it.
        REQUEST_ID.reset(token).unwrap();
        go.send(()).unwrap();
        assert_eq!(seen.await.unwrap(), Some(7));
    });
}

#[test]
fn a_spawn_from_outside_the_runtime_inherits_the_callers_context() {
    for (flavor, runtime) in hooked_runtimes() {
        let _token = REQUEST_ID.set(11);
        let task = runtime.spawn(async { REQUEST_ID.get() });
        let other = runtime.handle().spawn(async { REQUEST_ID.get() });
        assert_eq!(runtime.block_on(task).unwrap(), Some(11), "{flavor}");
        assert_eq!(runtime.block_on(other).unwrap(), Some(11), "{flavor}");
    }
}

#[test]
fn a_raw_childs_writes_stay_in_the_child_and_the_parents_later_writes_stay_out() {
    on_each_hooked_runtime(|| async {
        let _token = REQUEST_ID.set(1);
        let (go, wait) = oneshot::channel::<()>();
        let child = tokio::spawn(async move {
            let _own = STEP.set(2);
            wait.await.unwrap();
            (REQUEST_ID.get(), STEP.get())
        });
        let _later = REQUEST_ID.set(3);
        go.send(()).unwrap();
        assert_eq!(child.await.unwrap(), (Some(1), Some(2)));
        assert_eq!(STEP.get(), None);
        assert_eq!(REQUEST_ID.get(), Some(3));
    });
}

/// Without the hooks a raw task's write stays on its worker thread (docs/context.md says so);
/// with them every task has a context of its own.
#[test]
fn a_raw_tasks_writes_never_reach_the_next_raw_task_on_the_same_thread() {
    let runtime = Builder::new_current_thread()
        .carry_context()
        .build()
        .unwrap();
    let runtime_thread = runtime.block_on(async {
        tokio::spawn(async {
            let _ = REQUEST_ID.set(99);
        })
        .await
        .unwrap();
        tokio::spawn(async { REQUEST_ID.get() }).await.unwrap()
    });
    assert_eq!(runtime_thread, None);
    assert_eq!(REQUEST_ID.get(), None, "the thread that drove the runtime");
}

#[test]
fn without_the_hooks_a_raw_tasks_write_stays_on_its_thread() {
    std::thread::spawn(|| {
        let runtime = Builder::new_current_thread().build().unwrap();
        let seen = runtime.block_on(async {
            tokio::spawn(async {
                let _ = REQUEST_ID.set(99);
            })
            .await
            .unwrap();
            tokio::spawn(async { REQUEST_ID.get() }).await.unwrap()
        });
        assert_eq!(seen, Some(99));
    })
    .join()
    .unwrap();
}

#[test]
fn raw_tasks_setting_values_concurrently_never_see_each_others() {
    on_each_hooked_runtime(|| async {
        const TASKS: u64 = 64;
        let barrier = Arc::new(Barrier::new(TASKS as usize));
        let tasks: Vec<_> = (0..TASKS)
            .map(|id| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let before = REQUEST_ID.get();
                    let _token = REQUEST_ID.set(id);
                    barrier.wait().await;
                    yield_now().await;
                    (before, REQUEST_ID.get())
                })
            })
            .collect();
        for (id, task) in (0..TASKS).zip(tasks) {
            assert_eq!(task.await.unwrap(), (None, Some(id)));
        }
        assert_eq!(REQUEST_ID.get(), None);
    });
}

#[test]
fn a_panicking_raw_task_leaves_nothing_on_its_worker() {
    on_each_hooked_runtime(|| async {
        let failed = tokio::spawn(async {
            let _ = REQUEST_ID.set(5);
            panic!("the task fails after setting a value");
        });
        assert!(failed.await.unwrap_err().is_panic());
        let next = tokio::spawn(async { REQUEST_ID.get() });
        assert_eq!(next.await.unwrap(), None);
    });
}

#[test]
fn a_finished_tasks_future_is_dropped_inside_its_context() {
    on_each_hooked_runtime(|| async {
        let token = REQUEST_ID.set(8);
        let (probe, seen) = DropProbe::new(|| REQUEST_ID.get());
        let (go, wait) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _probe = probe;
            wait.await.unwrap();
        });
        REQUEST_ID.reset(token).unwrap();
        go.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [Some(8)]);
    });
}

#[test]
fn an_aborted_tasks_future_is_dropped_inside_its_context() {
    on_each_hooked_runtime(|| async {
        let _token = REQUEST_ID.set(9);
        let (probe, seen) = DropProbe::new(|| REQUEST_ID.get());
        let (started, running) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _probe = probe;
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        running.await.unwrap();
        let _other = REQUEST_ID.set(10);
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(*seen.lock().unwrap(), [Some(9)]);
    });
}

#[test]
fn a_raw_spawn_inside_suppress_flow_starts_empty() {
    on_each_hooked_runtime(|| async {
        let _token = REQUEST_ID.set(4);
        let task = ctxflow::suppress_flow(|| tokio::spawn(async { REQUEST_ID.get() }));
        assert_eq!(task.await.unwrap(), None);
    });
}

/// tokio keeps one hook of each kind: a poll hook set after `carry_context` replaces ctxflow's,
/// whose context then never comes back from the task's first poll. The next poll says so, where
/// it waited forever.
#[test]
fn an_after_poll_hook_set_after_carry_context_fails_the_next_poll_naming_the_cause() {
    let runtime = Builder::new_current_thread()
        .carry_context()
        .on_after_task_poll(|_| {})
        .build()
        .unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async { tokio::spawn(yield_now()).await })
    }));
    let payload = outcome.expect_err("the second poll panics");
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(message.contains("`on_after_task_poll`"), "{message}");
    assert!(message.contains("carry_context()"), "{message}");
}

/// The hooks copy the spawner's context into every task, so a pooled connection's task would
/// hold the request that opened it; `Isolated`'s tasks hold nothing of their caller.
#[cfg(feature = "hyper")]
#[test]
fn an_isolated_executors_tasks_hold_nothing_of_the_caller() {
    use hyper::rt::Executor;
    on_each_hooked_runtime(|| async {
        let alive = Arc::new(AtomicUsize::new(0));
        let (seen_sender, seen) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let executor = ctxflow::hyper::Isolated::new(ctxflow::tokio::TokioSpawner::current());
        HELD.sync_scope(Counted::new(&alive), || {
            executor.execute(async move {
                let _ = seen_sender.send(HELD.is_set());
                let _ = stopped.await;
            });
        });
        assert!(!seen.await.unwrap(), "the task sees the caller's value");
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "the task holds the caller's value"
        );
        drop(stop);
    });
}

#[test]
fn a_ctxflow_spawn_on_a_hooked_runtime_behaves_as_on_any_other() {
    on_each_hooked_runtime(|| async {
        let _token = REQUEST_ID.set(6);
        let child = ctxflow::spawn(async {
            let _own = STEP.set(1);
            yield_now().await;
            (REQUEST_ID.get(), STEP.get())
        });
        assert_eq!(child.await.unwrap(), (Some(6), Some(1)));
        assert_eq!(STEP.get(), None);
    });
}

#[test]
fn join_set_tasks_inherit_the_spawners_context() {
    on_each_hooked_runtime(|| async {
        let mut set = tokio::task::JoinSet::new();
        for id in 0..16 {
            let _token = REQUEST_ID.set(id);
            set.spawn(async move {
                yield_now().await;
                (id, REQUEST_ID.get())
            });
        }
        let mut seen = 0;
        while let Some(outcome) = set.join_next().await {
            let (id, request_id) = outcome.unwrap();
            assert_eq!(request_id, Some(id));
            seen += 1;
        }
        assert_eq!(seen, 16);
    });
}

/// Stands for a library that starts its own background task with a bare `tokio::spawn`, as
/// SDK flushers and connection pools do.
mod library {
    use tokio::sync::mpsc;

    /// A batcher whose flusher runs as a background task started on construction.
    pub struct Batcher {
        jobs: mpsc::UnboundedSender<Box<dyn FnOnce() + Send>>,
    }

    impl Batcher {
        pub fn start() -> Self {
            let (jobs, mut queue) = mpsc::unbounded_channel::<Box<dyn FnOnce() + Send>>();
            tokio::spawn(async move {
                while let Some(job) = queue.recv().await {
                    job();
                }
            });
            Batcher { jobs }
        }

        pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
            self.jobs.send(Box::new(job)).ok();
        }
    }
}

#[test]
fn a_librarys_background_task_runs_in_the_context_it_was_started_from() {
    on_each_hooked_runtime(|| async {
        let batcher = {
            let _token = REQUEST_ID.set(21);
            library::Batcher::start()
        };
        let _token = REQUEST_ID.set(22);
        let (report, seen) = oneshot::channel();
        batcher.submit(move || report.send(REQUEST_ID.get()).unwrap());
        assert_eq!(seen.await.unwrap(), Some(21));
    });
}

#[test]
fn spawn_blocking_is_not_reached_by_the_hooks() {
    for (flavor, runtime) in hooked_runtimes() {
        let seen = runtime.block_on(async {
            let _token = REQUEST_ID.set(12);
            let raw = tokio::task::spawn_blocking(|| REQUEST_ID.get());
            let wrapped = ctxflow::spawn_blocking(|| REQUEST_ID.get());
            (raw.await.unwrap(), wrapped.await.unwrap())
        });
        assert_eq!(seen, (None, Some(12)), "{flavor}");
    }
}

/// An HTTP/2 server on hyper-util's own `TokioExecutor`: hyper spawns each stream as a task of
/// its own with `tokio::spawn`, and the handler running there sees the connection's context and
/// only its own request's values.
#[test]
fn http2_stream_tasks_spawned_by_hyper_see_the_requests_context() {
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::body::Bytes;
    use hyper::{Request, Response};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    static CONNECTION: ContextVar<&'static str> = ContextVar::new("connection");

    async fn handle(
        request: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let id: u64 = request.headers()["request-id"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let before = REQUEST_ID.get();
        let _token = REQUEST_ID.set(id);
        yield_now().await;
        let background = tokio::spawn(async { REQUEST_ID.get() }).await.unwrap();
        let body = format!(
            "{:?} {:?} {:?} {:?}",
            CONNECTION.get(),
            before,
            REQUEST_ID.get(),
            background
        );
        Ok(Response::new(Full::new(Bytes::from(body))))
    }

    on_each_hooked_runtime(|| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let _token = CONNECTION.set("conn-1");
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(handle)),
            );
        });

        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let requests = (0..8u64).map(|id| {
            let mut sender = sender.clone();
            async move {
                let request = Request::builder()
                    .uri(format!("http://{address}/"))
                    .header("request-id", id.to_string())
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (id, String::from_utf8(body.to_vec()).unwrap())
            }
        });
        for (id, body) in futures::future::join_all(requests).await {
            assert_eq!(
                body,
                format!("Some(\"conn-1\") None Some({id}) Some({id})"),
                "request {id}"
            );
        }
    });
}

/// 100,000 raw spawns from 100 parents, each in a context of its own, on four workers.
#[test]
fn a_hundred_thousand_raw_spawns_each_see_their_parents_context() {
    const PARENTS: u64 = 100;
    const CHILDREN: u64 = 1_000;
    let runtime = Builder::new_multi_thread()
        .worker_threads(4)
        .carry_context()
        .build()
        .unwrap();
    let mismatches = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let parents: Vec<_> = (0..PARENTS)
            .map(|parent| {
                let (mismatches, seen) = (mismatches.clone(), seen.clone());
                tokio::spawn(async move {
                    let _token = REQUEST_ID.set(parent);
                    let children: Vec<_> = (0..CHILDREN)
                        .map(|child| {
                            let (mismatches, seen) = (mismatches.clone(), seen.clone());
                            tokio::spawn(async move {
                                let inherited = REQUEST_ID.get() == Some(parent);
                                let fresh = STEP.get().is_none();
                                let _own = STEP.set(child);
                                yield_now().await;
                                let kept =
                                    STEP.get() == Some(child) && REQUEST_ID.get() == Some(parent);
                                if !(inherited && fresh && kept) {
                                    mismatches.fetch_add(1, Ordering::Relaxed);
                                }
                                seen.fetch_add(1, Ordering::Relaxed);
                            })
                        })
                        .collect();
                    for child in children {
                        child.await.unwrap();
                    }
                })
            })
            .collect();
        for parent in parents {
            parent.await.unwrap();
        }
    });
    assert_eq!(seen.load(Ordering::Relaxed), (PARENTS * CHILDREN) as usize);
    assert_eq!(mismatches.load(Ordering::Relaxed), 0);
    assert!(Context::current().is_empty());
}

/// `block_on` is not a task: its future shares the calling thread's context, writes included,
/// unless it is wrapped.
#[test]
fn the_block_on_future_shares_the_callers_context_unless_wrapped() {
    let runtime = Builder::new_current_thread()
        .carry_context()
        .build()
        .unwrap();
    let _token = REQUEST_ID.set(30);
    let wrapped = runtime.block_on(
        async {
            let _ = STEP.set(1);
            REQUEST_ID.get()
        }
        .in_current_context(),
    );
    assert_eq!((wrapped, STEP.get()), (Some(30), None));
    let raw = runtime.block_on(async {
        let _ = STEP.set(2);
        REQUEST_ID.get()
    });
    assert_eq!((raw, STEP.get()), (Some(30), Some(2)));
}

/// A task's copy of the context goes when the task ends, however it ends. On a current-thread
/// runtime the hooks of a finished task have all run before its awaiter is polled again.
#[test]
fn a_tasks_context_is_dropped_when_the_task_ends_however_it_ends() {
    let runtime = Builder::new_current_thread()
        .carry_context()
        .build()
        .unwrap();
    let alive = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let token = HELD.set(Counted::new(&alive));
        let finished = tokio::spawn(yield_now());
        let panicked = tokio::spawn(async { panic!("the task fails") });
        let aborted = tokio::spawn(std::future::pending::<()>());
        let never_polled = tokio::spawn(std::future::pending::<()>());
        never_polled.abort();
        HELD.reset(token).unwrap();
        assert_eq!(
            alive.load(Ordering::SeqCst),
            1,
            "the tasks' copies hold the value"
        );
        yield_now().await;
        aborted.abort();
        finished.await.unwrap();
        assert!(panicked.await.unwrap_err().is_panic());
        assert!(aborted.await.unwrap_err().is_cancelled());
        assert!(never_polled.await.unwrap_err().is_cancelled());
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    });
}

/// A task spawned while the runtime shuts down is cancelled before tokio runs the spawn hook,
/// so its copy is filed after the task is gone; it goes with the runtime's handles.
#[test]
fn contexts_of_tasks_spawned_after_shutdown_go_with_the_runtime() {
    // Current-thread: no worker thread holds the runtime after it shuts down.
    let runtime = Builder::new_current_thread()
        .carry_context()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let alive = Arc::new(AtomicUsize::new(0));
    runtime.shutdown_background();
    let token = HELD.set(Counted::new(&alive));
    drop(handle.spawn(std::future::pending::<()>()));
    HELD.reset(token).unwrap();
    drop(handle);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}

thread_local! {
    static TENANT: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// A carrier of a plain thread-local, registered once for this test binary.
struct Tenant;

impl Carrier for Tenant {
    type Captured = Option<&'static str>;
    type Saved = Option<&'static str>;
    const NAME: &'static str = "tenant";

    fn capture(&self) -> Self::Captured {
        TENANT.get()
    }
    fn install(&self, captured: &Self::Captured) -> Self::Saved {
        TENANT.replace(*captured)
    }
    fn restore(&self, _: &Self::Captured, saved: Self::Saved) {
        TENANT.set(saved);
    }
}

fn register_tenant() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| register_carrier(Tenant).unwrap());
}

#[test]
fn a_raw_task_sees_its_spawners_carried_state_at_every_poll_and_leaves_the_thread_as_it_was() {
    register_tenant();
    for (flavor, runtime) in hooked_runtimes() {
        TENANT.set(Some("acme"));
        let task = runtime.spawn(async {
            let first = TENANT.get();
            yield_now().await;
            (first, TENANT.get())
        });
        // The current-thread runtime polls on this thread: it must not find the state here.
        TENANT.set(None);
        let seen = runtime.block_on(task).unwrap();
        assert_eq!(seen, (Some("acme"), Some("acme")), "{flavor}");
        assert_eq!(
            TENANT.get(),
            None,
            "{flavor}: the thread's own state is back"
        );
    }
}

thread_local! {
    static FAULTY: Cell<bool> = const { Cell::new(false) };
}

/// A carrier whose install panics when it carries `true`.
struct PanicsOnInstall;

impl Carrier for PanicsOnInstall {
    type Captured = bool;
    type Saved = bool;
    const NAME: &'static str = "panics on install";

    fn capture(&self) -> bool {
        FAULTY.get()
    }
    fn install(&self, faulty: &bool) -> bool {
        assert!(!*faulty, "refused");
        FAULTY.replace(*faulty)
    }
    fn restore(&self, _: &bool, saved: bool) {
        FAULTY.set(saved);
    }
}

#[test]
fn a_carrier_that_panics_in_a_poll_hook_is_left_out_and_the_task_runs_in_its_variables() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| register_carrier(PanicsOnInstall).unwrap());
    for (flavor, runtime) in hooked_runtimes() {
        FAULTY.set(true);
        let token = REQUEST_ID.set(5);
        let task = runtime.spawn(async { (REQUEST_ID.get(), FAULTY.get()) });
        REQUEST_ID.reset(token).unwrap();
        FAULTY.set(false);
        let seen = runtime.block_on(task).unwrap();
        assert_eq!(seen, (Some(5), false), "{flavor}");
        let next = runtime.block_on(runtime.spawn(async { REQUEST_ID.get() }));
        assert_eq!(next.unwrap(), None, "{flavor}: the runtime goes on");
    }
}
