//! What a task carries besides its [`Context`](crate::Context): the "current" state that
//! outside libraries keep for themselves, captured where a task, future or closure is created
//! and entered around each of its polls (or around the closure).
//!
//! Each integration feature adds its piece here. With none enabled, this is empty and every
//! call compiles to nothing.

use std::marker::PhantomData;

/// The captured state of every enabled integration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Carried {}

impl Carried {
    /// The state current here and now.
    #[inline]
    pub(crate) fn capture() -> Self {
        Carried {}
    }

    /// Makes the captured state current until the guard drops.
    #[inline]
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            _carried: PhantomData,
        }
    }
}

/// Keeps the captured state current; restores the previous state when dropped.
pub(crate) struct Entered<'a> {
    _carried: PhantomData<&'a Carried>,
}
