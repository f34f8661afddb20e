//! Variables marked to cross processes travel as text pairs; bad input never half-imports.

use ctxflow::propagation::{ExportProblem, ImportProblem};
use ctxflow::{Context, ContextVar, Propagation};

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
        std::iter::repeat_n(entry, 2_000_000).inspect(move |_| pulled.set(pulled.get() + 1))
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

    /// `%` is a token character, but OpenTelemetry's readers decode it in a key: `a%2C` would
    /// arrive as `a,` and be dropped.
    #[test]
    #[should_panic(expected = "a name must be an HTTP token without `%`")]
    fn a_name_with_a_percent_sign_cannot_be_listed() {
        static ESCAPED: ContextVar<String> = ContextVar::new("a%2C");
        let _ = propagation().var(&ESCAPED);
    }
}

/// Arbitrary input never panics an import, and what comes back is what the contract says:
/// listed variables import exactly when valid, other entries only count towards the limits,
/// and reading stops at the first entry over a limit. Cases: `PROPTEST_CASES` (256 by default).
mod properties {
    use std::cell::Cell;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            // Shrunk failures are kept as regular tests in this file, not in a side file.
            failure_persistence: None,
            // ChaCha, the default, dominates a debug build's run time here.
            rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
            ..ProptestConfig::default()
        }
    }

    /// Text of every kind an untrusted carrier can hold.
    fn arb_text() -> impl Strategy<Value = String> {
        let awkward_char = prop_oneof![
            any::<char>(),
            Just('\n'),
            Just('\0'),
            Just('\u{7f}'),
            Just('\u{85}'),
            Just('%'),
            Just(','),
            Just('='),
            Just(' '),
        ];
        prop_oneof![
            3 => any::<String>(),
            3 => vec(awkward_char, 0..16).prop_map(String::from_iter),
            2 => proptest::string::string_regex("(%[0-9A-Fa-f]{2}|[a-z;=,])*").unwrap(),
            3 => (0u16..400).prop_map(|n| n.to_string()),
            1 => (4_000usize..10_000).prop_map(|n| "x".repeat(n)),
        ]
    }

    fn arb_name() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => Just("tenant".to_string()),
            2 => Just("priority".to_string()),
            1 => Just("db_session".to_string()),
            4 => arb_text(),
        ]
    }

    fn arb_limit(small: usize) -> impl Strategy<Value = usize> {
        prop_oneof![0..small, Just(usize::MAX)]
    }

    /// The tenant and priority imported, or the problems found.
    type Outcome = Result<(Option<String>, Option<u8>), Vec<ImportProblem>>;

    /// What an import of `pairs` gives by the contract, and how many entries it reads.
    fn specified(
        pairs: &[(String, String)],
        max_entries: usize,
        max_bytes: usize,
    ) -> (Outcome, usize) {
        let mut bytes = 0usize;
        for (read, (key, value)) in pairs.iter().enumerate() {
            if read == max_entries {
                let max = max_entries;
                return (Err(vec![ImportProblem::TooManyEntries { max }]), read + 1);
            }
            bytes += key.len() + value.len();
            if bytes > max_bytes {
                let max = max_bytes;
                return (Err(vec![ImportProblem::TooLarge { bytes, max }]), read + 1);
            }
        }
        let (mut tenant, mut priority) = (None, None);
        let (mut tenant_seen, mut priority_seen) = (false, false);
        let mut problems = Vec::new();
        for (key, value) in pairs {
            let seen = match key.as_str() {
                "tenant" => &mut tenant_seen,
                "priority" => &mut priority_seen,
                _ => continue,
            };
            let key = key.clone();
            if std::mem::replace(seen, true) {
                problems.push(ImportProblem::Duplicate { key });
            } else if value.chars().any(char::is_control) {
                problems.push(ImportProblem::MalformedValue { key });
            } else if key == "tenant" {
                tenant = Some(value.clone());
            } else {
                match value.parse::<u8>() {
                    Ok(number) => priority = Some(number),
                    Err(error) => problems.push(ImportProblem::Unparsable {
                        key,
                        reason: error.to_string(),
                    }),
                }
            }
        }
        let outcome = match problems.is_empty() {
            true => Ok((tenant, priority)),
            false => Err(problems),
        };
        (outcome, pairs.len())
    }

    /// What an import of `pairs` gives, and how many entries it reads.
    fn imported(propagation: &Propagation, pairs: &[(String, String)]) -> (Outcome, usize) {
        let pulled = Cell::new(0);
        let entries = pairs.iter().map(|(key, value)| {
            pulled.set(pulled.get() + 1);
            (key.as_str(), value.as_str())
        });
        let outcome = propagation
            .import(entries)
            .map(|there| {
                let listed = ["priority", "tenant"];
                assert!(
                    there.names().all(|name| listed.contains(&name)),
                    "{there:?}"
                );
                (there.get(&TENANT).cloned(), there.get(&PRIORITY).copied())
            })
            .map_err(|error| error.problems().to_vec());
        (outcome, pulled.get())
    }

    /// `pairs` with every unlisted entry replaced by a harmless one of the same size.
    fn with_plain_unlisted_entries(pairs: &[(String, String)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| match propagation().lists(key) {
                true => (key.clone(), value.clone()),
                false => ("~".repeat(key.len()), "v".repeat(value.len())),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn import_gives_what_the_contract_says_for_any_input(
            pairs in vec((arb_name(), arb_text()), 0..80),
            max_entries in arb_limit(80),
            max_bytes in arb_limit(20_000),
        ) {
            let propagation = propagation().max_entries(max_entries).max_bytes(max_bytes);
            let (outcome, pulled) = imported(&propagation, &pairs);
            let (specified_outcome, specified_pulled) = specified(&pairs, max_entries, max_bytes);
            prop_assert_eq!(&outcome, &specified_outcome);
            prop_assert_eq!(pulled, specified_pulled);
            prop_assert!(pulled <= max_entries.saturating_add(1));
            let plain = with_plain_unlisted_entries(&pairs);
            prop_assert_eq!(outcome, imported(&propagation, &plain).0);
        }

        #[test]
        fn export_then_import_round_trips_or_export_refuses(
            tenant in proptest::option::of(arb_text()),
            priority in proptest::option::of(any::<u8>()),
            db_session in any::<u64>(),
            max_entries in arb_limit(3),
            max_bytes in arb_limit(20_000),
        ) {
            let mut here = Context::empty().with_value(&DB_SESSION, db_session);
            if let Some(tenant) = &tenant {
                here = here.with_value(&TENANT, tenant.clone());
            }
            if let Some(priority) = priority {
                here = here.with_value(&PRIORITY, priority);
            }
            let propagation = propagation().max_entries(max_entries).max_bytes(max_bytes);

            let entries = usize::from(tenant.is_some()) + usize::from(priority.is_some());
            let bytes = tenant.as_ref().map_or(0, |t| "tenant".len() + t.len())
                + priority.map_or(0, |p| "priority".len() + p.to_string().len());
            let controls = tenant.as_ref().is_some_and(|t| t.chars().any(char::is_control));
            let refusable = entries > max_entries || bytes > max_bytes || controls;

            match propagation.export(&here) {
                Ok(pairs) => {
                    prop_assert!(!refusable, "exported {pairs:?}");
                    let there = propagation
                        .import(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    let there = there.map_err(|error| TestCaseError::fail(error.to_string()))?;
                    prop_assert_eq!(there.get(&TENANT), tenant.as_ref());
                    prop_assert_eq!(there.get(&PRIORITY), priority.as_ref());
                    prop_assert_eq!(there.get(&DB_SESSION), None);
                }
                Err(error) => {
                    prop_assert!(refusable, "{error}");
                    let mut expected = Vec::new();
                    if entries > max_entries {
                        expected.push(ExportProblem::TooManyEntries { count: entries, max: max_entries });
                    }
                    if bytes > max_bytes {
                        expected.push(ExportProblem::TooLarge { bytes, max: max_bytes });
                    }
                    if controls {
                        expected.push(ExportProblem::MalformedValue { key: "tenant".into() });
                    }
                    prop_assert_eq!(error.problems(), expected.as_slice());
                }
            }
        }
    }
}
