//! W3C `traceparent`/`tracestate` and `baggage` headers, read and written through
//! OpenTelemetry's propagators.

use http::{HeaderMap, HeaderName};
use opentelemetry::baggage::{Baggage, BaggageExt, BaggageMetadata};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Key, StringValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use crate::{Context, Propagation};

// Built once: looking a header up by `&str` parses the name at every request.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// What a request's headers say about the context it was sent from.
pub(crate) struct Incoming {
    /// The remote span and the whole baggage, other systems' entries included.
    pub(crate) trace_context: opentelemetry::Context,
    /// The variables of the [`Propagation`] found in the baggage.
    pub(crate) variables: Context,
}

/// Reads the trace context and baggage of `headers`. Whatever is malformed is left out with a
/// debug-level log line: a bad header never fails the request.
pub(crate) fn extract(headers: &HeaderMap, propagation: &Propagation) -> Incoming {
    let extractor = HeaderExtractor(headers);
    let mut trace_context = opentelemetry::Context::new();
    if headers.contains_key(&TRACEPARENT) {
        if is_well_formed_traceparent(headers) {
            trace_context =
                TraceContextPropagator::new().extract_with_context(&trace_context, &extractor);
        }
        if !trace_context.has_active_span() {
            tracing::debug!(
                "ignoring a malformed traceparent header; the request starts a new trace"
            );
        }
    }
    let mut variables = Context::empty();
    if headers.contains_key(&BAGGAGE) {
        trace_context = BaggagePropagator::new().extract_with_context(&trace_context, &extractor);
        let baggage = trace_context.baggage();
        if baggage.is_empty() {
            tracing::debug!("ignoring a baggage header with no valid entry");
        } else if !propagation.is_empty() {
            variables = import(baggage, propagation);
        }
    }
    Incoming {
        trace_context,
        variables,
    }
}

/// Whether `headers` hold one `traceparent` that W3C Trace Context's grammar accepts:
/// `version-trace_id-parent_id-flags`, each field of exactly 2, 32, 16 and 2 lowercase hex
/// digits, version `ff` refused, and after the flags nothing for version `00`, or a `-` and more
/// for a later version.
///
/// OpenTelemetry's propagator checks less, as it parses fields with `from_str_radix`: it takes
/// `00-1-1-1`, a `+` sign, or a trailing `-`. What it refuses on top (all-zero ids) it still
/// refuses after this check.
fn is_well_formed_traceparent(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(&TRACEPARENT).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let value = value.as_bytes();
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

fn import(baggage: &Baggage, propagation: &Propagation) -> Context {
    let pairs = baggage
        .iter()
        .map(|(key, (value, _metadata))| (key.as_str(), value.as_str()));
    propagation.import(pairs).unwrap_or_else(|error| {
        tracing::debug!(%error, "ignoring the baggage's context variables");
        Context::empty()
    })
}

/// Writes the caller's context into the headers of a request it is about to send: the current
/// OpenTelemetry trace context as `traceparent` and `tracestate`, and as `baggage` the variables
/// `propagation` lists, taken from the current ctxflow context, with the current OpenTelemetry
/// baggage's other entries.
///
/// Tower clients get this from [`InjectContextLayer`](super::InjectContextLayer); with any other
/// client, fill a [`HeaderMap`] and send it with the request. For reqwest:
///
/// ```
/// use ctxflow::{ContextVar, Propagation};
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
///
/// let propagation = Propagation::new().var(&TENANT);
/// let _token = TENANT.set("acme".into());
///
/// let mut headers = http::HeaderMap::new();
/// ctxflow::tower::inject_context(&propagation, &mut headers);
/// assert_eq!(headers["baggage"], "tenant=acme");
/// // reqwest::Client::new().get(url).headers(headers).send().await?;
/// ```
///
/// Entries already in `headers` under these names are replaced. When the listed variables cannot
/// be exported ([`ExportError`](crate::ExportError)), none of them is sent and a debug-level event
/// says why; the other baggage entries still are.
pub fn inject_context(propagation: &Propagation, headers: &mut HeaderMap) {
    let trace_context = opentelemetry::Context::current();
    let mut injector = HeaderInjector(headers);
    TraceContextPropagator::new().inject_context(&trace_context, &mut injector);
    let baggage = outgoing_baggage(trace_context.baggage(), propagation);
    if !baggage.is_empty() {
        let carrier = opentelemetry::Context::new().with_baggage(baggage);
        BaggagePropagator::new().inject_context(&carrier, &mut injector);
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
            tracing::debug!(%error, "leaving the context variables out of the baggage");
            Vec::new()
        })
        .into_iter()
        .map(|(name, value)| {
            let entry = (StringValue::from(value), BaggageMetadata::default());
            (Key::from(name), entry)
        });
    others.chain(ours).collect()
}
