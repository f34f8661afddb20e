//! What log integrations share: [`LogFields`], the context variables every log line shows, and
//! [`Escaped`], how a value shows on a text line so that it stays one field of one line.
//!
//! `ctxflow::tracing` (feature `tracing`) and `ctxflow::log` (feature `log`) write these fields
//! on every line; a formatter of one's own reads them with [`LogFields::current`].

mod escape;
mod log_fields;

pub use escape::Escaped;
pub use log_fields::{CurrentFields, Field, LogFields};
