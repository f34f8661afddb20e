//! Join handles for the runtimes built on `async-task` (smol and async-std), for their adapters:
//! ctxflow's [`JoinHandle`](ctxflow_core::JoinHandle) wraps the runtime's own handle, through
//! [`NativeJoin`], so a task is one allocation, as a raw spawn is.
//!
//! The runtime's handle lacks four things ctxflow's promises, which this module adds without a
//! shared allocation:
//!
//! - It would cancel on drop (smol) or re-raise panics: the task is [`Contained`], which catches
//!   every panic of its future and returns it as its output, and the handle detaches on drop.
//! - It cancels only from asynchronous code (`cancel().await`): an abort of [`AsyncTaskJoin`]
//!   takes the handle out from behind a lock and polls that cancellation once, which closes the
//!   task at once; a task that had already finished hands back its outcome.
//! - A cancelled task's future is dropped by the runtime, outside any `catch_unwind` and with no
//!   output to report through; and an abort that lands while the task's last poll is returning
//!   makes the runtime drop the output that poll returned. [`Contained`] drops the future inside
//!   its context and catches a panic of that drop, and [`Finished`] is the output: if the task
//!   was aborted, either goes to its handle through `aborted`, a table that only aborted
//!   tasks ever write to. What no handle will read, a detached task's output included, is
//!   dropped inside `catch_unwind`, as the runtime aborts the process on a panic there.
//! - It keeps one waker, the last one polled with: [`AsyncTaskJoin`]'s own polls of it, from
//!   `abort` and `is_finished`, use the waker of the handle's last poll, so that the task
//!   awaiting the handle stays the one woken.
#![allow(
    clippy::disallowed_methods,
    reason = "clippy.toml forbids raw spawns to code that uses ctxflow; ctxflow's spawners are built on them"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};

use async_task::FallibleTask;
use pin_project_lite::pin_project;

use ctxflow_core::rt::{Closing, NativeJoin, Panic, PreparedTask};
use ctxflow_core::JoinError;

/// What a task ends with: its future's output, or the panic of its poll or of its drop.
pub type Outcome<T> = Result<T, Panic>;

/// A task's outcome in type-erased form, for the [`aborted`] table.
type Erased = Box<dyn Any + Send + 'static>;

/// What a task returns to its runtime: its outcome, until the handle takes it.
pub struct Finished<T: Send + 'static> {
    outcome: Option<Outcome<T>>,
    abort_key: u64,
}

impl<T: Send + 'static> Finished<T> {
    fn take(mut self) -> Option<Outcome<T>> {
        self.outcome.take()
    }
}

impl<T: Send + 'static> Drop for Finished<T> {
    fn drop(&mut self) {
        // Dropped untaken: its task was detached, or aborted while this was being returned,
        // and then the abort's handle still reports it.
        if let Some(outcome) = self.outcome.take() {
            if aborted::any_watched() {
                aborted::record(self.abort_key, Box::new(outcome));
            } else {
                drop_unread(outcome);
            }
        }
    }
}

/// Drops an outcome nobody will read, where the runtime drops it: async-task drops a detached
/// task's output, and a cancelled task's future, where a panic aborts the process. A drop that
/// panics (the value's, or a panic payload's) is reported by the panic hook and goes no further.
fn drop_unread<V>(unread: V) {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(unread)));
}

pin_project! {
    /// The task's [`Closing`] future, as a runtime built on `async-task` runs it: its outcome
    /// is a [`Finished`], and a panic of its drop when the runtime cancels it goes to the
    /// handle that aborted it.
    // One bound per line: `pin_project!` takes no `+` in a `where` clause.
    pub struct Contained<F>
    where
        F: Future,
        F::Output: Send,
        F::Output: 'static,
    {
        #[pin]
        closing: Closing<F>,
        abort_key: u64,
    }

    impl<F> PinnedDrop for Contained<F>
    where
        F: Future,
        F::Output: Send,
        F::Output: 'static,
    {
        fn drop(this: Pin<&mut Self>) {
            // Only a cancelled task still holds its future here: the runtime drops it, and a
            // panic must neither unwind into the runtime nor be lost if the task was aborted.
            let this = this.project();
            if let Err(panic) = this.closing.cancel() {
                aborted::record(*this.abort_key, Box::new(Err::<F::Output, _>(panic)));
            }
        }
    }
}

