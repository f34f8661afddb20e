//! Join handles for the runtimes built on `async-task` (smol and async-std): ctxflow's
//! [`JoinHandle`](crate::JoinHandle) wraps the runtime's own handle, so a task is one allocation,
//! as a raw spawn is.
//!
//! The runtime's handle lacks three things ctxflow's promises, which this module adds without a
//! shared allocation:
//!
//! - It would cancel on drop (smol) or re-raise panics: the task is [`Contained`], which catches
//!   every panic of its future and returns it as its output, and the handle detaches on drop.
//! - It cancels only from asynchronous code (`cancel().await`): [`AsyncTaskJoin::abort`] takes the
//!   handle out from behind a lock and polls that cancellation once, which closes the task at
//!   once; a task that had already finished hands back its outcome.
//! - A cancelled task's future is dropped by the runtime, outside any `catch_unwind` and with no
//!   output to report through. [`Contained`] drops it inside its context and catches a panic of
//!   that drop; if the task was aborted, the panic goes to its handle through [`aborted`], a
//!   table that only aborted tasks whose drop panics ever write to.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};

use pin_project_lite::pin_project;

use crate::future::WithContext;
use crate::join::JoinError;
use crate::task::{Panic, PreparedTask};

/// What a task returns: its future's output, or the panic of its poll or of its drop.
pub(crate) type Outcome<T> = Result<T, Panic>;

pin_project! {
    /// The user's future inside its context, as a runtime built on `async-task` runs it: no
    /// panic of the future, or of its drop, ever reaches the runtime.
    pub(crate) struct Contained<F> {
        #[pin]
        future: WithContext<F>,
        abort_key: u64,
    }

    impl<F> PinnedDrop for Contained<F> {
        fn drop(this: Pin<&mut Self>) {
            // Only a cancelled task still holds its future here: the runtime drops it, and a
            // panic must neither unwind into the runtime nor be lost if the task was aborted.
            let this = this.project();
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| this.future.close())) {
                aborted::record_panic(*this.abort_key, payload);
            }
        }
    }
}

impl<F: Future> Contained<F> {
    /// The task for `prepared`, its name, and the key its handle aborts it by.
    pub(crate) fn new(prepared: PreparedTask<F>) -> (Self, Option<std::sync::Arc<str>>, u64) {
        let (future, name) = prepared.into_parts();
        let abort_key = aborted::new_key();
        (Contained { future, abort_key }, name, abort_key)
    }
}

impl<F: Future> Future for Contained<F> {
    type Output = Outcome<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut future = self.project().future;
        let polled = panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        let result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(payload) => Err(payload),
        };
        // Dropped now, inside its context, so the handle sees the task end only once the
        // future's resources are released; a panicking drop is the task's panic.
        let closed = panic::catch_unwind(AssertUnwindSafe(|| future.close()));
        Poll::Ready(closed.and(result).map_err(Panic::new))
    }
}

/// A runtime's own handle to a [`Contained`] task.
pub(crate) trait NativeTask: Unpin + Sized {
    /// The task's output.
    type Output;

    /// The output once the task has finished, or `None` if it was cancelled.
    fn poll_output(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Output>>;

    /// Whether the task has finished; called only before the output is taken.
    fn is_finished(&mut self) -> bool;

    /// Lets the task run on without a handle.
    fn detach(self);
}

/// Cancels a task and waits until its future is dropped; made where the output is known to be
/// `Send`, so that a handle with no bounds on its output can still abort.
type Cancelling<O> = Pin<Box<dyn Future<Output = Option<O>> + Send>>;

/// ctxflow's handle around a runtime's own handle `H`.
pub(crate) struct AsyncTaskJoin<H: NativeTask> {
    // Behind a lock only so that `abort` can take the handle from `&self`; every other use has
    // `&mut self` and no lock to take.
    stage: Mutex<Stage<H>>,
    cancel: fn(H) -> Cancelling<H::Output>,
    abort_key: u64,
}

// The stage never pins the output it holds: polling pins only the runtime's handle or the boxed
// cancellation, both `Unpin`.
impl<H: NativeTask> Unpin for AsyncTaskJoin<H> {}

enum Stage<H: NativeTask> {
    Running(H),
    /// Aborted: waiting for the runtime to drop the future.
    Cancelling(Cancelling<H::Output>),
    /// Aborted after it had finished: its outcome, kept.
    Finished(Option<H::Output>),
    /// The outcome has been returned.
    Taken,
}

impl<H: NativeTask> AsyncTaskJoin<H> {
    pub(crate) fn new(handle: H, cancel: fn(H) -> Cancelling<H::Output>, abort_key: u64) -> Self {
        AsyncTaskJoin {
            stage: Mutex::new(Stage::Running(handle)),
            cancel,
            abort_key,
        }
    }

