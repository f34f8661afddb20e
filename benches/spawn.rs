//! What carrying the context costs a spawned task, on each runtime: the runtime's own spawn
//! against ctxflow's spawner and the type-erased `AnySpawner`, for tasks and for blocking
//! closures. See `docs/performance.md` for the figures, and `benches/memory.rs` for the bytes.
#![allow(
    clippy::disallowed_methods,
    reason = "the runtimes' own spawns are the baselines measured against"
)]

mod common;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;

use common::{Bench, VARS};
use criterion::{criterion_group, criterion_main, Throughput};
use ctxflow::context::WithContext;
use ctxflow::{AnySpawner, Context, InContext, Spawner};

const TASKS: usize = 10_000;
const YIELDS: usize = 10;

/// Threads per blocking pool. Left to their defaults (512 for tokio, 500 for the `blocking`
/// crate behind smol and async-std) the pools start hundreds of threads on two cores and the
/// figures measure thread creation and scheduler noise instead of the spawn path.
const BLOCKING_THREADS: usize = 4;

/// Caps the `blocking` crate's pool; it reads the variable once, when it first starts.
fn cap_blocking_pool() {
    std::env::set_var("BLOCKING_MAX_THREADS", BLOCKING_THREADS.to_string());
}

/// The task that spawns and awaits every other one.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `driver` in a context holding one value, so that every spawn it makes has a snapshot to
/// carry. The raw variants run in the same context, to keep the harness identical.
fn in_request(driver: Driver) -> WithContext<Driver> {
    driver.in_context(Context::current().with_value(&VARS[0], 42))
}

/// Spawns `TASKS` tasks running `work` through a ctxflow spawner, then awaits them all.
async fn spawn_all<S: Spawner, F>(spawner: S, work: fn() -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = (0..TASKS).map(|_| spawner.spawn(work())).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

/// Spawns `TASKS` tasks running `work` on a smol executor directly, then awaits them all.
async fn smol_spawn_all<F>(executor: Arc<smol::Executor<'static>>, work: fn() -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = (0..TASKS).map(|_| executor.spawn(work())).collect();
    for task in tasks {
        task.await;
    }
}

/// Runs `TASKS` closures on a ctxflow spawner's blocking pool, then awaits them all.
async fn spawn_blocking_all<S: Spawner>(spawner: S) {
    let handles: Vec<_> = (0..TASKS)
        .map(|i| spawner.spawn_blocking(move || black_box(i)))
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

fn tokio(c: &mut Bench) {
    use ctxflow::tokio::TokioSpawner;
    use tokio::task::yield_now;

    async fn work() {
        for _ in 0..YIELDS {
            yield_now().await;
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .expect("a tokio runtime");
    let spawner = TokioSpawner::from(runtime.handle().clone());
    let any = AnySpawner::from(spawner.clone());
    // The driver runs on a worker, as a request handler would, so spawns go to a local queue.
    let run = |driver: Driver| {
        runtime
            .block_on(runtime.spawn(in_request(driver)))
            .expect("the driver finished");
    };

    let mut group = c.benchmark_group("spawn/tokio");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("raw", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let handles: Vec<_> = (0..TASKS).map(|_| tokio::spawn(work())).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.bench_function("ctxflow", |b| {
        b.iter(|| run(Box::pin(spawn_all(spawner.clone(), work))))
    });
    group.bench_function("any_spawner", |b| {
        b.iter(|| run(Box::pin(spawn_all(any.clone(), work))))
    });
    group.bench_function("blocking_raw", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| tokio::task::spawn_blocking(move || black_box(i)))
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.bench_function("blocking_ctxflow", |b| {
        b.iter(|| run(Box::pin(spawn_blocking_all(spawner.clone()))))
    });
    group.finish();
}

fn smol(c: &mut Bench) {
    use ctxflow::smol::SmolSpawner;
    use smol::future::yield_now;
    use smol::Executor;

    async fn work() {
        for _ in 0..YIELDS {
            yield_now().await;
        }
    }

    cap_blocking_pool();
    let executor = Arc::new(Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let executor = executor.clone();
            let stopped = stopped.clone();
            // `recv` fails once `stop` is dropped: that is the signal to return.
            std::thread::spawn(move || {
                let _ = smol::block_on(executor.run(stopped.recv()));
            })
        })
        .collect();
    let spawner = SmolSpawner::new(executor.clone());
    let any = AnySpawner::from(spawner.clone());
    let run = |driver: Driver| smol::block_on(executor.spawn(in_request(driver)));

    let mut group = c.benchmark_group("spawn/smol");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("raw", |b| {
        b.iter(|| run(Box::pin(smol_spawn_all(executor.clone(), work))))
    });
    group.bench_function("ctxflow", |b| {
        b.iter(|| run(Box::pin(spawn_all(spawner.clone(), work))))
    });
    group.bench_function("any_spawner", |b| {
        b.iter(|| run(Box::pin(spawn_all(any.clone(), work))))
    });
    group.bench_function("blocking_raw", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| smol::unblock(move || black_box(i)))
                    .collect();
                for task in tasks {
                    task.await;
                }
            }))
        })
    });
    group.bench_function("blocking_ctxflow", |b| {
        b.iter(|| run(Box::pin(spawn_blocking_all(spawner.clone()))))
    });
    group.finish();

    drop(stop);
    for thread in threads {
        thread.join().expect("an executor thread");
    }
}

