//! What a [`Spawner`](crate::Spawner) hands to its runtime: [`Task`] and [`BlockingTask`].
//!
//! Both come ready-made from ctxflow: the context is already attached, panics are already
//! caught, and the outcome already goes to the [`JoinHandle`]. A runtime adapter only spawns
//! them and lets go of the runtime's own handle.
//!
//! Every spawn starts as a [`PreparedTask`] or [`PreparedBlocking`], which becomes either of
//! those, or, on a runtime whose own handle ctxflow's wraps (tokio, smol, async-std), the bare
//! future or closure in its context, whose outcome that handle reports.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use crate::future::WithContext;
use crate::handoff::Handoff;
use crate::join::{self, JoinError, JoinHandle, Reporter};
use crate::spawner::Spawner;
use crate::var::ContextVar;

pin_project! {
    /// A spawned future, ready for a runtime: poll it to completion, or drop it to cancel it.
    ///
    /// Only ctxflow makes tasks; a runtime adapter receives them in
    /// [`Spawner::spawn_task`](crate::Spawner::spawn_task) and spawns them as they are.
    ///
    /// Its output is `()`: the real output goes to the task's [`JoinHandle`], so the runtime's
    /// own handle can be dropped at once.
    #[must_use = "a task does nothing unless it is spawned on a runtime"]
    pub struct Task<F> {
        #[pin]
        future: F,
        name: Option<Arc<str>>,
    }
}

impl<F> Task<F> {
    /// The name given with [`Spawner::spawn_named`](crate::Spawner::spawn_named), for runtimes
    /// that can name their tasks.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl<F: Future<Output = ()> + Send + 'static> Task<F> {
    /// The same task behind a box, for spawners that erase types.
    pub fn boxed(self) -> Task<Pin<Box<dyn Future<Output = ()> + Send>>> {
        Task {
            future: Box::pin(self.future),
            name: self.name,
        }
    }
}

impl<F: Future<Output = ()> + 'static> Task<F> {
    /// The same task behind a box, for local spawners that erase types.
    pub fn boxed_local(self) -> Task<Pin<Box<dyn Future<Output = ()>>>> {
        Task {
            future: Box::pin(self.future),
            name: self.name,
        }
    }
}

impl<F: Future> Future for Task<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl<F> fmt::Debug for Task<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish()
    }
}

/// A spawn that ctxflow has prepared: the future, the context it runs in and its name, not yet
/// tied to a join handle. Only ctxflow makes them; see
/// [`Spawner::spawn_prepared`](crate::Spawner::spawn_prepared).
#[must_use = "a prepared task does nothing unless it is spawned"]
pub struct PreparedTask<F> {
    handoff: Handoff,
    name: Option<Arc<str>>,
    future: F,
}

impl<F: Future> PreparedTask<F> {
    pub(crate) fn new(mut handoff: Handoff, name: Option<Arc<str>>, future: F) -> Self {
        if let Some(name) = &name {
            handoff.context = handoff.context.with_value(&TASK_NAME, name.clone());
        }
        PreparedTask {
            handoff,
            name,
            future,
        }
    }

    /// Spawns on `spawner` the task that reports into ctxflow's own slot, and returns the handle
    /// that reads the slot.
    pub(crate) fn spawn_reporting<S: Spawner>(self, spawner: &S) -> JoinHandle<F::Output>
    where
        F: Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = task(self.handoff, self.name, self.future);
        spawner.spawn_task(task);
        handle
    }

    /// The future inside its context, and the task's name: for a runtime adapter that builds
    /// the task around its runtime's own join handle.
    #[cfg_attr(not(any(feature = "smol", feature = "async-std")), allow(dead_code))]
    pub(crate) fn into_parts(self) -> (WithContext<F>, Option<Arc<str>>) {
        (WithContext::new(self.future, self.handoff), self.name)
    }

    /// The task for a runtime whose own join handle reports panics and cancellation: it
    /// returns the outcome instead of reporting it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn closing(self) -> Closing<F> {
        Closing {
            future: WithContext::new(self.future, self.handoff),
        }
    }
}

