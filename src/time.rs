//! Timers that work on every runtime: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`],
//! with [`now`], the clock they measure deadlines against (and [`yield_now`](crate::yield_now) at
//! the crate root, which needs no timer).
//!
//! Code that takes a [`Spawner`](crate::Spawner) by injection must not name a runtime, and a
//! runtime's own timer only works on that runtime: `tokio::time::sleep` panics on smol and
//! async-std with "there is no reactor running", and smol's `Timer` ignores tokio's paused test
//! clock. These timers use the runtime that polls them:
//!
//! - inside a tokio runtime, `tokio::time`, so `tokio::time::pause` and `advance` move them too
//!   (also when smol or async-std is enabled as well: a feature enabled elsewhere in the build
//!   never moves tokio code off tokio's timer); a deadline for [`sleep_until`] is then
//!   [`now`]` + duration`, not `std::time::Instant::now() + duration`, which a paused clock
//!   leaves behind;
//! - inside a compio runtime, compio's timer, which wakes the task on the runtime's own thread
//!   (feature `compio`);
//! - anywhere else, async-io's timer, the one smol and async-std drive (feature `smol` or
//!   `async-std`); it also runs under executors with no timer of their own, such as
//!   `futures::executor`.
//!
//! ```
//! use std::time::Duration;
//! use ctxflow::time::{sleep, timeout};
//! use ctxflow::{ContextVar, Spawner};
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! async fn retry_later<S: Spawner>(spawner: &S) -> Option<String> {
//!     let _token = REQUEST_ID.set("req-123".into());
//!     let retry = spawner.spawn(async {
//!         sleep(Duration::from_millis(5)).await;
//!         REQUEST_ID.get() // still the request's id after the sleep
//!     });
//!     timeout(Duration::from_secs(60), retry).await.ok()?.ok()?
//! }
//!
//! // The same code on whichever runtime the features select.
//! let spawner = ctxflow::DefaultSpawner;
//! assert_eq!(spawner.block_on(retry_later(&spawner)).as_deref(), Some("req-123"));
//! ```
//!
//! The runtime is chosen when a timer is first polled, not when it is made, so a timer made
//! outside any runtime (in a constructor, say) and awaited inside one works. Its deadline is
//! fixed when it is made.
//!
//! The context needs nothing from a timer: a task's context is installed around each of its
//! polls, so what the task sees after an await is what it saw before.
//!
//! # Edge cases
//! - A deadline too far ahead to represent (`Duration::MAX`) saturates to about 30 years from
//!   now, as tokio's does: nothing overflows, and the timer does not fire.
//! - A deadline that has passed when the timer is first polled (a zero duration) yields to the
//!   scheduler once, then completes: at most one yield, whichever runtime.
//! - Outside any runtime, with neither `smol` nor `async-std` enabled, the first poll panics
//!   with a message that says to await the timer inside a tokio or compio runtime or enable
//!   `smol`. Inside a tokio runtime built without timers, tokio's own panic says to call
//!   `enable_time` (the runtimes ctxflow builds have them).
//! - A timer first polled on a compio runtime's thread stays tied to that thread: polled on
//!   another thread (possible only for a timer polled by hand, then sent), it panics naming the
//!   cause.

mod interval;
mod sleep;
mod timeout;

/// Now, on the clock these timers measure deadlines against: tokio's inside a tokio runtime
/// (which is the system's monotonic clock, unless `tokio::time::pause` stopped it for a test),
/// the system's everywhere else. Build the deadlines of [`sleep_until`] and
/// [`Sleep::reset`] from it, and compare [`Sleep::deadline`] and [`Interval::tick`]'s instants
/// with it: `std::time::Instant::now()` drifts from a paused and advanced tokio clock.
///
/// ```
/// use std::time::Duration;
/// use ctxflow::time::{now, sleep_until};
///
/// let deadline = now() + Duration::from_millis(5);
/// ctxflow::block_on(sleep_until(deadline));
/// assert!(now() >= deadline);
/// ```
pub fn now() -> std::time::Instant {
    crate::timer::now()
}

pub use interval::{interval, Interval};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, Elapsed, Timeout};
