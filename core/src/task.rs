//! The task contract, written once: what a runtime spawns for ctxflow.
//!
//! Every spawn starts as a [`PreparedTask`] or [`PreparedBlocking`]: the user's future or
//! closure and the context it runs in. Either becomes a [`Closing`] future (or closing closure),
//! which keeps the three promises of every ctxflow task:
//!
//! - the future (or closure) runs and is dropped inside its context;
//! - a panic while it runs, or while it is dropped, is the task's panic, returned as its outcome
//!   (when both panic, the first: the drop's panic would otherwise abort the process);
//! - the context is released before the outcome is returned, so whoever reads the outcome sees
//!   nothing of the task's context left.
//!
//! A runtime whose own join handle detaches on drop and cancels from synchronous code spawns
//! that directly and wraps its handle (see [`NativeJoin`](crate::rt::NativeJoin)). For any
//! other runtime ctxflow adds the one thing missing, a slot the outcome is reported into, and
//! hands the runtime a [`Task`] or [`BlockingTask`] to spawn detached.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use crate::context::Context;
use crate::future::WithContext;
use crate::handoff::{Handoff, Wrapped};
use crate::join::{self, JoinHandle, Reporter};
use crate::join_error::{JoinError, Panic};
use crate::var::ContextVar;

pin_project! {
    /// A spawned future, ready for a runtime: poll it to completion, or drop it to cancel it.
    ///
    /// Only ctxflow makes tasks; a runtime adapter receives them in
    /// [`Runtime::spawn_task`](crate::rt::Runtime::spawn_task) and spawns them as they are.
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
/// tied to a join handle. Only ctxflow makes them; a runtime receives them in
/// [`Runtime::spawn_prepared`](crate::rt::Runtime::spawn_prepared).
#[must_use = "a prepared task does nothing unless it is spawned"]
pub struct PreparedTask<F> {
    handoff: Handoff,
    name: Option<Arc<str>>,
    future: F,
}

impl<F: Future> PreparedTask<F> {
    #[inline]
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

    /// The name given with [`Spawner::spawn_named`](crate::Spawner::spawn_named), for runtimes
    /// that can name their tasks.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The future that keeps the task contract, for a runtime whose own join handle reports
    /// its outcome: spawn it and wrap the runtime's handle in a
    /// [`NativeJoin`](crate::rt::NativeJoin).
    pub fn into_closing(self) -> Closing<F> {
        Closing {
            future: WithContext::new(self.future, self.handoff),
            panics: PhantomData,
        }
    }

    /// The same future, for a runtime that catches a panicking poll itself and reports it
    /// through its own join handle, as tokio does: the poll's panic unwinds to the runtime,
    /// with the future dropped inside its context on the way. Each poll then costs what the
    /// bare future's poll costs, with no `catch_unwind` of ctxflow's around it.
    pub fn into_closing_unwinding(self) -> Closing<F, Unwinding> {
        Closing {
            future: WithContext::new(self.future, self.handoff),
            panics: PhantomData,
        }
    }

    /// The task that reports into ctxflow's own slot, and the handle that reads the slot: how
    /// a spawn goes on a runtime whose handle ctxflow does not wrap.
    pub fn into_reporting(self) -> (Task<impl Future<Output = ()>>, JoinHandle<F::Output>) {
        let (reporter, handle) = join::channel();
        let name = self.name.clone();
        let future = Running {
            closing: self.into_closing(),
            reporter: Some(reporter),
        };
        (Task { future, name }, handle)
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
    /// The user's future inside its context, kept to the task contract: every poll runs
    /// inside the context, and once the future is ready, or panics, it is dropped inside its
    /// context before the outcome is returned. A panic of the poll or of that drop is the
    /// outcome's [`Panic`] (the poll's, when both panic), and no panic of the user's reaches
    /// the runtime; except from the future of
    /// [`into_closing_unwinding`](PreparedTask::into_closing_unwinding), whose poll's panic
    /// unwinds to a runtime that catches it.
    ///
    /// Dropped before it is ready (a runtime cancelling the task, or dropping it as it shuts
    /// down), it drops the future inside its context too. A panic of that drop goes no further
    /// from a [`Catching`] one (some runtimes abort the process on a panic there; call
    /// [`cancel`](Self::cancel) first to have it), and unwinds to the runtime from an
    /// [`Unwinding`] one, whose runtime catches it and reports it as the task's.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Closing<F, P: PollPanics = Catching> {
        #[pin]
        future: WithContext<F>,
        panics: PhantomData<P>,
    }

    impl<F, P: PollPanics> PinnedDrop for Closing<F, P> {
        fn drop(this: Pin<&mut Self>) {
            let future = this.project().future;
            if P::CATCHES {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| future.close()));
            }
        }
    }
}

