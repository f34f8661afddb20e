//! Sentry's current [`Hub`] flows with every context (`ctxflow`'s feature `sentry`): breadcrumbs and tags
//! added in spawned tasks and blocking closures land in the events of the request that spawned
//! them, and nowhere else.
//!
//! Sentry keeps its current hub in a thread-local. Work sent to another task or thread starts
//! with that thread's hub instead of the request's: its breadcrumbs and tags bleed into whatever
//! else runs there, and the request's events miss them, unless every spawn binds the hub by hand
//! with `bind_hub`. [`HubCarrier`] makes the hub part of [`Context`](ctxflow_core::Context): register
//! it once at start-up with [`carry_hub`], and every snapshot captures the current hub, and
//! every poll of a task spawned through ctxflow, every blocking closure and every
//! [`Context::run`](ctxflow_core::Context::run) runs with it.
//!
//! ```
//! use std::sync::Arc;
//! use ctxflow::Context;
//! use sentry_core::{Hub, Scope};
//!
//! ctxflow::sentry::carry_hub();
//!
//! let request_hub = Arc::new(Hub::new_from_top(Hub::current()));
//! let job = Hub::run(request_hub.clone(), || {
//!     sentry_core::configure_scope(|scope: &mut Scope| scope.set_tag("order", "42"));
//!     Context::current().wrap(|| {
//!         sentry_core::add_breadcrumb(sentry_core::Breadcrumb {
//!             message: Some("invoice rendered".into()),
//!             ..Default::default()
//!         });
//!         Hub::current()
//!     })
//! });
//! // On another thread, the closure runs with the request's hub...
//! assert!(Arc::ptr_eq(&std::thread::spawn(job).join().unwrap(), &request_hub));
//! // ...and this thread's own hub is untouched.
//! assert!(!Arc::ptr_eq(&Hub::current(), &request_hub));
//! ```
//!
//! # A hub per request
//!
//! A request gets a hub of its own from sentry-tower's `NewSentryLayer`, which makes one from
//! the top of the current hub for each request and binds it to the request's future. With the
//! carrier registered, everything the handler spawns through ctxflow inherits that hub, whatever
//! the order of the layers: ctxflow's `RequestContextLayer` (`ctxflow::tower`) starts
//! each request from an empty context, which holds no hub and so leaves the request's in
//! place.
//!
//! ```
//! use axum::{routing::get, Router};
//! use sentry_core::Scope;
//! use sentry_tower::NewSentryLayer;
//! use tower::ServiceExt;
//!
//! async fn handler() -> &'static str {
//!     sentry_core::configure_scope(|scope: &mut Scope| scope.set_tag("route", "/orders"));
//!     let notify = ctxflow::spawn(async {
//!         // The request's hub: this event carries the `route` tag, and no other request's.
//!         sentry_core::capture_message("notification sent", sentry_core::Level::Info);
//!     });
//!     notify.await.unwrap();
//!     "ok"
//! }
//!
//! ctxflow::sentry::carry_hub();
//! let app = Router::new()
//!     .route("/orders", get(handler))
//!     .layer(NewSentryLayer::new_from_top());
//!
//! let events = sentry_core::test::with_captured_events(|| {
//!     let request = http::Request::get("/orders").body(axum::body::Body::empty()).unwrap();
//!     ctxflow::block_on(app.oneshot(request)).unwrap();
//! });
//! assert_eq!(events[0].tags["route"], "/orders");
//! ```
//!
//! A spawned task shares its request's hub, so what it adds to the scope is the request's. A
//! task that needs a scope of its own gets a hub of its own where it is spawned:
//! `Hub::run(Arc::new(Hub::new_from_top(Hub::current())), || ctxflow::spawn(..))`.
//!
//! # Versions
//!
//! The carrier switches the hub of ctxflow's copy of `sentry-core`. ctxflow accepts
//! `sentry-core` 0.46.2 up to 0.49, so that Cargo picks the application's own copy (the one
//! `sentry` and `sentry-tower` use); with two copies in the build, the carried hub would be one
//! that no Sentry call reads. `cargo tree -i sentry-core` shows one copy when all is well.
//!
//! This is the `ctxflow-sentry` crate, which the `ctxflow` crate re-exports as
//! `ctxflow::sentry` with its feature `sentry`.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::{Arc, Once};

use ctxflow_core::{register_carrier, Carrier};
use sentry_core::{Hub, HubSwitchGuard};

/// The [`Carrier`] for Sentry's current [`Hub`]: every snapshot captures the thread's hub, and
/// work that runs in the snapshot runs with it.
///
/// Register it once, at start-up, with [`carry_hub`], or with
/// [`register_carrier`]`(HubCarrier)`. It flows into spawned work: inside
/// [`suppress_flow`](ctxflow_core::suppress_flow), spawned work starts with its thread's own hub.
///
/// ```
/// use ctxflow::carrier::RegisterError;
/// use ctxflow::register_carrier;
/// use ctxflow::sentry::HubCarrier;
///
/// ctxflow::sentry::carry_hub();
/// assert_eq!(
///     register_carrier(HubCarrier),
///     Err(RegisterError::AlreadyRegistered { name: "sentry hub" })
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HubCarrier;

impl Carrier for HubCarrier {
    type Captured = Arc<Hub>;
    /// Switches the previous hub back in when dropped, as `Hub::run` and `SentryFuture` do.
    type Saved = HubSwitchGuard;
    const NAME: &'static str = "sentry hub";
    /// Switching hubs swaps one pointer in a thread-local, as `bind_hub`'s `SentryFuture` does
    /// around each poll without catching anything either.
    const CATCH_PANICS: bool = false;

    fn capture(&self) -> Arc<Hub> {
        Hub::current()
    }

    #[inline]
    fn install(&self, hub: &Arc<Hub>) -> HubSwitchGuard {
        HubSwitchGuard::new(Arc::clone(hub))
    }

    #[inline]
    fn restore(&self, _: &Arc<Hub>, previous: HubSwitchGuard) {
        drop(previous);
    }
}

/// Registers [`HubCarrier`], so that Sentry's current hub flows with every context from now on.
/// Call it at start-up, before the work that should carry the hub is spawned; calling it again
/// does nothing.
///
/// ```
/// use std::sync::Arc;
/// use sentry_core::Hub;
///
/// ctxflow::sentry::carry_hub();
/// ctxflow::sentry::carry_hub();
///
/// let hub = Arc::new(Hub::new_from_top(Hub::current()));
/// let job = Hub::run(hub.clone(), || ctxflow::Context::current().wrap(Hub::current));
/// assert!(Arc::ptr_eq(&std::thread::spawn(job).join().unwrap(), &hub));
/// ```
pub fn carry_hub() {
    static REGISTERED: Once = Once::new();
    // `AlreadyRegistered` only means the application registered it itself.
    REGISTERED.call_once(|| {
        let _ = register_carrier(HubCarrier);
    });
}
