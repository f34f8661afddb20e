//! [`Context`]: an immutable, cheaply cloned snapshot of context variables.

use std::any::Any;
use std::cmp::Ordering;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::carried::{Carried, Taking};
use crate::carrier;
use crate::current::{self, Installed, Scope};
use crate::guard::ContextGuard;
use crate::handoff::Handoff;
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
/// increment, whatever the number of variables, while no registered carrier has state to
/// capture (with a span entered and the `tracing` feature on, it also captures the span, in one
/// allocation); an empty context is a null pointer and costs nothing. [`ContextVar::set`]
/// changes the *current* context copy-on-write: it edits in place while no snapshot shares it,
/// and copies the (small, flat) table of entries otherwise, so every snapshot taken before keeps
/// what it saw.
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
    entries: Option<Arc<Shared>>,
}

/// What a non-empty snapshot holds: its variables, and the carriers' state captured with it.
#[derive(Clone)]
struct Shared {
    table: Table,
    carried: Carried,
}

impl Shared {
    /// The table to edit for a write to these variables. A snapshot that carries state keeps
    /// its variables in a table of their own, `Of` which it is, even once edited: that table is
    /// what gets installed, alone ([`Context::variables_only`]), and stays the same snapshot of
    /// variables for [`Context::ptr_eq`].
    fn variables_mut(&mut self) -> &mut Table {
        if self.carried.is_empty() {
            return &mut self.table;
        }
        if !matches!(self.table, Table::Of(_)) {
            let own = std::mem::replace(&mut self.table, Table::Large(Vec::new()));
            self.table = Table::Of(Arc::new(Shared {
                table: own,
                carried: Carried::default(),
            }));
        }
        match &mut self.table {
            Table::Of(variables) => &mut Arc::make_mut(variables).table,
            _ => unreachable!("made `Of` above"),
        }
    }
}

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
    /// One reference-count increment, whatever the number of variables: nothing is copied. A
    /// registered [`Carrier`](crate::Carrier) with state here (a span, a hub) is captured too,
    /// into one allocation that shares the variables' table.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static USER: ContextVar<u64> = ContextVar::new("user");
    /// let _token = USER.set(7);
    /// assert_eq!(Context::current().get(&USER), Some(&7));
    /// ```
    pub fn current() -> Self {
        let variables = Context::current_variables();
        if !carrier::any() {
            return variables;
        }
        variables.carrying_all()
    }

    /// These variables, with every carrier's state current here.
    // Out of line, so that a snapshot with no carrier registered saves no registers for it.
    #[inline(never)]
    fn carrying_all(self) -> Self {
        self.carrying(Carried::capture(Taking::All))
    }

    /// The current context's variables, without capturing the carriers: for what only reads
    /// variables, such as a log line's fields.
    #[inline]
    pub(crate) fn current_variables() -> Self {
        current::snapshot()
    }

    /// This snapshot's variables, with `carried` in place of what it carried. The variables'
    /// table is shared, not copied: the new snapshot is one allocation whatever its size, and
    /// is the same snapshot of variables for [`ptr_eq`](Self::ptr_eq).
    fn carrying(self, carried: Carried) -> Self {
        // Nothing to carry, and nothing stale carried: the variables' snapshot as it is.
        if carried.is_empty() && self.carried().is_none_or(Carried::is_empty) {
            return self;
        }
        let table = match self.variables() {
            None if carried.is_empty() => return Context::empty(),
            None => Table::Small(Small::default()),
            Some(variables) => Table::Of(variables.clone()),
        };
        Context {
            entries: Some(Arc::new(Shared { table, carried })),
        }
    }

    /// The table that holds this snapshot's variables; `None` when none is set.
    fn variables(&self) -> Option<&Arc<Shared>> {
        let shared = self.entries.as_ref()?;
        match &shared.table {
            table if table.len() == 0 => None,
            Table::Of(variables) => Some(variables),
            _ => Some(shared),
        }
    }

    /// The carriers' state this snapshot holds, installed wherever it is.
    #[inline]
    pub(crate) fn carried(&self) -> Option<&Carried> {
        self.entries.as_deref().map(|shared| &shared.carried)
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
        let variables = Context::flowing_variables();
        if !carrier::any() {
            return variables;
        }
        variables.carrying(Carried::capture(Taking::Flowing))
    }

    /// The current context's flowing variables, without capturing the carriers.
    #[inline]
    pub(crate) fn flowing_variables() -> Self {
        current::snapshot_if_all_flow()
            .unwrap_or_else(|| current::read(Context::without_non_flowing))
    }

    /// Whether every variable set here flows, as in almost every context: then a spawn shares
    /// this snapshot as it is. A plain scan of the keys, which every spawn makes.
    #[inline]
    pub(crate) fn all_flow(&self) -> bool {
        match self.entries.as_deref().map(|shared| shared.table.flat()) {
            None => true,
            Some(Table::Small(small)) => {
                small.vars.iter().map_while(|var| *var).all(|var| var.flows)
            }
            Some(Table::Large(entries)) => entries.iter().all(|entry| entry.var.flows),
            Some(Table::Of(_)) => unreachable!("a table is flat"),
        }
    }

    /// A copy of this snapshot without its non-flowing variables.
    #[cold]
    #[inline(never)]
    fn without_non_flowing(&self) -> Self {
        let mut flowing = self
            .iter()
            .filter(|(var, _)| var.flows)
            .map(|(var, value)| (var, value.clone()));
        let Some((var, value)) = flowing.next() else {
            return Context::empty();
        };
        let mut table = Table::one(var, value);
        let edit = Arc::get_mut(&mut table).expect("a new table is not shared");
        flowing.for_each(|(var, value)| edit.table.push(var, value));
        Context {
            entries: Some(table),
        }
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
    #[inline]
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
        cx.insert(var.info(), erase(value));
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
        self.entries
            .as_deref()
            .map_or(0, |shared| shared.table.len())
    }

    /// Whether no variable is set in this snapshot.
    ///
    /// ```
    /// use ctxflow::Context;
    /// assert!(Context::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether both are the same snapshot of variables: true for clones of one snapshot, and for
    /// two empty contexts. Two snapshots holding equal values set separately are not the same.
    /// What carriers captured with each (a span, a hub) is not compared: two
    /// `Context::current()` taken under one set of variables but in different spans are the
    /// same snapshot of variables.
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
        match (a.variables(), b.variables()) {
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
        self.iter().map(|(var, _)| var.name)
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
        self.run_variables(|| match self.carried() {
            None => f(),
            Some(carried) => carried.enter(f),
        })
    }

    /// Runs `f` with this snapshot's variables installed, and none of what it carries.
    #[inline]
    pub(crate) fn run_variables<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut scope = Scope::new(self.variables_only());
        let ran = {
            let _installed = Installed::new(&mut scope);
            panic::catch_unwind(AssertUnwindSafe(f))
        };
        match ran {
            Ok(output) => output,
            Err(payload) => {
                // What `f` set is released before its panic goes on, not while it unwinds,
                // where a value's panicking `Drop` would abort the process.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(scope)));
                panic::resume_unwind(payload)
            }
        }
    }

    /// This snapshot's variables, without the carriers' state it holds: what is installed as
    /// the thread's context, where whatever snapshots it would keep that state alive for as
    /// long as they live, not installed but held (a span kept open by work spawned later).
    pub(crate) fn variables_only(&self) -> Self {
        match self.entries.as_deref() {
            // Its variables are a table of their own (`Shared::variables_mut`).
            Some(shared) if !shared.carried.is_empty() => Context {
                entries: self.variables().cloned(),
            },
            _ => self.clone(),
        }
    }

    /// A closure that runs `f` inside this snapshot, wherever it is called: the form to hand to
    /// a thread pool. Dropped unrun (a pool that shuts down with it queued), it drops `f` inside
    /// this snapshot too.
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
        Handoff::from(self.clone()).wrap(f)
    }

    /// Makes this snapshot the current context of this thread until the guard drops; for
    /// synchronous code that cannot be put in a closure.
    ///
    /// Guards must be dropped in the reverse order of their creation, on the thread that made
    /// them (the guard is not `Send`), within the poll or closure that made them. With the
    /// `strict` feature, a guard that breaks these rules is reported by a panic naming where it
    /// was created, where ctxflow installs a context (its tasks, `ctxflow::block_on`,
    /// `in_context` futures, `run` closures); a guard leaked on a plain thread, or held across an
    /// `.await` in a future ctxflow does not poll (a raw `Runtime::block_on` body), is not seen
    /// ("Strict mode" in the repository's docs/flow.md).
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
        ContextGuard::attach(self.clone())
    }

    #[inline]
    pub(crate) fn value(&self, var: &'static VarInfo) -> Option<&Value> {
        self.entries.as_deref()?.table.value(var)
    }

    /// Sets `var`, copy-on-write; returns the value it replaces. Runs no user code: every value
    /// that leaves the table is handed back or still held by another snapshot.
    pub(crate) fn insert(&mut self, var: &'static VarInfo, value: Value) -> Option<Value> {
        match &mut self.entries {
            Some(shared) => Arc::make_mut(shared).variables_mut().insert(var, value),
            None => {
                self.entries = Some(Table::one(var, value));
                None
            }
        }
    }

    /// Unsets `var`, copy-on-write; returns the value it had.
    pub(crate) fn remove(&mut self, var: &'static VarInfo) -> Option<Value> {
        let shared = self.entries.as_mut()?;
        let previous = shared.table.value(var)?.clone();
        if shared.table.len() == 1 && shared.carried.is_empty() {
            self.entries = None;
        } else {
            Arc::make_mut(shared).variables_mut().remove(var);
        }
        Some(previous)
    }

    /// The variables set and their values, in the table's order.
    fn iter(&self) -> impl Iterator<Item = (&'static VarInfo, &Value)> + '_ {
        let (small, large) = match self.entries.as_deref().map(|shared| shared.table.flat()) {
            None => (None, None),
            Some(Table::Small(small)) => (Some(small), None),
            Some(Table::Large(entries)) => (None, Some(entries)),
            Some(Table::Of(_)) => unreachable!("a table is flat"),
        };
        let small = small.into_iter().flat_map(|small| {
            small
                .vars
                .iter()
                .zip(&small.values)
                .map_while(|(var, value)| Some(((*var)?, value.as_ref()?)))
        });
        let large = large
            .into_iter()
            .flatten()
            .map(|entry| (entry.var, &entry.value));
        small.chain(large)
    }
}