impl<F> Contained<F>
where
    F: Future,
    F::Output: Send + 'static,
{
    /// The task for `prepared`, its name, and the key its handle aborts it by.
    #[inline]
    pub fn new(prepared: PreparedTask<F>) -> (Self, Option<String>, u64) {
        let name = prepared.name().map(str::to_owned);
        let abort_key = aborted::new_key();
        let task = Contained {
            closing: prepared.into_closing(),
            abort_key,
        };
        (task, name, abort_key)
    }
}

impl<F> Future for Contained<F>
where
    F: Future,
    F::Output: Send + 'static,
{
    type Output = Finished<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = std::task::ready!(this.closing.poll(cx));
        Poll::Ready(Finished {
            outcome: Some(outcome),
            abort_key: *this.abort_key,
        })
    }
}

/// A runtime's own handle to a [`Contained`] task.
pub trait NativeTask: Unpin + Sized {
    /// The task's output.
    type Output;

    /// The output once the task has finished, or `None` if it was cancelled.
    fn poll_output(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Output>>;

    /// Whether the task has finished; called only before the output is taken, and outside
    /// the handle's own poll. `awaiter` is the waker of that poll (a no-op one before any): a
    /// poll of the runtime's handle made here goes through [`poll_for_awaiter`].
    fn is_finished(&mut self, awaiter: &Waker) -> bool;

    /// Lets the task run on without a handle.
    fn detach(self);
}

/// smol's handle (`Task::fallible`), whose `None` is a cancelled task.
impl<T> NativeTask for FallibleTask<T> {
    type Output = T;

    fn poll_output(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        Pin::new(self).poll(cx)
    }

    fn is_finished(&mut self, _awaiter: &Waker) -> bool {
        FallibleTask::is_finished(self)
    }