    fn stage(&self) -> MutexGuard<'_, Stage<H>> {
        // No user code runs under this lock (the task's own drop runs on the runtime, which
        // the cancellation only schedules), so a poisoned lock still holds a consistent stage.
        self.stage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn abort(&self) {
        let mut stage = self.stage();
        // A finished task keeps its outcome, also one a handle has already taken from the
        // runtime's (async-std's `is_finished` polls it).
        let running = match &mut *stage {
            Stage::Running(handle) => !handle.is_finished(),
            _ => false,
        };
        if !running {
            return;
        }
        let Stage::Running(handle) = std::mem::replace(&mut *stage, Stage::Taken) else {
            unreachable!("checked above")
        };
        aborted::watch(self.abort_key);
        let mut cancelling = (self.cancel)(handle);
        // The first poll closes the task; one that had finished already hands back its output.
        match cancelling
            .as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()))
        {
            Poll::Pending => *stage = Stage::Cancelling(cancelling),
            Poll::Ready(output) => {
                aborted::unwatch(self.abort_key);
                *stage = Stage::Finished(output);
            }
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        match &mut *self.stage() {
            Stage::Running(handle) => handle.is_finished(),
            // The future may still be being dropped.
            Stage::Cancelling(_) => false,
            Stage::Finished(_) | Stage::Taken => true,
        }
    }
}

impl<T, H: NativeTask<Output = Outcome<T>>> AsyncTaskJoin<H> {
    pub(crate) fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
        let stage = self.stage.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (output, aborted) = match stage {
            Stage::Running(handle) => (std::task::ready!(handle.poll_output(cx)), false),
            Stage::Cancelling(cancelling) => {
                (std::task::ready!(cancelling.as_mut().poll(cx)), true)
            }
            Stage::Finished(output) => (output.take(), false),
            Stage::Taken => panic!("`JoinHandle` polled after it returned the task's result"),
        };
        *stage = Stage::Taken;
        Poll::Ready(match output {
            Some(outcome) => outcome.map_err(Panic::into_error),
            None => match aborted.then(|| aborted::take(self.abort_key)).flatten() {
                Some(payload) => Err(JoinError::panic(payload)),
                None => Err(JoinError::cancelled()),
            },
        })
    }
}

impl<H: NativeTask> Drop for AsyncTaskJoin<H> {
    fn drop(&mut self) {
        let stage = self.stage.get_mut().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(stage, Stage::Taken) {
            Stage::Running(handle) => handle.detach(),
            Stage::Cancelling(cancelling) => {
                // The task stays cancelled; nobody is left to read a panic of its drop.
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
    use std::any::Any;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    type Payload = Box<dyn Any + Send + 'static>;

    static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

    static WATCHED: Mutex<BTreeMap<u64, Option<Payload>>> = Mutex::new(BTreeMap::new());

    fn watched() -> MutexGuard<'static, BTreeMap<u64, Option<Payload>>> {
        // Only inserts and removals run under the lock: the map stays consistent.
        WATCHED.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn new_key() -> u64 {
        NEXT_KEY.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn watch(key: u64) {
        watched().insert(key, None);
    }

    pub(super) fn unwatch(key: u64) {
        let payload = watched().remove(&key);
        // Dropped outside the lock: a payload's drop is user code.
        drop(payload);
    }

    pub(super) fn take(key: u64) -> Option<Payload> {
        watched().remove(&key).flatten()
    }

    pub(super) fn record_panic(key: u64, payload: Payload) {
        let unread = match watched().get_mut(&key) {
            Some(slot) => slot.replace(payload),
            None => Some(payload),
        };
        drop(unread);
    }
}
