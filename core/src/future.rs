//! [`WithContext`]: a future or stream that runs inside its own context at every poll.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::carried::Carried;
use crate::context::Context;
use crate::current::{self, Installed, Scope};
use crate::handoff::Handoff;

pin_project! {
    /// A future or stream that has its own context installed around every poll and around its
    /// drop; made by [`InContext::in_context`] and [`InContext::in_current_context`].
    ///
    /// Between polls the context lives in the wrapper, so what the inner future sets during one
    /// poll is there at its next poll (it is the task's own context), while the code that polls
    /// it never sees any of it: the poller's context is back after every poll, also when the poll
    /// panics.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct WithContext<T> {
        scope: Scope,
        carried: Carried,
        // `None` once the inner value has been dropped inside its context.
        #[pin]
        inner: Option<T>,
    }

    impl<T> PinnedDrop for WithContext<T> {
        fn drop(this: Pin<&mut Self>) {
            this.close();
        }
    }
}

const DROPPED: &str = "`WithContext` used after its inner value was dropped";

impl<T> WithContext<T> {
    pub(crate) fn new(inner: T, handoff: Handoff) -> Self {
        WithContext {
            scope: Scope::new(handoff.context),
            carried: handoff.carried,
            inner: Some(inner),
        }
    }

    /// The variables installed around each poll, with what the inner future set so far. The
    /// carriers' state installed with them (a span, a hub) is not part of it: a snapshot of
    /// everything is `Context::current()` taken inside the future.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar, InContext};
    /// static USER_ID: ContextVar<u32> = ContextVar::new("user_id");
    /// let cx = Context::empty().with_value(&USER_ID, 3);
    /// let wrapped = async {}.in_context(cx.clone());
    /// assert!(Context::ptr_eq(wrapped.context(), &cx));
    /// ```
    pub fn context(&self) -> &Context {
        &self.scope.context
    }

    /// The wrapped value.
    ///
    /// ```
    /// use ctxflow::{Context, InContext};
    /// let mut wrapped = vec![1].in_context(Context::empty());
    /// wrapped.inner_mut().push(2);
    /// assert_eq!(wrapped.inner(), &[1, 2]);
    /// assert_eq!(wrapped.into_inner(), [1, 2]);
    /// ```
    pub fn inner(&self) -> &T {
        self.inner.as_ref().expect(DROPPED)
    }

    /// The wrapped value, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect(DROPPED)
    }

    /// The pinned wrapped value.
    pub fn inner_pin_mut(self: Pin<&mut Self>) -> Pin<&mut T> {
        self.project().inner.as_pin_mut().expect(DROPPED)
    }

    /// The wrapped value, without its context.
    pub fn into_inner(mut self) -> T {
        self.inner.take().expect(DROPPED)
    }

    /// Drops the inner value now, inside its context, so its `Drop` sees the context; then
    /// releases the context, so its values go as soon as the work is done, also when that
    /// `Drop` panics.
    pub(crate) fn close(self: Pin<&mut Self>) {
        let this = self.project();
        if this.inner.is_none() {
            drop(std::mem::take(this.scope));
            return;
        }
        // A misuse of a guard seen in this context is reported after the value is dropped
        // inside it, not instead.
        #[cfg(feature = "strict")]
        let mut misuse = this.scope.violation.take();
        let dropped = {
            let _installed = Installed::unreported(this.scope);
            let mut inner = this.inner;
            let dropped = panic::catch_unwind(AssertUnwindSafe(|| {
                this.carried.enter(|| inner.set(None));
            }));
            if dropped.is_err() {
                // A carrier could not be installed: the value goes all the same, without it,
                // so that it is never dropped later by a runtime that aborts on a panicking
                // drop. The carrier's panic follows.
                inner.set(None);
            }
            dropped
        };
        // Released before a panic goes on, not while it unwinds, where a value's panicking
        // `Drop` would abort the process; the first panic is the one that goes on.
        let context = std::mem::take(this.scope);
        let released = panic::catch_unwind(AssertUnwindSafe(|| drop(context)));
        let closed = dropped.and(released);
        #[cfg(feature = "strict")]
        {
            if closed.is_ok() {
                crate::strict::report(&mut misuse);
            }
            // Still there after a panic, or while the thread unwinds: reported at the next
            // install.
            crate::strict::unreported(misuse);
        }
        if let Err(payload) = closed {
            current::resume_unless_unwinding(payload);
        }
    }

    /// Calls `f` with the pinned inner value inside the context, carriers included, as every
    /// poll runs: what a wrapper needs to poll the inner value through another trait than
    /// `Future` or `Stream` (an HTTP body's `poll_frame`, an `AsyncRead`). What `f` sets stays
    /// in the context for the next call.
    ///
    /// ```
    /// use std::pin::pin;
    /// use ctxflow::{Context, ContextVar, InContext};
    ///
    /// static USER_ID: ContextVar<u32> = ContextVar::new("user_id");
    /// let wrapped = pin!(vec![1].in_context(Context::empty().with_value(&USER_ID, 3)));
    /// let seen = wrapped.run_inner(|inner| (inner.len(), USER_ID.get()));
    /// assert_eq!(seen, (1, Some(3)));
    /// ```
    #[inline(always)]
    pub fn run_inner<R>(self: Pin<&mut Self>, f: impl FnOnce(Pin<&mut T>) -> R) -> R {
        if self.carried.is_empty() {
            let this = self.project();
            let _installed = Installed::new(this.scope);
            f(this.inner.as_pin_mut().expect(DROPPED))
        } else {
            self.run_inner_carrying(f)
        }
    }

    // Out of line, so that a poll with nothing carried, as every poll outside a span is, keeps
    // the code it had before carriers existed; the carriers' path is one call away.
    #[inline(never)]
    fn run_inner_carrying<R>(self: Pin<&mut Self>, f: impl FnOnce(Pin<&mut T>) -> R) -> R {
        let this = self.project();
        let _installed = Installed::new(this.scope);
        let inner = this.inner.as_pin_mut().expect(DROPPED);
        this.carried.enter(|| f(inner))
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.run_inner(|inner| inner.poll(cx))
    }
}

