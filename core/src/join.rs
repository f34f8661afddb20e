//! [`JoinHandle`] and [`JoinError`]: one handle, one behaviour, whatever the runtime.
//!
//! A handle reads one of two things. A runtime whose own handle keeps ctxflow's promises (tokio's
//! does; smol's and async-std's are adapted by their adapters) has it wrapped, through
//! [`NativeJoin`] and [`JoinHandle::from_native`]. For any other runtime the task reports its
//! outcome into a small shared slot and the runtime's own handle is detached: that is how
//! dropping a handle detaches everywhere, how a panic becomes a [`JoinError`] everywhere, and how
//! `abort` works on runtimes that cannot cancel a task from synchronous code.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::join_error::JoinError;
use crate::native_join::{self, NativeBox, NativeJoin};

/// The slot a task reports into and its handle reads from.
struct Shared<T> {
    aborted: AtomicBool,
    state: Mutex<State<T>>,
}

struct State<T> {
    outcome: Outcome<T>,
    /// Woken when the task finishes.
    joiner: Option<Waker>,
    /// Woken by `abort`, so a pending task gets polled and sees the flag.
    task: Option<Waker>,
}

enum Outcome<T> {
    Running,
    Finished(Result<T, JoinError>),
    Taken,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under this lock, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Makes the pair that connects a task to its handle.
pub(crate) fn channel<T>() -> (Reporter<T>, JoinHandle<T>) {
    let shared = Arc::new(Shared {
        aborted: AtomicBool::new(false),
        state: Mutex::new(State {
            outcome: Outcome::Running,
            joiner: None,
            task: None,
        }),
    });
    let reporter = Reporter {
        shared: shared.clone(),
        known_waker: None,
        reported: false,
    };
    (
        reporter,
        JoinHandle {
            inner: Inner::Slot(shared),
        },
    )
}

/// The task's side: reports the outcome exactly once; reports cancellation if dropped first.
pub(crate) struct Reporter<T> {
    shared: Arc<Shared<T>>,
    /// The waker `abort` would use, kept to skip the lock when it has not changed.
    known_waker: Option<Waker>,
    reported: bool,
}

impl<T> Reporter<T> {
    pub(crate) fn is_aborted(&self) -> bool {
        self.shared.aborted.load(Ordering::Acquire)
    }

    /// Remembers the waker that `abort` must wake; the lock is taken only when it changes.
    #[inline]
    pub(crate) fn watch(&mut self, waker: &Waker) {
        if !self
            .known_waker
            .as_ref()
            .is_some_and(|known| known.will_wake(waker))
        {
            self.rewatch(waker);
        }
    }

    // Out of line: every poll runs `watch`, and only a task's first poll (or a move to another
    // waker) gets here.
    #[cold]
    #[inline(never)]
    fn rewatch(&mut self, waker: &Waker) {
        self.known_waker = Some(waker.clone());
        let replaced = self.shared.state().task.replace(waker.clone());
        drop(replaced);
    }

    pub(crate) fn report(mut self, result: Result<T, JoinError>) {
        self.finish(result);
        // A detached task's outcome would be dropped with the slot, here on the runtime's thread,
        // where a panic of its drop unwinds into the runtime (a futures pool loses the worker):
        // the panic hook reports it, and it goes no further.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            let state = shared
                .state
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            let unread = std::mem::replace(&mut state.outcome, Outcome::Taken);
            let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(unread)));
        }
    }

    fn finish(&mut self, result: Result<T, JoinError>) {
        self.reported = true;
        let (joiner, task) = {
            let mut state = self.shared.state();
            state.outcome = Outcome::Finished(result);
            (state.joiner.take(), state.task.take())
        };
        drop(task);
        if let Some(joiner) = joiner {
            joiner.wake();
        }
    }
}

impl<T> Drop for Reporter<T> {
    fn drop(&mut self) {
        if !self.reported {
            self.finish(Err(JoinError::cancelled()));
        }
    }
}

/// An owned permission to await a task's result; the same on every runtime.
///
/// - Awaiting it gives the task's output, or a [`JoinError`] if the task panicked or was
///   cancelled.
/// - Dropping it **detaches** the task: the task keeps running and its output is dropped.
/// - [`abort`](Self::abort) cancels the task; a blocking closure can only be cancelled before
///   it starts.
/// - Polling it again after it gave the outcome panics (each runtime's handle says so in its
///   own words); await it once, or `&mut handle` until it is ready.
///
/// ```
/// ctxflow::block_on(async {
///     let task = ctxflow::spawn(std::future::pending::<()>());
///     assert!(!task.is_finished());
///     task.abort();
///     assert!(task.await.unwrap_err().is_cancelled());
///
///     // Dropped or detached, a task runs on.
///     let (sender, receiver) = futures::channel::oneshot::channel();
///     ctxflow::spawn(async move { sender.send(1).unwrap() }).detach();
///     assert_eq!(receiver.await, Ok(1));
/// });
/// ```
#[must_use = "dropping a JoinHandle detaches the task; call `detach` to say so"]
pub struct JoinHandle<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Slot(Arc<Shared<T>>),
    Native(NativeBox<T>),
}

