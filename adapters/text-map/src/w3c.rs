//! W3C `traceparent`/`tracestate` and `baggage` in any text map, read and written through
//! OpenTelemetry's propagators (feature `trace-context`): what
//! [`ContextPropagator`](super::ContextPropagator) does for the trace context, for integrations
//! that read their own way (`ctxflow::tower` reads a `traceparent` sent twice as malformed).

use std::borrow::Cow;

use ctxflow_core::{Context, ImportError, ImportProblem, Propagation};
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::{ExtractProblem, Extractor, Injector};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";

/// W3C's limit on a `baggage` list, which OpenTelemetry's propagator drops whole beyond it.
const MAX_BAGGAGE_BYTES: usize = 8192;

/// W3C's limit on a `baggage` list's entries, which OpenTelemetry's propagator reads no further
/// than.
const MAX_BAGGAGE_ENTRIES: usize = 64;

/// The optional whitespace W3C allows around keys and values.
const OWS: [char; 2] = [' ', '\t'];

/// What a baggage value may not hold unencoded: anything but W3C's `baggage-octet`s (visible
/// ASCII except `"`, `,`, `;`, `=` and `\`), and `%`, which a reader would decode.
const NOT_BAGGAGE_OCTET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%')
    .add(b'=');

/// What a carrier says about the context it was written from.
#[derive(Debug)]
#[non_exhaustive]
pub struct Incoming {
    /// The remote span and the whole baggage, other systems' entries included.
    pub trace_context: opentelemetry::Context,
    /// The variables of the [`Propagation`] found in the baggage.
    pub variables: Context,
}

struct Reading<'a> {
    carrier: &'a dyn Extractor,
    // Every `baggage` header of the carrier as one list, as W3C reads several.
    baggage: Option<&'a str>,
}

impl opentelemetry::propagation::Extractor for Reading<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            BAGGAGE => self.baggage,
            _ => self.carrier.get(key),
        }
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
///
/// The baggage's entries go to OpenTelemetry's baggage as its propagator reads them (at most
/// 64, values trimmed); the listed variables are read from the header as W3C writes them, every
/// entry counted towards the [`Propagation`]'s limits, a variable given twice refused, and a
/// value percent-decoded and nothing else, so that it is the value that was sent.
pub fn extract(
    carrier: &dyn Extractor,
    propagation: &Propagation,
    problems: &mut Vec<ExtractProblem>,
) -> Incoming {
    let baggage = match carrier.get_all(BAGGAGE).as_slice() {
        [] => None,
        [one] => Some(Cow::Borrowed(*one)),
        several => Some(Cow::Owned(several.join(","))),
    };
    let reading = Reading {
        carrier,
        baggage: baggage.as_deref(),
    };
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
    match baggage.as_deref() {
        None => {}
        Some(header) if header.len() > MAX_BAGGAGE_BYTES => {
            problems.push(ExtractProblem::BaggageTooLarge {
                bytes: header.len(),
                max: MAX_BAGGAGE_BYTES,
            });
        }
        Some(header) => {
            trace_context = BaggagePropagator::new().extract_with_context(&trace_context, &reading);
            if trace_context.baggage().is_empty() {
                problems.push(ExtractProblem::Baggage);
            } else if !propagation.is_empty() {
                match import_listed(header, propagation) {
                    Ok(imported) => variables = imported,
                    Err(error) => problems.push(ExtractProblem::Variables(error)),
                }
            }
        }
    }
    Incoming {
        trace_context,
        variables,
    }
}

/// The listed variables of a `baggage` header: each list-member's key and value around the
/// first `=`, properties after `;` left out, optional whitespace trimmed, the value
/// percent-decoded; a member without `=` is not an entry.
fn import_listed(header: &str, propagation: &Propagation) -> Result<Context, ImportError> {
    let mut not_text = Vec::new();
    let mut entries = Vec::new();
    for member in header.split(',') {
        let entry = member.split(';').next().unwrap_or_default();
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim_matches(OWS), value.trim_matches(OWS));
        match percent_decode_str(value).decode_utf8() {
            Ok(value) => entries.push((key, value)),
            Err(_) if propagation.lists(key) => {
                not_text.push(ImportProblem::MalformedValue { key: key.into() });
            }
            // Another system's entry: only counted towards the limits, as it stands.
            Err(_) => entries.push((key, Cow::Borrowed(value))),
        }
    }
    let imported = propagation.import(entries.iter().map(|(key, value)| (*key, &**value)));
    if not_text.is_empty() {
        return imported;
    }
    if let Err(error) = imported {
        not_text.extend_from_slice(error.problems());
    }
    Err(ImportError::new(not_text))
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
/// exported, or do not fit in the header once percent-encoded, none of them is written (the
/// receiving side would refuse them all, or get only some) and a debug-level event says why;
/// the other baggage entries still are, as far as the header has room.
pub fn inject(propagation: &Propagation, carrier: &mut dyn Injector) {
    // What the carrier held (a forwarded request's headers) goes: only the current context's
    // trace and baggage are sent.
    for key in [TRACEPARENT, TRACESTATE, BAGGAGE] {
        carrier.remove(key);
    }
    let trace_context = opentelemetry::Context::current();
    TraceContextPropagator::new().inject_context(&trace_context, &mut Writing(&mut *carrier));
    if let Some(header) = outgoing_baggage(trace_context.baggage(), propagation) {
        carrier.set(BAGGAGE, header);
    }
}

