//! ctxflow next to the other ways of carrying context across polls and spawns: tokio's
//! task-locals, OpenTelemetry's `Context`, tracing's spans and dcontext's stores. Each does
//! the same job on the same workload. See `docs/performance.md` for the figures.
#![allow(
    clippy::disallowed_methods,
    reason = "the runtimes' own spawns are the baselines measured against"
)]

mod common;

use std::hint::black_box;
use std::sync::{Arc, OnceLock};

use common::{context_with, drive, Bench, Countdown, PointerSwap, PENDING, SIZES, VARS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Throughput};
use ctxflow::{Context, InContext, Spawner};
use opentelemetry::context::FutureExt as _;
use tracing::Instrument as _;

/// OpenTelemetry keys its values by type, so each of the 64 values needs a type of its own.
#[derive(Clone, Copy)]
struct Slot<const N: usize>(u64);

/// Adds a `Slot::<N>` value to `$cx` for each `N` below `$n`, in order.
macro_rules! add_slots {
    ($cx:ident, $n:expr; $($i:literal)*) => {
        $( if $i < $n { $cx = $cx.with_value(Slot::<$i>($i)); } )*
    };
}

/// An OpenTelemetry context with `n` values, each of its own type.
fn otel_with(n: usize) -> opentelemetry::Context {
    let mut cx = opentelemetry::Context::new();
    add_slots!(cx, n;
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60
        61 62 63);
    cx
}

/// The last value of an `n`-value OpenTelemetry context, from a held snapshot.
fn otel_get_last(cx: &opentelemetry::Context, n: usize) -> Option<u64> {
    match n {
        1 => cx.get::<Slot<0>>().map(|slot| slot.0),
        8 => cx.get::<Slot<7>>().map(|slot| slot.0),
        _ => cx.get::<Slot<63>>().map(|slot| slot.0),
    }
}

/// The same lookup in the thread's current OpenTelemetry context, without cloning it.
fn otel_current_get_last(n: usize) -> Option<u64> {
    opentelemetry::Context::map_current(|cx| otel_get_last(cx, n))
}

/// dcontext names its variables with strings registered once per process.
fn dcontext_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys: Vec<&'static str> = (0..64)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect();
        let mut registry = dcontext::RegistryBuilder::new();
        for key in &keys {
            registry.register::<u64>(key);
        }
        dcontext::initialize(registry);
        keys
    })
}

/// Makes the thread's dcontext store hold exactly the first `n` keys.
fn dcontext_fill(n: usize) {
    dcontext::clear();
    for (value, key) in (0..).zip(&dcontext_keys()[..n]) {
        dcontext::set_context_variable::<u64>(key, value);
    }
}

tokio::task_local! {
    static TASK_LOCAL: u64;
}

fn poll(c: &mut Bench) {
    static VALUE: u64 = 1;
    let mut group = c.benchmark_group("peers/poll");
    group.throughput(Throughput::Elements(u64::from(PENDING) + 1));

    group.bench_function("bare", |b| b.iter(|| drive(Countdown::new())));
    group.bench_function("pointer_swap", |b| {
        b.iter(|| drive(PointerSwap::new(&VALUE, Countdown::new())))
    });
    let cx = context_with(1);
    group.bench_function("ctxflow", |b| {
        b.iter(|| drive(Countdown::new().in_context(cx.clone())))
    });
    group.bench_function("tokio_task_local", |b| {
        b.iter(|| drive(TASK_LOCAL.scope(1, Countdown::new())))
    });
    let otel = otel_with(1);
    group.bench_function("opentelemetry", |b| {
        b.iter(|| drive(Countdown::new().with_context(otel.clone())))
    });
    group.bench_function("tracing_no_subscriber", |b| {
        b.iter(|| drive(Countdown::new().instrument(tracing::info_span!("task"))))
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        group.bench_function("tracing_registry", |b| {
            b.iter(|| drive(Countdown::new().instrument(tracing::info_span!("task"))))
        });
    });
    dcontext_fill(1);
    // A store can be installed only once, so each run forks a new one (once per 1001 polls).
    // The trait is called by path: its `scope` and `attach` would shadow everyone else's.
    group.bench_function("dcontext", |b| {
        b.iter(|| drive(dcontext::ContextFutureExt::fork(Countdown::new())))
    });
    dcontext::clear();
    group.finish();
}

fn snapshot(c: &mut Bench) {
    let mut group = c.benchmark_group("peers/snapshot");
    for n in SIZES {
        let guard = context_with(n).attach();
        group.bench_with_input(BenchmarkId::new("ctxflow", n), &n, |b, _| {
            b.iter(Context::current)
        });
        drop(guard);

        let guard = otel_with(n).attach();
        group.bench_with_input(BenchmarkId::new("opentelemetry", n), &n, |b, _| {
            b.iter(opentelemetry::Context::current)
        });
        drop(guard);

        dcontext_fill(n);
        group.bench_with_input(BenchmarkId::new("dcontext_fork", n), &n, |b, _| {
            b.iter(dcontext::fork)
        });
        group.bench_with_input(BenchmarkId::new("dcontext_capture", n), &n, |b, _| {
            b.iter(dcontext::capture)
        });
        dcontext::clear();
    }
    group.finish();
}