// Nothing is ever pinned through a handle: the slot is shared, and a native handle is polled
// through `&mut`.
impl<T> Unpin for JoinHandle<T> {}

impl<T: 'static> JoinHandle<T> {
    /// How large a [`NativeJoin`] can be and still be stored inside the handle, with no
    /// allocation of its own.
    pub const INLINE_NATIVE_BYTES: usize = native_join::INLINE_BYTES;

    /// A handle that reads a runtime's own handle.
    ///
    /// ```
    /// use std::task::{Context, Poll};
    /// use ctxflow::rt::NativeJoin;
    /// use ctxflow::{JoinError, JoinHandle};
    ///
    /// /// A task that had finished before its handle was made.
    /// struct Ready(Option<u8>);
    ///
    /// impl NativeJoin<u8> for Ready {
    ///     fn poll_join(&mut self, _: &mut Context<'_>) -> Poll<Result<u8, JoinError>> {
    ///         Poll::Ready(self.0.take().ok_or_else(JoinError::cancelled))
    ///     }
    ///     fn abort(&self) {}
    ///     fn is_finished(&self) -> bool {
    ///         true
    ///     }
    /// }
    ///
    /// let handle = JoinHandle::from_native(Ready(Some(7)));
    /// assert!(handle.is_finished());
    /// assert_eq!(handle.join().unwrap(), 7);
    /// ```
    #[inline]
    pub fn from_native(native: impl NativeJoin<T> + 'static) -> Self {
        JoinHandle {
            inner: Inner::Native(native_join::erase(native)),
        }
    }
}

impl<T> JoinHandle<T> {
    /// Cancels the task: a task not yet finished is dropped at its next scheduling (its drop
    /// runs inside its context) and the handle then gives a cancelled [`JoinError`]. A task
    /// that already finished keeps its result.
    pub fn abort(&self) {
        match &self.inner {
            Inner::Slot(shared) => shared.abort(),
            Inner::Native(handle) => handle.abort(),
        }
    }

    /// Whether the task has finished: returned, panicked or been cancelled.
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Inner::Slot(shared) => !matches!(shared.state().outcome, Outcome::Running),
            Inner::Native(handle) => handle.is_finished(),
        }
    }

    /// Lets the task run on without anyone awaiting it; the same as dropping the handle.
    pub fn detach(self) {}

    /// Blocks this thread until the task finishes: for synchronous callers, such as code that
    /// hands a closure to a thread pool and waits for it. Never call it from asynchronous code,
    /// where it would block a runtime's thread; `.await` the handle there.
    ///
    /// ```
    /// use ctxflow::pool::ContextPool;
    ///
    /// let pool = ContextPool::new(|job| drop(std::thread::spawn(job)));
    /// assert_eq!(pool.spawn(|| 6 * 7).join().unwrap(), 42);
    /// ```
    pub fn join(mut self) -> Result<T, JoinError> {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = TaskContext::from_waker(&waker);
        loop {
            if let Poll::Ready(result) = Pin::new(&mut self).poll(&mut cx) {
                return result;
            }
            thread::park();
        }
    }
}

/// Wakes a thread blocked in [`JoinHandle::join`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().inner {
            Inner::Slot(shared) => shared.poll(cx),
            Inner::Native(handle) => handle.poll_join(cx),
        }
    }
}

impl<T> Shared<T> {
    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        let task = self.state().task.take();
        if let Some(task) = task {
            task.wake();
        }
    }

    // Out of line, so that polling a runtime's own handle, the other way a handle reads an
    // outcome, is a plain dispatch with no registers to save.
    #[inline(never)]
    fn poll(&self, cx: &mut TaskContext<'_>) -> Poll<Result<T, JoinError>> {
        let mut state = self.state();
        match std::mem::replace(&mut state.outcome, Outcome::Taken) {
            Outcome::Finished(result) => Poll::Ready(result),
            Outcome::Running => {
                state.outcome = Outcome::Running;
                let replaced = match &state.joiner {
                    Some(joiner) if joiner.will_wake(cx.waker()) => None,
                    _ => state.joiner.replace(cx.waker().clone()),
                };
                drop(state);
                drop(replaced);
                Poll::Pending
            }
            Outcome::Taken => panic!("`JoinHandle` polled after it returned the task's result"),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
