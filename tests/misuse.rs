//! Bad input: foreign tokens, spawning with no runtime, reading what was never set. Each gives
//! its documented answer, and the context is exactly what it was before.
//!
//! (Resetting twice with one token does not compile: see the `compile_fail` example on
//! `ContextVar::reset`, which must fail with E0382, use of a moved value.)

mod common;

use std::panic;

use common::yield_now;
use ctxflow::context::ResetError;
use ctxflow::testing::each_runtime;
use ctxflow::tokio::TokioSpawner;
use ctxflow::{Context, ContextVar, InContext, Spawner};

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
static STEP: ContextVar<u64> = ContextVar::new("step");

fn request_id() -> Option<u64> {
    REQUEST_ID.get()
}

/// Asserts that the current context is still `before`: the same snapshot, not only the same
/// values.
fn assert_unchanged(before: &Context) {
    assert!(
        Context::ptr_eq(&Context::current(), before),
        "the context changed: {:?}",
        Context::current()
    );
}

mod foreign_tokens {
    use super::*;

    #[test]
    fn a_token_of_another_variable_is_refused_and_changes_nothing() {
        let _step = STEP.set(1);
        let token = REQUEST_ID.set(2);
        let before = Context::current();
        let error = STEP.reset(token).unwrap_err();
        assert_eq!(
            error,
            ResetError::OtherVariable {
                token: "request_id",
                var: "step"
            }
        );
        assert_unchanged(&before);
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread, so that the token comes from another context"
    )]
    #[test]
    fn a_token_from_another_thread_is_refused_and_changes_nothing() {
        let token = std::thread::spawn(|| REQUEST_ID.set(1)).join().unwrap();
        let _token = REQUEST_ID.set(2);
        let before = Context::current();
        assert_eq!(
            REQUEST_ID.reset(token),
            Err(ResetError::OtherContext { var: "request_id" })
        );
        assert_unchanged(&before);
        assert_eq!(request_id(), Some(2));
    }

    #[test]
    fn a_token_from_a_finished_run_or_guard_is_refused_and_changes_nothing() {
        let _token = REQUEST_ID.set(1);
        let from_run = Context::current().run(|| REQUEST_ID.set(2));
        let from_guard = {
            let _guard = Context::current().attach();
            REQUEST_ID.set(3)
        };
        let before = Context::current();
        for token in [from_run, from_guard] {
            assert!(matches!(
                REQUEST_ID.reset(token),
                Err(ResetError::OtherContext { .. })
            ));
            assert_unchanged(&before);
        }
        // Not even inside a new run of the same snapshot: a run is a context of its own.
        let token = before.run(|| REQUEST_ID.set(4));
        let refused = before.run(|| REQUEST_ID.reset(token));
        assert!(matches!(refused, Err(ResetError::OtherContext { .. })));
        assert_eq!(request_id(), Some(1));
    }

    #[test]
    fn a_token_from_a_future_is_refused_by_its_poller_and_a_pollers_token_by_the_future() {
        let poller_token = REQUEST_ID.set(1);
        let before = Context::current();
        let (future_token, refused_inside) = futures::executor::block_on(
            async move {
                let own = REQUEST_ID.set(2);
                yield_now().await;
                let inside = Context::current();
                let refused = REQUEST_ID.reset(poller_token);
                let unchanged = Context::ptr_eq(&Context::current(), &inside);
                (own, refused.is_err() && unchanged)
            }
            .in_current_context(),
        );
        assert!(refused_inside);
        assert!(matches!(
            REQUEST_ID.reset(future_token),
            Err(ResetError::OtherContext { .. })
        ));
        assert_unchanged(&before);
        assert_eq!(request_id(), Some(1));
    }

    each_runtime! {
        fn a_token_from_one_task_is_refused_by_another_on_every_runtime(spawner) {
            let issued = spawner.spawn(async {
                let token = REQUEST_ID.set(1);
                yield_now().await;
                token
            });
            let token = issued.await.unwrap();
            let refused = spawner.spawn_in(Context::empty().with_value(&REQUEST_ID, 2), async {
                yield_now().await;
                let before = Context::current();
                let refused = REQUEST_ID.reset(token);
                (
                    refused,
                    Context::ptr_eq(&before, &Context::current()),
                    request_id(),
                )
            });
            let (refused, unchanged, seen) = refused.await.unwrap();
            assert!(matches!(refused, Err(ResetError::OtherContext { .. })));
            assert!(unchanged);
            assert_eq!(seen, Some(2));
        }
    }
}

mod no_runtime {
    use super::*;