fn async_std(c: &mut Bench) {
    use async_std::task::{self, yield_now};
    use ctxflow::async_std::AsyncStdSpawner;

    async fn work() {
        for _ in 0..YIELDS {
            yield_now().await;
        }
    }

    cap_blocking_pool();
    let spawner = AsyncStdSpawner::new();
    let any = AnySpawner::from(spawner);
    let run = |driver: Driver| task::block_on(task::spawn(in_request(driver)));

    let mut group = c.benchmark_group("spawn/async_std");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("raw", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let handles: Vec<_> = (0..TASKS).map(|_| task::spawn(work())).collect();
                for handle in handles {
                    handle.await;
                }
            }))
        })
    });
    group.bench_function("ctxflow", |b| {
        b.iter(|| {
            run(Box::pin(async move {
                let handles: Vec<_> = (0..TASKS).map(|_| spawner.spawn(work())).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.bench_function("any_spawner", |b| {
        b.iter(|| run(Box::pin(spawn_all(any.clone(), work))))
    });
    group.bench_function("blocking_raw", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| task::spawn_blocking(move || black_box(i)))
                    .collect();
                for handle in handles {
                    handle.await;
                }
            }))
        })
    });
    group.bench_function("blocking_ctxflow", |b| {
        b.iter(|| {
            run(Box::pin(async move {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| spawner.spawn_blocking(move || black_box(i)))
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.finish();
}

/// The same spawns with every task run on the benchmark's thread: a tokio current-thread
/// runtime, and a smol executor run by `block_on`. What is left is each task's own CPU cost.
fn single_thread(c: &mut Bench) {
    use ctxflow::smol::SmolSpawner;
    use ctxflow::tokio::TokioSpawner;

    async fn tokio_work() {
        for _ in 0..YIELDS {
            tokio::task::yield_now().await;
        }
    }

    async fn smol_work() {
        for _ in 0..YIELDS {
            smol::future::yield_now().await;
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let spawner = TokioSpawner::from(runtime.handle().clone());
    let any = AnySpawner::from(spawner.clone());
    let run = |driver: Driver| runtime.block_on(in_request(driver));

    let mut group = c.benchmark_group("spawn/tokio_current_thread");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("raw", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let handles: Vec<_> = (0..TASKS).map(|_| tokio::spawn(tokio_work())).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.bench_function("ctxflow", |b| {
        b.iter(|| run(Box::pin(spawn_all(spawner.clone(), tokio_work))))
    });
    group.bench_function("any_spawner", |b| {
        b.iter(|| run(Box::pin(spawn_all(any.clone(), tokio_work))))
    });
    // A group awaits its members as they finish instead of in order.
    group.bench_function("task_group", |b| {
        b.iter(|| {
            let spawner = spawner.clone();
            run(Box::pin(async move {
                let mut members = ctxflow::TaskGroup::new(spawner);
                for _ in 0..TASKS {
                    members.spawn(tokio_work());
                }
                while let Some(outcome) = members.join_next().await {
                    outcome.unwrap();
                }
            }))
        })
    });
    group.finish();

    let executor = Arc::new(smol::Executor::new());
    let spawner = SmolSpawner::new(executor.clone());
    let any = AnySpawner::from(spawner.clone());
    let run = |driver: Driver| smol::block_on(executor.run(in_request(driver)));

    let mut group = c.benchmark_group("spawn/smol_one_thread");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("raw", |b| {
        b.iter(|| run(Box::pin(smol_spawn_all(executor.clone(), smol_work))))
    });
    group.bench_function("ctxflow", |b| {
        b.iter(|| run(Box::pin(spawn_all(spawner.clone(), smol_work))))
    });
    group.bench_function("any_spawner", |b| {
        b.iter(|| run(Box::pin(spawn_all(any.clone(), smol_work))))
    });
    group.finish();
}

/// tokio's task hooks (`--cfg tokio_unstable`), which give every task a context, against the
/// same runtime without them, and against a ctxflow spawn on the runtime without them. Tasks
/// that finish at their first poll measure the spawn; tasks that yield `POLLS` times measure
/// the poll. All on one current-thread runtime, timed on its thread, so that the ratios are
/// CPU cost alone.
#[cfg(tokio_unstable)]
fn tokio_hooks(c: &mut Bench) {
    use ctxflow::tokio::{ContextHooks, TokioSpawner};

    const POLLS: usize = 100;
    const POLLED_TASKS: usize = 100;

    async fn finish() {}

    async fn yield_often() {
        for _ in 0..POLLS {
            tokio::task::yield_now().await;
        }
    }

    async fn raw_spawn_all<F: Future<Output = ()> + Send + 'static>(tasks: usize, work: fn() -> F) {
        let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(work())).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }

    async fn ctxflow_spawn_all<F: Future<Output = ()> + Send + 'static>(
        tasks: usize,
        work: fn() -> F,
    ) {
        let spawner = TokioSpawner::current();
        let handles: Vec<_> = (0..tasks).map(|_| spawner.spawn(work())).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }

    /// One group: `tasks` tasks, each polled `polls` times, spawned three ways.
    fn compare<F: Future<Output = ()> + Send + 'static>(
        c: &mut Bench,
        name: &str,
        tasks: usize,
        polls: usize,
        work: fn() -> F,
    ) {
        let plain = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        let hooked = tokio::runtime::Builder::new_current_thread()
            .carry_context()
            .build()
            .expect("a tokio runtime with ctxflow's hooks");
        let run = |runtime: &tokio::runtime::Runtime, driver: Driver| {
            runtime.block_on(in_request(driver))
        };

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((tasks * polls) as u64));
        group.bench_function("raw", |b| {
            b.iter(|| run(&plain, Box::pin(raw_spawn_all(tasks, work))))
        });
        group.bench_function("raw_hooked", |b| {
            b.iter(|| run(&hooked, Box::pin(raw_spawn_all(tasks, work))))
        });
        group.bench_function("ctxflow", |b| {
            b.iter(|| run(&plain, Box::pin(ctxflow_spawn_all(tasks, work))))
        });
        group.finish();
    }

    compare(c, "spawn/tokio_hooks", TASKS, 1, finish);
    compare(c, "poll/tokio_hooks", POLLED_TASKS, POLLS + 1, yield_often);
}

/// Without `--cfg tokio_unstable` tokio has no task hooks to measure.
#[cfg(not(tokio_unstable))]
fn tokio_hooks(_: &mut Bench) {}

criterion_group! {
    name = hooks;
    config = common::single_threaded();
    targets = tokio_hooks
}
criterion_group! {
    name = benches;
    config = common::slow();
    targets = tokio, smol, async_std
}
criterion_group! {
    name = single;
    config = common::single_threaded();
    targets = single_thread
}
criterion_main!(benches, single, hooks);