/// The variables of a non-empty snapshot, sorted by the variable's address.
#[derive(Clone)]
enum Table {
    /// Up to [`SMALL`] variables, inside the `Arc`'s own allocation: a copy is one allocation.
    Small(Small),
    /// More than [`SMALL`]: a lookup bisects.
    Large(Vec<Entry>),
    /// The variables of another snapshot, which is not itself `Of` one: a snapshot that carries
    /// the carriers' state shares the table of the variables it was taken with.
    Of(Arc<Shared>),
}

/// The most variables a [`Small`] table holds, and so the longest scan a lookup makes.
const SMALL: usize = 8;

/// The keys apart from the values, so that a lookup reads eight adjacent words rather than one
/// key every 24 bytes. The slots after the last variable are `None` and match no variable: the
/// scan has a fixed length, which the compiler unrolls, and reads no length first.
#[derive(Clone, Default)]
struct Small {
    vars: [Option<&'static VarInfo>; SMALL],
    /// `values[i]` is the value of `vars[i]`.
    values: [Option<Value>; SMALL],
}

impl Table {
    /// Out of line: inlined, it gave every `set`, even one that replaces a value in place, a
    /// stack frame large enough to build a table in.
    #[inline(never)]
    fn one(var: &'static VarInfo, value: Value) -> Arc<Shared> {
        let mut small = Small::default();
        small.vars[0] = Some(var);
        small.values[0] = Some(value);
        Arc::new(Shared {
            table: Table::Small(small),
            carried: Carried::default(),
        })
    }