/// What a [`Closing`] future does with the panic of a poll: [`Catching`] returns it as the
/// outcome, [`Unwinding`] lets it unwind to a runtime that catches it. A type rather than a
/// flag, so that each poll pays only for the one it takes.
pub trait PollPanics: sealed::Sealed {
    /// Whether the poll's panic is caught.
    const CATCHES: bool;
}

/// The poll's panic is caught and returned as the outcome: [`PreparedTask::into_closing`].
#[derive(Debug)]
pub enum Catching {}

/// The poll's panic unwinds to the runtime: [`PreparedTask::into_closing_unwinding`].
#[derive(Debug)]
pub enum Unwinding {}

impl PollPanics for Catching {
    const CATCHES: bool = true;
}

impl PollPanics for Unwinding {
    const CATCHES: bool = false;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Catching {}
    impl Sealed for super::Unwinding {}
}

impl<F, P: PollPanics> Closing<F, P> {
    /// Drops the future now, inside its context, unless it is dropped already, and returns
    /// the panic of that drop, if any: for a runtime that cancels the task.
    pub fn cancel(self: Pin<&mut Self>) -> Result<(), Panic> {
        let future = self.project().future;
        panic::catch_unwind(AssertUnwindSafe(|| future.close())).map_err(Panic::new)
    }
}

impl<F: Future, P: PollPanics> Future for Closing<F, P> {
    type Output = Result<F::Output, Panic>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut future = self.project().future;
        let polled = if P::CATCHES {
            panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        } else {
            let mut close_on_unwind = CloseOnUnwind(Some(future.as_mut()));
            let polled = close_on_unwind.poll(cx);
            close_on_unwind.0 = None;
            Ok(polled)
        };
        let returned = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(payload) => Err(payload),
        };
        // Dropped now, inside its context, so whoever reads the outcome sees the task end
        // only once its resources are released; a panicking drop is the task's panic, unless
        // the poll panicked first.
        let closed = panic::catch_unwind(AssertUnwindSafe(|| future.close()));
        Poll::Ready(
            returned
                .and_then(|output| closed.map(|()| output))
                .map_err(Panic::new),
        )
    }
}

/// Drops the future inside its context if its poll unwinds, on the way to the runtime that
/// catches the panic. A panic of that drop is dropped with it: a second panic while unwinding
/// would abort the process.
struct CloseOnUnwind<'a, F>(Option<Pin<&'a mut WithContext<F>>>);

impl<F: Future> CloseOnUnwind<'_, F> {
    #[inline(always)]
    fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let future = self.0.as_mut().expect("polled before it is disarmed");
        future.as_mut().poll(cx)
    }
}

impl<F> Drop for CloseOnUnwind<'_, F> {
    fn drop(&mut self) {
        if let Some(future) = self.0.take() {
            let _ = panic::catch_unwind(AssertUnwindSafe(|| future.close()));
        }
    }
}

impl<F, P: PollPanics> fmt::Debug for Closing<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closing").finish_non_exhaustive()
    }
}

