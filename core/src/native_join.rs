//! [`NativeJoin`]: a runtime's own join handle, and how ctxflow's
//! [`JoinHandle`](crate::JoinHandle) stores it inside itself, with no allocation of its own.
//!
//! One of the three modules where the crate lets `unsafe` code in (with `captured` and `current`):
//! erasing a type into inline storage takes it, and on stable Rust only a macro can unsize a
//! value into such storage. The `unsafe` is the `smallbox` crate's own (its `smallbox!` macro
//! expands to it); nothing here writes any.
//! The alternative, a `Box`, would add an allocation to every spawn whose runtime reports
//! outcomes itself (tokio's, where a spawn is otherwise one allocation, as a raw spawn is).
#![allow(unsafe_code)]

use std::task::{Context as TaskContext, Poll};

use smallbox::SmallBox;

use crate::join_error::JoinError;

/// A runtime's own join handle, as ctxflow's [`JoinHandle`](crate::JoinHandle) wraps it: for a runtime adapter
/// whose runtime can report a task's outcome itself (see
/// [`Runtime::spawn_prepared`](crate::rt::Runtime::spawn_prepared)).
///
/// The runtime's handle must behave as ctxflow's promises: dropping it detaches the task,
/// [`abort`](Self::abort) cancels it from synchronous code, and the outcome is the one the task
/// returned ([`Closing`](crate::rt::Closing) returns panics as [`Panic`](crate::rt::Panic)s), or a cancelled
/// [`JoinError`](crate::JoinError) when the runtime dropped the task unfinished.
///
/// A cancelled outcome must wait until the runtime has dropped the task's future: its drop runs
/// inside the task's context and may still use it, and a caller that sees the cancellation
/// counts on that being over. A handle that reports "cancelled" as soon as `abort` takes the
/// runtime's handle away breaks this; so does one that drops a runtime handle which cancels on
/// drop (async-task's), since the future goes later, on the runtime's thread. For a runtime built
/// on `async-task` (async-executor and the like), the `ctxflow-async-task` crate has the handle
/// smol's and async-std's adapters use: [`Closing::cancel`](crate::rt::Closing::cancel) drops the
/// future inside its context when the task is aborted.
///
/// A handle of up to [`JoinHandle::INLINE_NATIVE_BYTES`](crate::JoinHandle::INLINE_NATIVE_BYTES) bytes is stored inside the
/// [`JoinHandle`](crate::JoinHandle); a larger one costs an allocation per spawn.
pub trait NativeJoin<T>: Send + Sync {
    /// The task's outcome once it has finished; called again only after `Pending`.
    fn poll_join(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>>;

    /// Cancels the task, unless it has finished: it is dropped at its next scheduling, and the
    /// handle then gives a cancelled [`JoinError`](crate::JoinError).
    fn abort(&self);

    /// Whether the task has finished: returned, panicked or been cancelled.
    fn is_finished(&self) -> bool;
}

/// Room for a runtime's handle: tokio's is one pointer; those adapted from `async-task` take
/// eight words (smol) and ten (async-std, whose handle lacks `is_finished` and keeps more).
type Space = [usize; 10];

/// How many bytes of handle fit inline.
pub(crate) const INLINE_BYTES: usize = std::mem::size_of::<Space>();

pub(crate) type NativeBox<T> = SmallBox<dyn NativeJoin<T>, Space>;

/// `native`, erased; inline when it fits in [`Space`].
pub(crate) fn erase<T: 'static>(native: impl NativeJoin<T> + 'static) -> NativeBox<T> {
    smallbox::smallbox!(native)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::JoinHandle;

    /// A finished task's handle, `WORDS` words of padding wide, that counts its drops.
    struct Finished<const WORDS: usize> {
        output: Option<String>,
        _padding: [usize; WORDS],
        drops: Arc<AtomicUsize>,
    }

    impl<const WORDS: usize> Drop for Finished<WORDS> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl<const WORDS: usize> NativeJoin<String> for Finished<WORDS> {
        fn poll_join(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<String, JoinError>> {
            Poll::Ready(self.output.take().ok_or_else(JoinError::cancelled))
        }
        fn abort(&self) {}
        fn is_finished(&self) -> bool {
            true
        }
    }

    fn joined_and_dropped<const WORDS: usize>() -> (String, usize) {
        let drops = Arc::new(AtomicUsize::new(0));
        let handle = JoinHandle::from_native(Finished::<WORDS> {
            output: Some("done".to_owned()),
            _padding: [WORDS; WORDS],
            drops: drops.clone(),
        });
        let output = handle.join().expect("the task finished");
        (output, drops.load(Ordering::SeqCst))
    }

    #[test]
    fn a_handle_held_inline_and_a_boxed_one_each_give_their_output_and_drop_once() {
        assert!(std::mem::size_of::<Finished<1>>() <= INLINE_BYTES);
        assert!(std::mem::size_of::<Finished<16>>() > INLINE_BYTES);
        assert_eq!(joined_and_dropped::<1>(), ("done".to_owned(), 1));
        assert_eq!(joined_and_dropped::<16>(), ("done".to_owned(), 1));
    }
}
