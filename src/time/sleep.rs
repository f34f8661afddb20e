//! [`Sleep`]: a future that completes at a deadline, on the timer of the runtime that polls it.

use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::task::YieldNow;
use crate::timer::{self, Driver, RuntimeTimer};
use crate::yield_now;

/// How far ahead a deadline that cannot be represented is put: about 30 years, as tokio does.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// Waits until `duration` has elapsed, on the timer of the runtime that polls it (see
/// [`ctxflow::time`](crate::time)).
///
/// The deadline is fixed now; a duration too long to add to now (`Duration::MAX`) saturates to
/// about 30 years ahead. A zero duration yields to the scheduler once, then completes.
///
/// # Panics
/// When first polled outside any tokio or compio runtime while neither `smol` nor `async-std` is
/// enabled, with a message that says what to do.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// ctxflow::block_on(ctxflow::time::sleep(Duration::from_millis(10)));
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(timer::now(), duration))
}

/// Waits until `deadline`, on the timer of the runtime that polls it (see
/// [`ctxflow::time`](crate::time)). A deadline that has passed yields to the scheduler once,
/// then completes. Make the deadline from [`now`](crate::time::now), the timers' clock, so that
/// it also holds on tokio's paused test clock.
///
/// # Panics
/// As [`sleep`].
///
/// ```
/// use std::time::Duration;
/// use ctxflow::time::{now, sleep_until};
///
/// let deadline = now() + Duration::from_millis(10);
/// ctxflow::block_on(sleep_until(deadline));
/// assert!(now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        state: State::Unstarted,
        _pinned: PhantomPinned,
    }
}

/// `instant + duration`, or about 30 years after `instant` when that cannot be represented.
pub(crate) fn deadline_after(instant: Instant, duration: Duration) -> Instant {
    instant.checked_add(duration).unwrap_or_else(|| {
        // Cannot panic: every supported platform represents instants centuries ahead.
        instant
            .checked_add(FAR_FUTURE)
            .expect("an instant 30 years ahead is representable")
    })
}

pin_project! {
    /// The future [`sleep`] and [`sleep_until`] return.
    ///
    /// The runtime whose timer it uses is chosen when it is first polled (and again after
    /// [`reset`](Sleep::reset)), so a `Sleep` made outside any runtime and awaited inside one
    /// works. Polling it again after it completed returns `Ready` again.
    ///
    /// It is `!Unpin` whichever runtime features are enabled (tokio's timer needs pinning,
    /// async-io's does not), so code that compiles with one set of features compiles with all:
    /// pin it (`std::pin::pin!`, `Box::pin`) to poll it by hand.
    ///
    /// ```compile_fail
    /// fn needs_unpin(_: impl Unpin) {}
    /// needs_unpin(ctxflow::time::sleep(std::time::Duration::ZERO));
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct Sleep {
        deadline: Instant,
        #[pin]
        state: State,
        #[pin]
        _pinned: PhantomPinned,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State {
        // Not polled since it was made or reset: no runtime timer chosen yet.
        Unstarted,
        // The deadline had passed at the first poll: one turn to the scheduler, then done,
        // whichever runtime (tokio's timer would wait for its next millisecond tick, async-io's
        // would not yield at all).
        Due { turn: YieldNow },
        Waiting { #[pin] timer: RuntimeTimer },
        Elapsed,
    }
}

impl Sleep {
    /// When the sleep ends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctxflow::time::{now, sleep_until};
    ///
    /// let deadline = now() + Duration::from_secs(1);
    /// assert_eq!(sleep_until(deadline).deadline(), deadline);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline to `deadline`, also after the sleep completed; the runtime's timer is
    /// chosen again at the next poll.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctxflow::time::{now, sleep};
    ///
    /// let mut nap = Box::pin(sleep(Duration::from_secs(3600)));
    /// let sooner = now() + Duration::from_millis(5);
    /// nap.as_mut().reset(sooner);
    /// ctxflow::block_on(nap);
    /// assert!(now() >= sooner);
    /// ```
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let mut this = self.project();
        *this.deadline = deadline;
        this.state.set(State::Unstarted);
    }

    /// Chooses the runtime's timer, unless it was chosen already.
    ///
    /// # Panics
    /// Where no runtime can drive a timer, with a message that says what to do.
    pub(crate) fn start(self: Pin<&mut Self>) {
        let mut this = self.project();
        if let StateProj::Unstarted = this.state.as_mut().project() {
            // Chosen even for a deadline that has passed, so that a timer polled where none can
            // run fails every time, zero durations included, not only once a delay is real.
            let driver = Driver::current();
            this.state.set(if timer::now() >= *this.deadline {
                State::Due { turn: yield_now() }
            } else {
                State::Waiting {
                    timer: driver.timer_at(*this.deadline),
                }
            });
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        self.as_mut().start();
        let mut state = self.project().state;
        let elapsed = match state.as_mut().project() {
            StateProj::Due { turn } => Pin::new(turn).poll(cx),
            StateProj::Waiting { timer } => timer.poll(cx),
            StateProj::Elapsed => return Poll::Ready(()),
            StateProj::Unstarted => unreachable!("`start` chose a timer"),
        };
        if elapsed.is_ready() {
            // Releases the runtime's timer now rather than when the `Sleep` is dropped.
            state.set(State::Elapsed);
        }
        elapsed
    }
}
