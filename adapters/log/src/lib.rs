//! Context variables on every line of the `log` crate (`ctxflow`'s feature `log`).
//!
//! [`ContextLogger`] wraps any [`log::Log`] (env_logger, log4rs, your own) and
//! adds the [`LogFields`] set where each record is logged to its key-values:
//! `request_id=req-123` on env_logger's lines (with its `unstable-kv` feature), a member of a
//! JSON line for a logger that writes JSON. Values are escaped as on `tracing` lines: bare when
//! they are plain, else quoted and escaped, so that no value adds a field or a line.
//!
//! Records logged in spawned tasks and blocking closures get the fields of the context they
//! were spawned from: the fields are read from the current context when the record is logged.
//! A key the record has itself (`log::info!(request_id = other; "...")`) is kept instead of the
//! context's variable of that name, so that no line has a key twice.
//!
//! ```
//! use ctxflow::log::{ContextLogger, LogFields};
//! use ctxflow::ContextVar;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! # struct Stderr;
//! # impl log::Log for Stderr {
//! #     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
//! #     fn log(&self, record: &log::Record<'_>) { eprintln!("{}", record.args()) }
//! #     fn flush(&self) {}
//! # }
//! # let env_logger = Stderr;
//! let logger = ContextLogger::new(env_logger, LogFields::new().field(&REQUEST_ID));
//! log::set_boxed_logger(Box::new(logger)).unwrap();
//! log::set_max_level(log::LevelFilter::Info);
//! ```
//!
//! This is the `ctxflow-log` crate, which the `ctxflow` crate re-exports as `ctxflow::log` with
//! its feature `log`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use ::log::kv::{self, Key, Source, Value, VisitSource};
use ::log::{Log, Metadata, Record};
use ctxflow_core::fields::Escaped;
pub use ctxflow_core::fields::LogFields;

/// A [`log::Log`] that adds context variables to every record's key-values, then
/// hands the record to the logger it wraps.
#[derive(Debug)]
pub struct ContextLogger<L> {
    inner: L,
    fields: LogFields,
}

impl<L: Log> ContextLogger<L> {
    /// `inner`, with `fields` added to every record it logs.
    pub fn new(inner: L, fields: LogFields) -> Self {
        ContextLogger { inner, fields }
    }

    /// The wrapped logger.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

impl<L: Log> Log for ContextLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        let own = record.key_values();
        let mut added = Vec::new();
        self.fields.for_each_current(|name, value| {
            // A key the call logs itself says more than the context: it is the one kept.
            if own.get(Key::from_str(name)).is_none() {
                added.push((name, Escaped(&value.to_string()).to_string()));
            }
        });
        if added.is_empty() {
            return self.inner.log(record);
        }
        let key_values = WithFields { own, added: &added };
        self.inner
            .log(&record.to_builder().key_values(&key_values).build());
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// A record's own key-values, then the context's fields.
struct WithFields<'a> {
    own: &'a dyn Source,
    added: &'a [(&'static str, String)],
}

impl Source for WithFields<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), kv::Error> {
        self.own.visit(visitor)?;
        for (name, value) in self.added {
            visitor.visit_pair(Key::from_str(name), Value::from(value.as_str()))?;
        }
        Ok(())
    }
}
