//! [`SavedState`]: what a carrier's install replaced, kept until its restore by a guard that
//! outlives the call (a [`ContextGuard`](crate::ContextGuard), a runtime's poll hooks), erased
//! and held inline.
//!
//! The second module where the crate lets `unsafe` code in, for the reason the first
//! (`native_join`) gives: on stable Rust only `smallbox`'s macro unsizes a value into inline
//! storage, and its expansion is the only `unsafe` here. Boxed instead, every carrier's saved
//! state cost an allocation at every hooked poll and every `attach`: with two carriers that have
//! state, four allocations each time (the two boxes and two vectors); with this and
//! `carried::Attached`'s inline list, none (`tests/allocation.rs` counts them).
#![allow(unsafe_code)]

use std::any::Any;

use smallbox::SmallBox;

/// Room for a saved state: two words hold what the integrations' carriers save (nothing for a
/// tracing span, a two-byte stack position for OpenTelemetry, an `Arc` for Sentry's hub) and a
/// user carrier's `Option<&str>`; a larger state is boxed.
type Space = [usize; 2];

/// One carrier's saved state, of its own type behind `dyn Any`.
pub(crate) struct SavedState(SmallBox<dyn Any, Space>);

impl SavedState {
    /// `saved`, erased; inline when it fits in [`Space`].
    #[inline]
    pub(crate) fn new<T: 'static>(saved: T) -> Self {
        SavedState(smallbox::smallbox!(saved))
    }

    /// The state given to [`new`](Self::new), which must have been a `T`.
    #[inline]
    pub(crate) fn into_inner<T: 'static>(self) -> T {
        match self.0.downcast::<T>() {
            Ok(saved) => saved.into_inner(),
            Err(_) => unreachable!("a carrier's saved state is of its own type"),
        }
    }
}
