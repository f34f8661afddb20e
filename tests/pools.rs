//! The caller's context reaches std threads and pools of the application's own, and never
//! stays behind on a worker.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};

use ctxflow::pool::{ContextPool, Job};
use ctxflow::thread::BuilderExt;
use ctxflow::{Context, ContextVar};
use futures::executor::block_on;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static SCRATCH: ContextVar<&'static str> = ContextVar::new("scratch");
static TRANSACTION: ContextVar<u32> = ContextVar::non_flowing("transaction");

/// A fixed-size pool as applications write them: workers take boxed jobs from one queue, and a
/// job's panic does not kill its worker.
struct WorkerPool {
    queue: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    #[allow(
        clippy::disallowed_methods,
        reason = "the application's own pool of plain threads, which `ContextPool` wraps"
    )]
    fn new(threads: usize) -> Self {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let workers = (0..threads)
            .map(|_| {
                let jobs = Arc::clone(&jobs);
                thread::spawn(move || work(&jobs))
            })
            .collect();
        WorkerPool {
            queue: Some(queue),
            workers,
        }
    }

    fn submit(&self, job: Job) {
        let queue = self.queue.as_ref().expect("the pool is running");
        queue.send(job).expect("the workers are running");
    }

    fn with_context(&self) -> ContextPool<impl Fn(Job) + '_> {
        ContextPool::new(|job| self.submit(job))
    }

    /// The context a worker has of its own, between jobs; meaningful on a one-worker pool.
    fn bare_worker_context(&self) -> Context {
        let (report, seen) = mpsc::channel();
        self.submit(Box::new(move || report.send(Context::current()).unwrap()));
        seen.recv().unwrap()
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = jobs.lock().unwrap().recv();
        let Ok(job) = next else { return };
        let _ = panic::catch_unwind(AssertUnwindSafe(job));
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            worker.join().unwrap();
        }
    }
}

#[derive(Debug, PartialEq)]
struct ItemStatus {
    item_id: String,
    priority: u8,
    request_id: Option<String>,
    processed: bool,
}

/// The seed's example of CPU work: takes arguments, returns a status, reads the request id.
fn process_item(item_id: &str, priority: u8) -> ItemStatus {
    ItemStatus {
        item_id: item_id.to_string(),
        priority,
        request_id: REQUEST_ID.get(),
        processed: true,
    }
}

#[test]
fn spawned_thread_sees_callers_request_id() {
    let _token = REQUEST_ID.set("req-thread".into());

    let seen = ctxflow::thread::spawn(|| REQUEST_ID.get()).join().unwrap();

    assert_eq!(seen.as_deref(), Some("req-thread"));
}

#[test]
fn builder_spawned_thread_sees_callers_request_id_under_its_own_name() {
    let _token = REQUEST_ID.set("req-builder".into());

    let worker = thread::Builder::new()
        .name("resizer".into())
        .spawn_with_context(|| (thread::current().name().map(String::from), REQUEST_ID.get()))
        .unwrap();

    let (name, seen) = worker.join().unwrap();
    assert_eq!(name.as_deref(), Some("resizer"));
    assert_eq!(seen.as_deref(), Some("req-builder"));
}

#[test]
fn value_set_after_spawn_does_not_reach_the_thread() {
    let _token = REQUEST_ID.set("req-before".into());
    let changed = Arc::new(Barrier::new(2));

    let worker = ctxflow::thread::spawn({
        let changed = Arc::clone(&changed);
        move || {
            changed.wait();
            REQUEST_ID.get()
        }
    });
    let _later = REQUEST_ID.set("req-after".into());
    changed.wait();

    assert_eq!(worker.join().unwrap().as_deref(), Some("req-before"));
}

#[test]
fn value_set_in_the_thread_stays_in_the_thread() {
    let _token = REQUEST_ID.set("req-parent".into());

    ctxflow::thread::spawn(|| {
        let _token = REQUEST_ID.set("req-child".into());
    })
    .join()
    .unwrap();

    assert_eq!(REQUEST_ID.get().as_deref(), Some("req-parent"));
}

#[test]
fn non_flowing_variable_stays_behind_on_threads_and_pools() {
    let workers = WorkerPool::new(1);
    let pool = workers.with_context();
    let _request = REQUEST_ID.set("req-flowing".into());
    let _transaction = TRANSACTION.set(7);
    let (report, seen) = mpsc::channel();

    let on_thread = ctxflow::thread::spawn(|| (REQUEST_ID.get(), TRANSACTION.get()));
    let on_pool = pool.spawn(|| (REQUEST_ID.get(), TRANSACTION.get()));
    pool.execute(move || report.send((REQUEST_ID.get(), TRANSACTION.get())).unwrap());

    let expected = (Some("req-flowing".to_string()), None);
    assert_eq!(on_thread.join().unwrap(), expected);
    assert_eq!(block_on(on_pool).unwrap(), expected);
    assert_eq!(seen.recv().unwrap(), expected);
    assert_eq!(TRANSACTION.get(), Some(7));
}

#[test]
fn nothing_flows_into_threads_or_pools_inside_suppress_flow() {
    let workers = WorkerPool::new(1);
    let pool = workers.with_context();
    let _token = REQUEST_ID.set("req-long-lived".into());

    let (on_thread, on_pool) = ctxflow::suppress_flow(|| {
        (
            ctxflow::thread::spawn(|| REQUEST_ID.get()),
            pool.spawn(|| REQUEST_ID.get()),
        )
    });

    assert_eq!(on_thread.join().unwrap(), None);
    assert_eq!(block_on(on_pool).unwrap(), None);
}

