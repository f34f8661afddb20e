//! [`ThreadPoolExt`]: context-carrying forms of a `rayon::ThreadPool`'s methods.

use ::rayon::ThreadPool;
use ctxflow_core::Context;

use super::{while_waiting_in_empty_context, Scope};

/// The methods of a [`rayon::ThreadPool`], carrying a snapshot of the caller's context into
/// every closure they run; named after rayon's, with `_with_context` appended.
///
/// ```
/// use ctxflow::rayon::{ParallelIteratorExt, ThreadPoolExt};
/// use ctxflow::ContextVar;
/// use rayon::prelude::*;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let _token = REQUEST_ID.set("req-123".into());
///
/// let tagged = pool.install_with_context(|| {
///     (0..1000)
///         .into_par_iter()
///         .with_current_context()
///         .filter(|_| REQUEST_ID.get().as_deref() == Some("req-123"))
///         .count()
/// });
/// assert_eq!(tagged, 1000);
/// ```
pub trait ThreadPoolExt: sealed::Sealed {
    /// Spawns `f` on this pool, like [`ThreadPool::spawn`], to run in a snapshot of the caller's
    /// context.
    ///
    /// As with `ThreadPool::spawn`, a panic in `f` goes to the pool's panic handler, and aborts
    /// the process if the pool has none.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use ctxflow::rayon::ThreadPoolExt;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    /// let _token = REQUEST_ID.set("req-123".into());
    ///
    /// let (report, seen) = mpsc::channel();
    /// pool.spawn_with_context(move || report.send(REQUEST_ID.get()).unwrap());
    /// assert_eq!(seen.recv().unwrap().as_deref(), Some("req-123"));
    /// ```
    fn spawn_with_context<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static;

    /// Runs `a` and `b` in this pool, potentially in parallel, like [`ThreadPool::join`], each
    /// in a snapshot of the caller's context.
    ///
    /// ```
    /// use ctxflow::rayon::ThreadPoolExt;
    /// use ctxflow::ContextVar;
    ///
    /// static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// let _token = USER_ID.set(7);
    ///
    /// assert_eq!(pool.join_with_context(|| USER_ID.get(), || USER_ID.get()), (Some(7), Some(7)));
    /// ```
    fn join_with_context<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send;

    /// Opens a fork-join scope in this pool, like [`ThreadPool::scope`]: `op` and every closure
    /// spawned with [`Scope::spawn`] run in the caller's context.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use ctxflow::rayon::ThreadPoolExt;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// let _token = REQUEST_ID.set("req-123");
    ///
    /// let seen = Mutex::new(Vec::new());
    /// pool.scope_with_context(|s| {
    ///     s.spawn(|_| seen.lock().unwrap().push(REQUEST_ID.get()));
    ///     s.spawn(|_| seen.lock().unwrap().push(REQUEST_ID.get()));
    /// });
    /// assert_eq!(seen.into_inner().unwrap(), [Some("req-123"); 2]);
    /// ```
    fn scope_with_context<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'_, 'scope>) -> R + Send,
        R: Send;

    /// Opens a fork-join scope whose `op` runs on the calling thread and whose spawned closures
    /// run in this pool, like [`ThreadPool::in_place_scope`], all in the caller's context.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use ctxflow::rayon::ThreadPoolExt;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// let _token = REQUEST_ID.set("req-123");
    ///
    /// let seen = Mutex::new(None);
    /// let caller = std::thread::current().id();
    /// let op_thread = pool.in_place_scope_with_context(|s| {
    ///     s.spawn(|_| *seen.lock().unwrap() = REQUEST_ID.get());
    ///     std::thread::current().id()
    /// });
    /// assert_eq!(op_thread, caller);
    /// assert_eq!(seen.into_inner().unwrap(), Some("req-123"));
    /// ```
    fn in_place_scope_with_context<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'_, 'scope>) -> R;

    /// Runs `op` in this pool, like [`ThreadPool::install`], in a snapshot of the caller's
    /// context; parallel iterators inside it use this pool.
    ///
    /// Only `op` itself gets the context: rayon hands the items of a parallel iterator to other
    /// worker threads, so carry it there with
    /// [`with_current_context`](super::ParallelIteratorExt::with_current_context).
    ///
    /// ```
    /// use ctxflow::rayon::ThreadPoolExt;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// let _token = REQUEST_ID.set("req-123".into());
    ///
    /// let (request_id, in_pool) =
    ///     pool.install_with_context(|| (REQUEST_ID.get(), pool.current_thread_index().is_some()));
    /// assert_eq!(request_id.as_deref(), Some("req-123"));
    /// assert!(in_pool);
    /// ```
    fn install_with_context<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send;
}

impl ThreadPoolExt for ThreadPool {
    fn spawn_with_context<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn(Context::inheritable().wrap(f));
    }

    fn join_with_context<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        let context = Context::inheritable();
        while_waiting_in_empty_context(|| self.join(|| context.run(a), || context.run(b)))
    }

    fn scope_with_context<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'_, 'scope>) -> R + Send,
        R: Send,
    {
        let context = Context::inheritable();
        while_waiting_in_empty_context(|| {
            self.scope(|rayon| context.run(|| op(&Scope::new(rayon))))
        })
    }

    fn in_place_scope_with_context<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'_, 'scope>) -> R,
    {
        let context = Context::inheritable();
        while_waiting_in_empty_context(|| {
            self.in_place_scope(|rayon| context.run(|| op(&Scope::new(rayon))))
        })
    }

    fn install_with_context<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        let context = Context::inheritable();
        while_waiting_in_empty_context(|| self.install(|| context.run(op)))
    }
}

mod sealed {
    /// Keeps `ThreadPoolExt` implemented by `rayon::ThreadPool` only, so methods can be added.
    pub trait Sealed {}

    impl Sealed for ::rayon::ThreadPool {}
}
