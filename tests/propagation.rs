//! Variables marked to cross processes travel as text pairs; bad input never half-imports.

use ctxflow::{Context, ContextVar, ImportProblem, Propagation};

static TENANT: ContextVar<String> = ContextVar::new("tenant");
static PRIORITY: ContextVar<u8> = ContextVar::new("priority");
static DB_SESSION: ContextVar<u64> = ContextVar::new("db_session");

fn propagation() -> Propagation {
    Propagation::new().var(&TENANT).var(&PRIORITY)
}

fn import(pairs: &[(&str, &str)]) -> Result<Context, Vec<ImportProblem>> {
    propagation()
        .import(pairs.iter().copied())
        .map_err(|error| error.problems().to_vec())
}

#[test]
fn a_round_trip_keeps_every_marked_variable_and_drops_the_rest() {
    let here = Context::empty()
        .with_value(&TENANT, "acme corp".to_string())
        .with_value(&PRIORITY, 7)
        .with_value(&DB_SESSION, 99);
    let pairs = propagation().export(&here);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let there = import(&pairs).unwrap();
    assert_eq!(there.len(), 2);
    assert_eq!(there.get(&TENANT).map(String::as_str), Some("acme corp"));
    assert_eq!(there.get(&PRIORITY), Some(&7));
    assert_eq!(there.get(&DB_SESSION), None);
}

#[test]
fn nothing_set_exports_nothing_and_imports_empty() {
    assert!(propagation().export(&Context::empty()).is_empty());
    assert!(import(&[]).unwrap().is_empty());
}

#[test]
fn entries_of_unmarked_names_are_ignored() {
    let there = import(&[("tenant", "acme"), ("db_session", "5"), ("other", "x")]).unwrap();
    assert_eq!(there.names().collect::<Vec<_>>(), ["tenant"]);
}

#[test]
fn a_value_that_does_not_parse_is_refused_with_its_name() {
    let problems = import(&[("tenant", "acme"), ("priority", "300")]).unwrap_err();
    assert_eq!(
        problems,
        [ImportProblem::Unparsable {
            key: "priority".into(),
            reason: "number too large to fit in target type".into()
        }]
    );
}

#[test]
fn malformed_names_and_values_are_refused() {
    let problems = import(&[("", "x"), ("bad key", "x"), ("tenant", "a\nb")]).unwrap_err();
    assert_eq!(
        problems,
        [
            ImportProblem::MalformedKey { key: "".into() },
            ImportProblem::MalformedKey {
                key: "bad key".into()
            },
            ImportProblem::MalformedValue {
                key: "tenant".into()
            },
        ]
    );
}

#[test]
fn a_variable_given_twice_is_refused() {
    let problems = import(&[("tenant", "a"), ("tenant", "b")]).unwrap_err();
    assert_eq!(
        problems,
        [ImportProblem::Duplicate {
            key: "tenant".into()
        }]
    );
}

#[test]
fn oversized_input_is_refused_before_anything_is_parsed() {
    let long = "x".repeat(100);
    let error = propagation()
        .max_bytes(64)
        .import([("tenant", long.as_str())])
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [ImportProblem::TooLarge {
            bytes: 106,
            max: 64
        }]
    );

    let many: Vec<(String, String)> = (0..5).map(|i| (format!("k{i}"), "v".into())).collect();
    let error = propagation()
        .max_entries(4)
        .import(many.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [ImportProblem::TooManyEntries { count: 5, max: 4 }]
    );
    assert!(error
        .to_string()
        .contains("5 entries, more than the 4 allowed"));
}

#[test]
#[should_panic(expected = "two variables named `tenant` cannot both cross processes")]
fn two_variables_with_one_name_cannot_both_cross() {
    static ANOTHER_TENANT: ContextVar<String> = ContextVar::new("tenant");
    let _ = propagation().var(&ANOTHER_TENANT);
}
