//! The runtime-agnostic mechanism of [ctxflow](https://docs.rs/ctxflow): context variables,
//! copy-on-write context snapshots, carriers, and the task contract every runtime adapter builds
//! on.
//!
//! Applications add the `ctxflow` crate, which re-exports this one together with the runtime
//! adapters its features select. This crate names no runtime: a runtime adapter (ctxflow's own
//! `ctxflow-tokio`, `ctxflow-smol`, ..., or one of a third party) depends on it and implements
//! [`rt::Runtime`] with what is public here, and an integration implements [`Carrier`].
//!
//! ```
//! use ctxflow_core::{Context, ContextVar};
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! let _token = REQUEST_ID.set(7);
//! let job = Context::current().wrap(|| REQUEST_ID.get());
//! assert_eq!(std::thread::spawn(job).join().unwrap(), Some(7));
//! ```
#![deny(missing_docs)]
// Denied everywhere but in `native_join`, `captured` and `current`, which say why they need it.
#![deny(unsafe_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod captured;
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
mod rt_scope;
mod spawner;
mod spawner_traits;
#[cfg(feature = "strict")]
mod strict;
mod task;
mod var;
mod yield_now;

pub mod fields;
pub mod pool;
pub mod rt;
pub mod thread;

pub use carrier::{register_carrier, Carrier, RegisterError};
pub use context::Context;
pub use flow::{is_flow_suppressed, suppress_flow};
pub use future::{preserve_context, InContext, WithContext};
pub use futures_spawn::CarryContext;
pub use group::TaskGroup;
pub use guard::ContextGuard;
pub use join::JoinHandle;
pub use join_error::JoinError;
pub use local::LocalSpawner;
pub use propagation::{ExportError, ExportProblem, ImportError, ImportProblem, Propagation};
pub use spawner::{NoRuntime, Spawner};
pub use task::task_name;
pub use var::{ContextVar, ResetError, Token};
pub use yield_now::{yield_now, YieldNow};

/// What ctxflow's macros and facade build on; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::carrier::StaticCarrier;
    pub use crate::task::{unwrapped, unwrapped_blocking};
    pub use inventory;
}
