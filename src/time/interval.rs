//! [`Interval`]: ticks once per period, on the timer of the runtime that polls it.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;

use super::sleep::{deadline_after, sleep_until, Sleep};
use crate::timer;

/// Ticks once per `period`, the first tick at once, on the timer of the runtime that polls it
/// (see [`ctxflow::time`](crate::time)).
///
/// A tick taken late (the task was busy, the machine slept) is not followed by a burst of
/// catch-up ticks: the next one keeps to the schedule while its time is still ahead, and once a
/// whole period has been missed it comes a full period after the late tick was taken, so missed
/// ticks are skipped, never made up. (tokio's default, `MissedTickBehavior::Burst`, makes them
/// up.) A `Duration::MAX` period saturates to about 30 years: one tick, then none.
///
/// # Panics
/// When `period` is zero, which would tick without end; and when first polled where no runtime
/// can drive a timer (see [`sleep`](super::sleep())).
///
/// ```
/// use std::time::Duration;
///
/// ctxflow::block_on(async {
///     let mut heartbeat = ctxflow::time::interval(Duration::from_millis(5));
///     let first = heartbeat.tick().await; // at once
///     let second = heartbeat.tick().await; // 5 ms later
///     assert!(second - first >= Duration::from_millis(5));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "ctxflow::time::interval: the period must be longer than zero"
    );
    Interval {
        period,
        next: Box::pin(sleep_until(timer::now())),
    }
}

/// The ticks [`interval`] makes: await [`tick`](Interval::tick), or use it as a `Stream` of the
/// instants the ticks were due.
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    // Boxed so that `Interval` is `Unpin`, as `tick(&mut self)` needs: one allocation per
    // interval, none per tick.
    next: Pin<Box<Sleep>>,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was due. Cancel-safe: dropping the
    /// future loses no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; `Ready` with the instant it was due.
    pub fn poll_tick(&mut self, cx: &mut TaskContext<'_>) -> Poll<Instant> {
        ready!(self.next.as_mut().poll(cx));
        let due = self.next.deadline();
        let on_schedule = deadline_after(due, self.period);
        let now = timer::now();
        let next = if on_schedule > now {
            on_schedule
        } else {
            deadline_after(now, self.period)
        };
        self.next.as_mut().reset(next);
        Poll::Ready(due)
    }

    /// The time between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}
