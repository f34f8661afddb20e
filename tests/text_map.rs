//! `ContextPropagator` over a plain map, as a job queue or a broker without an adapter uses it.

use std::collections::BTreeMap;

use ctxflow::text_map::request_id::InvalidRequestId;
use ctxflow::text_map::{ContextPropagator, ExtractProblem, RequestIdSource};
use ctxflow::{ContextVar, Propagation};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static TENANT: ContextVar<String> = ContextVar::new("tenant");

fn carrier() -> ContextPropagator {
    ContextPropagator::new(&REQUEST_ID)
        .propagation(Propagation::new().var(&TENANT).var(&REQUEST_ID))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn is_uuid_v7(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|uuid| uuid.get_version() == Some(uuid::Version::SortRand))
}

#[test]
fn what_is_injected_in_a_request_is_extracted_on_the_other_side() {
    let _id = REQUEST_ID.set("req-1".into());
    let _tenant = TENANT.set("acme".into());
    let mut headers = BTreeMap::new();
    carrier().inject(&mut headers);
    drop((_id, _tenant));

    let extracted = carrier().extract(&headers);
    assert!(extracted.error().is_none());
    let context = extracted.context();
    assert_eq!(context.get(&REQUEST_ID).map(String::as_str), Some("req-1"));
    // Listed variables travel as W3C baggage, which needs feature `trace-context`.
    let tenant = cfg!(feature = "trace-context").then_some("acme");
    assert_eq!(context.get(&TENANT).map(String::as_str), tenant);
}

#[cfg(feature = "trace-context")]
#[test]
fn listed_values_the_other_side_would_refuse_are_all_left_out_and_the_request_id_still_sent() {
    let _id = REQUEST_ID.set("req-1".into());
    let _tenant = TENANT.set("acme\r\nx-admin: yes".into());
    let mut headers = BTreeMap::new();
    carrier().inject(&mut headers);
    drop((_id, _tenant));

    assert_eq!(headers.get("baggage"), None);
    assert_eq!(
        headers.get("x-request-id").map(String::as_str),
        Some("req-1")
    );
    let extracted = carrier().extract(&headers);
    assert!(extracted.error().is_none());
    let context = extracted.context();
    assert_eq!(context.get(&REQUEST_ID).map(String::as_str), Some("req-1"));
    assert_eq!(context.get(&TENANT), None);
}

#[test]
fn a_forged_request_id_gets_a_fresh_one_and_a_typed_error() {
    let extracted = carrier().extract(&map(&[("x-request-id", "abc user=admin")]));
    assert!(is_uuid_v7(extracted.context().get(&REQUEST_ID).unwrap()));
    let error = extracted.error().unwrap();
    assert!(matches!(
        error.problems(),
        [ExtractProblem::RequestId {
            source: RequestIdSource::Key,
            reason: InvalidRequestId::ForbiddenByte {
                index: 3,
                byte: b' '
            },
        }]
    ));
    assert!(error.to_string().contains("request id refused"), "{error}");
}

#[test]
fn without_any_header_the_work_gets_a_fresh_id_and_no_error() {
    let first = carrier().extract(&BTreeMap::new());
    let second = carrier().extract(&BTreeMap::new());
    assert!(first.error().is_none());
    let (first, second) = (
        first.context().get(&REQUEST_ID).unwrap().clone(),
        second.context().get(&REQUEST_ID).unwrap().clone(),
    );
    assert!(is_uuid_v7(&first) && is_uuid_v7(&second));
    assert_ne!(first, second);
}

#[test]
fn an_id_no_receiver_would_accept_is_not_injected() {
    let _id = REQUEST_ID.set("line\nbreak".into());
    let mut headers = BTreeMap::new();
    carrier().inject(&mut headers);
    assert!(!headers.contains_key("x-request-id"), "{headers:?}");
}

#[test]
fn the_request_id_key_can_be_renamed() {
    let carrier = carrier().request_id_key("correlation-id");
    let _id = REQUEST_ID.set("req-9".into());
    let mut headers = BTreeMap::new();
    carrier.inject(&mut headers);
    assert_eq!(
        headers.get("correlation-id").map(String::as_str),
        Some("req-9")
    );
    assert_eq!(
        carrier
            .extract(&headers)
            .context()
            .get(&REQUEST_ID)
            .map(String::as_str),
        Some("req-9")
    );
}

