//! W3C `traceparent`/`tracestate` and `baggage` headers, read and written through
//! OpenTelemetry's propagators (feature `trace-context`).

use ctxflow_core::Propagation;
use ctxflow_text_map::{w3c, Extractor};
use http::{HeaderMap, HeaderName};

// Built once: looking a header up by `&str` parses the name at every request.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

pub(crate) use w3c::Incoming;

/// The headers, with a `traceparent` sent more than once read as malformed: which one the
/// caller meant is unknown.
struct OneTraceparent<'a>(&'a HeaderMap);

impl Extractor for OneTraceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key == TRACEPARENT.as_str() {
            let mut values = self.0.get_all(&TRACEPARENT).iter();
            return match (values.next(), values.next()) {
                (Some(value), None) => Some(value.to_str().unwrap_or_default()),
                (Some(_), Some(_)) => Some(""),
                _ => None,
            };
        }
        Extractor::get(self.0, key)
    }
}

/// Reads the trace context and baggage of `headers`. Whatever is malformed is left out with a
/// debug-level log line: a bad header never fails the request.
pub(crate) fn extract(headers: &HeaderMap, propagation: &Propagation) -> Incoming {
    let mut problems = Vec::new();
    let incoming = w3c::extract(&OneTraceparent(headers), propagation, &mut problems);
    for problem in problems {
        tracing::debug!(
            target: "ctxflow::tower::trace_headers",
            %problem,
            "ignoring part of the request's headers"
        );
    }
    incoming
}

/// Writes the caller's context into the headers of a request it is about to send: the current
/// OpenTelemetry trace context as `traceparent` and `tracestate`, and as `baggage` the variables
/// `propagation` lists, taken from the current ctxflow context, with the current OpenTelemetry
/// baggage's other entries.
///
/// Tower clients get this from [`InjectContextLayer`](super::InjectContextLayer), which sends
/// the request id too; with any other client, fill a [`HeaderMap`] and send it with the
/// request. For reqwest:
///
/// ```
/// use ctxflow::{ContextVar, Propagation};
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
///
/// let propagation = Propagation::new().var(&TENANT);
/// let _token = TENANT.set("acme".into());
/// let _id = REQUEST_ID.set("req-1".into());
///
/// let mut headers = http::HeaderMap::new();
/// ctxflow::tower::inject_context(&propagation, &mut headers);
/// if let Some(id) = REQUEST_ID.get() {
///     headers.insert("x-request-id", id.parse().unwrap());
/// }
/// assert_eq!(headers["baggage"], "tenant=acme");
/// assert_eq!(headers["x-request-id"], "req-1");
/// // reqwest::Client::new().get(url).headers(headers).send().await?;
/// ```
///
/// Entries already in `headers` under these names are replaced. When the listed variables cannot
/// be exported ([`ExportError`](ctxflow_core::ExportError)), none of them is sent and a debug-level event
/// says why; the other baggage entries still are.
pub fn inject_context(propagation: &Propagation, headers: &mut HeaderMap) {
    w3c::inject(propagation, headers);
}