impl<S: Stream> Stream for WithContext<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<S::Item>> {
        self.run_inner(|inner| inner.poll_next(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.as_ref().map_or((0, Some(0)), Stream::size_hint)
    }
}

impl<T: Clone> Clone for WithContext<T> {
    /// A copy of the inner value with a copy of the context, as it is now.
    fn clone(&self) -> Self {
        let handoff = Handoff {
            context: self.scope.context.clone(),
            carried: self.carried.clone(),
        };
        WithContext::new(self.inner().clone(), handoff)
    }
}

impl<T: fmt::Debug> fmt::Debug for WithContext<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithContext")
            .field("context", &self.scope.context)
            .field("inner", &self.inner)
            .finish()
    }
}

/// Attaches a context to a future or stream: the extension trait behind
/// [`in_context`](InContext::in_context) and [`in_current_context`](InContext::in_current_context).
pub trait InContext: Sized {
    /// Runs `self` inside `context`: it is installed around every poll and around the drop.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar, InContext};
    ///
    /// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
    /// let cx = Context::empty().with_value(&REQUEST_ID, 7);
    /// let seen = futures::executor::block_on(async { REQUEST_ID.get() }.in_context(cx));
    /// assert_eq!(seen, Some(7));
    /// ```
    fn in_context(self, context: Context) -> WithContext<Self> {
        WithContext::new(self, Handoff::from(context))
    }

    /// Runs `self` inside the context current here and now, wherever it is polled later.
    ///
    /// ```
    /// use ctxflow::{ContextVar, InContext};
    ///
    /// static USER_ID: ContextVar<&'static str> = ContextVar::new("user_id");
    /// let worker = USER_ID.sync_scope("user-789", || async { USER_ID.get() }.in_current_context());
    /// // Polled outside the scope, it still sees it.
    /// assert_eq!(futures::executor::block_on(worker), Some("user-789"));
    /// ```
    fn in_current_context(self) -> WithContext<Self> {
        WithContext::new(self, Handoff::current())
    }
}

impl<T: Sized> InContext for T {}

/// `future`, bound to the context current where this is called.
/// The same as [`future.in_current_context()`](InContext::in_current_context).
///
/// ```
/// use ctxflow::{preserve_context, ContextVar};
///
/// static USER_ID: ContextVar<u32> = ContextVar::new("user_id");
/// async fn worker() -> Option<u32> {
///     USER_ID.get()
/// }
///
/// let _token = USER_ID.set(789);
/// let (a, b) = futures::executor::block_on(async {
///     futures::join!(preserve_context(worker()), preserve_context(worker()))
/// });
/// assert_eq!((a, b), (Some(789), Some(789)));
/// ```
pub fn preserve_context<F: IntoFuture>(future: F) -> WithContext<F::IntoFuture> {
    future.into_future().in_current_context()
}