/// A task built around a future that ctxflow does not wrap; the testing helpers use it to show
/// what a runtime does without ctxflow.
pub fn unwrapped<F: Future<Output = ()>>(future: F) -> Task<F> {
    Task { future, name: None }
}

/// A blocking task around a closure that ctxflow does not wrap, for the same testing helpers.
pub fn unwrapped_blocking<F: FnOnce()>(job: F) -> BlockingTask<F> {
    BlockingTask { job }
}

pin_project! {
    /// A [`Closing`] future that reports its outcome to a slot, and ends early when its handle
    /// aborts it: the only thing the slot path adds to the contract.
    struct Running<F: Future> {
        #[pin]
        closing: Closing<F>,
        // `None` once the outcome is reported.
        reporter: Option<Reporter<F::Output>>,
    }
}

impl<F: Future> Future for Running<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.project();
        let Some(reporter) = this.reporter.as_mut() else {
            return Poll::Ready(());
        };
        // Watch before checking: an abort that lands in between finds the waker and wakes the
        // task, instead of finding none and leaving it pending for good.
        reporter.watch(cx.waker());
        let outcome = if reporter.is_aborted() {
            match this.closing.cancel() {
                Ok(()) => Err(JoinError::cancelled()),
                Err(panic) => Err(panic.into_error()),
            }
        } else {
            std::task::ready!(this.closing.poll(cx)).map_err(Panic::into_error)
        };
        if let Some(reporter) = this.reporter.take() {
            reporter.report(outcome);
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
/// tied to a join handle. Only ctxflow makes them; a runtime receives them in
/// [`Runtime::spawn_blocking_prepared`](crate::rt::Runtime::spawn_blocking_prepared).
///
/// Dropped unrun (a pool shutting down), it drops the closure inside its context.
#[must_use = "a prepared closure does nothing unless it is spawned"]
pub struct PreparedBlocking<F> {
    wrapped: Wrapped<F>,
}

impl<F, R> PreparedBlocking<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    /// `f`, to run in a snapshot of the caller's context, as every `spawn_blocking` does: for
    /// an adapter of a pool that is not a [`Runtime`](crate::rt::Runtime), which runs
    /// [`into_reporting`](Self::into_reporting)'s task and returns its handle.
    pub fn new(f: F) -> Self {
        Self::from_handoff(Handoff::for_spawn(), f)
    }

    /// `f`, to run in `context` instead of the caller's context.
    pub fn in_context(context: Context, f: F) -> Self {
        Self::from_handoff(Handoff::from(context), f)
    }

    pub(crate) fn from_handoff(handoff: Handoff, f: F) -> Self {
        PreparedBlocking {
            wrapped: Wrapped::new(handoff, f),
        }
    }

    /// The closure kept to the task contract, for a pool whose own join handle reports its
    /// outcome: it runs inside its context, releases the context, and returns its value or its
    /// [`Panic`]; no panic of the user's reaches the pool. Dropped unrun, it releases its
    /// captures inside its context too.
    pub fn into_closing(mut self) -> impl FnOnce() -> Result<R, Panic> + Send + 'static {
        move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.wrapped.run()));
            // Released before the pool reports, as a task's context is; a panic of the release
            // is the closure's, unless the closure panicked first.
            let released = self.wrapped.close();
            outcome
                .and_then(|output| released.map(|()| output))
                .map_err(Panic::new)
        }
    }

    /// The blocking task that reports into ctxflow's own slot, and the handle that reads it:
    /// how a closure goes to a pool whose handle ctxflow does not wrap.
    pub fn into_reporting(self) -> (BlockingTask<impl FnOnce() + Send + 'static>, JoinHandle<R>) {
        let (reporter, handle) = join::channel();
        let job = Job {
            prepared: self,
            reporter,
        };
        (
            BlockingTask {
                job: move || job.run(),
            },
            handle,
        )
    }
}

