//! `tracing` spans follow every spawn, and context variables show on log lines (`ctxflow`'s
//! feature `tracing`; JSON lines with feature `tracing-json`, this crate's `json`).
//!
//! **Spans.** The [`tracing::Span`] current where a task, blocking closure or
//! [`in_current_context`](ctxflow_core::InContext::in_current_context) future is created travels with
//! it and is entered around each of its polls, around the closure and around the drop of the
//! task's future, just as `.instrument(Span::current())` would do. Events written there nest
//! under the creator's span on any subscriber. The span is carried by [`SpanCarrier`], a
//! [`Carrier`](ctxflow_core::Carrier) captured with every [`Context`](ctxflow_core::Context) snapshot, so
//! [`Context::current`](ctxflow_core::Context::current)`().wrap(f)` and a job's
//! [`Context::inheritable`](ctxflow_core::Context::inheritable) carry it too;
//! [`spawn_in`](ctxflow_core::Spawner::spawn_in) and [`in_context`](ctxflow_core::InContext::in_context)
//! carry the span their context holds, none for [`Context::empty`](ctxflow_core::Context::empty).
//!
//! **Fields.** [`LogFields`] names the context variables that log lines show; wrapped around a
//! `tracing_subscriber::fmt` format with [`LogFieldsExt::wrap`], it adds the ones set where each
//! line is written:
//! `request_id=req-123` on a text line, `"request_id":"req-123"` in a JSON line.
//!
//! ```
//! use ctxflow::tracing::{LogFields, LogFieldsExt as _};
//! use ctxflow::ContextVar;
//! use tracing::Instrument;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! # use std::io::{self, Write};
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Clone, Default)]
//! # struct Captured(Arc<Mutex<Vec<u8>>>);
//! # impl Write for Captured {
//! #     fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
//! #         self.0.lock().unwrap().write(bytes)
//! #     }
//! #     fn flush(&mut self) -> io::Result<()> {
//! #         Ok(())
//! #     }
//! # }
//! # let output = Captured::default();
//! # let writer = output.clone();
//! tracing_subscriber::fmt()
//!     .without_time()
//!     .with_target(false)
//!     .with_ansi(false)
//!     .map_event_format(|format| LogFields::new().field(&REQUEST_ID).wrap(format))
//! #   .with_writer(move || writer.clone())
//!     .init();
//!
//! async fn handle_request() {
//!     let _token = REQUEST_ID.set("req-123".into());
//!     let background = ctxflow::spawn(async { tracing::info!("sending receipt") });
//!     background.await.unwrap();
//! }
//!
//! ctxflow::block_on(handle_request().instrument(tracing::info_span!("checkout")));
//! # let output = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
//! assert_eq!(output, " INFO checkout: sending receipt request_id=req-123\n");
//! ```
//!
//! This is the `ctxflow-tracing` crate, which the `ctxflow` crate re-exports as
//! `ctxflow::tracing` with its feature `tracing`; applications add `ctxflow` rather than this
//! crate.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod format;
mod record;
mod span;

pub use ctxflow_core::fields::LogFields;
pub use format::{LogFieldsExt, WithLogFields};
pub use span::SpanCarrier;
