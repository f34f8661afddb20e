//! `RequestContextLayer`'s reading of `x-request-id`, `traceparent` and `baggage`, from any
//! bytes a caller may send: it never panics, never keeps a request id outside the documented
//! set, never takes a malformed `traceparent`, and nothing it sets can add a field or a line to
//! a log line.
//!
//! The number of generated cases is proptest's: `PROPTEST_CASES` (256 when unset).

mod common;

use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use common::text_line;
use ctxflow::tower::RequestContextLayer;
use ctxflow::tracing::{LogFields, LogFieldsExt as _};
use ctxflow::{ContextVar, Propagation};
use http::{HeaderValue, Request, Response};
use opentelemetry::trace::TraceContextExt;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use tower::{service_fn, Layer, ServiceExt};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The characters a request id taken from a request may have, as documented.
fn is_documented_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.:/+=@".contains(c)
}

/// What the handler saw, and the line it logged.
#[derive(Debug)]
struct Seen {
    request_id: String,
    tenant: Option<String>,
    /// The remote parent's trace id, when the `traceparent` was taken.
    trace_id: Option<String>,
    /// The fields after the message of the line the handler logged.
    logged: Vec<(String, String)>,
}

/// What one subscriber wrote.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl io::Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut output = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        output.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends a request with `headers` through the layer to a handler that logs one line with
/// `LogFields`, on real `tracing_subscriber::fmt` output.
fn handle(headers: &[(&str, HeaderValue)]) -> Seen {
    let output = Output::default();
    let writer = output.clone();
    let subscriber = tracing_subscriber::fmt()
        .without_time()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .map_event_format(|format| {
            LogFields::new()
                .field(&REQUEST_ID)
                .field(&TENANT)
                .wrap(format)
        })
        .finish();
    let service = RequestContextLayer::new(&REQUEST_ID)
        .propagation(Propagation::new().var(&TENANT))
        .layer(service_fn(|_: Request<()>| async {
            tracing::info!("handled");
            let span = opentelemetry::Context::current()
                .span()
                .span_context()
                .clone();
            let seen = Seen {
                request_id: REQUEST_ID.get().expect("every request has an id"),
                tenant: TENANT.get(),
                trace_id: (span.is_valid() && span.is_remote())
                    .then(|| span.trace_id().to_string()),
                logged: Vec::new(),
            };
            Ok::<_, Infallible>(Response::new(seen))
        }));
    let mut request = Request::builder();
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(()).unwrap();
    let response = tracing::subscriber::with_default(subscriber, || {
        futures::executor::block_on(service.oneshot(request)).unwrap()
    });
    let mut seen = response.into_body().into_inner();

    let output = output.0.lock().unwrap_or_else(PoisonError::into_inner);
    let output = String::from_utf8(output.clone()).expect("fmt writes UTF-8");
    let [line] = output.lines().collect::<Vec<_>>()[..] else {
        panic!("one line: {output:?}")
    };
    let (_, tail) = line.split_once(" handled").expect("the handler's message");
    seen.logged = text_line::fields(tail).unwrap_or_else(|error| panic!("{error}: {line:?}"));
    seen
}

/// Checks that the handler's line holds exactly the variables it saw, each once.
fn assert_logged_exactly_what_was_seen(seen: &Seen) {
    let mut expected = vec![("request_id".to_owned(), seen.request_id.clone())];
    expected.extend(
        seen.tenant
            .clone()
            .map(|tenant| ("tenant".to_owned(), tenant)),
    );
    assert_eq!(seen.logged, expected);
}

/// What W3C Trace Context accepts, written as the specification reads, independently of the
/// layer's check.
fn is_w3c_traceparent(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let parts: Vec<&str> = value.split('-').collect();
    let lower_hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() >= 4
        && lower_hex(parts[0], 2)
        && parts[0] != "ff"
        && (parts[0] != "00" || parts.len() == 4)
        && lower_hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && lower_hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && lower_hex(parts[3], 2)
}

mod request_ids {
    use super::*;

    #[test]
    fn an_id_with_spaces_and_equals_signs_is_replaced_and_forges_no_field() {
        let sent = HeaderValue::from_static("abc user=admin role=root");
        let seen = handle(&[("x-request-id", sent)]);
        assert_ne!(seen.request_id, "abc user=admin role=root");
        assert!(
            seen.request_id.chars().all(is_documented_id_char),
            "{seen:?}"
        );
        assert_logged_exactly_what_was_seen(&seen);
    }
}

mod traceparents {
    use super::*;

