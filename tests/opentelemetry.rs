//! OpenTelemetry's context follows spawns: spans started in a task or a blocking closure are
//! children of the spawner's span, as the SDK's in-memory exporter records them, on every
//! runtime.

mod common;

use common::yield_now;
use ctxflow::testing::each_runtime;
use ctxflow::{preserve_context, Context, Spawner};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};

/// A tracer whose finished spans the exporter keeps.
fn tracer() -> (SdkTracer, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider.tracer("ctxflow-tests"), exporter)
}

/// Starts and ends a span named `name` in the current OpenTelemetry context; returns its
/// identity.
fn record_span(tracer: &SdkTracer, name: &'static str) -> SpanContext {
    let mut span = tracer.start(name);
    let identity = span.span_context().clone();
    span.end();
    identity
}

fn finished(exporter: &InMemorySpanExporter, span: &SpanContext) -> SpanData {
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .find(|finished| finished.span_context.span_id() == span.span_id())
        .expect("the span was exported when it ended")
}

/// Checks that `child` was recorded as a child of `parent`, in its trace.
fn assert_child_of(exporter: &InMemorySpanExporter, child: &SpanContext, parent: &SpanContext) {
    let child = finished(exporter, child);
    assert_eq!(
        child.span_context.trace_id(),
        parent.trace_id(),
        "{}",
        child.name
    );
    assert_eq!(child.parent_span_id, parent.span_id(), "{}", child.name);
}

each_runtime! {
    fn spans_started_in_a_task_and_a_blocking_closure_are_children_of_the_spawners_span(spawner) {
        let (tracer, exporter) = tracer();
        let request = opentelemetry::Context::current_with_span(tracer.start("request"));
        let parent = request.span().span_context().clone();
        let (task, blocking) = {
            let _attached = request.attach();
            let in_task = tracer.clone();
            let in_closure = tracer.clone();
            (
                spawner.spawn(async move {
                    yield_now().await;
                    record_span(&in_task, "background task")
                }),
                spawner.spawn_blocking(move || record_span(&in_closure, "blocking closure")),
            )
        };
        assert_child_of(&exporter, &task.await.unwrap(), &parent);
        assert_child_of(&exporter, &blocking.await.unwrap(), &parent);
    }
}

each_runtime! {
    fn the_current_context_in_a_task_is_the_spawners_with_its_baggage_and_span(spawner) {
        use opentelemetry::baggage::BaggageExt;
        use opentelemetry::KeyValue;

        let (tracer, _) = tracer();
        let request = opentelemetry::Context::current_with_span(tracer.start("request"))
            .with_baggage([KeyValue::new("tenant", "acme")]);
        let parent = request.span().span_context().clone();
        let task = {
            let _attached = request.attach();
            spawner.spawn(async {
                yield_now().await;
                let current = opentelemetry::Context::current();
                let tenant = current
                    .baggage()
                    .get("tenant")
                    .map(|value| value.to_string());
                (current.span().span_context().clone(), tenant)
            })
        };
        let (seen, tenant) = task.await.unwrap();
        assert_eq!(seen, parent);
        assert_eq!(tenant.as_deref(), Some("acme"));
    }
}

each_runtime! {
    fn a_preserve_context_worker_started_elsewhere_keeps_the_callers_trace(spawner) {
        let (tracer, exporter) = tracer();
        let request = opentelemetry::Context::current_with_span(tracer.start("request"));
        let parent = request.span().span_context().clone();
        let worker = {
            let _attached = request.attach();
            let tracer = tracer.clone();
            preserve_context(async move {
                yield_now().await;
                record_span(&tracer, "worker")
            })
        };
        // Polled by another task, whose own context is empty.
        let worker = spawner.spawn_in(Context::empty(), worker);
        assert_child_of(&exporter, &worker.await.unwrap(), &parent);
    }
}

each_runtime! {
    fn a_task_spawned_in_another_context_starts_a_trace_of_its_own(spawner) {
        let (tracer, exporter) = tracer();
        let request = opentelemetry::Context::current_with_span(tracer.start("request"));
        let parent = request.span().span_context().clone();
        let task = {
            let _attached = request.attach();
            // A clone: the provider must outlive the task for its span to be read below.
            let tracer = tracer.clone();
            spawner.spawn_in(Context::empty(), async move {
                record_span(&tracer, "elsewhere")
            })
        };
        let span = finished(&exporter, &task.await.unwrap());
        assert_ne!(span.span_context.trace_id(), parent.trace_id());
        assert_eq!(span.parent_span_id, SpanId::INVALID);
    }
}

each_runtime! {
    fn the_context_a_task_runs_in_never_stays_with_its_spawner(spawner) {
        let (tracer, _) = tracer();
        let request = opentelemetry::Context::current_with_span(tracer.start("request"));
        let request_span = request.span().span_context().span_id();
        let child = {
            let _attached = request.attach();
            spawner.spawn(async move {
                let spawners = opentelemetry::Context::current().span().span_context().span_id();
                yield_now().await;
                let own = opentelemetry::Context::current_with_span(tracer.start("own"));
                let _attached = own.attach();
                spawners
            })
        };
        // The spawner's span is detached here; on a current-thread runtime the child's polls run
        // on this thread between this task's, each with the span installed: every one must
        // take it away again.
        assert!(!opentelemetry::Context::current().has_active_span());
        assert_eq!(child.await.unwrap(), request_span, "the child runs in the spawner's span");
        yield_now().await;
        assert!(!opentelemetry::Context::current().has_active_span());
    }
}

each_runtime! {
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread: the context must get there with nothing but the snapshot"
    )]
    fn work_given_the_current_context_by_hand_keeps_the_callers_trace(spawner) {
        let (tracer, exporter) = tracer();
        let request = opentelemetry::Context::current_with_span(tracer.start("request"));
        let parent = request.span().span_context().clone();
        let (wrapped, envelope, task) = {
            let _attached = request.attach();
            let (in_closure, in_task) = (tracer.clone(), tracer.clone());
            (
                Context::current().wrap(move || record_span(&in_closure, "wrapped closure")),
                Context::inheritable(),
                spawner.spawn_in(Context::current(), async move {
                    yield_now().await;
                    record_span(&in_task, "task in the current context")
                }),
            )
        };
        let wrapped = std::thread::spawn(wrapped).join().unwrap();
        // A clone: the provider, and the spans it exported, go with the last tracer.
        let in_envelope = tracer.clone();
        let queued = std::thread::spawn(move || {
            envelope.run(|| record_span(&in_envelope, "job from its envelope"))
        })
        .join()
        .unwrap();
        assert_child_of(&exporter, &wrapped, &parent);
        assert_child_of(&exporter, &queued, &parent);
        assert_child_of(&exporter, &task.await.unwrap(), &parent);
    }
}
