//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use futures::task::noop_waker_ref;

pub mod text_line;

/// Returns `Pending` once, waking itself, then `Ready`: ctxflow's own.
pub use ctxflow::yield_now;

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut TaskContext::from_waker(noop_waker_ref()))
}

/// Records, when dropped, what `read` returns at that moment.
pub struct DropProbe<T: Send + 'static> {
    read: fn() -> T,
    seen: Arc<Mutex<Vec<T>>>,
}

impl<T: Send + 'static> DropProbe<T> {
    pub fn new(read: fn() -> T) -> (Self, Arc<Mutex<Vec<T>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            DropProbe {
                read,
                seen: seen.clone(),
            },
            seen,
        )
    }
}

impl<T: Send + 'static> Drop for DropProbe<T> {
    fn drop(&mut self) {
        let value = (self.read)();
        self.seen.lock().unwrap().push(value);
    }
}

/// A value that counts how many of its kind are alive.
pub struct Counted(Arc<AtomicUsize>);

impl Counted {
    pub fn new(alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Counted(alive.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Checks that raw runtime tasks, which ctxflow does not wrap, see an empty context on the
/// runtime's workers, before and after a yield: nothing was left behind there.
#[cfg(feature = "testing")]
pub async fn assert_workers_clean(spawner: &ctxflow::AnySpawner) {
    let receivers: Vec<_> = (0..8)
        .map(|_| {
            let (sender, receiver) = futures::channel::oneshot::channel();
            ctxflow::testing::spawn_unwrapped(spawner, async move {
                let before = ctxflow::Context::current().is_empty();
                yield_now().await;
                let _ = sender.send(before && ctxflow::Context::current().is_empty());
            });
            receiver
        })
        .collect();
    for receiver in receivers {
        assert!(receiver.await.unwrap(), "a context was left on a worker");
    }
}

/// Submits 10,000 jobs through `submit`, each from a context holding its own id, and checks
/// that each job saw its own id and no other. Each job then sets the id to something else, which
/// must not reach the jobs after it on the same worker.
pub fn ten_thousand_jobs_see_only_their_own_ids(submit: impl Fn(Box<dyn FnOnce() + Send>)) {
    static JOB_ID: ctxflow::ContextVar<u64> = ctxflow::ContextVar::new("job_id");
    let (report, seen) = std::sync::mpsc::channel();
    for job_id in 0..10_000 {
        let report = report.clone();
        JOB_ID.sync_scope(job_id, || {
            submit(Box::new(move || {
                let first_look = JOB_ID.get();
                let _token = JOB_ID.set(u64::MAX);
                report.send((job_id, first_look)).unwrap();
            }))
        });
    }
    drop(report);
    let mut seen: Vec<(u64, Option<u64>)> = seen.iter().collect();
    seen.sort_unstable();
    assert_eq!(seen.len(), 10_000);
    for (job_id, first_look) in seen {
        assert_eq!(
            first_look,
            Some(job_id),
            "job {job_id} saw another job's id"
        );
    }
}