    fn len(&self) -> usize {
        match self {
            Table::Small(small) => small.len(),
            Table::Large(entries) => entries.len(),
            Table::Of(variables) => variables.table.len(),
        }
    }

    /// The table that holds the entries: this one, or the one it is `Of`.
    fn flat(&self) -> &Table {
        match self {
            Table::Of(variables) => &variables.table,
            table => table,
        }
    }

    /// This table, made a copy of the one it is `Of`, so that it can be edited.
    fn own(&mut self) -> &mut Table {
        if let Table::Of(variables) = self {
            *self = variables.table.clone();
        }
        self
    }

    #[inline]
    fn value(&self, var: &'static VarInfo) -> Option<&Value> {
        match self {
            Table::Small(small) => {
                // A branch per key, not a branch-free scan: the branches are predicted, so the
                // value's load starts before the comparisons finish instead of waiting for a
                // computed index.
                let index = small.vars.iter().position(|key| is(*key, var))?;
                small.values[index].as_ref()
            }
            Table::Large(entries) => bisect(entries, var),
            Table::Of(variables) => variables.table.flat_value(var),
        }
    }

    /// [`value`](Self::value) in a table that is not `Of` another.
    #[inline(never)]
    fn flat_value(&self, var: &'static VarInfo) -> Option<&Value> {
        match self {
            Table::Small(small) => {
                let index = small.vars.iter().position(|key| is(*key, var))?;
                small.values[index].as_ref()
            }
            Table::Large(entries) => bisect(entries, var),
            Table::Of(_) => None,
        }
    }