impl<F> Drop for PreparedBlocking<F> {
    /// A panic of the closure's drop, or of its context's release, goes no further: some pools
    /// abort the process on a panic where they drop a job.
    fn drop(&mut self) {
        let _ = self.wrapped.close();
    }
}

impl<F> fmt::Debug for PreparedBlocking<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedBlocking").finish_non_exhaustive()
    }
}

/// A prepared closure and the slot it reports to. The reporter is the last field, so a job
/// dropped unrun (by a pool at shutdown) releases its context and closure before its handle
/// sees the cancellation.
struct Job<F, R> {
    prepared: PreparedBlocking<F>,
    reporter: Reporter<R>,
}

impl<F, R> Job<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(self) {
        let Job {
            mut prepared,
            reporter,
        } = self;
        let outcome = if reporter.is_aborted() {
            // Dropped unrun inside its context, as an aborted task's future is.
            match prepared.wrapped.close() {
                Ok(()) => Err(JoinError::cancelled()),
                Err(payload) => Err(Panic::new(payload).into_error()),
            }
        } else {
            prepared.into_closing()().map_err(Panic::into_error)
        };
        reporter.report(outcome);
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
/// let name = ctxflow::block_on(async {
///     ctxflow::task::spawn_named("process-order-123", async { ctxflow::task_name() }).await.unwrap()
/// });
/// assert_eq!(name.as_deref(), Some("process-order-123"));
/// assert_eq!(ctxflow::task_name(), None);
/// ```
pub fn task_name() -> Option<Arc<str>> {
    TASK_NAME.get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContextVar;

    static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");

    #[test]
    fn a_blocking_task_aborted_before_it_starts_never_runs() {
        let (task, handle) =
            PreparedBlocking::from_handoff(Handoff::default(), || panic!("must not run"))
                .into_reporting();
        handle.abort();
        task.run();
        assert!(handle.is_finished());
        let outcome = futures::executor::block_on(handle);
        assert!(outcome.unwrap_err().is_cancelled());
    }

    #[test]
    fn a_blocking_task_runs_in_its_context_and_reports_its_value() {
        let cx = Context::empty().with_value(&REQUEST_ID, "req-1");
        let (task, handle) =
            PreparedBlocking::from_handoff(Handoff::from(cx), || REQUEST_ID.get()).into_reporting();
        std::thread::spawn(move || task.run()).join().unwrap();
        assert_eq!(futures::executor::block_on(handle).unwrap(), Some("req-1"));
    }

    #[test]
    fn a_blocking_task_dropped_unrun_reports_cancellation() {
        let (task, handle) =
            PreparedBlocking::from_handoff(Handoff::default(), || 1).into_reporting();
        drop(task);
        assert!(futures::executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
    }

    #[test]
    fn a_task_dropped_by_its_runtime_reports_cancellation() {
        let (task, handle) =
            PreparedTask::new(Handoff::default(), None, std::future::pending::<()>())
                .into_reporting();
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
        let prepared = PreparedBlocking::from_handoff(Handoff::from(cx), move || drop(probe));
        drop(prepared.into_closing());
        assert_eq!(dropped_in.recv().unwrap(), Some("req-1"));
        assert_eq!(REQUEST_ID.get(), None);
    }

    #[test]
    fn a_prepared_closure_runs_in_its_context_and_returns_its_value() {
        let cx = Context::empty().with_value(&REQUEST_ID, "req-2");
        let prepared = PreparedBlocking::from_handoff(Handoff::from(cx), || REQUEST_ID.get());
        let run = prepared.into_closing();
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
        let (task, handle) =
            PreparedTask::new(Handoff::default(), None, ReadyButPanicsOnDrop).into_reporting();
        futures::executor::block_on(task);
        let error = futures::executor::block_on(handle).unwrap_err();
        assert_eq!(error.to_string(), "task panicked: drop failed");
    }
}