    /// Malformed headers that OpenTelemetry's propagator takes on its own.
    const MALFORMED_YET_PARSED_BY_OPENTELEMETRY: [&str; 7] = [
        "00-1-1-01",
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "+0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
    ];

    #[test]
    fn a_malformed_traceparent_that_opentelemetry_would_parse_starts_a_new_trace() {
        for header in MALFORMED_YET_PARSED_BY_OPENTELEMETRY {
            assert!(!is_w3c_traceparent(header.as_bytes()), "{header}");
            let seen = handle(&[("traceparent", HeaderValue::from_static(header))]);
            assert_eq!(seen.trace_id, None, "{header}");
        }
    }

    #[test]
    fn two_traceparent_headers_start_a_new_trace() {
        let header = HeaderValue::from_static(TRACEPARENT);
        let seen = handle(&[("traceparent", header.clone()), ("traceparent", header)]);
        assert_eq!(seen.trace_id, None);
    }

    #[test]
    fn a_well_formed_traceparent_of_this_or_a_later_version_is_taken() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        for header in [TRACEPARENT, later] {
            let seen = handle(&[("traceparent", HeaderValue::from_static(header))]);
            assert_eq!(
                seen.trace_id.as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                "{header}"
            );
        }
    }
}

mod baggage {
    use super::*;

    #[test]
    fn a_percent_encoded_value_with_spaces_and_equals_signs_forges_no_field() {
        let seen = handle(&[(
            "baggage",
            HeaderValue::from_static("tenant=a%20user%3Dadmin"),
        )]);
        assert_eq!(seen.tenant.as_deref(), Some("a user=admin"));
        assert_logged_exactly_what_was_seen(&seen);
    }
}

/// Bytes a header may carry: anything `HeaderValue` takes, with the characters that matter
/// here often enough to meet.
fn header_bytes(interesting: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => select(interesting),
        1 => any::<u8>(),
    ];
    vec(byte, 0..140)
}

const ID_BYTES: &[u8] = b"aZ09-_.:/+=@ \t\"'\\,;%<>\x7f\x80\xff";
const BAGGAGE_BYTES: &[u8] = b"tenant=%20%3D%0A%1B%22,;a= \t\"\\\x80\xc3\xa9";

/// A `traceparent` near the valid one: a few bytes replaced, cut or added.
fn near_traceparent() -> impl Strategy<Value = Vec<u8>> {
    let edit = (0..60usize, select(b"0af-+ A\x00ff".as_slice()), 0..3u8);
    vec(edit, 0..3).prop_map(|edits| {
        let mut header = TRACEPARENT.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.min(header.len());
            match kind {
                0 if at < header.len() => header[at] = byte,
                1 => header.insert(at, byte),
                _ => header.truncate(at),
            }
        }
        header
    })
}

fn traceparent_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![near_traceparent(), header_bytes(b"0123456789abcdef-")]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // A shrunk failure belongs in this file as a regular test, not in a side file.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_headers_give_a_documented_id_a_well_formed_trace_and_a_line_of_exactly_the_fields_seen(
        id in proptest::option::of(header_bytes(ID_BYTES)),
        traceparent in proptest::option::of(traceparent_bytes()),
        baggage in proptest::option::of(header_bytes(BAGGAGE_BYTES)),
    ) {
        let value = |bytes: &Option<Vec<u8>>| {
            bytes.as_deref().and_then(|bytes| HeaderValue::from_bytes(bytes).ok())
        };
        let sent_id = value(&id);
        let sent_traceparent = value(&traceparent);
        let headers: Vec<_> = [
            ("x-request-id", sent_id.clone()),
            ("traceparent", sent_traceparent.clone()),
            ("baggage", value(&baggage)),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();

        let seen = handle(&headers);

        let id = &seen.request_id;
        prop_assert!(!id.is_empty() && id.len() <= 128, "{id:?}");
        prop_assert!(id.chars().all(is_documented_id_char), "{id:?}");
        if let Some(sent) = sent_id.filter(|sent| {
            !sent.is_empty() && sent.len() <= 128 && sent.as_bytes().iter().all(|&b| is_documented_id_char(b.into()))
        }) {
            prop_assert_eq!(id.as_bytes(), sent.as_bytes());
        }

        let taken = sent_traceparent.filter(|sent| is_w3c_traceparent(sent.as_bytes()));
        let expected_trace_id = taken.map(|sent| sent.to_str().unwrap()[3..35].to_owned());
        prop_assert_eq!(&seen.trace_id, &expected_trace_id);

        assert_logged_exactly_what_was_seen(&seen);
    }
}
