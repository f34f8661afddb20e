//! The runtime timers behind [`ctxflow::time`](crate::time): tokio's own on a thread that runs
//! inside a tokio runtime, compio's on a thread that runs a compio runtime, async-io's (the timer
//! smol and async-std both drive) anywhere else.
//!
//! Each runtime feature adds its timer here; what a sleep, a timeout or an interval does with it
//! lives in `src/time`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

/// The panic message of a timer polled where no runtime can drive it, naming the runtimes of
/// this build that can; only a build with neither smol nor async-std can get there, since
/// async-io's timer runs under any executor.
#[cfg(not(any(feature = "smol", feature = "async-std")))]
fn no_timer() -> String {
    let runtimes: &[&str] = &[
        #[cfg(feature = "tokio")]
        "a tokio runtime (built with `enable_time()` or `enable_all()`)",
        #[cfg(feature = "compio")]
        "a compio runtime",
    ];
    let inside = match runtimes {
        [] => String::new(),
        runtimes => format!("await the timer inside {}, or ", runtimes.join(" or ")),
    };
    format!(
        "ctxflow::time: no runtime drives timers on this thread: {inside}enable ctxflow's `smol` \
         feature, whose timer runs under any executor"
    )
}

/// The timer of whichever runtime polls a ctxflow timer first.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Driver {
    #[cfg(feature = "tokio")]
    Tokio,
    #[cfg(feature = "compio")]
    Compio,
    #[cfg(any(feature = "smol", feature = "async-std"))]
    AsyncIo,
}

impl Driver {
    /// The timer for a ctxflow timer polled here: tokio's inside a tokio runtime, whatever else is
    /// enabled, so that enabling smol somewhere in the build never moves tokio code off tokio's
    /// timer (and off its paused test clock); else compio's inside a compio runtime, which wakes
    /// the task on its own thread; else async-io's.
    ///
    /// # Panics
    /// With [`no_timer`]'s message outside a tokio or compio runtime when neither smol nor async-std is
    /// enabled. Inside a tokio runtime built without timers, tokio's own panic says to call
    /// `enable_time`.
    pub(crate) fn current() -> Driver {
        #[cfg(feature = "tokio")]
        if ::tokio::runtime::Handle::try_current().is_ok() {
            return Driver::Tokio;
        }
        #[cfg(feature = "compio")]
        if ::compio::runtime::Runtime::try_with_current(|_| ()).is_ok() {
            return Driver::Compio;
        }
        #[cfg(any(feature = "smol", feature = "async-std"))]
        return Driver::AsyncIo;
        #[cfg(not(any(feature = "smol", feature = "async-std")))]
        panic!("{}", no_timer());
    }

    /// A timer of this driver that fires at `deadline`.
    pub(crate) fn timer_at(self, deadline: Instant) -> RuntimeTimer {
        match self {
            #[cfg(feature = "tokio")]
            Driver::Tokio => RuntimeTimer::Tokio {
                sleep: ::tokio::time::sleep_until(::tokio::time::Instant::from_std(deadline)),
            },
            #[cfg(feature = "compio")]
            Driver::Compio => RuntimeTimer::Compio {
                timer: CompioTimer::at(deadline),
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
#[cfg(not(feature = "compio"))]
type CompioTimer = Absent;
#[cfg(any(feature = "smol", feature = "async-std"))]
type AsyncIoTimer = ::async_io::Timer;
#[cfg(not(any(feature = "smol", feature = "async-std")))]
type AsyncIoTimer = Absent;

/// Polls `deadline` outside tokio's cooperative budget, as tokio's own `timeout` polls its
/// delay: a future that used the budget up (a busy channel) would otherwise keep tokio's timer
/// pending at every poll, and its timeout would never fire.
pub(crate) fn poll_unconstrained<F: Future>(
    deadline: Pin<&mut F>,
    cx: &mut TaskContext<'_>,
) -> Poll<F::Output> {
    #[cfg(feature = "tokio")]
    return Pin::new(&mut ::tokio::task::unconstrained(deadline)).poll(cx);
    #[cfg(not(feature = "tokio"))]
    deadline.poll(cx)
}

pin_project! {
    /// One runtime's timer, armed for one deadline.
    #[project = RuntimeTimerProj]
    #[derive(Debug)]
    pub(crate) enum RuntimeTimer {
        Tokio { #[pin] sleep: TokioSleep },
        Compio { timer: CompioTimer },
        AsyncIo { timer: AsyncIoTimer },
    }
}

impl RuntimeTimer {
    /// Ready once the deadline has passed.
    pub(crate) fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        match self.project() {
            RuntimeTimerProj::Tokio { sleep } => sleep.poll(cx),
            RuntimeTimerProj::Compio { timer } => Pin::new(timer).poll(cx),
            RuntimeTimerProj::AsyncIo { timer } => Pin::new(timer).poll(cx).map(drop),
        }
    }
}

/// compio's timer, armed for one deadline on the compio runtime of the thread that made it.
///
/// compio's timer future is tied to its runtime's thread (`!Send`), while ctxflow's timers are
/// `Send` on every runtime: compio's own wrapper makes it `Send` and checks, at every poll, that
/// it is still on the thread that made it. A compio task never leaves its thread, so only a timer
/// polled there by hand and then moved elsewhere can fail the check. Boxed, as compio's timer is
/// an `async fn`'s future, whose type has no name.
#[cfg(feature = "compio")]
pub(crate) struct CompioTimer {
    // `None` only while it is dropped.
    timer: Option<compio_send_wrapper::SendWrapper<Pin<Box<dyn Future<Output = ()>>>>>,
}

#[cfg(feature = "compio")]
impl CompioTimer {
    fn at(deadline: Instant) -> Self {
        CompioTimer {
            timer: Some(compio_send_wrapper::SendWrapper::new(Box::pin(
                ::compio::time::sleep_until(deadline),
            ))),
        }
    }
}

#[cfg(feature = "compio")]
impl Future for CompioTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        match self.timer.as_mut().and_then(|timer| timer.get_mut()) {
            Some(timer) => timer.as_mut().poll(cx),
            None => panic!(
                "ctxflow::time: a timer started on a compio runtime's thread was polled on \
                 another thread; compio's timers stay on the thread that started them"
            ),
        }
    }
}

#[cfg(feature = "compio")]
impl Drop for CompioTimer {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            if !timer.valid() {
                // compio's timer can be released only on its own thread: dropped elsewhere, it
                // is left to fire unwatched rather than panic in a destructor.
                std::mem::forget(timer);
            }
        }
    }
}

#[cfg(feature = "compio")]
impl std::fmt::Debug for CompioTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompioTimer").finish_non_exhaustive()
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

#[cfg(all(test, not(any(feature = "smol", feature = "async-std"))))]
mod tests {
    /// A compio-only build must not send its users to a tokio runtime it cannot use.
    #[test]
    fn the_no_timer_message_names_only_the_runtimes_of_the_build() {
        let message = super::no_timer();
        assert_eq!(message.contains("tokio runtime"), cfg!(feature = "tokio"));
        assert_eq!(message.contains("compio runtime"), cfg!(feature = "compio"));
        assert!(message
            .ends_with("enable ctxflow's `smol` feature, whose timer runs under any executor"));
    }
}
