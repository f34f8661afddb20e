//! Context that follows every spawn.
//!
//! Task-locals (`tokio::task_local!`) and thread-locals stay behind when work moves to another
//! task or thread: a request id set in a handler is gone in the task it spawns and in the closure
//! it sends to a blocking pool. `ctxflow` keeps a copy-on-write snapshot of typed
//! [`ContextVar`]s that costs one pointer copy to take, installs it around every poll of a
//! future and around every closure, and restores the caller's afterwards, panics included.
//!
//! ```
//! use ctxflow::{Context, ContextVar, InContext};
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! let _token = REQUEST_ID.set("req-123".to_string());
//!
//! // A future built here sees the request id wherever it is polled...
//! let background = async { REQUEST_ID.get() }.in_current_context();
//! // ...and so does a closure sent to another thread.
//! let job = Context::current().wrap(|| REQUEST_ID.get());
//!
//! let seen_by_thread = std::thread::spawn(job).join().unwrap();
//! let seen_by_future = std::thread::spawn(|| futures::executor::block_on(background))
//!     .join()
//!     .unwrap();
//! assert_eq!(seen_by_thread.as_deref(), Some("req-123"));
//! assert_eq!(seen_by_future.as_deref(), Some("req-123"));
//! ```
//!
//! Tasks and blocking closures go through a [`Spawner`]: [`tokio::TokioSpawner`],
//! [`smol::SmolSpawner`] or [`async_std::AsyncStdSpawner`], each behind the Cargo feature of
//! the same name, or the free functions [`spawn`], [`spawn_blocking`] and [`block_on`], which
//! use the runtime the features select. Timers come with them: [`time::sleep`],
//! [`time::timeout`] and [`time::interval`] use the timer of the runtime that polls them, so code
//! that takes a `Spawner` names no runtime for its timers either; [`yield_now`] needs no runtime.
//! async-std has been discontinued upstream; smol is the runtime-neutral choice for new code.
//!
//! Logging and trace context come along too: with feature `tracing` the current `tracing` span
//! follows every spawn, and [`tracing::LogFields`] puts context variables such as a request id
//! on every log line, text or JSON (feature `tracing-json`); with feature `opentelemetry`,
//! OpenTelemetry's own context follows every spawn (see [`opentelemetry`]). Both are
//! [`Carrier`]s: any library's ambient state kept in a thread-local (Sentry's hub, a tenant, a
//! locale) can flow the same way, as part of every [`Context`].
//! HTTP services built on tower (axum, hyper, tonic) give every request a context of its own,
//! with its request id, through `ctxflow::tower` (feature `tower`), and W3C trace context and
//! baggage with feature `trace-context`; NATS messages are handled in their publisher's
//! context through `ctxflow::nats` (feature `nats`), and any other text map (message headers, a
//! job row) through `ctxflow::text_map`.
#![deny(missing_docs)]
// Denied everywhere but in `native_box`, which says why it needs it.
#![deny(unsafe_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any_spawner;
#[cfg(any(feature = "smol", feature = "async-std"))]
#[path = "../adapters/async_task_join.rs"]
pub mod async_task;
mod carried;
mod carrier;
mod context;
mod current;
mod flow;
mod future;
mod futures_spawn;
mod group;
mod guard;
mod handoff;
mod join;
mod join_error;
mod local;
mod native_join;
mod propagation;
mod spawner;
#[path = "../adapters/spawner_traits.rs"]
mod spawner_traits;
#[cfg(feature = "strict")]
mod strict;
mod task;
#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
#[path = "../adapters/timer.rs"]
mod timer;
mod var;
mod yield_now;

pub mod fields;
pub mod pool;
pub mod rt;
pub mod rt_scope;
pub mod thread;
#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
pub mod time;

pub use any_spawner::AnySpawner;
pub use carrier::{register_carrier, Carrier, RegisterError};

/// What ctxflow's macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::carrier::StaticCarrier;
    pub use inventory;
}
pub use context::Context;
pub use flow::{is_flow_suppressed, suppress_flow};
pub use future::{preserve_context, InContext, WithContext};
pub use futures_spawn::CarryContext;
pub use group::TaskGroup;
pub use guard::ContextGuard;
pub use join::JoinHandle;
pub use join_error::JoinError;
pub use local::{AnyLocalSpawner, LocalSpawner};
pub use propagation::{ExportError, ExportProblem, ImportError, ImportProblem, Propagation};
pub use spawner::{NoRuntime, Spawner};
pub use task::{task_name, BlockingTask, PreparedBlocking, PreparedTask, Task};
pub use var::{ContextVar, ResetError, Token};
pub use yield_now::{yield_now, YieldNow};

#[cfg(feature = "async-std")]
#[path = "../adapters/async_std.rs"]
pub mod async_std;
#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
#[path = "../adapters/default.rs"]
mod default_spawner;
#[cfg(feature = "futures-executor")]
#[path = "../adapters/futures.rs"]
pub mod futures;
#[cfg(feature = "grpc")]
#[path = "../adapters/grpc.rs"]
pub mod grpc;
#[cfg(feature = "hyper")]
#[path = "../adapters/hyper.rs"]
mod hyper;
#[cfg(feature = "hyper")]
#[doc(hidden)]
pub use hyper::__hyper_private;
#[cfg(feature = "log")]
#[path = "../adapters/log.rs"]
pub mod log;
#[cfg(feature = "nats")]
#[path = "../adapters/nats.rs"]
pub mod nats;
#[cfg(feature = "opentelemetry")]
#[path = "../adapters/opentelemetry.rs"]
pub mod opentelemetry;
#[cfg(feature = "rayon")]
#[path = "../adapters/rayon.rs"]
pub mod rayon;
#[cfg(feature = "sentry")]
#[path = "../adapters/sentry.rs"]
pub mod sentry;
#[cfg(feature = "smol")]
#[path = "../adapters/smol.rs"]
pub mod smol;
#[cfg(feature = "testing")]
#[path = "../adapters/testing.rs"]
pub mod testing;
#[cfg(feature = "text-map")]
#[path = "../adapters/text_map.rs"]
pub mod text_map;
#[cfg(feature = "tokio")]
#[path = "../adapters/tokio.rs"]
pub mod tokio;
#[cfg(feature = "tower")]
#[path = "../adapters/tower.rs"]
pub mod tower;
#[cfg(feature = "tracing")]
#[path = "../adapters/tracing.rs"]
pub mod tracing;

#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
pub use default_spawner::{block_on, spawn, spawn_blocking, spawn_named, DefaultSpawner};

/// The guides under `docs/`, compiled and run as tests so that every snippet in them works;
/// their snippets use every integration, so they run with `--all-features`.
#[cfg(all(
    doctest,
    feature = "tokio",
    feature = "testing",
    feature = "rayon",
    feature = "tracing-json",
    feature = "opentelemetry",
    feature = "tower",
    feature = "trace-context",
    feature = "nats"
))]
mod guides {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/guide.md")]
    struct Guide;
    #[doc = include_str!("../docs/context.md")]
    struct ContextModel;
    #[doc = include_str!("../docs/pools.md")]
    struct Pools;
    #[doc = include_str!("../docs/migrating.md")]
    struct Migrating;
    #[doc = include_str!("../docs/spawner.md")]
    struct Spawners;
    #[doc = include_str!("../docs/flow.md")]
    struct Flow;
    #[doc = include_str!("../docs/logging.md")]
    struct Logging;
    #[doc = include_str!("../docs/carriers.md")]
    struct Carriers;
    #[doc = include_str!("../docs/messaging.md")]
    struct Messaging;
}