    fn detach(self) {
        FallibleTask::detach(self)
    }
}

/// Cancels a task and waits until its future is dropped, then gives the outcome the task ended
/// with, if any. Made where the output is known to be `Send`, so that a handle with no bounds on
/// its output can still abort.
pub type Cancelling<T> = Pin<Box<dyn Future<Output = Option<Outcome<T>>> + Send>>;

/// What a runtime's `cancel` gives, then what the `aborted` table kept for `abort_key`: the outcome of
/// an aborted task.
pub fn cancelling<T, C>(cancel: C, abort_key: u64) -> Cancelling<T>
where
    T: Send + 'static,
    C: Future<Output = Option<Finished<T>>> + Send + 'static,
{
    Box::pin(async move {
        match cancel.await {
            Some(finished) => finished.take(),
            None => aborted::take(abort_key).map(|erased| {
                *erased
                    .downcast::<Outcome<T>>()
                    .expect("a task's key holds that task's outcome")
            }),
        }
    })
}

/// Polls `future`, a runtime's handle or its cancellation, from outside the handle's own poll,
/// with `awaiter`, the waker of that poll. async-task keeps only the last waker registered, so
/// any other (a no-op one) would take the awaiter's place and the task's end would wake nobody.
/// And a poll that finds the end may be handed the awaiter's wake-up and drop it, as the poller's
/// own: the awaiter is woken here then.
pub fn poll_for_awaiter<F: Future + Unpin + ?Sized>(
    future: &mut F,
    awaiter: &Waker,
) -> Poll<F::Output> {
    let polled = Pin::new(future).poll(&mut TaskContext::from_waker(awaiter));
    if polled.is_ready() {
        awaiter.wake_by_ref();
    }
    polled
}

/// ctxflow's handle around a runtime's own handle `H`.
pub struct AsyncTaskJoin<T, H: NativeTask> {
    // Behind a lock only so that `abort` and `is_finished` can poll from `&self`; the handle's own
    // poll has `&mut self` and no lock to take.
    state: Mutex<State<T, H>>,
    cancel: fn(H, u64) -> Cancelling<T>,
    abort_key: u64,
}

struct State<T, H> {
    stage: Stage<T, H>,
    /// The waker of the handle's last poll, for the polls `abort` and `is_finished` make.
    awaiter: Option<Waker>,
}

// The stage never pins the outcome it holds: polling pins only the runtime's handle or the boxed
// cancellation, both `Unpin`.
impl<T, H: NativeTask> Unpin for AsyncTaskJoin<T, H> {}

enum Stage<T, H> {
    Running(H),
    /// Aborted: waiting for the runtime to drop the future.
    Cancelling(Cancelling<T>),
    /// Aborted after it had finished: its outcome, kept. Boxed, as it is rare, so that a
    /// handle's size does not depend on its output's.
    Finished(Box<Option<Outcome<T>>>),
    /// The outcome has been returned.
    Taken,
}

impl<T: Send + 'static, H: NativeTask<Output = Finished<T>>> AsyncTaskJoin<T, H> {
    /// Wraps `handle`, the runtime's handle to the [`Contained`] task made with `abort_key`;
    /// `cancel` starts the runtime's own cancellation (see [`cancelling`]).
    pub fn new(handle: H, cancel: fn(H, u64) -> Cancelling<T>, abort_key: u64) -> Self {
        AsyncTaskJoin {
            state: Mutex::new(State {
                stage: Stage::Running(handle),
                awaiter: None,
            }),
            cancel,
            abort_key,
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T, H>> {
        // No user code runs under this lock (the task's own drop runs on the runtime, which
        // the cancellation only schedules, and a waker woken under it only schedules), so a
        // poisoned lock still holds a consistent stage.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn abort(&self) {
        let mut state = self.state();
        let State { stage, awaiter } = &mut *state;
        let awaiter = awaiter.as_ref().unwrap_or(Waker::noop());
        // A finished task keeps its outcome, also one a handle has already taken from the
        // runtime's (async-std's `is_finished` polls it).
        let running = match stage {
            Stage::Running(handle) => !handle.is_finished(awaiter),
            _ => false,
        };
        if !running {
            return;
        }
        let Stage::Running(handle) = std::mem::replace(stage, Stage::Taken) else {
            unreachable!("checked above")
        };
        aborted::watch(self.abort_key);
        let mut cancelling = (self.cancel)(handle, self.abort_key);
        // The first poll closes the task; one that had finished already hands back its outcome.
        match poll_for_awaiter(&mut cancelling, awaiter) {
            Poll::Pending => *stage = Stage::Cancelling(cancelling),
            Poll::Ready(outcome) => {
                aborted::unwatch(self.abort_key);
                *stage = Stage::Finished(Box::new(outcome));
            }
        }
    }

    fn is_finished(&self) -> bool {
        let mut state = self.state();
        let State { stage, awaiter } = &mut *state;
        let awaiter = awaiter.as_ref().unwrap_or(Waker::noop());
        let outcome = match stage {
            Stage::Running(handle) => return handle.is_finished(awaiter),
            // Finished once the runtime has dropped the future: the poll that finds it so keeps
            // the outcome, as `abort`'s first poll does.
            Stage::Cancelling(cancelling) => match poll_for_awaiter(cancelling, awaiter) {
                Poll::Pending => return false,
                Poll::Ready(outcome) => outcome,
            },
            Stage::Finished(_) | Stage::Taken => return true,
        };
        aborted::unwatch(self.abort_key);
        *stage = Stage::Finished(Box::new(outcome));
        true
    }

    fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let stage = &mut state.stage;
        let polled = match stage {
            Stage::Running(handle) => handle
                .poll_output(cx)
                .map(|output| output.and_then(Finished::take)),
            Stage::Cancelling(cancelling) => cancelling.as_mut().poll(cx),
            Stage::Finished(outcome) => Poll::Ready(outcome.take()),
            Stage::Taken => panic!("`JoinHandle` polled after it returned the task's result"),
        };
        let Poll::Ready(outcome) = polled else {
            // For the polls `abort` and `is_finished` make before this handle's next one; kept
            // only when pending, so that a handle that finds its task done clones no waker.
            if !state
                .awaiter
                .as_ref()
                .is_some_and(|awaiter| awaiter.will_wake(cx.waker()))
            {
                state.awaiter = Some(cx.waker().clone());
            }
            return Poll::Pending;
        };
        if matches!(stage, Stage::Cancelling(_)) {
            aborted::unwatch(self.abort_key);
        }
        *stage = Stage::Taken;
        Poll::Ready(match outcome {
            Some(outcome) => outcome.map_err(Panic::into_error),
            None => Err(JoinError::cancelled()),
        })
    }
}

impl<T, H> NativeJoin<T> for AsyncTaskJoin<T, H>
where
    T: Send + 'static,
    H: NativeTask<Output = Finished<T>> + Send + 'static,
{
    fn poll_join(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
        self.poll(cx)
    }

    fn abort(&self) {
        AsyncTaskJoin::abort(self);
    }

    fn is_finished(&self) -> bool {
        AsyncTaskJoin::is_finished(self)
    }
}

impl<T, H: NativeTask> Drop for AsyncTaskJoin<T, H> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut state.stage, Stage::Taken) {
            Stage::Running(handle) => handle.detach(),
            Stage::Cancelling(cancelling) => {
                // The task stays cancelled; nobody is left to read how it ended.
                drop(cancelling);
                aborted::unwatch(self.abort_key);
            }
            Stage::Finished(_) | Stage::Taken => {}
        }
    }
}

