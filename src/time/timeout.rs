//! [`timeout`]: a future given a deadline, dropped when it misses it.

use std::error::Error;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::sleep::{sleep, Sleep};

/// Runs `future` for at most `duration`: its output, or [`Elapsed`] once the duration has passed,
/// on the timer of the runtime that polls it (see [`ctxflow::time`](crate::time)).
///
/// When the time is up the future is dropped right then, inside the poll that found it late,
/// like an aborted task: its `Drop` runs in the awaiting task's context (a guard that logs still
/// sees the request id), and what it holds (a connection, a lock) is released at the deadline,
/// not whenever the [`Timeout`] itself is dropped. A future that finishes is dropped as soon as
/// it finishes, the same way. It is not a task of its own, though: it runs in the awaiting
/// task's context, so what it sets stays set there after the timeout, as after any `.await`;
/// spawn it to give it a copy.
///
/// The future is polled before the deadline is checked, so one that is ready in time wins even
/// with a zero duration, and a future still pending after a zero duration is polled at most
/// twice: `Elapsed` comes after one yield. A duration too long to add to now (`Duration::MAX`)
/// saturates to about 30 years: the future simply runs.
///
/// # Panics
/// When first polled where no runtime can drive a timer (see [`sleep`]).
///
/// ```
/// use std::time::Duration;
/// use ctxflow::time::timeout;
///
/// ctxflow::block_on(async {
///     let quick = timeout(Duration::from_secs(60), async { 42 }).await;
///     assert_eq!(quick, Ok(42));
///     let stuck = timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
///     assert_eq!(stuck.unwrap_err().to_string(), "deadline has elapsed");
/// });
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: Some(future.into_future()),
        deadline: sleep(duration),
    }
}

pin_project! {
    /// The future [`timeout`] returns.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        // `None` once the future has finished or been dropped at the deadline.
        #[pin]
        future: Option<F>,
        #[pin]
        deadline: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // The runtime's timer is chosen before the future runs, so a timeout polled where no
        // timer can run fails on its first poll, not only once a future comes late.
        this.deadline.as_mut().start();
        let future = this
            .future
            .as_mut()
            .as_pin_mut()
            .expect("`Timeout` polled after it completed");
        if let Poll::Ready(output) = future.poll(cx) {
            this.future.set(None);
            return Poll::Ready(Ok(output));
        }
        ready!(crate::timer::poll_unconstrained(this.deadline, cx));
        this.future.set(None);
        Poll::Ready(Err(Elapsed::new()))
    }
}

/// The error of a [`timeout`] whose future did not finish in time; the future has been dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    fn new() -> Self {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}
