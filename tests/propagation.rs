//! Variables marked to cross processes travel as text pairs; bad input never half-imports.

use ctxflow::{Context, ContextVar, ExportProblem, ImportProblem, Propagation};

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
    let pairs = propagation().export(&here).unwrap();
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
    assert!(propagation().export(&Context::empty()).unwrap().is_empty());
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
fn a_listed_value_with_control_characters_is_refused() {
    let problems = import(&[("tenant", "a\nb"), ("priority", "1\u{7f}")]).unwrap_err();
    assert_eq!(
        problems,
        [
            ImportProblem::MalformedValue {
                key: "tenant".into()
            },
            ImportProblem::MalformedValue {
                key: "priority".into()
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
    assert_eq!(error.problems(), [ImportProblem::TooManyEntries { max: 4 }]);
    assert!(error
        .to_string()
        .contains("more than the 4 entries allowed"));
}

#[test]
#[should_panic(expected = "two variables named `tenant` cannot both cross processes")]
fn two_variables_with_one_name_cannot_both_cross() {
    static ANOTHER_TENANT: ContextVar<String> = ContextVar::new("tenant");
    let _ = propagation().var(&ANOTHER_TENANT);
}

/// Entries under names no listed variable has belong to other systems: whatever they hold, they
/// never cost the listed variables their import.
mod other_systems_entries {
    use super::*;

    #[test]
    fn an_unlisted_entry_with_control_characters_does_not_stop_the_listed_ones() {
        let there = import(&[("tenant", "acme"), ("vendor", "a\nb"), ("trace", "\u{0}")]).unwrap();
        assert_eq!(there.get(&TENANT).map(String::as_str), Some("acme"));
        assert_eq!(there.len(), 1);
    }

    #[test]
    fn malformed_unlisted_names_are_ignored() {
        let pairs = [
            ("", "x"),
            ("bad key", "x"),
            ("tenant\n", "x"),
            ("ténant", "x"),
            ("priority", "2"),
        ];
        let there = import(&pairs).unwrap();
        assert_eq!(there.get(&PRIORITY), Some(&2));
        assert_eq!(there.len(), 1);
    }

    #[test]
    fn an_unlisted_name_given_twice_is_not_a_duplicate() {
        let there = import(&[("vendor", "a"), ("vendor", "b"), ("tenant", "acme")]).unwrap();
        assert_eq!(there.get(&TENANT).map(String::as_str), Some("acme"));
    }
}

/// The limits bound the work and the memory of an import as the input is read, not after.
mod limits {
    use std::cell::Cell;

    use super::*;

    /// Two million lazy entries that count how many of them import pulls.
    fn counted<'a>(
        entry: (&'a str, &'a str),
        pulled: &'a Cell<usize>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        std::iter::repeat(entry)
            .take(2_000_000)
            .inspect(move |_| pulled.set(pulled.get() + 1))
    }

    #[test]
    fn import_stops_reading_at_the_first_entry_over_the_entry_limit() {
        let pulled = Cell::new(0);
        let error = propagation()
            .max_entries(4)
            .import(counted(("other", "x"), &pulled))
            .unwrap_err();
        assert_eq!(error.problems(), [ImportProblem::TooManyEntries { max: 4 }]);
        assert_eq!(pulled.get(), 5);
    }

    #[test]
    fn import_stops_reading_at_the_entry_that_goes_over_the_byte_limit() {
        let pulled = Cell::new(0);
        let error = propagation()
            .max_entries(usize::MAX)
            .max_bytes(64)
            .import(counted(("other", "x"), &pulled))
            .unwrap_err();
        assert_eq!(
            error.problems(),
            [ImportProblem::TooLarge { bytes: 66, max: 64 }]
        );
        assert_eq!(
            pulled.get(),
            11,
            "six bytes an entry: the eleventh goes over"
        );
    }

    #[test]
    fn unlisted_entries_count_towards_the_limits() {
        let error = propagation()
            .max_entries(2)
            .import([("tenant", "acme"), ("a", "1"), ("b", "2")])
            .unwrap_err();
        assert_eq!(error.problems(), [ImportProblem::TooManyEntries { max: 2 }]);
    }
}

/// What `export` gives, `import` takes: a value the other side would refuse is refused at export.
mod round_trips {
    use std::fmt;
    use std::str::FromStr;

    use super::*;

    /// Writes a unit its own `FromStr` does not read.
    #[derive(Debug, PartialEq)]
    struct Celsius(i32);

    impl fmt::Display for Celsius {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}°C", self.0)
        }
    }

    impl FromStr for Celsius {
        type Err = std::num::ParseIntError;
        fn from_str(text: &str) -> Result<Self, Self::Err> {
            text.parse().map(Celsius)
        }
    }

    static TEMPERATURE: ContextVar<Celsius> = ContextVar::new("temperature");

    fn round_trip(propagation: &Propagation, here: &Context) -> Context {
        let pairs = propagation.export(here).unwrap();
        propagation
            .import(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap()
    }

    #[test]
    fn a_value_whose_text_has_control_characters_is_refused_at_export() {
        let here = Context::empty()
            .with_value(&TENANT, "acme\r\nx-admin: yes".to_string())
            .with_value(&PRIORITY, 1);
        let error = propagation().export(&here).unwrap_err();
        assert_eq!(
            error.problems(),
            [ExportProblem::MalformedValue {
                key: "tenant".into()
            }]
        );
        assert_eq!(
            error.to_string(),
            "cannot export context: `tenant`: value has control characters"
        );
    }

    #[test]
    fn a_value_whose_text_its_own_parser_refuses_is_refused_at_export() {
        let propagation = Propagation::new().var(&TEMPERATURE);
        let here = Context::empty().with_value(&TEMPERATURE, Celsius(21));
        let error = propagation.export(&here).unwrap_err();
        assert_eq!(
            error.problems(),
            [ExportProblem::Unparsable {
                key: "temperature".into(),
                reason: "invalid digit found in string".into()
            }]
        );
    }

    #[test]
    fn an_export_over_the_limits_is_refused_with_both_limits() {
        let here = Context::empty()
            .with_value(&TENANT, "a".repeat(100))
            .with_value(&PRIORITY, 1);
        let error = propagation()
            .max_entries(1)
            .max_bytes(64)
            .export(&here)
            .unwrap_err();
        assert_eq!(
            error.problems(),
            [
                ExportProblem::TooManyEntries { count: 2, max: 1 },
                ExportProblem::TooLarge {
                    bytes: 115,
                    max: 64
                },
            ]
        );
    }

    #[test]
    fn an_export_at_the_limits_imports() {
        let here = Context::empty()
            .with_value(&TENANT, "a".repeat(47))
            .with_value(&PRIORITY, 200);
        // priority + 200 + tenant + 47 bytes: exactly 64.
        let propagation = propagation().max_entries(2).max_bytes(64);
        let there = round_trip(&propagation, &here);
        assert_eq!(there.get(&TENANT), here.get(&TENANT));
        assert_eq!(there.get(&PRIORITY), Some(&200));
    }

    #[test]
    fn percent_escapes_and_separators_in_a_value_round_trip_as_they_are() {
        let text = "a%0Ab,c=d;e %25 \"q\" ünï";
        let here = Context::empty().with_value(&TENANT, text.to_string());
        let there = round_trip(&propagation(), &here);
        assert_eq!(there.get(&TENANT).map(String::as_str), Some(text));
    }

    #[test]
    #[should_panic(expected = "the variable named `user name` cannot cross processes")]
    fn a_name_that_is_not_an_http_token_cannot_be_listed() {
        static USER_NAME: ContextVar<String> = ContextVar::new("user name");
        let _ = propagation().var(&USER_NAME);
    }
}