/// Panics raised while dropping the futures of aborted tasks, kept for their handles.
///
/// A handle that aborts its task watches the task's key until it has read the outcome (or is
/// dropped); a task whose drop panics leaves the payload under its key if it is watched, and
/// drops it otherwise. Spawning only takes a key; the table is touched by aborts alone.
mod aborted {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use super::{drop_unread, Erased};

    static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

    /// How many keys are watched: while none is, a detached task's end skips the table.
    static WATCHING: AtomicUsize = AtomicUsize::new(0);

    static WATCHED: Mutex<BTreeMap<u64, Option<Erased>>> = Mutex::new(BTreeMap::new());

    fn watched() -> MutexGuard<'static, BTreeMap<u64, Option<Erased>>> {
        // Only inserts and removals run under the lock: the map stays consistent.
        WATCHED.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn new_key() -> u64 {
        NEXT_KEY.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn any_watched() -> bool {
        WATCHING.load(Ordering::SeqCst) > 0
    }

    /// Before the cancellation starts, so that the task's side sees the key watched.
    pub(super) fn watch(key: u64) {
        let mut watched = watched();
        if watched.insert(key, None).is_none() {
            WATCHING.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(super) fn take(key: u64) -> Option<Erased> {
        let mut watched = watched();
        let kept = watched.remove(&key);
        if kept.is_some() {
            WATCHING.fetch_sub(1, Ordering::SeqCst);
        }
        kept.flatten()
    }

    pub(super) fn unwatch(key: u64) {
        // Dropped outside the lock: an outcome's drop is user code.
        drop(take(key));
    }

    pub(super) fn record(key: u64, outcome: Erased) {
        let unread = match watched().get_mut(&key) {
            Some(slot) => slot.replace(outcome),
            None => Some(outcome),
        };
        drop_unread(unread);
    }
}