impl<F> fmt::Debug for PreparedTask<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedTask")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The user's future inside its context, dropped inside it as soon as it is ready, so the
    /// runtime's handle sees the task end only once its resources are released.
    pub(crate) struct Closing<F> {
        #[pin]
        future: WithContext<F>,
    }
}

/// What a panic left: the payload `catch_unwind` returns, behind one more box so that it is a
/// thin pointer.
///
/// A thin pointer has a niche: `Poll<Result<(), Panic>>` is two words and comes back from
/// `poll` in registers. With the payload's fat pointer it would come back through memory, read
/// with wider loads than the stores that wrote it, which stalls the runtime at every poll. And
/// the runtime's cell for the output stays as small as for the bare future's.
#[derive(Debug)]
pub(crate) struct Panic(Box<Box<dyn std::any::Any + Send + 'static>>);

impl Panic {
    pub(crate) fn new(payload: Box<dyn std::any::Any + Send + 'static>) -> Self {
        Panic(Box::new(payload))
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn into_error(self) -> JoinError {
        JoinError::panic(*self.0)
    }
}

impl<F: Future> Future for Closing<F> {
    type Output = Result<F::Output, Panic>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut future = self.project().future;
        let output = std::task::ready!(future.as_mut().poll(cx));
        // A panicking drop is the task's panic, as it is for a task that reports to a slot.
        let closed = panic::catch_unwind(AssertUnwindSafe(|| future.close()));
        Poll::Ready(closed.map(|()| output).map_err(Panic::new))
    }
}

/// Builds the task that runs `future` inside `context` and reports to the returned handle. The
/// task is `Send` when `future` and its output are.
pub(crate) fn task<F: Future>(
    handoff: Handoff,
    name: Option<Arc<str>>,
    future: F,
) -> (Task<Running<F>>, JoinHandle<F::Output>) {
    let (reporter, handle) = join::channel();
    let future = Running {
        future: WithContext::new(future, handoff),
        reporter: Some(reporter),
    };
    (Task { future, name }, handle)
}

/// A task built around a future that ctxflow does not wrap; the testing helpers use it to show
/// what a runtime does without ctxflow.
#[cfg(feature = "testing")]
pub(crate) fn unwrapped<F: Future<Output = ()>>(future: F) -> Task<F> {
    Task { future, name: None }
}

/// A blocking task around a closure that ctxflow does not wrap, for the same testing helpers.
#[cfg(feature = "testing")]
pub(crate) fn unwrapped_blocking<F: FnOnce()>(job: F) -> BlockingTask<F> {
    BlockingTask { job }
}

pin_project! {
    /// The future a task runs: the user's, inside its context, reporting to its handle.
    pub(crate) struct Running<F: Future> {
        #[pin]
        future: WithContext<F>,
        // `None` once the outcome is reported.
        reporter: Option<Reporter<F::Output>>,
    }
}

impl<F: Future> Future for Running<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(reporter) = this.reporter.as_mut() else {
            return Poll::Ready(());
        };
        // Watch before checking: an abort that lands in between finds the waker and wakes the
        // task, instead of finding none and leaving it pending for good.
        reporter.watch(cx.waker());
        let result = if reporter.is_aborted() {
            Err(JoinError::cancelled())
        } else {
            let future = this.future.as_mut();
            match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(output)) => Ok(output),
                Err(payload) => Err(JoinError::panic(payload)),
            }
        };
        // Drop the future now, inside its context, so the handle sees the task end only once
        // the future's resources are released; a panicking drop is the task's panic.
        let future = this.future.as_mut();
        let closed = panic::catch_unwind(AssertUnwindSafe(|| future.close()));
        let result = closed.map_err(JoinError::panic).and(result);
        if let Some(reporter) = this.reporter.take() {
            reporter.report(result);
        }
        Poll::Ready(())
    }
}

