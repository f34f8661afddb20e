//! Strict mode (feature `strict`): misused [`ContextGuard`](crate::ContextGuard)s are reported.
//!
//! A guard from [`Context::attach`](crate::Context::attach) must be dropped in the reverse order
//! of creation, on its own thread (its type is not `Send`, so the compiler checks that part),
//! and not held past the end of the poll that created it. A guard dropped out of order, leaked
//! with `mem::forget` or still attached when its poll ends leaves the thread in the wrong
//! context. In strict mode each such misuse is noted when it happens and reported by a panic at
//! the next install of a context on that thread, naming where the guard was created, like
//! OpenTelemetry Java's strict context storage. Off, none of this code exists.

use std::cell::RefCell;
use std::panic::Location;

thread_local! {
    /// Where each guard still attached on this thread was created, oldest first.
    static ATTACHED: RefCell<Vec<&'static Location<'static>>> = const { RefCell::new(Vec::new()) };
    /// A misuse seen and not yet reported.
    static VIOLATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records a new guard; returns its position, which its drop checks.
pub(crate) fn attached(created_at: &'static Location<'static>) -> usize {
    report();
    ATTACHED.with(|attached| {
        let mut attached = attached.borrow_mut();
        attached.push(created_at);
        attached.len() - 1
    })
}

/// Checks that the guard at `position` is the newest still attached, and forgets it.
pub(crate) fn detached(position: usize) {
    let _ = ATTACHED.try_with(|attached| {
        let mut attached = attached.borrow_mut();
        match attached.len().checked_sub(1) {
            Some(newest) if newest == position => {}
            Some(newest) if newest > position => note(format!(
                "ctxflow strict: the context guard created at {} was dropped while guards \
                 created after it were still attached (created at {}): guards must be dropped \
                 in reverse order, and never leaked with mem::forget",
                attached[position],
                list(&attached[position + 1..]),
            )),
            _ => note(format!(
                "ctxflow strict: a context guard was dropped after a guard created before it; \
                 the guards still attached were created at {}",
                list(&attached),
            )),
        }
        attached.truncate(position);
    });
}

/// How many guards are attached: what a poll must leave as it found.
pub(crate) fn depth() -> usize {
    ATTACHED.with(|attached| attached.borrow().len())
}

/// Checks that no guard created since `depth` outlives the poll or closure that made it.
pub(crate) fn leave(depth: usize) {
    let _ = ATTACHED.try_with(|attached| {
        let mut attached = attached.borrow_mut();
        if attached.len() > depth {
            note(format!(
                "ctxflow strict: the context guard created at {} was still attached when the \
                 poll or closure that created it ended (held across an await, or leaked with \
                 mem::forget)",
                list(&attached[depth..]),
            ));
            attached.truncate(depth);
        }
    });
}

/// Panics with the misuse noted since the last install, if any; not while unwinding, where a
/// second panic would abort.
pub(crate) fn report() {
    if std::thread::panicking() {
        return;
    }
    if let Some(violation) = VIOLATION.with(|violation| violation.borrow_mut().take()) {
        panic!("{violation}");
    }
}

fn note(violation: String) {
    let _ = VIOLATION.try_with(|slot| {
        slot.borrow_mut().get_or_insert(violation);
    });
}

fn list(locations: &[&'static Location<'static>]) -> String {
    locations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
