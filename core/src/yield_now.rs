//! [`yield_now`]: give the scheduler one turn, on any runtime or none.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// Gives the scheduler one turn: the returned future is pending once, after asking to be polled
/// again, then ready.
///
/// It needs no runtime: waking itself is all any executor needs to poll it again, so it works the
/// same on tokio, smol, async-std and `futures::executor`. A long loop of synchronous work calls
/// it now and then so other tasks on the same worker get to run. The context is the same after
/// the await as before: the task's context is installed around each of its polls.
///
/// tokio's own `tokio::task::yield_now` also lets tokio's I/O and timer driver run before the
/// task is polled again; this one asks nothing of the runtime beyond a wake.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// futures::executor::block_on(async {
///     let _token = REQUEST_ID.set(7);
///     for _chunk in 0..3 {
///         // ... some synchronous work ...
///         ctxflow::yield_now().await;
///         assert_eq!(REQUEST_ID.get(), Some(7));
///     }
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future [`yield_now`] returns.
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