/// A closure for a blocking pool, ready to run: call [`run`](Self::run) on a pool thread.
#[must_use = "a blocking task does nothing unless it is run"]
pub struct BlockingTask<F> {
    job: F,
}

impl<F: FnOnce() + Send + 'static> BlockingTask<F> {
    /// Runs the closure inside its context and reports the outcome to its handle.
    pub fn run(self) {
        (self.job)()
    }

    /// The same task behind a box, for spawners that erase types.
    pub fn boxed(self) -> BlockingTask<Box<dyn FnOnce() + Send>> {
        BlockingTask {
            job: Box::new(self.job),
        }
    }
}

impl<F> fmt::Debug for BlockingTask<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask").finish_non_exhaustive()
    }
}

/// A blocking closure that ctxflow has prepared: the closure and the context it runs in, not yet
/// tied to a join handle. Only ctxflow makes them; see
/// [`Spawner::spawn_blocking_prepared`](crate::Spawner::spawn_blocking_prepared).
#[must_use = "a prepared closure does nothing unless it is spawned"]
pub struct PreparedBlocking<F> {
    handoff: Handoff,
    // `None` once run.
    f: Option<F>,
}

impl<F, R> PreparedBlocking<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    pub(crate) fn new(handoff: Handoff, f: F) -> Self {
        PreparedBlocking {
            handoff,
            f: Some(f),
        }
    }

    /// Runs on `spawner`'s blocking pool the task that reports into ctxflow's own slot, and
    /// returns the handle that reads the slot.
    pub(crate) fn spawn_reporting<S: Spawner>(mut self, spawner: &S) -> JoinHandle<R> {
        let f = self.f.take().expect("a prepared closure is run once");
        let (task, handle) = blocking(std::mem::take(&mut self.handoff), f);
        spawner.spawn_blocking_task(task);
        handle
    }

    /// The closure for a pool whose own join handle reports panics and cancellation: it runs
    /// inside its context and returns its value, and dropped unrun it releases its captures
    /// inside its context too.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn closing(mut self) -> impl FnOnce() -> Result<R, Panic> + Send + 'static {
        move || {
            let f = self.f.take().expect("a prepared closure is run once");
            let value = self.handoff.run(f);
            // Released before the pool reports, as a task's context is.
            drop(self);
            Ok(value)
        }
    }
}

impl<F> Drop for PreparedBlocking<F> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            self.handoff.run(|| drop(f));
        }
    }
}

impl<F> fmt::Debug for PreparedBlocking<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedBlocking").finish_non_exhaustive()
    }
}

/// Builds the blocking task that runs `f` inside `context` and reports to the returned handle.
pub(crate) fn blocking<F, R>(
    handoff: Handoff,
    f: F,
) -> (BlockingTask<impl FnOnce() + Send + 'static>, JoinHandle<R>)
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (reporter, handle) = join::channel();
    let job = Job {
        handoff,
        f,
        reporter,
    };
    (
        BlockingTask {
            job: move || job.run(),
        },
        handle,
    )
}

/// A blocking closure with what it runs in and reports to. The reporter is the last field, so a
/// job dropped unrun (by a pool at shutdown) releases its context and closure before its
/// handle sees the cancellation.
struct Job<F, R> {
    handoff: Handoff,
    f: F,
    reporter: Reporter<R>,
}

impl<F: FnOnce() -> R, R> Job<F, R> {
    fn run(self) {
        let Job {
            handoff,
            f,
            reporter,
        } = self;
        let result = if reporter.is_aborted() {
            // Dropped unrun inside its context, as an aborted task's future is.
            handoff.run(|| drop(f));
            Err(JoinError::cancelled())
        } else {
            panic::catch_unwind(AssertUnwindSafe(|| handoff.run(f))).map_err(JoinError::panic)
        };
        // Released before reporting, as a task's future is: once the handle sees the closure
        // end, nothing of the closure's context is left.
        drop(handoff);
        reporter.report(result);
    }
}

/// A task's name lives in its own context, where it costs the task nothing when unset. It does
/// not flow, so tasks it spawns are not named after it.
static TASK_NAME: ContextVar<Arc<str>> = ContextVar::non_flowing("task_name");