/// Listed variables in W3C baggage: what is sent is what arrives, or a typed problem says why
/// nothing did.
#[cfg(feature = "trace-context")]
mod baggage {
    use ctxflow::propagation::ImportProblem;
    use opentelemetry::baggage::BaggageExt;

    use super::*;

    fn tenant_in(baggage: &str) -> (Option<String>, Vec<ExtractProblem>) {
        let extracted = carrier().extract(&map(&[("baggage", baggage)]));
        let problems = extracted
            .error()
            .map(|error| error.problems().to_vec())
            .unwrap_or_default();
        (extracted.context().get(&TENANT).cloned(), problems)
    }

    /// With `baggage`, the listed variables are refused for `why` alone: none is set.
    fn assert_refused(baggage: &str, why: ImportProblem) {
        let (tenant, problems) = tenant_in(baggage);
        assert_eq!(tenant, None);
        match &problems[..] {
            [ExtractProblem::Variables(error)] => assert_eq!(error.problems(), [why]),
            other => panic!("one refusal of the variables, not {other:?}"),
        }
    }

    #[test]
    fn a_value_arrives_exactly_as_it_was_set_whatever_it_holds() {
        let values = [
            " acme ",
            "a%20b",
            "100%",
            "a=b",
            "a,b;c",
            "\"quoted\" \\ back",
            "zürich",
        ];
        for value in values {
            let _tenant = TENANT.set(value.into());
            let mut headers = BTreeMap::new();
            carrier().inject(&mut headers);
            drop(_tenant);
            let (tenant, problems) = tenant_in(&headers["baggage"]);
            assert_eq!(tenant.as_deref(), Some(value), "{headers:?}");
            assert_eq!(problems, [], "{headers:?}");
        }
    }

    #[test]
    fn another_systems_encoding_is_read_as_w3c_writes_it() {
        assert_eq!(
            tenant_in("other=1, tenant = a%2Cb ;prop=x").0.as_deref(),
            Some("a,b")
        );
    }

    #[test]
    fn a_variable_given_twice_is_refused_with_a_typed_problem() {
        let key = "tenant".into();
        assert_refused("tenant=a,tenant=b", ImportProblem::Duplicate { key });
    }

    #[test]
    fn past_the_entry_limit_none_is_set_wherever_the_variable_stands() {
        let others: Vec<String> = (0..70).map(|n| format!("k{n}=v")).collect();
        let last = format!("{},tenant=acme", others.join(","));
        let first = format!("tenant=acme,{}", others.join(","));
        for baggage in [last, first] {
            assert_refused(&baggage, ImportProblem::TooManyEntries { max: 64 });
        }
    }

    #[test]
    fn a_value_that_is_not_text_once_decoded_is_refused_naming_the_variable() {
        let key = "tenant".into();
        assert_refused("tenant=%FF,other=ok", ImportProblem::MalformedValue { key });
    }

    #[test]
    fn a_baggage_over_w3cs_size_is_refused_as_too_large() {
        let baggage = format!("tenant=acme,filler={}", "x".repeat(9000));
        let (tenant, problems) = tenant_in(&baggage);
        assert_eq!(tenant, None);
        assert_eq!(
            problems,
            [ExtractProblem::BaggageTooLarge {
                bytes: baggage.len(),
                max: 8192
            }]
        );
    }