fn get(c: &mut Bench) {
    let mut group = c.benchmark_group("peers/get");
    for n in SIZES {
        // The last variable of a sorted table: ctxflow's slowest lookup.
        let var = &VARS[n - 1];
        let cx = context_with(n);
        let guard = cx.attach();
        group.bench_with_input(BenchmarkId::new("ctxflow_current", n), &n, |b, _| {
            b.iter(|| black_box(var).get())
        });
        drop(guard);
        group.bench_with_input(BenchmarkId::new("ctxflow_snapshot", n), &n, |b, _| {
            b.iter(|| black_box(&cx).get(black_box(var)).copied())
        });

        let otel = otel_with(n);
        let guard = otel.clone().attach();
        group.bench_with_input(BenchmarkId::new("opentelemetry_current", n), &n, |b, _| {
            b.iter(|| otel_current_get_last(black_box(n)))
        });
        drop(guard);
        group.bench_with_input(BenchmarkId::new("opentelemetry_snapshot", n), &n, |b, _| {
            b.iter(|| otel_get_last(black_box(&otel), black_box(n)))
        });

        dcontext_fill(n);
        let key = dcontext_keys()[n - 1];
        group.bench_with_input(BenchmarkId::new("dcontext_current", n), &n, |b, _| {
            b.iter(|| dcontext::get_context_variable::<u64>(black_box(key)))
        });
        dcontext::clear();
    }
    group.finish();
}

fn set(c: &mut Bench) {
    let mut group = c.benchmark_group("peers/set");
    for n in SIZES {
        let var = &VARS[n - 1];
        let cx = context_with(n);
        // The current context, held nowhere else: `set` edits it in place.
        let guard = context_with(n).attach();
        group.bench_with_input(BenchmarkId::new("ctxflow_current", n), &n, |b, _| {
            b.iter(|| drop(black_box(var).set(7)))
        });
        drop(guard);
        group.bench_with_input(BenchmarkId::new("ctxflow_with_value", n), &n, |b, _| {
            b.iter(|| black_box(&cx).with_value(var, 7))
        });

        // OpenTelemetry has no in-place set: a new context is made from the old one.
        let otel = otel_with(n);
        group.bench_with_input(
            BenchmarkId::new("opentelemetry_with_value", n),
            &n,
            |b, _| b.iter(|| black_box(&otel).with_value(Slot::<0>(7))),
        );

        dcontext_fill(n);
        let key = dcontext_keys()[n - 1];
        group.bench_with_input(BenchmarkId::new("dcontext_current", n), &n, |b, _| {
            b.iter(|| dcontext::set_context_variable::<u64>(black_box(key), 7))
        });
        dcontext::clear();
    }
    group.finish();
}

fn spawn(c: &mut Bench) {
    use ctxflow::tokio::TokioSpawner;
    use std::future::Future;
    use std::pin::Pin;
    use tokio::task::yield_now;

    const TASKS: usize = 10_000;
    type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

    async fn work() {
        for _ in 0..10 {
            yield_now().await;
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let spawner = TokioSpawner::from(runtime.handle().clone());
    let otel = Arc::new(otel_with(1));
    // Every variant's driver runs in a one-value ctxflow context, so the harness is the same.
    let run = |driver: Driver| {
        runtime
            .block_on(runtime.spawn(driver.in_context(context_with(1))))
            .expect("the driver finished");
    };

    let mut group = c.benchmark_group("peers/spawn");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("tokio_raw", |b| {
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
        b.iter(|| {
            let spawner = spawner.clone();
            run(Box::pin(async move {
                let handles: Vec<_> = (0..TASKS).map(|_| spawner.spawn(work())).collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.bench_function("tokio_task_local", |b| {
        b.iter(|| {
            run(Box::pin(async {
                let handles: Vec<_> = (0..TASKS)
                    .map(|_| tokio::spawn(TASK_LOCAL.scope(1, work())))
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.bench_function("opentelemetry", |b| {
        b.iter(|| {
            let otel = otel.clone();
            run(Box::pin(async move {
                let handles: Vec<_> = (0..TASKS)
                    .map(|_| tokio::spawn(work().with_context((*otel).clone())))
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            }))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::fast();
    targets = poll, snapshot, get, set
}
criterion_group! {
    name = spawns;
    config = common::slow();
    targets = spawn
}
criterion_main!(benches, spawns);