/// The `baggage` header to send: the listed variables' entries, with their current values (a
/// variable unset here does not travel on because it came in with the request), then the
/// current baggage's other entries while W3C's limits leave room, counted as a reader counts
/// them: the whole header, separators and percent-encoding included. The listed variables come
/// first, so that other entries never crowd them out.
///
/// Values are percent-encoded here: OpenTelemetry's propagator encodes neither `%` nor the
/// whitespace it trims, so a value such as `a%20b` or ` acme` would not arrive as sent. Keys are
/// HTTP tokens (`Propagation` and OpenTelemetry's baggage both refuse others) and go as they are,
/// as W3C writes them.
fn outgoing_baggage(current: &Baggage, propagation: &Propagation) -> Option<String> {
    let mut header = BaggageHeader::within(propagation);
    match propagation.export_current() {
        Ok(ours)
            if ours
                .iter()
                .all(|(name, value)| header.push(name, value, "")) => {}
        Ok(_) => {
            header = BaggageHeader::within(propagation);
            tracing::debug!(
                target: "ctxflow::text_map::w3c",
                max = MAX_BAGGAGE_BYTES,
                "leaving the context variables out of the baggage: percent-encoded, they do not \
                 fit in its header"
            );
        }
        Err(error) => tracing::debug!(
            target: "ctxflow::text_map::w3c",
            %error,
            "leaving the context variables out of the baggage"
        ),
    }
    // A key with `%` would not arrive as sent: OpenTelemetry's readers decode keys.
    for (key, (value, metadata)) in current {
        let key = key.as_str();
        if !propagation.lists(key) && !key.contains('%') {
            header.push(key, value.as_str(), metadata.as_str());
        }
    }
    (header.entries > 0).then_some(header.text)
}

/// Whether `text` can stand as an entry's properties: W3C's `baggage-octet`s, and the `;`, `=`
/// and whitespace between properties.
fn is_property_text(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, ';' | '=' | ' ' | '\t')
            || (c.is_ascii_graphic() && !matches!(c, ',' | '"' | '\\'))
    })
}

/// A `baggage` header being written, kept within W3C's limits and within the `Propagation`'s,
/// which its reader applies to every entry, listed or not.
struct BaggageHeader {
    text: String,
    entries: usize,
    /// The bytes of names and values, as the `Propagation` counts them.
    text_bytes: usize,
    max_entries: usize,
    max_text_bytes: usize,
}

impl BaggageHeader {
    fn within(propagation: &Propagation) -> Self {
        BaggageHeader {
            text: String::new(),
            entries: 0,
            text_bytes: 0,
            max_entries: propagation.entry_limit().min(MAX_BAGGAGE_ENTRIES),
            max_text_bytes: propagation.byte_limit(),
        }
    }

    /// Appends `key=value;metadata`, the value percent-encoded, unless that would take the
    /// header past W3C's limits; whether it did. Metadata that W3C's properties cannot hold as
    /// it is (a `,`, which would start another entry, a control character or non-ASCII text,
    /// which a header cannot carry) is left out: OpenTelemetry keeps any text there, decoded.
    fn push(&mut self, key: &str, value: &str, metadata: &str) -> bool {
        let separator = if self.entries == 0 { "" } else { "," };
        let metadata = metadata.trim();
        let metadata = if is_property_text(metadata) {
            metadata
        } else {
            ""
        };
        let properties = if metadata.is_empty() { "" } else { ";" };
        let encoded = utf8_percent_encode(value, NOT_BAGGAGE_OCTET);
        let entry = format!("{separator}{key}={encoded}{properties}{metadata}");
        let text_bytes = self.text_bytes.saturating_add(key.len() + value.len());
        let fits = self.entries < self.max_entries
            && text_bytes <= self.max_text_bytes
            && self.text.len() + entry.len() <= MAX_BAGGAGE_BYTES;
        if fits {
            self.text.push_str(&entry);
            self.entries += 1;
            self.text_bytes = text_bytes;
        }
        fits
    }
}
