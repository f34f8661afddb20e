//! A context variable's value as a `tracing` field, so that the subscriber's own field
//! formatter writes it, with its colours and its layout, and escaped so that it stays one field
//! of one line (see [`Escaped`]).

use ::tracing::field::{display, FieldSet, Value};
use ::tracing::span::Record;
use ::tracing::{Level, Metadata};
use ctxflow_core::fields::Escaped;
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

/// Calls `format` with a record holding one field, named `name[0]`, whose value is `text`,
/// escaped.
///
/// `name` is a slice of one name so that it can borrow the variable's own `'static` name.
pub(crate) fn with_record<R>(
    name: &'static [&'static str],
    text: &str,
    format: impl FnOnce(&Record<'_>) -> R,
) -> R {
    let fields = FieldSet::new(name, identify_callsite!(&CALLSITE));
    let field = fields
        .iter()
        .next()
        .expect("a field set of one name has one field");
    // Escaped here rather than left to the field formatter: the default one writes a displayed
    // value as it is, and a field formatter of one's own may do anything.
    let value = display(Escaped(text));
    // `value_set` is what tracing's own macros build events from.
    let values = [(&field, Some(&value as &dyn Value))];
    let values = fields.value_set(&values);
    format(&Record::new(&values))
}
