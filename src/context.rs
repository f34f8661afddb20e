//! [`Context`]: an immutable, cheaply cloned snapshot of context variables.

use std::any::Any;
use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use smallvec::{smallvec, SmallVec};

use crate::current::{self, Installed, Scope};
use crate::var::{ContextVar, VarInfo};

/// A value as a context stores it: shared between snapshots, never copied.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

#[derive(Clone)]
struct Entry {
    var: &'static VarInfo,
    value: Value,
}

/// A snapshot of context variables: what a task or closure sees as "its" context.
///
/// A `Context` never changes once taken. [`Context::current`] costs one reference-count
/// increment, whatever the number of variables; an empty context is a null pointer and costs
/// nothing. [`ContextVar::set`] changes the *current* context copy-on-write: it edits in place
/// while no snapshot shares it, and copies the (small, flat) table of entries otherwise, so every
/// snapshot taken before keeps what it saw.
///
/// ```
/// use ctxflow::{Context, ContextVar};
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// let _token = REQUEST_ID.set("req-1".to_string());
/// let before = Context::current();
/// let _token = REQUEST_ID.set("req-2".to_string());
///
/// assert_eq!(before.get(&REQUEST_ID).map(String::as_str), Some("req-1"));
/// assert_eq!(before.run(|| REQUEST_ID.get()).as_deref(), Some("req-1"));
/// assert_eq!(REQUEST_ID.get().as_deref(), Some("req-2"));
/// ```
#[derive(Clone, Default)]
pub struct Context {
    /// One thin pointer, so that installing a context moves one word.
    entries: Option<Arc<Table>>,
}

/// Sorted by the variable's address, so lookups can stop early or bisect. Small tables live
/// inside the `Arc`'s allocation: one allocation per copy.
type Table = SmallVec<[Entry; 4]>;

/// Up to this many entries a linear scan beats a binary search.
const LINEAR_SCAN_MAX: usize = 8;

impl Context {
    /// The context with no variables set. Free: it allocates nothing.
    ///
    /// ```
    /// use ctxflow::Context;
    /// assert!(Context::empty().is_empty());
    /// ```
    pub const fn empty() -> Self {
        Context { entries: None }
    }

    /// A snapshot of the current thread's or task's context.
    ///
    /// One reference-count increment, whatever the number of variables: nothing is copied.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static USER: ContextVar<u64> = ContextVar::new("user");
    /// let _token = USER.set(7);
    /// assert_eq!(Context::current().get(&USER), Some(&7));
    /// ```
    pub fn current() -> Self {
        current::read(Context::clone)
    }

    /// The part of the current context that flows into spawned work: the current context
    /// without its [non-flowing](ContextVar::non_flowing) variables, and empty inside
    /// [`suppress_flow`](crate::suppress_flow). Every spawn of ctxflow's starts from it.
    ///
    /// It is also what a job should carry when it is queued for workers that were spawned
    /// earlier: capture it at enqueue, not at the worker's spawn.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
    /// let _token = REQUEST_ID.set(1);
    /// let envelope = (Context::inheritable(), "job payload");
    /// let seen = std::thread::spawn(move || envelope.0.run(|| REQUEST_ID.get()))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(seen, Some(1));
    /// ```
    pub fn inheritable() -> Self {
        match crate::is_flow_suppressed() {
            true => Context::empty(),
            false => Context::flowing(),
        }
    }

    /// The current context without its non-flowing variables.
    pub(crate) fn flowing() -> Self {
        current::read(|cx| {
            let entries = cx.entries_slice();
            if entries.iter().all(|entry| entry.var.flows) {
                return cx.clone();
            }
            let flowing: Table = entries
                .iter()
                .filter(|entry| entry.var.flows)
                .cloned()
                .collect();
            Context {
                entries: (!flowing.is_empty()).then(|| Arc::new(flowing)),
            }
        })
    }