    /// Appends `var`, which sorts after every variable in the table.
    fn push(&mut self, var: &'static VarInfo, value: Value) {
        let len = self.len();
        self.insert_at(len, var, value);
    }

    fn insert(&mut self, var: &'static VarInfo, value: Value) -> Option<Value> {
        match self {
            Table::Of(_) => self.own().insert(var, value),
            Table::Small(small) => {
                if let Some(index) = small.vars.iter().position(|key| is(*key, var)) {
                    return small.values[index].replace(value);
                }
                let index = small
                    .vars
                    .iter()
                    .take_while(|key| key.is_some_and(|key| order(key, var) == Ordering::Less))
                    .count();
                self.insert_at(index, var, value);
                None
            }
            Table::Large(entries) => {
                match entries.binary_search_by(|entry| order(entry.var, var)) {
                    Ok(index) => Some(std::mem::replace(&mut entries[index].value, value)),
                    Err(index) => {
                        entries.insert(index, Entry { var, value });
                        None
                    }
                }
            }
        }
    }

    /// Inserts `var`, which is not in the table, at `index`, where it sorts.
    fn insert_at(&mut self, index: usize, var: &'static VarInfo, value: Value) {
        match self {
            Table::Of(_) => self.own().insert_at(index, var, value),
            Table::Small(small) => {
                let len = small.len();
                if len < SMALL {
                    small.vars[index..=len].rotate_right(1);
                    small.vars[index] = Some(var);
                    small.values[index..=len].rotate_right(1);
                    small.values[index] = Some(value);
                } else {
                    let mut entries = Vec::with_capacity(SMALL * 2);
                    entries.extend(small.entries());
                    entries.insert(index, Entry { var, value });
                    *self = Table::Large(entries);
                }
            }
            Table::Large(entries) => entries.insert(index, Entry { var, value }),
        }
    }

    /// Removes `var`.
    fn remove(&mut self, var: &'static VarInfo) -> Option<Value> {
        match self {
            Table::Of(_) => self.own().remove(var),
            Table::Small(small) => {
                let index = small.vars.iter().position(|key| is(*key, var))?;
                let len = small.len();
                let value = small.values[index].take();
                small.vars[index] = None;
                small.vars[index..len].rotate_left(1);
                small.values[index..len].rotate_left(1);
                value
            }
            Table::Large(entries) => {
                let index = entries
                    .binary_search_by(|entry| order(entry.var, var))
                    .ok()?;
                let entry = entries.remove(index);
                // Back to the small layout, whose lookups are the fast ones.
                if entries.len() <= SMALL {
                    let mut small = Small::default();
                    for (index, entry) in entries.drain(..).enumerate() {
                        small.vars[index] = Some(entry.var);
                        small.values[index] = Some(entry.value);
                    }
                    *self = Table::Small(small);
                }
                Some(entry.value)
            }
        }
    }
}

impl Small {
    fn len(&self) -> usize {
        self.vars.iter().take_while(|key| key.is_some()).count()
    }

    /// Moves the entries out, leaving the table empty.
    fn entries(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.vars
            .iter_mut()
            .zip(&mut self.values)
            .map_while(|(var, value)| {
                Some(Entry {
                    var: var.take()?,
                    value: value.take()?,
                })
            })
    }
}

// Out of line, so that the small-table lookup stays small enough to be inlined into every `get`.
#[inline(never)]
fn bisect<'a>(entries: &'a [Entry], var: &'static VarInfo) -> Option<&'a Value> {
    let index = entries
        .binary_search_by(|entry| order(entry.var, var))
        .ok()?;
    Some(&entries[index].value)
}

/// Whether `key` is `var`: variables are told apart by address, not by content.
#[inline]
fn is(key: Option<&'static VarInfo>, var: &'static VarInfo) -> bool {
    key.is_some_and(|key| std::ptr::eq(key, var))
}

fn order(a: &'static VarInfo, b: &'static VarInfo) -> Ordering {
    std::ptr::from_ref(a).cmp(&std::ptr::from_ref(b))
}

/// `value` as a table stores it. Every value is erased here, beside [`downcast`]: see there.
pub(crate) fn erase<T: Send + Sync + 'static>(value: T) -> Value {
    Arc::new(value)
}