    #[test]
    fn asking_for_the_current_tokio_runtime_outside_one_gives_no_runtime() {
        let _token = REQUEST_ID.set(1);
        let before = Context::current();
        let error = TokioSpawner::try_current().unwrap_err();
        assert_eq!(error.runtime(), "tokio");
        assert!(
            error
                .to_string()
                .starts_with("no tokio runtime is running on this thread"),
            "{error}"
        );
        assert_unchanged(&before);
    }

    #[test]
    fn the_panicking_form_names_the_cause_and_leaves_the_context_as_it_was() {
        let _token = REQUEST_ID.set(1);
        let before = Context::current();
        let payload = panic::catch_unwind(TokioSpawner::current).unwrap_err();
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.starts_with("no tokio runtime is running on this thread: spawn from inside"),
            "{message}"
        );
        assert_unchanged(&before);
        // Inside a runtime both work, and the context is carried as usual.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen = runtime.block_on(
            async {
                let spawner = TokioSpawner::try_current().unwrap();
                spawner.spawn(async { request_id() }).await.unwrap()
            }
            .in_current_context(),
        );
        assert_eq!(seen, Some(1));
    }
}

mod unset {
    use super::*;

    static NEVER_SET: ContextVar<String> = ContextVar::new("never_set");

    each_runtime! {
        fn a_variable_never_set_reads_as_absent_everywhere(spawner) {
            let _token = REQUEST_ID.set(1);
            let before = Context::current();
            assert_eq!(NEVER_SET.get(), None);
            assert!(!NEVER_SET.is_set());
            assert_eq!(NEVER_SET.with(|value| value.cloned()), None);
            assert_eq!(before.get(&NEVER_SET), None);
            assert_eq!(Context::empty().get(&NEVER_SET), None);
            assert_eq!(before.without(&NEVER_SET).len(), before.len());
            assert_unchanged(&before);
            let task = spawner.spawn(async { NEVER_SET.get() });
            let closure = spawner.spawn_blocking(|| NEVER_SET.is_set());
            assert_eq!(task.await.unwrap(), None);
            assert!(!closure.await.unwrap());
        }
    }

    #[test]
    fn resetting_the_first_set_makes_the_variable_absent_again() {
        let token = NEVER_SET.set("first".into());
        assert_eq!(token.old_value(), None);
        NEVER_SET.reset(token).unwrap();
        assert_eq!(NEVER_SET.get(), None);
        assert!(Context::current().is_empty(), "no empty entry left behind");
    }
}

mod owned_tokio_runtime {
    use std::sync::mpsc;

    use ctxflow::tokio::TokioSpawner;
    use ctxflow::{AnySpawner, Spawner};
    use tokio::runtime::Builder;
    use tokio::sync::oneshot;

    /// Says on its channel when it is dropped: the task that held it was released.
    struct Held(mpsc::Sender<()>);

    impl Drop for Held {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    /// Spawns a task that holds a value until `wake` is sent or dropped, and returns the
    /// channel that says when the value was released.
    fn park_a_task_holding_a_value(
        spawner: &impl Spawner,
        wake: oneshot::Receiver<()>,
    ) -> mpsc::Receiver<()> {
        let (released, was_released) = mpsc::channel();
        let held = Held(released);
        spawner
            .spawn(async move {
                let _held = held;
                let _ = wake.await;
            })
            .detach();
        was_released
    }

    #[test]
    fn the_last_spawner_owning_its_runtime_can_be_dropped_inside_one_of_that_runtimes_tasks() {
        let runtime = Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let spawner = AnySpawner::new(TokioSpawner::from(runtime));
        let (keep_parked, wake) = oneshot::channel();
        let was_released = park_a_task_holding_a_value(&spawner, wake);

        let app_state = spawner.clone();
        let (go, wait_for_go) = oneshot::channel::<()>();
        let (dropped, was_dropped) = mpsc::channel();
        spawner
            .spawn(async move {
                wait_for_go.await.unwrap();
                drop(app_state);
                dropped.send(()).unwrap();
            })
            .detach();
        drop(spawner);
        go.send(()).unwrap();

        was_dropped
            .recv()
            .expect("dropping the runtime inside its own task panicked");
        was_released
            .recv()
            .expect("the runtime's other task was never dropped");
        drop(keep_parked);
    }

    #[tokio::test]
    async fn a_spawner_owning_a_current_thread_runtime_can_be_dropped_inside_another_runtime() {
        let spawner = TokioSpawner::from(Builder::new_current_thread().build().unwrap());
        let (keep_parked, wake) = oneshot::channel();
        let was_released = park_a_task_holding_a_value(&spawner, wake);

        drop(spawner);

        was_released
            .try_recv()
            .expect("a current-thread runtime drops its tasks as it shuts down");
        drop(keep_parked);
    }
}

mod guards_out_of_order {
    use super::*;

