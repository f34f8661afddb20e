//! [`ContextVar`]: a typed key into the context, with Python's `set`/`reset` token protocol.

use std::error::Error;
use std::fmt;
use std::future::IntoFuture;
use std::marker::PhantomData;

use crate::context::{downcast, erase, Context, Value};
use crate::current;
use crate::future::WithContext;
use crate::handoff::Handoff;

/// What the context knows of a variable whatever its type; its address is the variable's key.
pub(crate) struct VarInfo {
    pub(crate) name: &'static str,
    /// Whether the variable flows into spawned tasks and pool closures.
    pub(crate) flows: bool,
}

/// A typed context variable: the Rust form of Python's `contextvars.ContextVar`.
///
/// Declare it as a `static`; its address is its identity. Values are `Send + Sync + 'static`
/// because snapshots cross threads, and they are shared between snapshots, never copied.
///
/// ```
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// assert_eq!(REQUEST_ID.get(), None);
/// let token = REQUEST_ID.set("req-123".to_string());
/// assert_eq!(REQUEST_ID.get().as_deref(), Some("req-123"));
/// REQUEST_ID.reset(token).unwrap();
/// assert_eq!(REQUEST_ID.get(), None);
/// ```
///
/// A `const` would be a new variable at every use, so it does not compile:
///
/// ```compile_fail
/// use ctxflow::ContextVar;
/// const NOT_A_STATIC: ContextVar<u32> = ContextVar::new("oops");
/// let _token = NOT_A_STATIC.set(1);
/// ```
pub struct ContextVar<T> {
    info: VarInfo,
    _value: PhantomData<fn() -> T>,
}

/// Having drop glue keeps a `const` `ContextVar` from being promoted to a hidden `static` at
/// each use site, where every use would silently be a different variable.
impl<T> Drop for ContextVar<T> {
    fn drop(&mut self) {}
}