#[test]
fn closure_on_pool_sees_callers_request_id() {
    let workers = WorkerPool::new(2);
    let pool = workers.with_context();
    let _token = REQUEST_ID.set("req-execute".into());
    let (report, seen) = mpsc::channel();

    pool.execute(move || report.send(REQUEST_ID.get()).unwrap());

    assert_eq!(seen.recv().unwrap().as_deref(), Some("req-execute"));
}

#[test]
fn process_item_on_pool_returns_its_status_with_callers_request_id() {
    let workers = WorkerPool::new(2);
    let pool = workers.with_context();
    let _token = REQUEST_ID.set("req-456".into());

    let (item_id, priority) = ("item-123".to_string(), 1);
    let status = block_on(pool.spawn(move || process_item(&item_id, priority))).unwrap();

    assert_eq!(
        status,
        ItemStatus {
            item_id: "item-123".into(),
            priority: 1,
            request_id: Some("req-456".into()),
            processed: true,
        }
    );
}

#[test]
fn ten_thousand_closures_on_two_workers_each_see_only_their_own_id() {
    let workers = WorkerPool::new(2);
    let pool = workers.with_context();
    common::ten_thousand_jobs_see_only_their_own_ids(|job| pool.execute(job));
}

#[test]
fn closure_that_sets_a_variable_leaves_no_trace_on_the_worker() {
    let workers = WorkerPool::new(1);
    let pool = workers.with_context();
    let _token = REQUEST_ID.set("req-writer".into());

    block_on(pool.spawn(|| {
        let _kept = SCRATCH.set("left behind?");
        let _replaced = REQUEST_ID.set("req-overwritten".into());
    }))
    .unwrap();

    assert!(workers.bare_worker_context().is_empty());
}

#[test]
fn next_closure_on_the_same_worker_sees_only_its_own_context() {
    let workers = WorkerPool::new(1);
    let pool = workers.with_context();

    let first = REQUEST_ID.sync_scope("req-first".into(), || {
        pool.spawn(|| {
            let _kept = SCRATCH.set("from the first job");
            REQUEST_ID.get()
        })
    });
    let second = pool.spawn(|| (REQUEST_ID.get(), SCRATCH.get()));

    assert_eq!(block_on(first).unwrap().as_deref(), Some("req-first"));
    assert_eq!(block_on(second).unwrap(), (None, None));
}

#[test]
fn panicking_closure_leaves_the_worker_clean() {
    let workers = WorkerPool::new(1);
    let pool = workers.with_context();

    REQUEST_ID.sync_scope("req-doomed".into(), || {
        pool.execute(|| {
            let _kept = SCRATCH.set("set before the panic");
            panic!("job failed");
        });
    });
    // One worker and one queue: this runs after the panicking job, on the same thread.
    let next = pool.spawn(|| (REQUEST_ID.get(), SCRATCH.get()));

    assert_eq!(block_on(next).unwrap(), (None, None));
    assert!(workers.bare_worker_context().is_empty());
}

#[test]
fn panic_in_a_spawned_closure_reaches_its_handle_and_leaves_the_worker_clean() {
    let workers = WorkerPool::new(1);
    let pool = workers.with_context();

    let failed = REQUEST_ID.sync_scope("req-doomed".into(), || {
        pool.spawn(|| -> ItemStatus {
            let _kept = SCRATCH.set("set before the panic");
            panic!("cannot process item-123")
        })
    });

    let error = block_on(failed).unwrap_err();
    assert!(error.is_panic());
    assert_eq!(error.to_string(), "task panicked: cannot process item-123");
    assert!(workers.bare_worker_context().is_empty());
}

#[test]
fn closure_dropped_by_the_pool_without_running_is_cancelled() {
    let discarding = ContextPool::new(drop::<Job>);

    let never_run = discarding.spawn(|| process_item("item-123", 1));

    assert!(block_on(never_run).unwrap_err().is_cancelled());
}

/// A job a pool drops unrun (it shuts down with the job queued) is dropped inside its context,
/// whether it came from `spawn`, `execute` or `Context::wrap`.
#[test]
fn jobs_dropped_unrun_are_dropped_inside_their_context() {
    /// Reports, when dropped, the request id it sees.
    struct Probe(mpsc::Sender<Option<String>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.send(REQUEST_ID.get()).unwrap();
        }
    }

    let (queue, queued) = mpsc::channel::<Job>();
    let pool = ContextPool::new(move |job| queue.send(job).unwrap());
    let (report, seen) = mpsc::channel();
    let probes = [(); 3].map(|()| Probe(report.clone()));
    let [spawned, executed, wrapped] = probes;
    let wrapped = REQUEST_ID.sync_scope("req-queued".into(), || {
        drop(pool.spawn(move || drop(spawned)));
        pool.execute(move || drop(executed));
        Context::current().wrap(move || drop(wrapped))
    });
    drop((pool, queued, wrapped));
    drop(report);
    let seen: Vec<_> = seen.iter().collect();
    assert_eq!(seen, vec![Some("req-queued".to_string()); 3]);
    assert_eq!(REQUEST_ID.get(), None);
}
