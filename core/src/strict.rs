//! Strict mode (feature `strict`): misused [`ContextGuard`](crate::ContextGuard)s are reported.
//!
//! A guard from [`Context::attach`](crate::Context::attach) must be dropped in the reverse order
//! of creation, on its own thread (its type is not `Send`, so the compiler checks that part),
//! and not held past the end of the poll that created it. Guards dropped out of order still
//! leave the thread as it was before them, but a guard leaked with `mem::forget` or still
//! attached when its poll ends leaves a context where it does not belong. In strict mode such a
//! misuse is reported by a panic naming where the guard was created, like OpenTelemetry Java's
//! strict context storage: at the next poll of the task that misused it, or, outside any task,
//! at the next install of a context or `attach` on that thread.
//!
//! The checks run where ctxflow installs a context (`current::Installed`): each poll and drop of a
//! ctxflow task or of a [`WithContext`](crate::WithContext) future (`in_context`,
//! `in_current_context`, `preserve_context`, `VAR.scope`, so `ctxflow::block_on` too), each
//! `Context::run`, `wrap` or `sync_scope` closure and each blocking or pool closure, and each
//! `attach`. An out-of-order drop is noted as it happens; a guard outliving its poll or closure is
//! noted when that install ends. So a guard leaked with `mem::forget` outside any install (on a
//! plain thread, or in a task the runtime spawned itself), or held across an `.await` in a future
//! ctxflow does not poll (a raw `Runtime::block_on` or `#[tokio::main]` body), is never reported:
//! no install ends around it. Runtime hooks ([`TaskScope`](crate::rt::TaskScope), which
//! `ContextHooks` uses) do not check either.
//! Off, none of this code exists.

use std::cell::{Cell, RefCell};
use std::panic::Location;

thread_local! {
    /// The guards still attached on this thread, oldest first: the identity of the scope each
    /// attached, and where it was created.
    static ATTACHED: RefCell<Vec<(u64, &'static Location<'static>)>> =
        const { RefCell::new(Vec::new()) };
    /// A misuse seen and not yet reported, nor yet handed to the scope it happened in.
    static VIOLATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// How many of the guards attached were so before the innermost install still running
    /// began: one of them dropped inside it is dropped out of order.
    static BEFORE_INSTALL: Cell<usize> = const { Cell::new(0) };
}

/// What an install must find again when it ends: see [`depth`].
#[derive(Clone, Copy)]
pub(crate) struct Depth {
    attached: usize,
    before_outer_install: usize,
}

/// Records a new guard, which attached the scope `scope`.
pub(crate) fn attached(scope: u64, created_at: &'static Location<'static>) {
    report(&mut None);
    ATTACHED.with(|attached| attached.borrow_mut().push((scope, created_at)));
}

/// Checks that the guard that attached `scope` is the newest still attached, and forgets it.
/// A guard already forgotten was reported when the poll or closure that made it ended.
pub(crate) fn detached(scope: u64) {
    let _ = ATTACHED.try_with(|attached| {
        let mut attached = attached.borrow_mut();
        let Some(position) = attached.iter().rposition(|(id, _)| *id == scope) else {
            return;
        };
        if position < BEFORE_INSTALL.get() {
            note(format!(
                "ctxflow strict: the context guard created at {} was dropped inside a poll or \
                 closure that installed another context after it (a `run`, `sync_scope` or \
                 `wrap` closure, or a future in a context of its own): a guard must be dropped \
                 where it was attached",
                attached[position].1,
            ));
        } else if position + 1 < attached.len() {
            note(format!(
                "ctxflow strict: the context guard created at {} was dropped while guards \
                 created after it were still attached (created at {}): guards must be dropped \
                 in reverse order, and never leaked with mem::forget",
                attached[position].1,
                list(&attached[position + 1..]),
            ));
        }
        attached.remove(position);
    });
}

/// How many guards are attached, as an install begins: what it must leave as it found.
pub(crate) fn depth() -> Depth {
    let attached = ATTACHED.with(|attached| attached.borrow().len());
    Depth {
        attached,
        before_outer_install: BEFORE_INSTALL.replace(attached),
    }
}

/// Checks that no guard created since `depth` outlives the poll or closure that made it, and
/// hands what was seen meanwhile to the scope that was installed, `violation`: it is reported
/// when that scope is next installed, in the task that misused its guard.
pub(crate) fn leave(depth: Depth, violation: &mut Option<String>) {
    let _ = ATTACHED.try_with(|attached| {
        let mut attached = attached.borrow_mut();
        if attached.len() > depth.attached {
            note(format!(
                "ctxflow strict: the context guard created at {} was still attached when the \
                 poll or closure that created it ended (held across an await, or leaked with \
                 mem::forget)",
                list(&attached[depth.attached..]),
            ));
            attached.truncate(depth.attached);
        }
        // Fewer, if a guard attached before this install was dropped inside it.
        let _ = BEFORE_INSTALL
            .try_with(|before| before.set(depth.before_outer_install.min(attached.len())));
    });
    if let Ok(Some(seen)) = VIOLATION.try_with(|noted| noted.borrow_mut().take()) {
        violation.get_or_insert(seen);
    }
}

/// Panics with the misuse seen while `violation`'s scope was last installed, or else with one
/// seen on this thread outside any scope; not while unwinding, where a second panic would
/// abort.
pub(crate) fn report(violation: &mut Option<String>) {
    if std::thread::panicking() {
        return;
    }
    let seen = violation
        .take()
        .or_else(|| VIOLATION.with(|noted| noted.borrow_mut().take()));
    if let Some(seen) = seen {
        panic!("{seen}");
    }
}

/// Takes the misuse of a scope that is dropped before it could be reported (a closure's, which
/// is never installed again): it is reported at the next install on this thread.
pub(crate) fn unreported(violation: Option<String>) {
    if let Some(violation) = violation {
        note(violation);
    }
}

fn note(violation: String) {
    let _ = VIOLATION.try_with(|slot| {
        slot.borrow_mut().get_or_insert(violation);
    });
}

fn list(locations: &[(u64, &'static Location<'static>)]) -> String {
    locations
        .iter()
        .map(|(_, location)| location.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