impl<T: Send + Sync + 'static> ContextVar<T> {
    /// A variable named `name`; the name shows in `Debug` output and in integrations.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
    /// assert_eq!(USER_ID.name(), "user_id");
    /// ```
    pub const fn new(name: &'static str) -> Self {
        ContextVar {
            info: VarInfo { name, flows: true },
            _value: PhantomData,
        }
    }

    /// A variable that stays with the task that sets it: visible there and in every future that
    /// task awaits or polls itself (`join!`, `select!`), while tasks and pool closures spawned
    /// from it start without it. Java's `ThreadLocal`, where [`new`](Self::new) is its
    /// `InheritableThreadLocal`.
    ///
    /// For what must not outlive its scope: the callbacks of a live database transaction, a
    /// "suppress notifications" flag, an admin session. A job that inherited them would run
    /// later against a transaction that is gone.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    ///
    /// static IN_TRANSACTION: ContextVar<u64> = ContextVar::non_flowing("in_transaction");
    /// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
    ///
    /// let _tx = IN_TRANSACTION.set(17);
    /// let _id = REQUEST_ID.set("req-1");
    /// let job = Context::inheritable();
    /// assert_eq!(job.get(&IN_TRANSACTION), None);
    /// assert_eq!(job.get(&REQUEST_ID), Some(&"req-1"));
    /// assert!(!IN_TRANSACTION.flows());
    /// ```
    pub const fn non_flowing(name: &'static str) -> Self {
        ContextVar {
            info: VarInfo { name, flows: false },
            _value: PhantomData,
        }
    }

    /// Whether the variable flows into spawned tasks and pool closures; see
    /// [`non_flowing`](Self::non_flowing).
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
    /// assert!(REQUEST_ID.flows());
    /// ```
    pub fn flows(&self) -> bool {
        self.info.flows
    }

    /// The name given at declaration.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static TRACE: ContextVar<u128> = ContextVar::new("trace");
    /// assert_eq!(TRACE.name(), "trace");
    /// ```
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    pub(crate) fn info(&'static self) -> &'static VarInfo {
        &self.info
    }

    /// A clone of the value in the current context, or `None` when it is not set.
    ///
    /// The value's `Clone` may itself read, set and install context: the thread's context is
    /// not borrowed while it runs.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
    /// assert_eq!(USER_ID.get(), None);
    /// let _token = USER_ID.set(42);
    /// assert_eq!(USER_ID.get(), Some(42));
    /// ```
    #[inline]
    pub fn get(&'static self) -> Option<T>
    where
        T: Clone,
    {
        // The value's own reference, not a borrow of the thread's context, is held while it is
        // cloned: a `Clone` may read, set or install context itself.
        let value = current::value(self.info())?;
        Some(downcast::<T>(&value).clone())
    }

    /// Calls `f` with a borrow of the value in the current context, without cloning it.
    ///
    /// `f` may itself read and set context variables.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let _token = REQUEST_ID.set("req-1".into());
    /// let len = REQUEST_ID.with(|id| id.map_or(0, String::len));
    /// assert_eq!(len, 5);
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(Option<&T>) -> R) -> R {
        // Holding the value (not the thread's context) lets `f` change the context freely.
        let value = current::value(self.info());
        f(value.as_ref().map(downcast))
    }

    /// Whether the variable is set in the current context.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static FLAG: ContextVar<()> = ContextVar::new("flag");
    /// assert!(!FLAG.is_set());
    /// let _token = FLAG.set(());
    /// assert!(FLAG.is_set());
    /// ```
    pub fn is_set(&'static self) -> bool {
        current::is_set(self.info())
    }

    /// Sets the variable in the current context, copy-on-write: snapshots taken earlier keep
    /// their value. Returns a token that [`reset`](Self::reset) uses to restore the previous
    /// value (or absence).
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar};
    /// static STEP: ContextVar<u32> = ContextVar::new("step");
    /// let _first = STEP.set(1);
    /// let snapshot = Context::current();
    /// let second = STEP.set(2);
    /// assert_eq!(snapshot.get(&STEP), Some(&1));
    /// assert_eq!(second.old_value(), Some(&1));
    /// ```
    pub fn set(&'static self, value: T) -> Token<T> {
        let value = erase(value);
        let previous = current::update(|cx| cx.insert(self.info(), value));
        let scope = current::scope_id();
        Token {
            var: self.info(),
            scope,
            previous,
            _value: PhantomData,
        }
    }

    /// Restores the value (or absence) the variable had before the [`set`](Self::set) that
    /// returned `token`.
    ///
    /// A token can be used once: `reset` takes it by value. It must come from a `set` of this
    /// variable, in the same context (the same task, closure run, attached guard, `sync_scope`
    /// or `scope`); otherwise the context is left as it is and the error says which rule was
    /// broken. A refused token is consumed all the same, as if dropped: the variable keeps its
    /// value, and that `set` can no longer be undone.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// use ctxflow::context::ResetError;
    /// static A: ContextVar<u32> = ContextVar::new("a");
    /// static B: ContextVar<u32> = ContextVar::new("b");
    ///
    /// let token = A.set(1);
    /// assert!(matches!(B.reset(token), Err(ResetError::OtherVariable { .. })));
    /// assert_eq!(A.get(), Some(1));
    /// ```
    ///
    /// Resetting twice does not compile: the first `reset` took the token.
    ///
    /// ```compile_fail,E0382
    /// use ctxflow::ContextVar;
    /// static A: ContextVar<u32> = ContextVar::new("a");
    /// let token = A.set(1);
    /// A.reset(token).unwrap();
    /// A.reset(token).unwrap();
    /// ```
    pub fn reset(&'static self, mut token: Token<T>) -> Result<(), ResetError> {
        if !std::ptr::eq(token.var, self.info()) {
            return Err(ResetError::OtherVariable {
                token: token.var.name,
                var: self.name(),
            });
        }
        if current::scope_id() != token.scope {
            return Err(ResetError::OtherContext { var: self.name() });
        }
        let replaced = current::update(|cx| match token.previous.take() {
            Some(previous) => cx.insert(self.info(), previous),
            None => cx.remove(self.info()),
        });
        release::<T>(replaced);
        Ok(())
    }

    /// `future`, run in the current context with this variable set to `value`: the form of
    /// tokio's `LocalKey::scope`.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
    ///
    /// let seen = futures::executor::block_on(REQUEST_ID.scope("req-7", async { REQUEST_ID.get() }));
    /// assert_eq!(seen, Some("req-7"));
    /// assert_eq!(REQUEST_ID.get(), None);
    /// ```
    pub fn scope<F: IntoFuture>(&'static self, value: T, future: F) -> WithContext<F::IntoFuture> {
        let mut handoff = Handoff::current();
        handoff.context = handoff.context.with_value(self, value);
        WithContext::new(future.into_future(), handoff)
    }

    /// Runs `f` in the current context with this variable set to `value`, then restores the
    /// caller's context, also if `f` panics.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");
    /// assert_eq!(REQUEST_ID.sync_scope("req-8", || REQUEST_ID.get()), Some("req-8"));
    /// assert_eq!(REQUEST_ID.get(), None);
    /// ```
    pub fn sync_scope<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        // The carriers' state is current already: `f` runs here, now. So does the caller's
        // suppression of flow, which is part of the context `f` runs in a variant of.
        let suppressed = crate::is_flow_suppressed();
        Context::current_variables()
            .with_value(self, value)
            .run_variables(|| match suppressed {
                true => crate::suppress_flow(f),
                false => f(),
            })
    }
}

