//! What the benchmarks share: the variables, the future whose polls are counted, the floor it
//! is compared against, and settings that keep every group short on a small shared machine.

// Each benchmark uses its own part of this module.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Criterion;
use ctxflow::{Context, ContextVar};
use futures::task::noop_waker;

pub static VARS: [ContextVar<u64>; 64] = [const { ContextVar::new("v") }; 64];

pub const SIZES: [usize; 3] = [1, 8, 64];

/// `Pending` results before the final `Ready`; every poll benchmark polls `PENDING + 1` times.
pub const PENDING: u32 = 1000;

/// A snapshot with the first `n` of `VARS` set.
pub fn context_with(n: usize) -> Context {
    VARS[..n]
        .iter()
        .zip(0..)
        .fold(Context::empty(), |cx, (var, value)| {
            cx.with_value(var, value)
        })
}

/// Returns `Pending` `PENDING` times, waking nobody, then `Ready`.
pub struct Countdown(u32);

impl Countdown {
    pub fn new() -> Self {
        Countdown(PENDING)
    }
}

impl Future for Countdown {
    type Output = ();

    // A real task's state machine is an opaque call to the wrapper around it. Inlined, it lets
    // the optimiser see that nothing reads the thread-local in between and hoist the floor's
    // swap out of the polling loop, which would then measure nothing.
    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        // Opaque to the optimiser, or the polling loop folds into one subtraction.
        let left = black_box(self.0);
        if left == 0 {
            return Poll::Ready(());
        }
        self.0 = left - 1;
        Poll::Pending
    }
}

/// Polls `future` to completion on the calling thread with a waker that does nothing.
pub fn drive(future: impl Future<Output = ()>) {
    let waker = noop_waker();
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    while future.as_mut().poll(&mut cx).is_pending() {}
}

thread_local! {
    static SLOT: Cell<*const u64> = const { Cell::new(std::ptr::null()) };
}

/// The least any per-poll context can cost: one pointer moved into a thread-local before the
/// poll and the previous one moved back after it.
pub struct PointerSwap<F> {
    value: *const u64,
    inner: F,
}

impl<F> PointerSwap<F> {
    pub fn new(value: &'static u64, inner: F) -> Self {
        PointerSwap { value, inner }
    }
}

impl<F: Future + Unpin> Future for PointerSwap<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let previous = SLOT.replace(self.value);
        let poll = Pin::new(&mut self.inner).poll(cx);
        self.value = SLOT.replace(previous);
        poll
    }
}

thread_local! {
    static ONE_WORD: RefCell<Option<Arc<Vec<u64>>>> = const { RefCell::new(None) };
    static TWO_WORDS: RefCell<Option<Arc<[u64]>>> = const { RefCell::new(None) };
}

/// An owned snapshot moved in and out of a `RefCell` thread-local around each poll, as ctxflow
/// does, but of one word (a thin `Arc`). Next to [`TwoWordSwap`] it shows what the width of the
/// installed state costs, all else equal.
pub struct OneWordSwap<F> {
    value: Option<Arc<Vec<u64>>>,
    inner: F,
}

impl<F> OneWordSwap<F> {
    pub fn new(value: Arc<Vec<u64>>, inner: F) -> Self {
        OneWordSwap {
            value: Some(value),
            inner,
        }
    }
}

impl<F: Future + Unpin> Future for OneWordSwap<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        ONE_WORD.with(|slot| std::mem::swap(&mut *slot.borrow_mut(), &mut this.value));
        let poll = Pin::new(&mut this.inner).poll(cx);
        ONE_WORD.with(|slot| std::mem::swap(&mut *slot.borrow_mut(), &mut this.value));
        poll
    }
}

/// [`OneWordSwap`] with a fat `Arc<[u64]>`, two words, as ctxflow's `Context` is.
pub struct TwoWordSwap<F> {
    value: Option<Arc<[u64]>>,
    inner: F,
}

impl<F> TwoWordSwap<F> {
    pub fn new(value: Arc<[u64]>, inner: F) -> Self {
        TwoWordSwap {
            value: Some(value),
            inner,
        }
    }
}

impl<F: Future + Unpin> Future for TwoWordSwap<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        TWO_WORDS.with(|slot| std::mem::swap(&mut *slot.borrow_mut(), &mut this.value));
        let poll = Pin::new(&mut this.inner).poll(cx);
        TWO_WORDS.with(|slot| std::mem::swap(&mut *slot.borrow_mut(), &mut this.value));
        poll
    }
}

/// The clock a group is timed with. The machines these run on are shared with builds: a thread
/// that is descheduled accrues no CPU time, so CPU-time figures stay comparable when other work
/// competes for the cores, where wall time would count the competitor's time slices.
pub struct Clock {
    clock: libc::clockid_t,
}

impl Clock {
    /// The calling thread's CPU time: for work that runs on the benchmark's own thread.
    pub fn thread() -> Self {
        Clock {
            clock: libc::CLOCK_THREAD_CPUTIME_ID,
        }
    }

    /// Wall time, for work spread over a runtime's threads. Their CPU time is no better there:
    /// idle workers spin while they look for work to steal, and how long they spin depends on
    /// what else the machine runs.
    pub fn wall() -> Self {
        Clock {
            clock: libc::CLOCK_MONOTONIC,
        }
    }

    pub fn now(&self) -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec and every clock used exists on Linux.
        let status = unsafe { libc::clock_gettime(self.clock, &mut now) };
        assert_eq!(status, 0, "clock_gettime failed");
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }
}

impl Measurement for Clock {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }

    fn end(&self, start: Duration) -> Duration {
        self.now() - start
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Durations either way: wall time's units and throughputs read the same.
        static WALL_TIME: WallTime = WallTime;
        WALL_TIME.formatter()
    }
}

pub type Bench = Criterion<Clock>;

/// Nanosecond-scale groups, timed on the benchmark's thread: long enough for a stable median,
/// short enough that every bench binary finishes in about a minute on two shared cores.
pub fn fast() -> Bench {
    Criterion::default()
        .with_measurement(Clock::thread())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

/// Millisecond-scale groups (whole runtimes spawning thousands of tasks on several threads),
/// in wall time. More samples than the ten criterion allows at least: the spread is wide.
pub fn slow() -> Bench {
    Criterion::default()
        .with_measurement(Clock::wall())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
}

/// Whole runtimes driven on the benchmark's own thread, timed on that thread alone: nothing
/// else runs the tasks, so nothing spins or steals, and the figure holds still while other work
/// shares the machine.
pub fn single_threaded() -> Bench {
    Criterion::default()
        .with_measurement(Clock::thread())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}
