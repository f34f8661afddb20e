//! What showing context variables costs per log line: a `tracing_subscriber::fmt` line with
//! `LogFields` against the plain line.
//!
//! ```text
//! cargo bench -p ctxflow-benches --bench logging --features tracing
//! ```
//!
//! What carrying a span or OpenTelemetry's context costs per poll is in `carriers.rs`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ctxflow::ContextVar;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

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

fn logging(c: &mut Criterion) {
    log_lines(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = logging
}
criterion_main!(benches);