impl<T> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.info.name)
            .finish()
    }
}

/// Proof of a [`ContextVar::set`], used to undo it with [`ContextVar::reset`].
#[must_use = "dropping a token keeps the value; pass it to `reset` to undo the `set`"]
pub struct Token<T> {
    var: &'static VarInfo,
    scope: u64,
    previous: Option<Value>,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> Token<T> {
    /// The value the variable had before the `set`, like Python's `Token.old_value`.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static N: ContextVar<u8> = ContextVar::new("n");
    /// assert_eq!(N.set(1).old_value(), None);
    /// ```
    pub fn old_value(&self) -> Option<&T> {
        // Not `downcast`, which needs `T: Send + Sync`: this impl does not ask for it.
        self.previous.as_ref().map(|value| {
            value
                .downcast_ref()
                .expect("a context variable always holds its own type")
        })
    }

    /// The name of the variable that was set.
    ///
    /// ```
    /// use ctxflow::ContextVar;
    /// static N: ContextVar<u8> = ContextVar::new("n");
    /// assert_eq!(N.set(1).var_name(), "n");
    /// ```
    pub fn var_name(&self) -> &'static str {
        self.var.name
    }
}

/// The value a token kept may be the last holder's: it is released as a context's values are,
/// with an empty context installed, so that its `Drop` sees and changes no context, wherever the
/// token went.
impl<T> Drop for Token<T> {
    fn drop(&mut self) {
        release::<T>(self.previous.take());
    }
}

/// Drops `value`, a `T`, as a context's values are dropped: aside, unless `T` runs no code when
/// dropped, which spares two swaps of the thread's context (about 4 ns) for the plain types.
fn release<T>(value: Option<Value>) {
    if std::mem::needs_drop::<T>() && value.is_some() {
        current::drop_aside(value);
    }
}

impl<T> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("var", &self.var.name)
            .field("had_value", &self.previous.is_some())
            .finish()
    }
}

/// Why [`ContextVar::reset`] refused a token. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetError {
    /// The token was issued by a `set` of another variable.
    OtherVariable {
        /// The variable the token belongs to.
        token: &'static str,
        /// The variable `reset` was called on.
        var: &'static str,
    },
    /// The token was issued in another context: another task, closure run or attached guard.
    OtherContext {
        /// The variable `reset` was called on.
        var: &'static str,
    },
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetError::OtherVariable { token, var } => write!(
                f,
                "cannot reset context variable `{var}` with a token issued by `{token}`"
            ),
            ResetError::OtherContext { var } => write!(
                f,
                "cannot reset context variable `{var}`: the token was issued in a different context"
            ),
        }
    }
}

impl Error for ResetError {}
