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

    fn get_all(&self, key: &str) -> Vec<&str> {
        Extractor::get_all(self.0, key)
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
/// the request id too. For any other client, such as reqwest, prefer
/// [`ContextPropagator::inject`](ctxflow_text_map::ContextPropagator::inject) into a
/// [`HeaderMap`] (docs/http.md, "The calling side: reqwest and other clients"): it writes the
/// request id as well, and works without feature `trace-context`. This function writes only
/// the W3C headers, for a caller that sends its request id some other way, or none:
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
/// assert!(!headers.contains_key("x-request-id")); // no request id from this function
/// // reqwest::Client::new().get(url).headers(headers).send().await?;
/// ```
///
/// Like [`Propagation::export_current`], it writes the current context as it is, whatever flow
/// control says: a listed [non-flowing](ctxflow_core::ContextVar::non_flowing) variable is sent,
/// and so is everything inside [`suppress_flow`](ctxflow_core::suppress_flow).
///
/// Entries already in `headers` under these names are replaced. When the listed variables cannot
/// be exported ([`ExportError`](ctxflow_core::ExportError)), none of them is sent and a debug-level event
/// says why; the other baggage entries still are.
pub fn inject_context(propagation: &Propagation, headers: &mut HeaderMap) {
    w3c::inject(propagation, headers);
}
