//! W3C `traceparent`/`tracestate` and `baggage` in any text map, read and written through
//! OpenTelemetry's propagators (feature `trace-context`): what
//! [`ContextPropagator`](super::ContextPropagator) does for the trace context, for integrations
//! that read their own way (`ctxflow::tower` reads a `traceparent` sent twice as malformed).

use ctxflow_core::{Context, Propagation};
use opentelemetry::baggage::{Baggage, BaggageExt, BaggageMetadata};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Key, StringValue};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use super::{ExtractProblem, Extractor, Injector};

const TRACEPARENT: &str = "traceparent";
const BAGGAGE: &str = "baggage";

/// What a carrier says about the context it was written from.
#[derive(Debug)]
#[non_exhaustive]
pub struct Incoming {
    /// The remote span and the whole baggage, other systems' entries included.
    pub trace_context: opentelemetry::Context,
    /// The variables of the [`Propagation`] found in the baggage.
    pub variables: Context,
}

struct Reading<'a>(&'a dyn Extractor);

impl opentelemetry::propagation::Extractor for Reading<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        // OpenTelemetry's W3C propagators look keys up by name only.
        Vec::new()
    }
}

struct Writing<'a>(&'a mut dyn Injector);

impl opentelemetry::propagation::Injector for Writing<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set(key, value)
    }
}

/// Reads the trace context and baggage of `carrier`; whatever is malformed is left out and
/// added to `problems`.
pub fn extract(
    carrier: &dyn Extractor,
    propagation: &Propagation,
    problems: &mut Vec<ExtractProblem>,
) -> Incoming {
    let reading = Reading(carrier);
    let mut trace_context = opentelemetry::Context::new();
    if let Some(traceparent) = carrier.get(TRACEPARENT) {
        if is_well_formed_traceparent(traceparent.as_bytes()) {
            trace_context =
                TraceContextPropagator::new().extract_with_context(&trace_context, &reading);
        }
        if !trace_context.has_active_span() {
            problems.push(ExtractProblem::Traceparent);
        }
    }
    let mut variables = Context::empty();
    if carrier.get(BAGGAGE).is_some() {
        trace_context = BaggagePropagator::new().extract_with_context(&trace_context, &reading);
        let baggage = trace_context.baggage();
        if baggage.is_empty() {
            problems.push(ExtractProblem::Baggage);
        } else if !propagation.is_empty() {
            let pairs = baggage
                .iter()
                .map(|(key, (value, _metadata))| (key.as_str(), value.as_str()));
            match propagation.import(pairs) {
                Ok(imported) => variables = imported,
                Err(error) => problems.push(ExtractProblem::Variables(error)),
            }
        }
    }
    Incoming {
        trace_context,
        variables,
    }
}

/// Whether `value` is a `traceparent` that W3C Trace Context's grammar accepts:
/// `version-trace_id-parent_id-flags`, each field of exactly 2, 32, 16 and 2 lowercase hex
/// digits, version `ff` refused, and after the flags nothing for version `00`, or a `-` and more
/// for a later version.
///
/// OpenTelemetry's propagator checks less, as it parses fields with `from_str_radix`: it takes
/// `00-1-1-1`, a `+` sign, or a trailing `-`. What it refuses on top (all-zero ids) it still
/// refuses after this check.
pub fn is_well_formed_traceparent(value: &[u8]) -> bool {
    let is_hex = |field: &[u8]| {
        field
            .iter()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    };
    let (Some(fields), rest) = (value.get(..55), value.get(55..).unwrap_or_default()) else {
        return false;
    };
    let (version, trace_id, parent_id, flags) = (
        &fields[..2],
        &fields[3..35],
        &fields[36..52],
        &fields[53..55],
    );
    let dashes = [fields[2], fields[35], fields[52]] == [b'-'; 3];
    let tail_fits = match version {
        b"00" => rest.is_empty(),
        _ => rest.is_empty() || rest[0] == b'-',
    };
    dashes
        && tail_fits
        && version != b"ff"
        && [version, trace_id, parent_id, flags]
            .into_iter()
            .all(is_hex)
}

/// Writes the current OpenTelemetry trace context as `traceparent` and `tracestate`, and as
/// `baggage` the variables `propagation` lists, taken from the current ctxflow context, with
/// the current OpenTelemetry baggage's other entries. When the listed variables cannot be
/// exported, none of them is written (the receiving side would refuse them all) and a
/// debug-level event says why; the other baggage entries still are.
pub fn inject(propagation: &Propagation, carrier: &mut dyn Injector) {
    let trace_context = opentelemetry::Context::current();
    let mut writing = Writing(carrier);
    TraceContextPropagator::new().inject_context(&trace_context, &mut writing);
    let baggage = outgoing_baggage(trace_context.baggage(), propagation);
    if !baggage.is_empty() {
        let carrier = opentelemetry::Context::new().with_baggage(baggage);
        BaggagePropagator::new().inject_context(&carrier, &mut writing);
    }
}

/// The current baggage with the listed variables' entries replaced by their current values:
/// a variable unset here does not travel on because it came in with the request.
fn outgoing_baggage(current: &Baggage, propagation: &Propagation) -> Baggage {
    let others = current
        .iter()
        .filter(|(key, _)| !propagation.lists(key.as_str()))
        .map(|(key, entry)| (key.clone(), entry.clone()));
    let ours = propagation
        .export_current()
        .unwrap_or_else(|error| {
            tracing::debug!(
                target: "ctxflow::text_map::w3c",
                %error,
                "leaving the context variables out of the baggage"
            );
            Vec::new()
        })
        .into_iter()
        .map(|(name, value)| {
            let entry = (StringValue::from(value), BaggageMetadata::default());
            (Key::from(name), entry)
        });
    others.chain(ours).collect()
}
