//! What carrying the caller's context into a rayon parallel iterator costs: the same
//! `par_iter` over a million small items, with and without `with_current_context`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ctxflow::rayon::ParallelIteratorExt;
use ctxflow::ContextVar;
use rayon::prelude::*;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

const ITEMS: u64 = 1_000_000;

/// A few nanoseconds of work per item, so that any per-item cost of the context would show.
fn small_work(item: &u64) -> u64 {
    item.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (item >> 7)
}

fn par_iter_over_a_million_items(c: &mut Criterion) {
    let items: Vec<u64> = (0..ITEMS).collect();
    let _token = REQUEST_ID.set("req-bench".into());

    let mut group = c.benchmark_group("par_iter_1m_items");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("without_context", |b| {
        b.iter(|| black_box(&items).par_iter().map(small_work).sum::<u64>())
    });
    group.bench_function("with_current_context", |b| {
        b.iter(|| {
            black_box(&items)
                .par_iter()
                .with_current_context()
                .map(small_work)
                .sum::<u64>()
        })
    });
    group.finish();
}

criterion_group!(benches, par_iter_over_a_million_items);
criterion_main!(benches);
