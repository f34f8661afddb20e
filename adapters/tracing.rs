//! `tracing` spans follow every spawn (feature `tracing`).
//!
//! The [`tracing::Span`](::tracing::Span) current where a task, blocking closure or
//! [`in_current_context`](crate::InContext::in_current_context) future is created travels with
//! it and is entered around each of its polls, around the closure and around the drop of the
//! task's future, just as `.instrument(Span::current())` would do. Events written there nest
//! under the creator's span on any subscriber. [`spawn_in`](crate::Spawner::spawn_in) and
//! [`in_context`](crate::InContext::in_context) carry no span.
//!
//! ```
//! # #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))] {
//! use tracing::Instrument;
//!
//! let span_name = ctxflow::block_on(
//!     async {
//!         let background = ctxflow::spawn(async {
//!             tracing::Span::current().metadata().map(|span| span.name())
//!         });
//!         background.await.unwrap()
//!     }
//!     .instrument(tracing::info_span!("checkout")),
//! );
//! # let _ = span_name;
//! # }
//! ```

#[path = "tracing/span.rs"]
mod span;

pub(crate) use span::{CarriedSpan, EnteredSpan};
