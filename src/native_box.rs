//! A [`NativeJoin`] stored inside the [`JoinHandle`](crate::JoinHandle) that wraps it, with no
//! allocation of its own.
//!
//! The one module where the crate lets `unsafe` code in: erasing a type into inline storage
//! takes it, and on stable Rust only a macro can unsize a value into such storage. The `unsafe`
//! is the `smallbox` crate's own (its `smallbox!` macro expands to it); nothing here writes any.
//! The alternative, a `Box`, would add an allocation to every spawn whose runtime reports
//! outcomes itself (tokio's, where a spawn is otherwise one allocation, as a raw spawn is).
#![allow(unsafe_code)]

use smallbox::SmallBox;

use crate::join::NativeJoin;

/// Room for a runtime's handle: tokio's is one pointer; those adapted from `async-task` take
/// six words (smol) and ten (async-std, whose handle lacks `is_finished` and keeps more).
type Space = [usize; 10];

/// How many bytes of handle fit inline.
pub(crate) const INLINE_BYTES: usize = std::mem::size_of::<Space>();

pub(crate) type NativeBox<T> = SmallBox<dyn NativeJoin<T>, Space>;

/// `native`, erased; inline when it fits in [`Space`].
pub(crate) fn erase<T: 'static>(native: impl NativeJoin<T> + 'static) -> NativeBox<T> {
    smallbox::smallbox!(native)
}
