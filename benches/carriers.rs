//! What carrying a `tracing` span, an OpenTelemetry context or Sentry's hub costs per poll,
//! against each library's own wrapper (`Instrumented`, `with_context`, `bind_hub`), on the
//! benchmark thread's CPU clock:
//!
//! ```text
//! cargo bench -p ctxflow-benches --features tracing,opentelemetry,sentry --bench carriers
//! ```
//!
//! A carrier's cost is what it adds to ctxflow's own wrapper (`ctxflow` against the carrying
//! variant); its library's wrapper's cost is what that adds to a bare poll (`bare`).
//!
//! The same variants also run once each under `valgrind --tool=callgrind`, which counts
//! instructions the same on a loaded machine as on an idle one: `--polls N VARIANT` polls one
//! variant's future N times; two runs with different counts give one poll, start-up aside.
//! `--tasks VARIANT` spawns ten thousand tasks from inside a span, as `benches/memory.rs
//! --workload` does outside any, carried by `instrument` (`raw`) or by ctxflow (`ctxflow`).

mod common;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use common::Bench;
use ctxflow::{Context, ContextVar, InContext};
use futures::task::noop_waker_ref;
use tracing::Instrument;

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");

/// Always pending, behind a call the optimiser cannot see through, as a task's state machine.
struct Opaque;

impl Future for Opaque {
    type Output = ();

    #[inline(never)]
    fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        black_box(Poll::Pending)
    }
}

/// A variant's future, ready to be polled, and the subscriber it is polled under.
struct Prepared {
    future: Pin<Box<dyn Future<Output = ()>>>,
    _subscriber: tracing::subscriber::DefaultGuard,
}

impl Prepared {
    fn poll_times(&mut self, polls: u64) {
        let mut cx = TaskContext::from_waker(noop_waker_ref());
        for _ in 0..polls {
            black_box(self.future.as_mut().poll(&mut cx).is_pending());
        }
    }
}

/// A context of one variable, as a request's holds its id.
fn request_context() -> Context {
    Context::empty().with_value(&REQUEST_ID, 7)
}

const VARIANTS: &[&str] = &[
    "bare",
    "ctxflow",
    "span-instrumented",
    "span-ctxflow-around-instrumented",
    "span-ctxflow",
    "otel-with-context",
    "otel-ctxflow",
    "sentry-bind-hub",
    "sentry-ctxflow",
];

fn prepare(variant: &str) -> Prepared {
    let subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
    let span = tracing::info_span!("request", route = "/orders");
    let future: Pin<Box<dyn Future<Output = ()>>> = match variant {
        "bare" => Box::pin(Opaque),
        "ctxflow" => Box::pin(Opaque.in_context(request_context())),
        "span-instrumented" => Box::pin(Opaque.instrument(span)),
        "span-ctxflow-around-instrumented" => {
            Box::pin(Opaque.instrument(span).in_context(request_context()))
        }
        "span-ctxflow" => {
            let context = span.in_scope(|| request_context().run(Context::current));
            Box::pin(Opaque.in_context(context))
        }
        "otel-with-context" | "otel-ctxflow" => {
            use opentelemetry::context::FutureExt;
            use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            let trace = opentelemetry::Context::current_with_span(
                provider.tracer("bench").start("request"),
            );
            if variant == "otel-with-context" {
                Box::pin(Opaque.with_context(trace))
            } else {
                let _attached = trace.attach();
                let context = request_context().run(Context::current);
                Box::pin(Opaque.in_context(context))
            }
        }
        "sentry-bind-hub" | "sentry-ctxflow" => {
            use sentry_core::{Hub, SentryFutureExt};
            // A hub of the request's own: the thread's would make every switch a no-op.
            let hub = Arc::new(Hub::new_from_top(Hub::current()));
            if variant == "sentry-bind-hub" {
                Box::pin(Opaque.bind_hub(hub))
            } else {
                ctxflow::sentry::carry_hub();
                let context = Hub::run(hub, || request_context().run(Context::current));
                Box::pin(Opaque.in_context(context))
            }
        }
        _ => panic!("unknown variant {variant}; the variants are {VARIANTS:?}"),
    };
    Prepared {
        future,
        _subscriber: subscriber,
    }
}

/// Each variant's future, polled once per iteration.
fn polls(c: &mut Bench) {
    for (group, variants) in [
        ("carriers/span", &VARIANTS[..5]),
        (
            "carriers/opentelemetry",
            &[VARIANTS[0], VARIANTS[1], VARIANTS[5], VARIANTS[6]][..],
        ),
        (
            "carriers/sentry",
            &[VARIANTS[0], VARIANTS[1], VARIANTS[7], VARIANTS[8]][..],
        ),
    ] {
        let mut group = c.benchmark_group(group);
        for &variant in variants {
            group.bench_function(variant, |b| {
                let mut prepared = prepare(variant);
                b.iter(|| prepared.poll_times(1))
            });
        }
        group.finish();
    }
}

/// Tasks in one `--tasks` run, and the yields each makes, as in `benches/memory.rs`.
const TASKS: usize = 10_000;
const YIELDS: usize = 10;

/// Spawns `TASKS` tasks of eleven polls each on a tokio current-thread runtime from inside a
/// span, and awaits them: `raw` spawns with tokio and carries the span with `instrument`,
/// `ctxflow` spawns with ctxflow, which carries it; `none` only starts the runtime.
fn spawn_in_span(variant: &str) {
    async fn work() {
        for _ in 0..YIELDS {
            tokio::task::yield_now().await;
        }
    }

    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
    let span = tracing::info_span!("request", route = "/orders");
    let driver = async {
        match variant {
            "none" => {}
            "raw" => {
                #[allow(clippy::disallowed_methods, reason = "the raw spawn is the baseline")]
                let handles: Vec<_> = (0..TASKS)
                    .map(|_| tokio::spawn(work().instrument(tracing::Span::current())))
                    .collect();
                for handle in handles {
                    handle.await.expect("the task ends");
                }
            }
            "ctxflow" => {
                use ctxflow::Spawner as _;
                let handles: Vec<_> = (0..TASKS).map(|_| spawner.spawn(work())).collect();
                for handle in handles {
                    handle.await.expect("the task ends");
                }
            }
            _ => panic!("unknown variant {variant}: none, raw or ctxflow"),
        }
    };
    runtime.block_on(driver.instrument(span).in_context(request_context()));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--tasks") {
        spawn_in_span(&args[at + 1]);
        return;
    }
    if let Some(at) = args.iter().position(|arg| arg == "--polls") {
        let polls = args[at + 1].parse().expect("--polls takes a number");
        prepare(&args[at + 2]).poll_times(polls);
        return;
    }
    let mut criterion = common::fast().configure_from_args();
    polls(&mut criterion);
    criterion.final_summary();
}
