//! A context variable's value as a `tracing` field, so that the subscriber's own field
//! formatter writes it: with its colours, its escaping of control characters, its layout.

use std::fmt::Display;

use ::tracing::field::{display, FieldSet, Value};
use ::tracing::span::Record;
use ::tracing::{Level, Metadata};
use tracing_core::callsite::Callsite;
use tracing_core::identify_callsite;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;

/// The callsite every logged variable's field belongs to. It never records an event: a field
/// needs a callsite to exist, and a subscriber only uses it to tell fields apart.
struct LogFieldCallsite;

static CALLSITE: LogFieldCallsite = LogFieldCallsite;

static METADATA: Metadata<'static> = Metadata::new(
    "ctxflow log field",
    "ctxflow",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(&[], identify_callsite!(&CALLSITE)),
    Kind::EVENT,
);

impl Callsite for LogFieldCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &METADATA
    }
}

/// Calls `format` with a record holding one field, named `name[0]`, whose value is `value`.
///
/// `name` is a slice of one name so that it can borrow the variable's own `'static` name.
pub(crate) fn with_record<R>(
    name: &'static [&'static str],
    value: &dyn Display,
    format: impl FnOnce(&Record<'_>) -> R,
) -> R {
    let fields = FieldSet::new(name, identify_callsite!(&CALLSITE));
    let field = fields
        .iter()
        .next()
        .expect("a field set of one name has one field");
    let value = display(value);
    // `value_set` is what tracing's own macros build events from.
    let values = [(&field, Some(&value as &dyn Value))];
    let values = fields.value_set(&values);
    format(&Record::new(&values))
}