/// The value of a variable keyed by a `ContextVar<T>` is always a `T`: only `ContextVar<T>`
/// inserts under its own key.
///
/// `downcast_ref` alone asks the value's vtable for its `TypeId`: an indirect call whose result
/// comes back through memory, which cost more than the rest of a lookup. So the value's vtable is
/// first compared with the one the compiler made for `T` here; when they are the same, every
/// entry of the vtable is known, and `downcast_ref`'s check and the offset of the value in its
/// `Arc` fold to constants. They are the same for values set through `ContextVar::set` or
/// `Context::with_value` and read in the same crate: the compiler emits a vtable once per codegen
/// unit, and both instances land in the one for this module. A value erased in another crate, or
/// in another codegen unit (a direct call of [`erase`] that was inlined elsewhere), carries
/// another copy of the vtable and is checked by [`downcast_checked`], which gives the same answer.
///
/// `std::ptr::eq` does not promise that vtables compare equal, so the comparison only chooses
/// the speed, never the answer: `downcast_ref` still checks the type. It is kept because
/// without it `ContextVar::get` of the last of 1, 8 and 64 values took 3.8, 4.7 and 11.0 ns
/// instead of 3.6, 3.7 and 9.2, and a unit test fails when a value set and read in this crate
/// takes the checked path.
pub(crate) fn downcast<T: Send + Sync + 'static>(value: &Value) -> &T {
    let as_t = Arc::as_ptr(value) as *const T as *const (dyn Any + Send + Sync);
    if std::ptr::eq(Arc::as_ptr(value), as_t) {
        if let Some(value) = value.downcast_ref() {
            return value;
        }
    }
    downcast_checked(value)
}

// Out of line: inlined, it shares the value's address computation with the fast path above,
// which then waits for a load of the alignment from the vtable instead of using a constant.
#[cold]
#[inline(never)]
fn downcast_checked<T: Send + Sync + 'static>(value: &Value) -> &T {
    #[cfg(test)]
    tests::CHECKED_DOWNCASTS.set(tests::CHECKED_DOWNCASTS.get() + 1);
    value
        .downcast_ref()
        .expect("a context variable always holds its own type")
}

impl Drop for Shared {
    /// The last holder of a snapshot releases its values with an empty context installed, so
    /// that a value whose `Drop` sets a variable writes where nobody reads: not into the
    /// context of whatever runs on this thread next. On `Shared`, not on `Context`, so that
    /// letting go of a snapshot that others hold is the `Arc`'s own inline decrement.
    fn drop(&mut self) {
        let table = std::mem::replace(&mut self.table, Table::Large(Vec::new()));
        let carried = std::mem::take(&mut self.carried);
        current::drop_aside((table, carried));
    }
}

impl fmt::Debug for Context {
    /// Names the variables set; values are not required to be `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Context");
        debug.field("vars", &DebugNames(self));
        if let Some(carried) = self.carried().filter(|carried| !carried.is_empty()) {
            debug.field("carriers", carried);
        }
        debug.finish()
    }
}

struct DebugNames<'a>(&'a Context);

impl fmt::Debug for DebugNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// How many downcasts on this thread took the checked path.
        pub(super) static CHECKED_DOWNCASTS: Cell<usize> = const { Cell::new(0) };
    }

    static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    static ATTEMPT: ContextVar<u64> = ContextVar::new("attempt");

    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri gives each use of a function its own address, which the fast path compares"
    )]
    fn a_value_set_in_this_crate_is_read_without_the_checked_downcast() {
        let cx = Context::empty()
            .with_value(&REQUEST_ID, "request".into())
            .with_value(&ATTEMPT, 3);
        let _guard = cx.attach();
        let before = CHECKED_DOWNCASTS.get();
        assert_eq!(REQUEST_ID.get().as_deref(), Some("request"));
        assert_eq!(ATTEMPT.get(), Some(3));
        assert_eq!(cx.get(&ATTEMPT), Some(&3));
        assert_eq!(CHECKED_DOWNCASTS.get(), before);
    }

    #[test]
    fn the_checked_downcast_agrees_with_the_fast_one() {
        let value = erase(String::from("request"));
        assert_eq!(downcast::<String>(&value), "request");
        let before = CHECKED_DOWNCASTS.get();
        assert_eq!(downcast_checked::<String>(&value), "request");
        assert_eq!(CHECKED_DOWNCASTS.get(), before + 1);
    }

    #[test]
    #[should_panic(expected = "a context variable always holds its own type")]
    fn a_value_of_another_type_is_refused() {
        downcast::<u64>(&erase(7_u32));
    }
}