/// The name of the task being polled on this thread, if it was spawned with
/// [`Spawner::spawn_named`](crate::Spawner::spawn_named).
///
/// The name belongs to the task, not to what it spawns: tasks it spawns are not named after it.
/// It is kept in the task's context as a [non-flowing](crate::ContextVar::non_flowing) variable,
/// so a context passed on explicitly (with [`Context::current`](crate::Context::current)) takes
/// it along.
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// let name = ctxflow::block_on(async {
///     ctxflow::spawn_named("process-order-123", async { ctxflow::task_name() }).await.unwrap()
/// });
/// assert_eq!(name.as_deref(), Some("process-order-123"));
/// assert_eq!(ctxflow::task_name(), None);
/// # }
/// ```
pub fn task_name() -> Option<Arc<str>> {
    TASK_NAME.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, ContextVar};

    static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");

    #[test]
    fn a_blocking_task_aborted_before_it_starts_never_runs() {
        let (task, handle) = blocking(Handoff::default(), || panic!("must not run"));
        handle.abort();
        task.run();
        assert!(handle.is_finished());
        let outcome = futures::executor::block_on(handle);
        assert!(outcome.unwrap_err().is_cancelled());
    }

    #[test]
    fn a_blocking_task_runs_in_its_context_and_reports_its_value() {
        let cx = Context::empty().with_value(&REQUEST_ID, "req-1");
        let (task, handle) = blocking(Handoff::from(cx), || REQUEST_ID.get());
        std::thread::spawn(move || task.run()).join().unwrap();
        assert_eq!(futures::executor::block_on(handle).unwrap(), Some("req-1"));
    }

    #[test]
    fn a_blocking_task_dropped_unrun_reports_cancellation() {
        let (task, handle) = blocking(Handoff::default(), || 1);
        drop(task);
        assert!(futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
    }

    #[test]
    fn a_task_dropped_by_its_runtime_reports_cancellation() {
        let (task, handle) = task(Handoff::default(), None, std::future::pending::<()>());
        drop(task);
        assert!(futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
    }

    #[test]
    fn a_prepared_closure_dropped_unrun_releases_its_captures_inside_its_context() {
        struct Probe(std::sync::mpsc::Sender<Option<&'static str>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                self.0.send(REQUEST_ID.get()).unwrap();
            }
        }
        let (sender, dropped_in) = std::sync::mpsc::channel();
        let probe = Probe(sender);
        let cx = Context::empty().with_value(&REQUEST_ID, "req-1");
        let prepared = PreparedBlocking::new(Handoff::from(cx), move || drop(probe));
        drop(prepared.closing());
        assert_eq!(dropped_in.recv().unwrap(), Some("req-1"));
        assert_eq!(REQUEST_ID.get(), None);
    }

    #[test]
    fn a_prepared_closure_runs_in_its_context_and_returns_its_value() {
        let cx = Context::empty().with_value(&REQUEST_ID, "req-2");
        let prepared = PreparedBlocking::new(Handoff::from(cx), || REQUEST_ID.get());
        let run = prepared.closing();
        let outcome = std::thread::spawn(run).join().unwrap();
        assert_eq!(outcome.unwrap(), Some("req-2"));
    }

    #[test]
    fn a_task_whose_future_panics_when_dropped_reports_that_panic() {
        struct ReadyButPanicsOnDrop;
        impl Future for ReadyButPanicsOnDrop {
            type Output = u8;
            fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u8> {
                Poll::Ready(1)
            }
        }
        impl Drop for ReadyButPanicsOnDrop {
            fn drop(&mut self) {
                panic!("drop failed");
            }
        }
        let (task, handle) = task(Handoff::default(), None, ReadyButPanicsOnDrop);
        futures::executor::block_on(task);
        let error = futures::executor::block_on(handle).unwrap_err();
        assert_eq!(error.to_string(), "task panicked: drop failed");
    }
}