    /// A guard dropped inside a nested install (a `run` or `sync_scope` closure, a future in a
    /// context of its own): the context it replaced comes back once that install ends.
    #[test]
    fn a_guard_dropped_inside_a_nested_install_leaves_the_thread_as_it_was() {
        let nested: [fn(ctxflow::context::ContextGuard); 3] = [
            |guard| Context::empty().run(move || drop(guard)),
            |guard| STEP.sync_scope(5, move || drop(guard)),
            |guard| {
                let future = async move { drop(guard) }.in_context(Context::empty());
                futures::executor::block_on(future);
            },
        ];
        for drop_nested in nested {
            let _token = REQUEST_ID.set(1);
            let before = Context::current();
            let guard = Context::empty().with_value(&REQUEST_ID, 2).attach();
            // In strict mode the misuse is reported as the future drops, or else at the next
            // install.
            let outcome = panic::catch_unwind(panic::AssertUnwindSafe(|| {
                drop_nested(guard);
                Context::empty().run(|| ());
            }));
            assert_eq!(outcome.is_err(), cfg!(feature = "strict"));
            assert_unchanged(&before);
        }
    }

    /// Two installs deep: the context comes back when the outer one ends.
    #[test]
    fn a_guard_dropped_two_installs_deep_leaves_the_thread_as_it_was() {
        let _token = REQUEST_ID.set(1);
        let before = Context::current();
        let guard = Context::empty().with_value(&REQUEST_ID, 2).attach();
        Context::empty().run(|| {
            Context::empty().run(move || drop(guard));
            assert_eq!(request_id(), None, "the outer install is still current");
        });
        assert_unchanged(&before);
        next_install();
    }

    /// Flow suppressed by `suppress_flow` ends with it, also for the caller's context when a
    /// guard attached inside it is dropped after it.
    #[test]
    fn a_guard_attached_inside_suppress_flow_and_dropped_after_it_leaves_flow_as_it_was() {
        let guard = ctxflow::suppress_flow(|| Context::empty().attach());
        assert!(!ctxflow::context::is_flow_suppressed());
        drop(guard);
        assert!(
            !ctxflow::context::is_flow_suppressed(),
            "the caller's context came back suppressed"
        );
        let _token = REQUEST_ID.set(3);
        let inherited = Context::inheritable();
        assert_eq!(inherited.get(&REQUEST_ID), Some(&3));
    }

    /// Inside `suppress_flow`, a guard attached and dropped there leaves the caller suppressed.
    #[test]
    fn a_guard_attached_and_dropped_inside_suppress_flow_leaves_it_suppressed() {
        ctxflow::suppress_flow(|| {
            let guard = Context::empty().attach();
            assert!(
                !ctxflow::context::is_flow_suppressed(),
                "a context of its own"
            );
            drop(guard);
            assert!(ctxflow::context::is_flow_suppressed());
        });
        assert!(!ctxflow::context::is_flow_suppressed());
    }

    /// The next install: in strict mode it reports the misuse, and either way it must leave the
    /// thread's context as it found it.
    fn next_install() {
        let outcome = panic::catch_unwind(|| Context::empty().run(|| ()));
        assert_eq!(outcome.is_err(), cfg!(feature = "strict"));
    }

    #[test]
    fn guards_dropped_out_of_order_leave_the_thread_with_the_context_it_had_before_them() {
        let _token = REQUEST_ID.set(1);
        let before = Context::current();
        let first = Context::empty().with_value(&REQUEST_ID, 2).attach();
        let second = Context::empty().with_value(&REQUEST_ID, 3).attach();
        drop(first);
        assert_eq!(request_id(), Some(3), "the newest guard's context stays");
        drop(second);
        assert_unchanged(&before);
        next_install();
        assert_unchanged(&before);
    }

    #[test]
    fn three_guards_dropped_in_any_order_leave_the_thread_as_it_was() {
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for order in orders {
            let _token = REQUEST_ID.set(1);
            let before = Context::current();
            let mut guards: Vec<_> = (0..3)
                .map(|step| Some(Context::current().with_value(&STEP, step).attach()))
                .collect();
            for index in order {
                drop(guards[index].take());
            }
            assert_unchanged(&before);
            if order != [2, 1, 0] {
                next_install();
            }
            assert_unchanged(&before);
        }
    }
}
