//! Strict mode reports misused context guards, naming where they were created.
#![cfg(feature = "strict")]

mod common;

use std::panic::{self, AssertUnwindSafe};

use common::{poll_once, yield_now, DropProbe};
use ctxflow::{Context, ContextVar, InContext};
use futures::executor::block_on;

static STEP: ContextVar<u32> = ContextVar::new("step");

fn panic_message(outcome: std::thread::Result<()>) -> String {
    let payload = outcome.expect_err("strict mode should have panicked");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().unwrap().to_string(),
    }
}

fn next_install() -> std::thread::Result<()> {
    panic::catch_unwind(|| Context::empty().run(|| ()))
}

#[test]
fn guards_dropped_out_of_order_are_reported_at_the_next_install() {
    let first = Context::empty().with_value(&STEP, 1).attach();
    let line = line!() - 1;
    let second = Context::empty().with_value(&STEP, 2).attach();
    drop(first);
    drop(second);
    let message = panic_message(next_install());
    assert!(message.contains("reverse order"), "{message}");
    assert!(
        message.contains(&format!("tests/strict.rs:{line}")),
        "{message}"
    );
    assert!(next_install().is_ok(), "reported once");
}

#[test]
fn a_leaked_guard_is_reported_when_its_closure_ends() {
    Context::empty().run(|| {
        std::mem::forget(Context::empty().with_value(&STEP, 1).attach());
    });
    let line = line!() - 2;
    let message = panic_message(next_install());
    assert!(
        message.contains("still attached when the poll or closure"),
        "{message}"
    );
    assert!(
        message.contains(&format!("tests/strict.rs:{line}")),
        "{message}"
    );
}

#[test]
fn a_guard_held_across_an_await_is_reported_at_the_next_poll() {
    let future = async {
        let _guard = Context::empty().with_value(&STEP, 9).attach();
        yield_now().await;
    }
    .in_context(Context::empty());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| block_on(future)));
    let message = panic_message(outcome);
    assert!(message.contains("held across an await"), "{message}");
}

#[test]
fn guards_used_correctly_are_never_reported() {
    let outer = Context::empty().with_value(&STEP, 1).attach();
    {
        let _inner = Context::empty().with_value(&STEP, 2).attach();
        assert_eq!(STEP.get(), Some(2));
        let seen = block_on(
            async {
                let _in_poll = Context::empty().with_value(&STEP, 3).attach();
                STEP.get()
            }
            .in_current_context(),
        );
        assert_eq!(seen, Some(3));
    }
    assert_eq!(STEP.get(), Some(1));
    drop(outer);
    assert!(next_install().is_ok());
    assert_eq!(STEP.get(), None);
}

/// A misuse reported as a future is dropped: the future is still dropped inside its context,
/// then the report follows.
#[test]
fn a_misuse_reported_at_a_futures_drop_still_drops_it_inside_its_context() {
    let (probe, seen) = DropProbe::new(|| STEP.get());
    let mut future = Box::pin(
        async move {
            let _probe = probe;
            let _guard = Context::empty().with_value(&STEP, 9).attach();
            yield_now().await;
        }
        .in_context(Context::empty().with_value(&STEP, 1)),
    );
    assert!(poll_once(future.as_mut()).is_pending());
    let message = panic_message(panic::catch_unwind(AssertUnwindSafe(|| drop(future))));
    assert!(message.contains("held across an await"), "{message}");
    assert_eq!(*seen.lock().unwrap(), [Some(1)]);
    assert_eq!(STEP.get(), None);
    assert!(next_install().is_ok(), "reported once");
}

/// A future dropped while its thread unwinds cannot report a misuse then: it is reported at
/// the next install instead of being lost.
#[test]
fn a_misuse_in_a_future_dropped_while_its_thread_unwinds_is_reported_at_the_next_install() {
    let mut future = Box::pin(
        async {
            let _guard = Context::empty().with_value(&STEP, 9).attach();
            yield_now().await;
        }
        .in_context(Context::empty()),
    );
    assert!(poll_once(future.as_mut()).is_pending());
    let unrelated = panic::catch_unwind(AssertUnwindSafe(move || {
        let _dropped_while_unwinding = future;
        panic!("unrelated");
    }));
    assert_eq!(panic_message(unrelated), "unrelated");
    let message = panic_message(next_install());
    assert!(message.contains("held across an await"), "{message}");
}

/// A guard made outside a closure and dropped inside it is dropped out of order: the closure's
/// own context was attached after it.
#[test]
fn a_guard_dropped_inside_a_nested_closure_is_reported_naming_where_it_was_made() {
    let guard = Context::empty().with_value(&STEP, 1).attach();
    let line = line!() - 1;
    Context::empty().run(move || drop(guard));
    let message = panic_message(next_install());
    assert!(message.contains("inside a poll or closure"), "{message}");
    assert!(
        message.contains(&format!("tests/strict.rs:{line}")),
        "{message}"
    );
    assert_eq!(STEP.get(), None);
    assert!(next_install().is_ok(), "reported once");
}

#[cfg(feature = "testing")]
mod local_tasks {
    use super::*;
    use ctxflow::LocalSpawner;
    use futures::channel::oneshot;

    ctxflow::testing::each_local_runtime! {
        fn a_guard_held_across_an_await_is_reported_in_its_own_task_naming_where_it_was_made(local) {
            let (held, on_held) = oneshot::channel();
            let misuser = local.spawn_local(async move {
                let _guard = Context::empty().with_value(&STEP, 1).attach();
                held.send(()).unwrap();
                yield_now().await;
            });
            let line = line!() - 4;
            on_held.await.unwrap();
            let bystander = local.spawn_local(async {
                yield_now().await;
                STEP.get()
            });
            assert_eq!(
                bystander.await.unwrap(),
                None,
                "the bystander is not blamed"
            );
            let message = misuser.await.unwrap_err().to_string();
            assert!(message.contains("held across an await"), "{message}");
            assert!(
                message.contains(&format!("tests/strict.rs:{line}")),
                "{message}"
            );
            assert!(Context::empty().run(|| true), "reported once, in its task");
        }
    }
}
