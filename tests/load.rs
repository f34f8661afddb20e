//! Load: on every runtime, many concurrent tasks, each with its own id, yield at random, spawn
//! children and blocking closures; every poll of every task, and every closure, checks that it
//! sees exactly its own id and its parent's. Not one may see another's.
//!
//! The number of tasks per runtime is `CTXFLOW_LOAD_TASKS`, 100,000 by default.

mod common;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{assert_workers_clean, yield_now, Counted};
use ctxflow::testing::Runtime;
use ctxflow::{AnySpawner, Context, ContextVar, JoinHandle, Spawner};

/// Whose work this is.
static ID: ContextVar<u64> = ContextVar::new("id");
/// Who spawned it.
static PARENT: ContextVar<u64> = ContextVar::new("parent");
/// Counts the values alive, so that none is left once the work is done.
static HELD: ContextVar<Counted> = ContextVar::new("held");

/// Each task's steps are drawn from its own pseudo-random sequence, seeded by its id.
const STEPS: usize = 8;

/// Where a child's id starts: far above every task's.
const CHILD_IDS: u64 = 1 << 40;

fn tasks_per_runtime() -> u64 {
    std::env::var("CTXFLOW_LOAD_TASKS")
        .ok()
        .map(|tasks| tasks.parse().expect("CTXFLOW_LOAD_TASKS is a number"))
        .unwrap_or(100_000)
}

#[derive(Default)]
struct Figures {
    tasks: AtomicU64,
    children: AtomicU64,
    blocking: AtomicU64,
    polls: AtomicU64,
    mismatches: AtomicU64,
}

impl Figures {
    fn check(&self, id: u64, parent: Option<u64>) {
        if ID.get() != Some(id) || PARENT.get() != parent {
            self.mismatches.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// xorshift64*: a deterministic sequence per seed.
struct Steps(u64);

impl Steps {
    fn new(seed: u64) -> Self {
        Steps(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// `future`, checked before and after each of its polls to see exactly `id` and `parent`.
async fn checked<F: Future>(
    id: u64,
    parent: Option<u64>,
    figures: Arc<Figures>,
    future: F,
) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        figures.polls.fetch_add(1, Ordering::Relaxed);
        figures.check(id, parent);
        let poll = future.as_mut().poll(cx);
        figures.check(id, parent);
        poll
    })
    .await
}

/// One task: its steps, then its children joined.
async fn task(id: u64, spawner: AnySpawner, figures: Arc<Figures>) -> u64 {
    let mut steps = Steps::new(id);
    let mut children: Vec<JoinHandle<()>> = Vec::new();
    let mut tokens = Vec::new();
    for step in 0..STEPS as u64 {
        let child = CHILD_IDS + id * STEPS as u64 + step;
        match steps.next() % 16 {
            0..=7 => yield_now().await,
            8 | 9 => {
                figures.children.fetch_add(1, Ordering::Relaxed);
                let figures = figures.clone();
                let handle = PARENT.sync_scope(id, || {
                    ID.sync_scope(child, || {
                        let inner = figures.clone();
                        spawner.spawn(checked(child, Some(id), figures, async move {
                            yield_now().await;
                            inner.check(child, Some(id));
                        }))
                    })
                });
                children.push(handle);
            }
            10 => {
                figures.blocking.fetch_add(1, Ordering::Relaxed);
                let figures = figures.clone();
                let handle = PARENT.sync_scope(id, || {
                    ID.sync_scope(child, || {
                        spawner.spawn_blocking(move || figures.check(child, Some(id)))
                    })
                });
                children.push(handle);
            }
            // A write of its own (the same id again, a new value): copy-on-write while
            // children share the table.
            11 => tokens.push(ID.set(id)),
            _ => {}
        }
    }
    for child in children {
        child.await.unwrap();
    }
    ID.get().unwrap_or(u64::MAX)
}

/// Runs the load on `runtime`; returns the figures.
fn load_on(runtime: Runtime, tasks: u64) -> Figures {
    let figures = Arc::new(Figures::default());
    let alive = Arc::new(AtomicUsize::new(0));
    let body = {
        let (figures, alive) = (figures.clone(), alive.clone());
        move |spawner: AnySpawner| async move {
            let handles: Vec<_> = (0..tasks)
                .map(|id| {
                    figures.tasks.fetch_add(1, Ordering::Relaxed);
                    let cx = Context::empty()
                        .with_value(&ID, id)
                        .with_value(&HELD, Counted::new(&alive));
                    let future = task(id, spawner.clone(), figures.clone());
                    spawner.spawn_in(cx, checked(id, None, figures.clone(), future))
                })
                .collect();
            for (id, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.unwrap(), id as u64);
            }
            assert_eq!(alive.load(Ordering::SeqCst), 0, "values left alive");
            assert_workers_clean(&spawner).await;
        }
    };
    runtime.run(body).unwrap();
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    Arc::try_unwrap(figures).ok().expect("every task is done")
}

#[test]
fn every_poll_of_every_task_sees_only_its_own_id_on_every_runtime() {
    let tasks = tasks_per_runtime();
    for &runtime in Runtime::all() {
        let figures = load_on(runtime, tasks);
        let count = |figure: &AtomicU64| figure.load(Ordering::Relaxed);
        eprintln!(
            "{}: {} tasks, {} children, {} blocking closures, {} polls checked, {} mismatches",
            runtime.name(),
            count(&figures.tasks),
            count(&figures.children),
            count(&figures.blocking),
            count(&figures.polls),
            count(&figures.mismatches),
        );
        assert_eq!(count(&figures.tasks), tasks);
        assert!(count(&figures.children) > 0 && count(&figures.blocking) > 0);
        assert!(
            count(&figures.polls) > tasks,
            "tasks were polled more than once"
        );
        assert_eq!(count(&figures.mismatches), 0, "on {}", runtime.name());
    }
}
