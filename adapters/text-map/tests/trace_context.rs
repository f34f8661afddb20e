//! The trace context a carrier brought flows into work created inside `Extracted::scope`, with
//! only this crate and ctxflow-core named: nothing else links OpenTelemetry's carrier in.

use std::collections::HashMap;

use ctxflow_core::{Context, ContextVar};
use ctxflow_text_map::ContextPropagator;
use opentelemetry::trace::{TraceContextExt, TraceId};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "a plain thread: the wrapped closure alone must bring the trace context"
)]
fn work_created_in_the_scope_carries_the_producers_trace_to_another_thread() {
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let headers = HashMap::from([("traceparent".to_owned(), traceparent)]);
    let extracted = ContextPropagator::new(&REQUEST_ID).extract(&headers);
    assert!(extracted.error().is_none());

    let job = futures::executor::block_on(extracted.scope(async {
        Context::current().wrap(|| {
            let trace = opentelemetry::Context::current();
            trace.span().span_context().trace_id()
        })
    }));
    let seen = std::thread::spawn(job).join().unwrap();

    assert_eq!(seen, TraceId::from_hex(TRACE_ID).unwrap());
}