    /// The value `var` has in this snapshot.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
    /// let cx = Context::empty().with_value(&TENANT, "acme");
    /// assert_eq!(cx.get(&TENANT), Some(&"acme"));
    /// assert_eq!(Context::empty().get(&TENANT), None);
    /// ```
    pub fn get<T: Send + Sync + 'static>(&self, var: &'static ContextVar<T>) -> Option<&T> {
        self.value(var.info()).map(downcast)
    }

    /// A new snapshot: this one with `var` set to `value`. `self` is unchanged.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let base = Context::empty();
    /// let cx = base.with_value(&REQUEST_ID, "req-9".into());
    /// assert_eq!(cx.len(), 1);
    /// assert!(base.is_empty());
    /// ```
    #[must_use = "`with_value` returns a new context and leaves `self` unchanged"]
    pub fn with_value<T: Send + Sync + 'static>(
        &self,
        var: &'static ContextVar<T>,
        value: T,
    ) -> Context {
        let mut cx = self.clone();
        cx.insert(var.info(), Arc::new(value));
        cx
    }

    /// A new snapshot: this one without `var`. `self` is unchanged.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
    /// let cx = Context::empty().with_value(&REQUEST_ID, 1);
    /// assert!(cx.without(&REQUEST_ID).is_empty());
    /// ```
    #[must_use = "`without` returns a new context and leaves `self` unchanged"]
    pub fn without<T: Send + Sync + 'static>(&self, var: &'static ContextVar<T>) -> Context {
        let mut cx = self.clone();
        cx.remove(var.info());
        cx
    }

    /// How many variables are set in this snapshot.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static A: ContextVar<u8> = ContextVar::new("a");
    /// static B: ContextVar<u8> = ContextVar::new("b");
    /// let cx = Context::empty().with_value(&A, 1).with_value(&B, 2).with_value(&A, 3);
    /// assert_eq!(cx.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.entries_slice().len()
    }

    /// Whether no variable is set in this snapshot.
    ///
    /// ```
    /// use ctxflow::Context;
    /// assert!(Context::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// Whether both are the same snapshot: true for clones of one snapshot, and for two empty
    /// contexts. Two snapshots holding equal values set separately are not the same.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static A: ContextVar<u8> = ContextVar::new("a");
    /// let cx = Context::empty().with_value(&A, 1);
    /// assert!(Context::ptr_eq(&cx, &cx.clone()));
    /// assert!(!Context::ptr_eq(&cx, &Context::empty().with_value(&A, 1)));
    /// ```
    pub fn ptr_eq(a: &Context, b: &Context) -> bool {
        match (&a.entries, &b.entries) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The names of the variables set in this snapshot.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let cx = Context::empty().with_value(&REQUEST_ID, "r".into());
    /// assert_eq!(cx.names().collect::<Vec<_>>(), ["request_id"]);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries_slice().iter().map(|entry| entry.var.name)
    }

    /// Runs `f` with this snapshot as the current context, then restores the caller's, also if
    /// `f` panics. What `f` sets stays inside: it changes neither the caller nor `self`.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
    /// let cx = Context::empty().with_value(&REQUEST_ID, "req-1");
    ///
    /// let seen = cx.run(|| {
    ///     let _token = REQUEST_ID.set("changed inside");
    ///     REQUEST_ID.get()
    /// });
    /// assert_eq!(seen, Some("changed inside"));
    /// assert_eq!(cx.get(&REQUEST_ID), Some(&"req-1"));
    /// assert_eq!(REQUEST_ID.get(), None);
    /// ```
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut scope = Scope::new(self.clone());
        let _installed = Installed::new(&mut scope);
        f()
    }

    /// A closure that runs `f` inside this snapshot, wherever it is called: the form to hand to
    /// a thread pool (fapilog's `run_in_executor_with_context`).
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let _token = REQUEST_ID.set("req-456".into());
    ///
    /// let job = Context::current().wrap(|| REQUEST_ID.get());
    /// let seen = std::thread::spawn(job).join().unwrap();
    /// assert_eq!(seen.as_deref(), Some("req-456"));
    /// ```
    pub fn wrap<F, R>(&self, f: F) -> impl FnOnce() -> R + use<F, R>
    where
        F: FnOnce() -> R,
    {
        let cx = self.clone();
        move || cx.run(f)
    }

    /// Makes this snapshot the current context of this thread until the guard drops; for
    /// synchronous code that cannot be put in a closure.
    ///
    /// Guards must be dropped in the reverse order of their creation, on the thread that made
    /// them (the guard is not `Send`), within the poll or closure that made them. With the
    /// `strict` feature, a guard that breaks these rules is reported; see the crate docs.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
    /// let cx = Context::empty().with_value(&REQUEST_ID, 9);
    /// {
    ///     let _guard = cx.attach();
    ///     assert_eq!(REQUEST_ID.get(), Some(9));
    /// }
    /// assert_eq!(REQUEST_ID.get(), None);
    /// ```
    #[must_use = "the context is detached again as soon as the guard drops"]
    #[track_caller]
    pub fn attach(&self) -> ContextGuard {
        #[cfg(feature = "strict")]
        let position = crate::strict::attached(std::panic::Location::caller());
        let mut previous = Scope::new(self.clone());
        current::exchange(&mut previous);
        ContextGuard {
            previous,
            #[cfg(feature = "strict")]
            position,
            _not_send: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn value(&self, var: &'static VarInfo) -> Option<&Value> {
        let entries = self.entries_slice();
        let index = if entries.len() <= LINEAR_SCAN_MAX {
            entries
                .iter()
                .position(|entry| std::ptr::eq(entry.var, var))?
        } else {
            entries
                .binary_search_by(|entry| order(entry.var, var))
                .ok()?
        };
        Some(&entries[index].value)
    }

    /// Sets `var`, copy-on-write; returns the value it replaces. Runs no user code: every value
    /// that leaves the table is handed back or still held by another snapshot.
    pub(crate) fn insert(&mut self, var: &'static VarInfo, value: Value) -> Option<Value> {
        let Some(table) = &mut self.entries else {
            self.entries = Some(Arc::new(smallvec![Entry { var, value }]));
            return None;
        };
        let position = table.binary_search_by(|entry| order(entry.var, var));
        let table = Arc::make_mut(table);
        match position {
            Ok(index) => Some(std::mem::replace(&mut table[index].value, value)),
            Err(index) => {
                table.insert(index, Entry { var, value });
                None
            }
        }
    }

    /// Unsets `var`, copy-on-write; returns the value it had.
    pub(crate) fn remove(&mut self, var: &'static VarInfo) -> Option<Value> {
        let table = self.entries.as_mut()?;
        let index = table.binary_search_by(|entry| order(entry.var, var)).ok()?;
        let previous = table[index].value.clone();
        if table.len() == 1 {
            self.entries = None;
        } else {
            Arc::make_mut(table).remove(index);
        }
        Some(previous)
    }

    #[inline]
    fn entries_slice(&self) -> &[Entry] {
        self.entries
            .as_deref()
            .map_or(&[], |table| table.as_slice())
    }
}

fn order(a: &'static VarInfo, b: &'static VarInfo) -> Ordering {
    std::ptr::from_ref(a).cmp(&std::ptr::from_ref(b))
}

/// The value of a variable keyed by a `ContextVar<T>` is always a `T`: only `ContextVar<T>`
/// inserts under its own key.
#[inline]
pub(crate) fn downcast<T: 'static>(value: &Value) -> &T {
    value
        .downcast_ref()
        .expect("a context variable always holds its own type")
}

impl fmt::Debug for Context {
    /// Names the variables set; values are not required to be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("vars", &DebugNames(self))
            .finish()
    }
}

struct DebugNames<'a>(&'a Context);

impl fmt::Debug for DebugNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.names()).finish()
    }
}

/// Keeps a context attached to this thread; see [`Context::attach`].
///
/// It cannot leave its thread:
///
/// ```compile_fail
/// let guard = ctxflow::Context::empty().attach();
/// std::thread::spawn(move || drop(guard));
/// ```
#[must_use = "the context is detached again as soon as the guard drops"]
pub struct ContextGuard {
    previous: Scope,
    #[cfg(feature = "strict")]
    position: usize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        #[cfg(feature = "strict")]
        crate::strict::detached(self.position);
        current::exchange(&mut self.previous);
    }
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextGuard").finish_non_exhaustive()
    }
}
