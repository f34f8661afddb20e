//! [`ContextPool`]: context-carrying submission to a thread pool of your own.
//!
//! A pool needs to tell ctxflow one thing: how to submit a boxed closure. Every closure handed
//! to the resulting [`ContextPool`] then runs in a snapshot of the context current where it was
//! submitted, and the worker gets its own context back once the closure returns or panics.
//! Like every ctxflow spawn, the snapshot holds the flowing variables: not those declared with
//! [`ContextVar::non_flowing`](crate::ContextVar::non_flowing), and none at all inside
//! [`suppress_flow`](crate::suppress_flow).
//!
//! ```
//! use ctxflow::pool::ContextPool;
//! use ctxflow::ContextVar;
//!
//! static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
//!
//! // Whatever runs boxed closures: here, a thread per job.
//! let pool = ContextPool::new(|job| drop(std::thread::spawn(job)));
//!
//! let _token = REQUEST_ID.set("req-123".into());
//! let seen = pool.spawn(|| REQUEST_ID.get()).join().unwrap();
//! assert_eq!(seen.as_deref(), Some("req-123"));
//! ```

use std::fmt;

use crate::handoff::Handoff;
use crate::join::JoinHandle;
use crate::task::PreparedBlocking;

/// A closure as a [`ContextPool`] submits it to the pool: boxed, so that any pool that runs
/// `FnOnce() + Send + 'static` closures can take it.
///
/// ```
/// use std::sync::mpsc;
/// use ctxflow::pool::{ContextPool, Job};
///
/// // Pools that queue closures usually queue exactly this type.
/// let (queue, jobs) = mpsc::channel::<Job>();
/// let pool = ContextPool::new(move |job: Job| queue.send(job).unwrap());
///
/// pool.execute(|| println!("queued"));
/// let job: Job = jobs.recv().unwrap();
/// job();
/// ```
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool of your own, given a submit function once, that carries the caller's context into
/// every closure it runs.
///
/// The submit function receives a [`Job`] and must run it once, on any thread. A job that is
/// dropped without running (the pool shut down) counts as cancelled: the
/// [`JoinHandle`] of [`spawn`](Self::spawn) then gives a cancelled
/// [`JoinError`](crate::JoinError).
///
/// ```
/// use std::sync::mpsc;
/// use ctxflow::pool::{ContextPool, Job};
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// // A one-thread pool of the application's: jobs go in through a channel.
/// let (queue, jobs) = mpsc::channel::<Job>();
/// let worker = std::thread::spawn(move || jobs.into_iter().for_each(|job| job()));
///
/// let pool = ContextPool::new(move |job| queue.send(job).expect("the worker is running"));
///
/// let _token = REQUEST_ID.set("req-456".into());
/// let status = pool.spawn(|| format!("done for {}", REQUEST_ID.get().unwrap_or_default()));
/// assert_eq!(status.join().unwrap(), "done for req-456");
///
/// drop(pool);
/// worker.join().unwrap();
/// ```
///
/// `S`, the submit function's type, has no name when it is a closure. In a struct field, write
/// `ContextPool<fn(Job)>` for one that captures nothing, or
/// `ContextPool<Box<dyn Fn(Job) + Send + Sync>>` for one that does:
///
/// ```
/// use std::sync::mpsc;
/// use ctxflow::pool::{ContextPool, Job};
///
/// struct Service {
///     detached: ContextPool<fn(Job)>,
///     queued: ContextPool<Box<dyn Fn(Job) + Send + Sync>>,
/// }
///
/// let (queue, jobs) = mpsc::channel::<Job>();
/// let service = Service {
///     detached: ContextPool::new(|job| drop(std::thread::spawn(job))),
///     queued: ContextPool::new(Box::new(move |job| queue.send(job).unwrap())),
/// };
///
/// assert_eq!(service.detached.spawn(|| 6 * 7).join().unwrap(), 42);
/// let queued = service.queued.spawn(|| "ran from the queue");
/// jobs.recv().unwrap()();
/// assert_eq!(queued.join().unwrap(), "ran from the queue");
/// ```
#[derive(Clone)]
pub struct ContextPool<S> {
    submit: S,
}

impl<S: Fn(Job)> ContextPool<S> {
    /// A pool that hands every job to `submit`.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use ctxflow::pool::ContextPool;
    ///
    /// // Any runner of boxed closures will do; here, a new thread per job.
    /// let pool = ContextPool::new(|job| drop(std::thread::spawn(job)));
    ///
    /// let (report, done) = mpsc::channel();
    /// pool.execute(move || report.send("ran").unwrap());
    /// assert_eq!(done.recv().unwrap(), "ran");
    /// ```
    pub fn new(submit: S) -> Self {
        ContextPool { submit }
    }

    /// Submits `f`, to run in a snapshot of the caller's context, and forgets it.
    ///
    /// A panic in `f` is the pool's to handle, as if `f` had been submitted directly; the
    /// worker's own context is back in place while the panic unwinds.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use ctxflow::pool::ContextPool;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
    /// let pool = ContextPool::new(|job| drop(std::thread::spawn(job)));
    ///
    /// let (report, seen) = mpsc::channel();
    /// REQUEST_ID.sync_scope(42, || pool.execute(move || report.send(REQUEST_ID.get()).unwrap()));
    /// assert_eq!(seen.recv().unwrap(), Some(42));
    /// ```
    pub fn execute<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        (self.submit)(Box::new(Handoff::for_spawn().wrap(f)));
    }

    /// Submits `f`, to run in a snapshot of the caller's context, and returns a handle to its
    /// result: await it, or block on it from synchronous code.
    ///
    /// A panic in `f` is caught and given to the handle as a [`JoinError`](crate::JoinError);
    /// the pool's thread never sees it. Arguments travel in the closure's captures.
    ///
    /// ```
    /// use ctxflow::pool::ContextPool;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// fn process_item(item_id: &str, priority: u8) -> String {
    ///     let request_id = REQUEST_ID.get().unwrap_or_default();
    ///     format!("{item_id} (priority {priority}) done for {request_id}")
    /// }
    ///
    /// let pool = ContextPool::new(|job| drop(std::thread::spawn(job)));
    /// let _token = REQUEST_ID.set("req-456".into());
    ///
    /// let status = pool.spawn(|| process_item("item-123", 1));
    /// assert_eq!(
    ///     status.join().unwrap(),
    ///     "item-123 (priority 1) done for req-456",
    /// );
    /// ```
    pub fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (task, handle) = PreparedBlocking::new(f).into_reporting();
        (self.submit)(Box::new(move || task.run()));
        handle
    }
}

impl<S> fmt::Debug for ContextPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextPool").finish_non_exhaustive()
    }
}
