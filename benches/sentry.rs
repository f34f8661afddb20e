//! Sentry's hub carried across polls: ctxflow's carrier next to Sentry's own `SentryFuture`
//! (`bind_hub`), on the same workload. See `docs/performance.md` for the figures.

mod common;

use std::sync::Arc;

use common::{context_with, drive, Bench, Countdown, PENDING};
use criterion::{criterion_group, criterion_main, Throughput};
use ctxflow::{Context, InContext};
use sentry_core::{Hub, SentryFutureExt};

fn poll(c: &mut Bench) {
    ctxflow::sentry::carry_hub();
    // A hub of its own, as a request has: the thread's would make every switch a no-op.
    let hub = Arc::new(Hub::new_from_top(Hub::current()));
    let mut group = c.benchmark_group("sentry/poll");
    group.throughput(Throughput::Elements(u64::from(PENDING) + 1));

    group.bench_function("bare", |b| b.iter(|| drive(Countdown::new())));
    group.bench_function("sentry_bind_hub", |b| {
        b.iter(|| drive(Countdown::new().bind_hub(hub.clone())))
    });
    // A variable and no hub, as a context built from `Context::empty()` holds: what installing
    // the context itself costs, with no carrier.
    let variable_only = context_with(1);
    group.bench_function("ctxflow_variable_only", |b| {
        b.iter(|| drive(Countdown::new().in_context(variable_only.clone())))
    });
    // The hub alone, then with a variable beside it, as a request's context holds its id.
    let hub_only = Hub::run(hub.clone(), Context::current);
    group.bench_function("ctxflow_hub", |b| {
        b.iter(|| drive(Countdown::new().in_context(hub_only.clone())))
    });
    let hub_and_variable = Hub::run(hub.clone(), || context_with(1).run(Context::current));
    group.bench_function("ctxflow_hub_and_variable", |b| {
        b.iter(|| drive(Countdown::new().in_context(hub_and_variable.clone())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::fast();
    targets = poll
}
criterion_main!(benches);
