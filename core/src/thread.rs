//! Threads that start in their parent's context: [`spawn`] and [`BuilderExt`].
//!
//! A new `std::thread` starts with an empty context, as it starts with empty thread-locals.
//! These helpers snapshot the caller's context at the call and run the thread's closure inside
//! it. Like every ctxflow spawn, the snapshot holds the flowing variables: not those declared
//! with [`ContextVar::non_flowing`](crate::ContextVar::non_flowing), and none at all inside
//! [`suppress_flow`](crate::suppress_flow).
//!
//! For scoped threads, wrap the closure in the same snapshot:
//! `s.spawn(Context::inheritable().wrap(|| ..))`.
//!
//! ```
//! use ctxflow::{Context, ContextVar};
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//! let _token = REQUEST_ID.set("req-123".into());
//!
//! let seen =
//!     std::thread::scope(|s| s.spawn(Context::inheritable().wrap(|| REQUEST_ID.get())).join());
//! assert_eq!(seen.unwrap().as_deref(), Some("req-123"));
//! ```

use std::io;
use std::thread::{Builder, JoinHandle};

use crate::handoff::Handoff;

/// Spawns a thread, like [`std::thread::spawn`], that runs `f` in a snapshot of the caller's
/// context.
///
/// The thread sees what the caller had set at this call; what it sets stays its own, and what
/// the caller sets later never reaches it.
///
/// # Panics
/// When the operating system cannot create the thread, as `std::thread::spawn` does; use
/// [`BuilderExt::spawn_with_context`] to get the error instead.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// let _token = REQUEST_ID.set("req-123".into());
///
/// let worker = ctxflow::thread::spawn(|| REQUEST_ID.get());
/// assert_eq!(worker.join().unwrap().as_deref(), Some("req-123"));
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(Handoff::for_spawn().wrap(f))
}

/// Context-carrying spawn for a configured [`std::thread::Builder`].
///
/// ```
/// use std::thread::Builder;
/// use ctxflow::thread::BuilderExt;
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// let _token = REQUEST_ID.set("req-123".into());
///
/// let worker = Builder::new()
///     .name("resizer".into())
///     .spawn_with_context(|| REQUEST_ID.get())
///     .expect("cannot start the resizer thread");
/// assert_eq!(worker.join().unwrap().as_deref(), Some("req-123"));
/// ```
pub trait BuilderExt: sealed::Sealed {
    /// Spawns the configured thread, like [`Builder::spawn`], running `f` in a snapshot of the
    /// caller's context.
    ///
    /// # Errors
    /// When the operating system cannot create the thread, as `Builder::spawn` does.
    ///
    /// ```
    /// use std::thread::Builder;
    /// use ctxflow::thread::BuilderExt;
    /// use ctxflow::ContextVar;
    ///
    /// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
    /// let _token = TENANT.set("acme");
    ///
    /// let worker = Builder::new()
    ///     .stack_size(256 * 1024)
    ///     .spawn_with_context(|| TENANT.get())?;
    /// assert_eq!(worker.join().unwrap(), Some("acme"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn spawn_with_context<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;
}

impl BuilderExt for Builder {
    fn spawn_with_context<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(Handoff::for_spawn().wrap(f))
    }
}

mod sealed {
    /// Keeps `BuilderExt` implemented by `std::thread::Builder` only, so methods can be added.
    pub trait Sealed {}

    impl Sealed for std::thread::Builder {}
}
