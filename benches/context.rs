//! The cost of each context operation on its own, next to the cheapest thing that does the same
//! job: an `Arc` clone for a snapshot, a `HashMap` for a lookup, a raw pointer swap for the
//! per-poll install. See `docs/performance.md` for the figures.

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use common::{
    context_with, drive, Bench, Clock, Countdown, OneWordSwap, PointerSwap, TwoWordSwap, PENDING,
    SIZES, VARS,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Throughput};
use ctxflow::context::ContextGuard;
use ctxflow::{Context, ContextVar, InContext};

/// Snapshots held at once by the shared `set` benchmark.
const CHUNK: usize = 1024;

/// A context with the first `n` variables set, made the current one and held nowhere else,
/// so that `set` edits it in place.
fn attach_unshared(n: usize) -> ContextGuard {
    context_with(n).attach()
}

/// Contexts are sorted by the variable's address and `VARS` is laid out in order, so the last
/// of the first `n` is the one a linear scan reaches last: the slowest lookup.
fn slowest(n: usize) -> &'static ContextVar<u64> {
    &VARS[n - 1]
}

fn snapshot(c: &mut Bench) {
    let mut group = c.benchmark_group("context/current");
    let arc = Arc::new(0_u64);
    group.bench_function("arc_clone_drop", |b| b.iter(|| black_box(&arc).clone()));
    for n in SIZES {
        let _guard = attach_unshared(n);
        group.bench_with_input(BenchmarkId::new("ctxflow", n), &n, |b, _| {
            b.iter(Context::current)
        });
    }
    group.finish();
}

fn get(c: &mut Bench) {
    let mut group = c.benchmark_group("context/get");
    for n in SIZES {
        let var = slowest(n);
        let guard = attach_unshared(n);
        group.bench_with_input(BenchmarkId::new("ctxflow_current", n), &n, |b, _| {
            b.iter(|| black_box(var).get())
        });
        drop(guard);

        let cx = context_with(n);
        group.bench_with_input(BenchmarkId::new("ctxflow_snapshot", n), &n, |b, _| {
            b.iter(|| black_box(&cx).get(black_box(var)).copied())
        });

        // Keyed like a context variable (by address), with std's default hasher.
        let map: HashMap<usize, u64> = VARS[..n]
            .iter()
            .zip(0..)
            .map(|(var, value)| (std::ptr::from_ref(var) as usize, value))
            .collect();
        let key = std::ptr::from_ref(var) as usize;
        group.bench_with_input(BenchmarkId::new("hashmap", n), &n, |b, _| {
            b.iter(|| black_box(&map).get(black_box(&key)).copied())
        });
    }
    group.finish();
}

fn set(c: &mut Bench) {
    let mut group = c.benchmark_group("context/set");
    for n in SIZES {
        let var = slowest(n);
        let guard = attach_unshared(n);
        group.bench_with_input(BenchmarkId::new("unshared", n), &n, |b, _| {
            b.iter(|| drop(black_box(var).set(7)))
        });
        // A snapshot taken before every `set`, as a spawn takes one, so that every `set` has to
        // copy the table. The snapshot (see `context/current`) is inside the timing; freeing the
        // tables it keeps alive is not, and happens in chunks to bound the memory held.
        group.bench_with_input(BenchmarkId::new("shared", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let clock = Clock::thread();
                let mut held = Vec::with_capacity(CHUNK);
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(CHUNK as u64);
                    let start = clock.now();
                    for _ in 0..chunk {
                        held.push(Context::current());
                        drop(black_box(var).set(7));
                    }
                    total += clock.now() - start;
                    held.clear();
                    left -= chunk;
                }
                total
            })
        });
        drop(guard);
    }
    group.finish();
}

fn poll(c: &mut Bench) {
    static VALUE: u64 = 1;
    let mut group = c.benchmark_group("context/poll");
    group.throughput(Throughput::Elements(u64::from(PENDING) + 1));
    let cx = context_with(1);
    group.bench_function("bare", |b| b.iter(|| drive(Countdown::new())));
    group.bench_function("pointer_swap", |b| {
        b.iter(|| drive(PointerSwap::new(&VALUE, Countdown::new())))
    });
    let thin = Arc::new(vec![1_u64]);
    group.bench_function("one_word_refcell", |b| {
        b.iter(|| drive(OneWordSwap::new(thin.clone(), Countdown::new())))
    });
    let fat: Arc<[u64]> = Arc::from([1_u64]);
    group.bench_function("two_words_refcell", |b| {
        b.iter(|| drive(TwoWordSwap::new(fat.clone(), Countdown::new())))
    });
    group.bench_function("ctxflow", |b| {
        b.iter(|| drive(Countdown::new().in_context(cx.clone())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::fast();
    targets = snapshot, get, set, poll
}
criterion_main!(benches);
