//! What carrying a `tracing` span costs per poll, against `tracing::Instrument` doing the same
//! job, with no subscriber and with a `tracing_subscriber::registry()`; what showing context
//! variables costs per log line; and what carrying OpenTelemetry's context costs per poll,
//! against its own `FutureExt::with_context`.
//!
//! ```text
//! cargo bench -p ctxflow-benches --bench logging --features tracing   # ctxflow carries the span
//! cargo bench -p ctxflow-benches --bench logging                      # off: no span carried
//! cargo bench -p ctxflow-benches --bench logging --features opentelemetry -- OpenTelemetry
//! ```
//!
//! What carrying the span adds to a poll is the difference between "WithContext,
//! in_current_context in the span" and "WithContext, no span"; what `Instrumented` adds is the
//! difference between it and the bare future.
//!
//! Every future here stays pending, so one iteration is one whole poll: entering, polling,
//! leaving.

use std::future::{pending, Future};
use std::hint::black_box;
use std::pin::pin;
use std::task::Context as TaskContext;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ctxflow::{Context, ContextVar, InContext};
use futures::task::noop_waker_ref;
use tracing::Instrument;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

fn polls(c: &mut Criterion, subscriber: &str) {
    let mut group = c.benchmark_group(format!("poll, {subscriber}"));
    let span = tracing::info_span!("request", route = "/orders");
    let _token = REQUEST_ID.set("req-123".into());
    let mut cx = TaskContext::from_waker(noop_waker_ref());

    let mut bare = pin!(pending::<()>());
    group.bench_function("bare future", |b| {
        b.iter(|| black_box(bare.as_mut().poll(&mut cx)))
    });

    let mut instrumented = pin!(pending::<()>().instrument(span.clone()));
    group.bench_function("Instrumented", |b| {
        b.iter(|| black_box(instrumented.as_mut().poll(&mut cx)))
    });

    let mut context_only = pin!(pending::<()>().in_context(Context::current()));
    group.bench_function("WithContext, no span", |b| {
        b.iter(|| black_box(context_only.as_mut().poll(&mut cx)))
    });

    // The context and the span both travel, the span by hand: what the same job takes
    // without the `tracing` feature.
    let mut by_hand = pin!(pending::<()>()
        .instrument(span.clone())
        .in_context(Context::current()));
    group.bench_function("WithContext around Instrumented", |b| {
        b.iter(|| black_box(by_hand.as_mut().poll(&mut cx)))
    });

    let mut carried = pin!(span.in_scope(|| pending::<()>().in_current_context()));
    group.bench_function("WithContext, in_current_context in the span", |b| {
        b.iter(|| black_box(carried.as_mut().poll(&mut cx)))
    });
    group.finish();
}

#[cfg(feature = "tracing")]
fn log_lines(c: &mut Criterion) {
    use std::io;

    use ctxflow::tracing::{LogFields, LogFieldsExt as _};

    let mut group = c.benchmark_group("log line, fmt to io::sink");
    let plain = tracing_subscriber::fmt()
        .with_writer(io::sink)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(plain, || {
        group.bench_function("fmt", |b| {
            b.iter(|| tracing::info!(items = 3, "order placed"))
        });
    });
    let with_fields = tracing_subscriber::fmt()
        .with_writer(io::sink)
        .with_ansi(false)
        .map_event_format(|format| LogFields::new().field(&REQUEST_ID).wrap(format))
        .finish();
    tracing::subscriber::with_default(with_fields, || {
        let _token = REQUEST_ID.set("req-123".into());
        group.bench_function("fmt with LogFields, request_id set", |b| {
            b.iter(|| tracing::info!(items = 3, "order placed"))
        });
    });
    group.finish();
}

#[cfg(not(feature = "tracing"))]
fn log_lines(_: &mut Criterion) {}

#[cfg(feature = "opentelemetry")]
fn trace_context_polls(c: &mut Criterion) {
    use opentelemetry::context::FutureExt;
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};

    let mut group = c.benchmark_group("poll, OpenTelemetry context");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let request =
        opentelemetry::Context::current_with_span(provider.tracer("bench").start("request"));
    let mut cx = TaskContext::from_waker(noop_waker_ref());

    let mut with_context = pin!(pending::<()>().with_context(request.clone()));
    group.bench_function("FutureExt::with_context", |b| {
        b.iter(|| black_box(with_context.as_mut().poll(&mut cx)))
    });

    let _attached = request.attach();
    let mut carried = pin!(pending::<()>().in_current_context());
    group.bench_function("WithContext, in_current_context", |b| {
        b.iter(|| black_box(carried.as_mut().poll(&mut cx)))
    });
    group.finish();
}

#[cfg(not(feature = "opentelemetry"))]
fn trace_context_polls(_: &mut Criterion) {}

fn logging(c: &mut Criterion) {
    polls(c, "no subscriber");
    tracing::subscriber::with_default(tracing_subscriber::registry(), || polls(c, "registry"));
    log_lines(c);
    trace_context_polls(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = logging
}
criterion_main!(benches);
