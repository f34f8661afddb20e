//! [`Scope`]: a rayon fork-join scope whose spawned closures carry the spawner's context.

use ctxflow_core::Context;

/// A fork-join scope, as [`rayon::Scope`], opened by [`scope`](super::scope),
/// [`in_place_scope`](super::in_place_scope) or their [`ThreadPoolExt`](super::ThreadPoolExt)
/// forms: each closure spawned in it runs in a snapshot of the context current at its spawn.
///
/// ```
/// use std::sync::Mutex;
/// use ctxflow::ContextVar;
///
/// static STEP: ContextVar<u32> = ContextVar::new("step");
///
/// let nested = Mutex::new(None);
/// ctxflow::rayon::scope(|s| {
///     let _token = STEP.set(1);
///     s.spawn(|s| {
///         let _token = STEP.set(2);
///         s.spawn(|_| *nested.lock().unwrap() = STEP.get());
///     });
/// });
/// // The nested closure sees what its spawner had set when it spawned it.
/// assert_eq!(nested.into_inner().unwrap(), Some(2));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a, 'scope> {
    rayon: &'a ::rayon::Scope<'scope>,
}

impl<'a, 'scope> Scope<'a, 'scope> {
    pub(super) fn new(rayon: &'a ::rayon::Scope<'scope>) -> Self {
        Scope { rayon }
    }

    /// Spawns `body` into the scope, like [`rayon::Scope::spawn`], to run in a snapshot of the
    /// context current here; the scope ends only once it has run.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use ctxflow::ContextVar;
    ///
    /// static ITEM: ContextVar<u32> = ContextVar::new("item");
    ///
    /// let seen = Mutex::new(Vec::new());
    /// ctxflow::rayon::scope(|s| {
    ///     for item in 0..3 {
    ///         ITEM.sync_scope(item, || s.spawn(|_| seen.lock().unwrap().push(ITEM.get())));
    ///     }
    /// });
    /// let mut seen = seen.into_inner().unwrap();
    /// seen.sort();
    /// assert_eq!(seen, [Some(0), Some(1), Some(2)]);
    /// ```
    pub fn spawn<BODY>(&self, body: BODY)
    where
        BODY: FnOnce(&Scope<'_, 'scope>) + Send + 'scope,
    {
        let context = Context::inheritable();
        self.rayon
            .spawn(move |rayon| context.run(|| body(&Scope::new(rayon))));
    }
}
