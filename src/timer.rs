//! The runtime timers behind [`ctxflow::time`](crate::time): tokio's own on a thread that runs
//! inside a tokio runtime, async-io's (the timer smol and async-std both drive) anywhere else.
//!
//! Each runtime feature adds its timer here; what a sleep, a timeout or an interval does with it
//! lives in `src/time`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

/// The panic message of a timer polled where no runtime can drive it; only a build with tokio and
/// neither smol nor async-std can get there, since async-io's timer runs under any executor.
#[cfg_attr(any(feature = "smol", feature = "async-std"), allow(dead_code))]
pub(crate) const NO_TIMER: &str = "ctxflow::time: no runtime drives timers on this thread: \
    await the timer inside a tokio runtime (built with `enable_time()` or `enable_all()`), \
    or enable ctxflow's `smol` feature, whose timer runs under any executor";

/// The timer of whichever runtime polls a ctxflow timer first.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Driver {
    #[cfg(feature = "tokio")]
    Tokio,
    #[cfg(any(feature = "smol", feature = "async-std"))]
    AsyncIo,
}

impl Driver {
    /// The timer for a ctxflow timer polled here: tokio's inside a tokio runtime, whatever else is
    /// enabled, so that enabling smol somewhere in the build never moves tokio code off tokio's
    /// timer (and off its paused test clock); else async-io's.
    ///
    /// # Panics
    /// With [`NO_TIMER`] outside a tokio runtime when neither smol nor async-std is enabled. Inside
    /// a tokio runtime built without timers, tokio's own panic says to call `enable_time`.
    pub(crate) fn current() -> Driver {
        #[cfg(feature = "tokio")]
        if ::tokio::runtime::Handle::try_current().is_ok() {
            return Driver::Tokio;
        }
        #[cfg(any(feature = "smol", feature = "async-std"))]
        return Driver::AsyncIo;
        #[cfg(not(any(feature = "smol", feature = "async-std")))]
        panic!("{NO_TIMER}");
    }

    /// A timer of this driver that fires at `deadline`.
    pub(crate) fn timer_at(self, deadline: Instant) -> RuntimeTimer {
        match self {
            #[cfg(feature = "tokio")]
            Driver::Tokio => RuntimeTimer::Tokio {
                sleep: ::tokio::time::sleep_until(::tokio::time::Instant::from_std(deadline)),
            },
            #[cfg(any(feature = "smol", feature = "async-std"))]
            Driver::AsyncIo => RuntimeTimer::AsyncIo {
                timer: ::async_io::Timer::at(deadline),
            },
        }
    }
}

/// Now, on the clock deadlines are measured against: tokio's inside a tokio runtime whose clock
/// is paused (`tokio::time::pause`), the system's monotonic clock everywhere else.
pub(crate) fn now() -> Instant {
    #[cfg(feature = "tokio")]
    return ::tokio::time::Instant::now().into_std();
    #[cfg(not(feature = "tokio"))]
    Instant::now()
}

#[cfg(feature = "tokio")]
type TokioSleep = ::tokio::time::Sleep;
#[cfg(not(feature = "tokio"))]
type TokioSleep = Absent;
#[cfg(any(feature = "smol", feature = "async-std"))]
type AsyncIoTimer = ::async_io::Timer;
#[cfg(not(any(feature = "smol", feature = "async-std")))]
type AsyncIoTimer = Absent;

pin_project! {
    /// One runtime's timer, armed for one deadline.
    #[project = RuntimeTimerProj]
    #[derive(Debug)]
    pub(crate) enum RuntimeTimer {
        Tokio { #[pin] sleep: TokioSleep },
        AsyncIo { timer: AsyncIoTimer },
    }
}

impl RuntimeTimer {
    /// Ready once the deadline has passed.
    pub(crate) fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        match self.project() {
            RuntimeTimerProj::Tokio { sleep } => sleep.poll(cx),
            RuntimeTimerProj::AsyncIo { timer } => Pin::new(timer).poll(cx).map(drop),
        }
    }
}

/// Stands for the timer of a runtime whose feature is off (pin-project-lite cannot drop a
/// variant by `cfg`); never built.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum Absent {}

impl Future for Absent {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        match *self.get_mut() {}
    }
}
