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
//!
//! The root holds what a user meets on day one. The rest is by module: [`context`] (guards,
//! tokens, [`WithContext`](context::WithContext)), [`task`] (named tasks,
//! [`AnyLocalSpawner`](task::AnyLocalSpawner), [`NoRuntime`](task::NoRuntime)), [`propagation`]
//! and [`carrier`] (their errors), [`rt`] (what a runtime adapter implements), [`pool`],
//! [`thread`] and [`fields`]; each runtime and integration under its own name. They are the
//! crates of ctxflow's workspace, re-exported: `ctxflow-core` for the runtime-agnostic
//! mechanism, and one crate per runtime and per integration.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any_local_spawner;
mod any_spawner;
#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
mod default_spawner;
#[cfg(any(
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "compio"
))]
mod timer;

#[cfg(feature = "testing")]
pub mod testing;
#[cfg(any(
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "compio"
))]
pub mod time;

pub use any_spawner::AnySpawner;
#[doc(inline)]
pub use ctxflow_core::static_carrier;
pub use ctxflow_core::{
    preserve_context, register_carrier, suppress_flow, task_name, yield_now, Carrier, Context,
    ContextVar, InContext, JoinError, JoinHandle, LocalSpawner, Propagation, Spawner, TaskGroup,
};
#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
pub use default_spawner::{block_on, spawn, spawn_blocking, DefaultSpawner};

pub use ctxflow_core::{fields, pool, rt, thread};

pub mod context {
    //! What a [`Context`](crate::Context) and a [`ContextVar`](crate::ContextVar) hand out
    //! beyond the basics: guards and tokens, the future that carries a context, and whether
    //! flow is suppressed.
    pub use ctxflow_core::{is_flow_suppressed, ContextGuard, ResetError, Token, WithContext};
}

pub mod task {
    //! Tasks beyond [`spawn`](crate::Spawner::spawn): named tasks, type-erased local spawners,
    //! futures' executors made to carry the context, and what a spawn outside any runtime says.
    pub use crate::any_local_spawner::AnyLocalSpawner;
    #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
    pub use crate::default_spawner::spawn_named;
    pub use ctxflow_core::{CarryContext, NoRuntime, YieldNow};
}

pub mod propagation {
    //! Why an export or an import of a [`Propagation`](crate::Propagation) failed.
    pub use ctxflow_core::{ExportError, ExportProblem, ImportError, ImportProblem};
}

pub mod carrier {
    //! Registering a [`Carrier`](crate::Carrier): statically with [`static_carrier!`], or at
    //! run time with [`register_carrier`](crate::register_carrier) and its error.
    #[doc(inline)]
    pub use ctxflow_core::static_carrier;
    pub use ctxflow_core::RegisterError;
}

#[cfg(feature = "async-std")]
#[doc(inline)]
pub use ctxflow_async_std as async_std;
#[cfg(any(feature = "smol", feature = "async-std"))]
#[doc(inline)]
pub use ctxflow_async_task as async_task;
#[cfg(feature = "compio")]
#[doc(inline)]
pub use ctxflow_compio as compio;
#[cfg(feature = "futures-executor")]
#[doc(inline)]
pub use ctxflow_futures as futures;
#[cfg(feature = "hyper")]
#[doc(inline)]
pub use ctxflow_hyper as hyper;
#[cfg(feature = "log")]
#[doc(inline)]
pub use ctxflow_log as log;
#[cfg(feature = "nats")]
#[doc(inline)]
pub use ctxflow_nats as nats;
#[cfg(feature = "opentelemetry")]
#[doc(inline)]
pub use ctxflow_opentelemetry as opentelemetry;
#[cfg(feature = "rayon")]
#[doc(inline)]
pub use ctxflow_rayon as rayon;
#[cfg(feature = "sentry")]
#[doc(inline)]
pub use ctxflow_sentry as sentry;
#[cfg(feature = "smol")]
#[doc(inline)]
pub use ctxflow_smol as smol;
#[cfg(feature = "text-map")]
#[doc(inline)]
pub use ctxflow_text_map as text_map;
#[cfg(feature = "tokio")]
#[doc(inline)]
pub use ctxflow_tokio as tokio;
#[cfg(feature = "grpc")]
#[doc(inline)]
pub use ctxflow_tonic as grpc;
#[cfg(feature = "tower")]
#[doc(inline)]
pub use ctxflow_tower as tower;
#[cfg(feature = "tracing")]
#[doc(inline)]
pub use ctxflow_tracing as tracing;

/// The guides under `docs/`, compiled and run as tests so that every snippet in them works;
/// their snippets use every integration, so they run with `--all-features`.
#[cfg(all(
    doctest,
    feature = "tokio",
    feature = "testing",
    feature = "rayon",
    feature = "tracing-json",
    feature = "log",
    feature = "opentelemetry",
    feature = "tower",
    feature = "trace-context",
    feature = "nats",
    feature = "compio"
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
    #[doc = include_str!("../docs/http.md")]
    struct Http;
}