    /// A carrier that already holds trace headers (a forwarded message's) sends the current
    /// context's alone: a listed variable unset here does not travel on.
    #[test]
    fn what_the_carrier_held_does_not_travel_on() {
        let mut headers = map(&[
            ("baggage", "tenant=evil"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("tracestate", "vendor=1"),
            ("x-request-id", "victim-id"),
        ]);
        let _id = REQUEST_ID.set("line\nbreak".into());
        carrier().inject(&mut headers);
        assert_eq!(headers, BTreeMap::new());
    }

    /// The `Propagation`'s own limits, lower than W3C's, count every entry on reading: the
    /// writer keeps other systems' entries within them, so its own reader takes the whole.
    #[test]
    fn lowered_limits_keep_other_systems_entries_within_what_the_reader_takes() {
        let carrier = ContextPropagator::new(&REQUEST_ID)
            .propagation(Propagation::new().var(&TENANT).max_entries(2).max_bytes(64));
        for others in [vec![("v1", "x"), ("v2", "x")], vec![("big", "y")]] {
            let big = "y".repeat(100);
            let entries = others.iter().map(|(key, value)| {
                let value = if *value == "y" {
                    big.clone()
                } else {
                    value.to_string()
                };
                opentelemetry::KeyValue::new(key.to_string(), value)
            });
            let _otel = opentelemetry::Context::current_with_baggage(entries).attach();
            let _tenant = TENANT.set("acme".into());
            let mut headers = BTreeMap::new();
            carrier.inject(&mut headers);
            let extracted = carrier.extract(&headers);
            assert!(extracted.error().is_none(), "{headers:?}");
            assert_eq!(
                extracted.context().get(&TENANT).map(String::as_str),
                Some("acme")
            );
        }
    }

    /// Percent-encoded, a value can take the header past W3C's size while its text is within
    /// the `Propagation`'s limits: then no listed variable goes, rather than the others alone.
    #[test]
    fn listed_variables_that_do_not_fit_once_encoded_are_all_left_out() {
        let _tenant = TENANT.set("é".repeat(1500));
        let _id = REQUEST_ID.set("req-1".into());
        assert!(carrier().propagation_ref().export_current().is_ok());
        let mut headers = BTreeMap::new();
        carrier().inject(&mut headers);
        assert_eq!(headers.get("baggage"), None);
        let extracted = carrier().extract(&headers);
        assert_eq!(
            extracted.context().get(&REQUEST_ID).map(String::as_str),
            Some("req-1")
        );
        assert_eq!(
            extracted.error().map(|error| error.problems().to_vec()),
            None
        );
    }

    /// Entries whose keys and values fill OpenTelemetry's 8192 bytes leave no room for the
    /// separators: the header is cut to W3C's size, as a reader counts it, and read whole.
    #[test]
    fn a_full_baggage_is_sent_within_w3cs_size_and_read_without_problems() {
        let others: Vec<_> = (10..73)
            .map(|n| opentelemetry::KeyValue::new(format!("k{n}"), "v".repeat(126)))
            .collect();
        let _otel = opentelemetry::Context::current_with_baggage(others).attach();
        let _tenant = TENANT.set("acme".into());
        let mut headers = BTreeMap::new();
        carrier().inject(&mut headers);
        assert!(
            headers["baggage"].len() <= 8192,
            "{}",
            headers["baggage"].len()
        );
        let (tenant, problems) = tenant_in(&headers["baggage"]);
        assert_eq!(tenant.as_deref(), Some("acme"));
        assert_eq!(problems, []);
    }

    /// OpenTelemetry keeps an entry's properties decoded, whatever they hold: written as they
    /// are, a `,` in them would add entries (here a listed variable that is unset here, and
    /// more than 64 in all), and a line break or non-ASCII text would spoil the header.
    #[test]
    fn other_systems_properties_that_a_header_cannot_hold_are_left_out_with_their_entries_kept() {
        use opentelemetry::baggage::KeyValueMetadata;
        let hostile = ["note,tenant=evil", "p,x=1", "a\nb", "prop=ü"];
        let mut entries: Vec<_> = hostile
            .iter()
            .enumerate()
            .map(|(n, metadata)| KeyValueMetadata::new(format!("h{n}"), "v", *metadata))
            .collect();
        entries.extend((0..58).map(|n| KeyValueMetadata::new(format!("k{n}"), "v", "p,x=1")));
        entries.push(KeyValueMetadata::new("kept", "v", "ttl=60"));
        let _otel = opentelemetry::Context::new().with_baggage(entries).attach();
        let mut headers = BTreeMap::new();
        carrier().inject(&mut headers);
        let baggage = &headers["baggage"];
        assert!(baggage.is_ascii() && !baggage.contains('\n'), "{baggage}");
        assert_eq!(baggage.split(',').count(), 63, "{baggage}");
        assert!(baggage.contains("kept=v;ttl=60"), "{baggage}");
        let (tenant, problems) = tenant_in(baggage);
        assert_eq!(tenant, None);
        assert_eq!(problems, []);
    }

    #[test]
    fn listed_variables_are_sent_before_other_systems_entries_fill_the_baggage() {
        let others: Vec<_> = (0..64)
            .map(|n| opentelemetry::KeyValue::new(format!("k{n}"), "v"))
            .collect();
        let _otel = opentelemetry::Context::current_with_baggage(others).attach();
        let _tenant = TENANT.set("acme".into());
        let mut headers = BTreeMap::new();
        carrier().inject(&mut headers);
        let entries: Vec<_> = headers["baggage"].split(',').collect();
        assert_eq!(entries.len(), 64, "{headers:?}");
        assert!(entries.contains(&"tenant=acme"), "{headers:?}");
    }
}
