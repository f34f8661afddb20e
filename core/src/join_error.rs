//! [`JoinError`], and the [`Panic`] a task returns as its outcome.

use std::any::Any;
use std::fmt;

/// Why a task produced no value: it panicked or it was cancelled.
///
/// ```
/// let error = ctxflow::block_on(async {
///     ctxflow::spawn(async { panic!("boom") }).await.unwrap_err()
/// });
/// assert!(error.is_panic() && !error.is_cancelled());
/// assert_eq!(error.to_string(), "task panicked: boom");
/// let payload = error.into_panic();
/// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// The error of a task that was cancelled: for a [`NativeJoin`](crate::rt::NativeJoin) whose runtime reports that
    /// its task was aborted or dropped unfinished.
    ///
    /// ```
    /// assert!(ctxflow::JoinError::cancelled().is_cancelled());
    /// ```
    pub fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    /// The error of a task that panicked with `payload` (what `catch_unwind` returns).
    ///
    /// ```
    /// let error = ctxflow::JoinError::panic(Box::new("boom"));
    /// assert_eq!(error.to_string(), "task panicked: boom");
    /// ```
    pub fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    /// Whether the task was cancelled: aborted, or dropped by its runtime (at shutdown) before
    /// it finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task (or its drop) panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload, to inspect or to re-raise with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    /// When the task was cancelled rather than panicked; see [`try_into_panic`](Self::try_into_panic).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError::into_panic` called on a cancelled task's error")
    }

    /// The panic's payload, or the error itself when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<&str> {
        let Repr::Panic(payload) = &self.repr else {
            return None;
        };
        payload
            .downcast_ref::<&'static str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(message)) => write!(f, "task panicked: {message}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), message) => f.debug_tuple("JoinError::Panic").field(&message).finish(),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<Panic> for JoinError {
    fn from(panic: Panic) -> Self {
        panic.into_error()
    }
}

/// What a panic left, as a task's outcome returns it: the payload `catch_unwind` gives, behind
/// one more box so that it is a thin pointer.
///
/// A thin pointer has a niche: `Poll<Result<(), Panic>>` is two words and comes back from
/// `poll` in registers. With the payload's fat pointer it would come back through memory, read
/// with wider loads than the stores that wrote it, which stalls the runtime at every poll. And
/// the runtime's cell for the output stays as small as for the bare future's.
#[derive(Debug)]
pub struct Panic(Box<Box<dyn Any + Send + 'static>>);

impl Panic {
    /// The panic whose payload is `payload`.
    pub fn new(payload: Box<dyn Any + Send + 'static>) -> Self {
        Panic(Box::new(payload))
    }

    /// The [`JoinError`] a handle gives for this panic.
    pub fn into_error(self) -> JoinError {
        JoinError::panic(*self.0)
    }
}
