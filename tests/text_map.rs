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
