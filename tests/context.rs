//! The semantics of snapshots, variables and the per-poll wrapper, runtime-free.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use common::{poll_once, yield_now, Counted, DropProbe};
use ctxflow::context::ResetError;
use ctxflow::{preserve_context, Context, ContextVar, InContext};
use futures::executor::block_on;
use futures::StreamExt;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
static STEP: ContextVar<u32> = ContextVar::new("step");

fn request_id() -> Option<String> {
    REQUEST_ID.get()
}

mod snapshots {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn snapshots_taken_earlier_never_change() {
        let _a = REQUEST_ID.set("first".into());
        let earlier = Context::current();
        let _b = REQUEST_ID.set("second".into());
        let _c = USER_ID.set(1);

        assert_eq!(earlier.get(&REQUEST_ID).map(String::as_str), Some("first"));
        assert_eq!(earlier.get(&USER_ID), None);
        assert_eq!(earlier.len(), 1);
        assert_eq!(request_id().as_deref(), Some("second"));
    }

    #[test]
    fn a_snapshot_is_the_same_table_not_a_copy() {
        let _a = USER_ID.set(1);
        assert!(Context::ptr_eq(&Context::current(), &Context::current()));
    }

    #[test]
    fn with_value_and_without_build_new_snapshots() {
        let base = Context::empty().with_value(&USER_ID, 1);
        let more = base.with_value(&STEP, 2).with_value(&USER_ID, 3);
        let less = more.without(&USER_ID);

        assert_eq!(base.get(&USER_ID), Some(&1));
        assert_eq!(base.get(&STEP), None);
        assert_eq!((more.get(&USER_ID), more.get(&STEP)), (Some(&3), Some(&2)));
        assert_eq!((less.get(&USER_ID), less.get(&STEP)), (None, Some(&2)));
        assert!(less.without(&STEP).is_empty());
    }

    #[test]
    fn many_variables_are_found_at_any_size() {
        static VARS: [ContextVar<usize>; 64] = [const { ContextVar::new("many") }; 64];
        let mut cx = Context::empty();
        for (i, var) in VARS.iter().enumerate().rev() {
            cx = cx.with_value(var, i);
        }
        assert_eq!(cx.len(), 64);
        for (i, var) in VARS.iter().enumerate() {
            assert_eq!(cx.get(var), Some(&i));
        }
        let fewer = cx.without(&VARS[10]);
        assert_eq!(fewer.len(), 63);
        assert_eq!(fewer.get(&VARS[10]), None);
        assert_eq!(fewer.get(&VARS[11]), Some(&11));
    }

    static FLOWING: [ContextVar<u32>; 12] = [const { ContextVar::new("flowing") }; 12];
    static LOCAL: [ContextVar<u32>; 4] = [const { ContextVar::non_flowing("local") }; 4];

    fn table_var(index: usize) -> &'static ContextVar<u32> {
        FLOWING
            .get(index)
            .unwrap_or_else(|| &LOCAL[index - FLOWING.len()])
    }

    #[derive(Clone, Debug)]
    enum TableEdit {
        Set(usize, u32),
        Unset(usize),
    }

    fn table_edit() -> impl Strategy<Value = TableEdit> {
        let vars = 0..FLOWING.len() + LOCAL.len();
        prop_oneof![
            2 => (vars.clone(), any::<u32>()).prop_map(|(var, value)| TableEdit::Set(var, value)),
            1 => vars.prop_map(TableEdit::Unset),
        ]
    }

    fn assert_reads_as(cx: &Context, expected: &BTreeMap<usize, u32>) {
        assert_eq!(cx.len(), expected.len());
        assert_eq!(cx.is_empty(), expected.is_empty());
        assert_eq!(cx.names().count(), expected.len());
        for var in 0..FLOWING.len() + LOCAL.len() {
            assert_eq!(cx.get(table_var(var)), expected.get(&var), "variable {var}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // A shrunk failure belongs in this file as a regular test, not in a side file.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        // Tables grow past eight variables and shrink back below, through every size, so each
        // edit and read runs on both layouts and across the change between them.
        #[test]
        fn snapshots_of_any_size_read_like_a_map(edits in vec(table_edit(), 0..48)) {
            let mut cx = Context::empty();
            let mut expected = BTreeMap::new();
            let mut earlier = Vec::new();
            for edit in edits {
                earlier.push((cx.clone(), expected.clone()));
                match edit {
                    TableEdit::Set(var, value) => {
                        cx = cx.with_value(table_var(var), value);
                        expected.insert(var, value);
                    }
                    TableEdit::Unset(var) => {
                        cx = cx.without(table_var(var));
                        expected.remove(&var);
                    }
                }
                assert_reads_as(&cx, &expected);
                let mut flowing = expected.clone();
                flowing.retain(|var, _| *var < FLOWING.len());
                assert_reads_as(&cx.run(Context::inheritable), &flowing);
            }
            for (cx, expected) in &earlier {
                assert_reads_as(cx, expected);
            }
        }
    }

    #[test]
    fn debug_output_names_the_variables_set() {
        let cx = Context::empty()
            .with_value(&REQUEST_ID, "secret".into())
            .with_value(&USER_ID, 7);
        let shown = format!("{cx:?}");
        assert!(
            shown.contains("request_id") && shown.contains("user_id"),
            "{shown}"
        );
        assert!(
            !shown.contains("secret"),
            "values stay out of Debug: {shown}"
        );
        assert_eq!(format!("{:?}", Context::default()), "Context { vars: [] }");
    }

    #[test]
    fn values_are_dropped_with_the_last_snapshot_holding_them() {
        static HELD: ContextVar<Counted> = ContextVar::new("held");
        let alive = Arc::new(AtomicUsize::new(0));

        let first = Context::empty().with_value(&HELD, Counted::new(&alive));
        let second = first.with_value(&USER_ID, 1);
        let third = second.clone();
        assert_eq!(alive.load(Ordering::SeqCst), 1, "shared, never copied");

        drop(first);
        drop(second);
        assert_eq!(alive.load(Ordering::SeqCst), 1);
        drop(third);
        assert_eq!(alive.load(Ordering::SeqCst), 0);

        let token = Context::empty().run(|| HELD.set(Counted::new(&alive)));
        drop(token);
        assert_eq!(
            alive.load(Ordering::SeqCst),
            0,
            "nothing kept after the run"
        );
    }
}

mod variables {
    use super::*;

    #[test]
    fn get_with_and_is_set_read_the_current_context() {
        assert_eq!(request_id(), None);
        assert!(!REQUEST_ID.is_set());
        assert_eq!(REQUEST_ID.with(|v| v.cloned()), None);

        let _token = REQUEST_ID.set("req-123".into());
        assert_eq!(request_id().as_deref(), Some("req-123"));
        assert!(REQUEST_ID.is_set());
        assert_eq!(REQUEST_ID.with(|v| v.map(String::len)), Some(7));
    }

    #[test]
    fn with_lets_the_callback_change_the_context() {
        let _token = STEP.set(1);
        let seen = STEP.with(|step| {
            let _inner = STEP.set(2);
            (step.copied(), STEP.get())
        });
        assert_eq!(seen, (Some(1), Some(2)));
    }

    #[test]
    fn reset_restores_the_previous_value_or_its_absence() {
        let first = STEP.set(1);
        let second = STEP.set(2);
        assert_eq!(second.old_value(), Some(&1));
        STEP.reset(second).unwrap();
        assert_eq!(STEP.get(), Some(1));
        STEP.reset(first).unwrap();
        assert_eq!(STEP.get(), None);
        assert!(Context::current().is_empty());
    }

    #[test]
    fn reset_keeps_snapshots_taken_in_between() {
        let token = STEP.set(1);
        let snapshot = Context::current();
        STEP.reset(token).unwrap();
        assert_eq!(snapshot.get(&STEP), Some(&1));
        assert_eq!(STEP.get(), None);
    }

    #[test]
    fn reset_with_another_variables_token_fails_and_changes_nothing() {
        static OTHER: ContextVar<u32> = ContextVar::new("other");
        let token = STEP.set(5);
        let error = OTHER.reset(token).unwrap_err();
        assert_eq!(
            error,
            ResetError::OtherVariable {
                token: "step",
                var: "other"
            }
        );
        assert_eq!(
            error.to_string(),
            "cannot reset context variable `other` with a token issued by `step`"
        );
        assert_eq!(STEP.get(), Some(5));
    }

    #[test]
    fn reset_in_another_context_fails_and_changes_nothing() {
        let token = Context::empty().run(|| STEP.set(1));
        let _outer = STEP.set(2);
        let error = STEP.reset(token).unwrap_err();
        assert_eq!(error, ResetError::OtherContext { var: "step" });
        assert!(error.to_string().contains("different context"), "{error}");
        assert_eq!(STEP.get(), Some(2));
    }

    #[test]
    fn a_token_cannot_be_reset_inside_a_task_it_was_not_issued_in() {
        let token = STEP.set(1);
        let outcome = block_on(async move { STEP.reset(token) }.in_current_context());
        assert!(matches!(outcome, Err(ResetError::OtherContext { .. })));
        assert_eq!(STEP.get(), Some(1));
    }

    #[test]
    fn a_token_issued_in_a_task_resets_in_a_later_poll_of_that_task() {
        let outcome = block_on(
            async {
                let token = STEP.set(9);
                yield_now().await;
                STEP.reset(token).map(|()| STEP.get())
            }
            .in_context(Context::empty()),
        );
        assert_eq!(outcome, Ok(None));
    }

    #[test]
    fn sync_scope_sets_the_value_for_the_closure_only() {
        let _token = STEP.set(1);
        assert_eq!(STEP.sync_scope(2, || STEP.get()), Some(2));
        assert_eq!(STEP.get(), Some(1));
    }

    #[test]
    fn scope_sets_the_value_for_the_future_only() {
        let future = STEP.scope(3, async {
            yield_now().await;
            STEP.get()
        });
        assert_eq!(STEP.get(), None);
        assert_eq!(block_on(future), Some(3));
    }

    #[test]
    fn attach_makes_a_snapshot_current_until_the_guard_drops() {
        let _token = STEP.set(1);
        let cx = Context::empty().with_value(&USER_ID, 5);
        {
            let _guard = cx.attach();
            assert_eq!((STEP.get(), USER_ID.get()), (None, Some(5)));
            let _inner = STEP.set(7);
        }
        assert_eq!((STEP.get(), USER_ID.get()), (Some(1), None));
    }
}

mod closures {
    use super::*;

    #[test]
    fn run_installs_the_snapshot_and_changes_do_not_escape() {
        let _token = STEP.set(1);
        let cx = Context::empty().with_value(&REQUEST_ID, "inside".into());
        let seen = cx.run(|| {
            let _token = STEP.set(2);
            (request_id(), STEP.get())
        });
        assert_eq!(seen, (Some("inside".to_string()), Some(2)));
        assert_eq!((request_id(), STEP.get()), (None, Some(1)));
        assert_eq!(cx.get(&STEP), None);
    }

    #[test]
    fn run_restores_the_callers_context_when_the_closure_panics() {
        let _token = STEP.set(1);
        let outcome = panic::catch_unwind(|| {
            Context::empty().run(|| {
                let _token = STEP.set(2);
                panic!("boom");
            })
        });
        assert!(outcome.is_err());
        assert_eq!(STEP.get(), Some(1));
    }

    #[test]
    fn sync_scope_restores_the_callers_context_when_the_closure_panics() {
        let outcome = panic::catch_unwind(|| STEP.sync_scope(3, || panic!("boom")));
        assert!(outcome.is_err());
        assert_eq!(STEP.get(), None);
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread, with the context carried by `wrap` alone"
    )]
    #[test]
    fn wrap_carries_the_snapshot_to_another_thread() {
        let _token = REQUEST_ID.set("req-456".into());
        let job = Context::current().wrap(request_id);
        let seen = std::thread::spawn(job).join().unwrap();
        assert_eq!(seen.as_deref(), Some("req-456"));
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the pool's workers are plain threads: what they see is the subject"
    )]
    #[test]
    fn a_thread_pool_worker_returns_to_its_own_context_between_jobs() {
        let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            for job in queue {
                let _ = panic::catch_unwind(AssertUnwindSafe(job));
                seen_tx.send(request_id()).unwrap();
            }
        });
        for id in ["a", "b"] {
            let _token = REQUEST_ID.set(id.into());
            jobs.send(Box::new(Context::current().wrap(|| panic!("job fails"))))
                .unwrap();
        }
        drop(jobs);
        worker.join().unwrap();
        assert_eq!(seen.iter().collect::<Vec<_>>(), [None, None]);
    }
}

mod futures_in_context {
    use super::*;

    #[test]
    fn the_snapshot_is_installed_around_every_poll() {
        let cx = Context::empty().with_value(&REQUEST_ID, "req-1".into());
        let mut future = pin!(async {
            let mut seen = vec![request_id()];
            for _ in 0..3 {
                yield_now().await;
                seen.push(request_id());
            }
            seen
        }
        .in_context(cx));
        let _poller = REQUEST_ID.set("poller".into());
        let seen = loop {
            match poll_once(future.as_mut()) {
                Poll::Ready(seen) => break seen,
                Poll::Pending => assert_eq!(request_id().as_deref(), Some("poller")),
            }
        };
        assert_eq!(seen, vec![Some("req-1".to_string()); 4]);
    }

    #[test]
    fn writes_in_one_poll_are_there_at_the_next_and_never_reach_the_poller() {
        let mut future = pin!(async {
            let _token = STEP.set(1);
            yield_now().await;
            let after_yield = STEP.get();
            let _token = STEP.set(2);
            yield_now().await;
            (after_yield, STEP.get())
        }
        .in_context(Context::empty()));
        assert!(poll_once(future.as_mut()).is_pending());
        assert_eq!(STEP.get(), None);
        assert!(poll_once(future.as_mut()).is_pending());
        assert_eq!(STEP.get(), None);
        assert_eq!(future.context().get(&STEP), Some(&2));
        assert_eq!(poll_once(future.as_mut()), Poll::Ready((Some(1), Some(2))));
    }

    #[test]
    fn the_pollers_context_is_restored_when_a_poll_panics() {
        let _token = STEP.set(1);
        let mut future = Box::pin(
            async {
                let _token = STEP.set(2);
                panic!("poll fails");
            }
            .in_context(Context::empty()),
        );
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| poll_once(future.as_mut())));
        assert!(outcome.is_err());
        assert_eq!(STEP.get(), Some(1));
    }

    #[test]
    fn the_inner_future_is_dropped_inside_its_context() {
        let (probe, seen) = DropProbe::new(request_id);
        let cx = Context::empty().with_value(&REQUEST_ID, "req-drop".into());
        let mut future = Box::pin(
            async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            }
            .in_context(cx),
        );
        assert!(poll_once(future.as_mut()).is_pending());
        let _poller = REQUEST_ID.set("poller".into());
        drop(future);
        assert_eq!(*seen.lock().unwrap(), [Some("req-drop".to_string())]);
        assert_eq!(request_id().as_deref(), Some("poller"));
    }

    #[test]
    fn a_never_polled_future_is_dropped_inside_its_context_too() {
        let (probe, seen) = DropProbe::new(request_id);
        let cx = Context::empty().with_value(&REQUEST_ID, "req-unpolled".into());
        drop(probe.in_context(cx));
        assert_eq!(*seen.lock().unwrap(), [Some("req-unpolled".to_string())]);
    }

    #[test]
    fn streams_produce_each_item_inside_their_context() {
        let cx = Context::empty().with_value(&USER_ID, 789);
        let stream = futures::stream::iter(0..3)
            .then(|i| async move { (i, USER_ID.get()) })
            .in_context(cx);
        let items = block_on(stream.collect::<Vec<_>>());
        assert_eq!(items, [(0, Some(789)), (1, Some(789)), (2, Some(789))]);
        assert_eq!(USER_ID.get(), None);
    }

    #[test]
    fn nested_wrappers_each_see_their_own_snapshot() {
        let outer = Context::empty().with_value(&STEP, 1);
        let inner = Context::empty().with_value(&STEP, 2);
        let seen = block_on(
            async move {
                let before = STEP.get();
                let nested = async {
                    yield_now().await;
                    STEP.get()
                }
                .in_context(inner)
                .await;
                yield_now().await;
                (before, nested, STEP.get())
            }
            .in_context(outer),
        );
        assert_eq!(seen, (Some(1), Some(2), Some(1)));
    }

    #[test]
    fn joined_futures_with_different_snapshots_each_see_their_own_at_every_poll() {
        let each = |id: u32| {
            async move {
                let mut seen = Vec::new();
                for _ in 0..5 {
                    seen.push(STEP.get());
                    yield_now().await;
                }
                seen.into_iter().all(|step| step == Some(id))
            }
            .in_context(Context::empty().with_value(&STEP, id))
        };
        let all_own = block_on(async { futures::join!(each(1), each(2), each(3)) });
        assert_eq!(all_own, (true, true, true));
    }

    #[test]
    fn wrapped_code_is_immune_to_what_unwrapped_code_sets() {
        let cx = Context::empty().with_value(&STEP, 1);
        let mut future = pin!(async {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(STEP.get());
                yield_now().await;
            }
            seen
        }
        .in_context(cx));
        let mut tokens = Vec::new();
        let seen = loop {
            tokens.push(STEP.set(100 + tokens.len() as u32));
            let _guard = Context::empty().with_value(&STEP, 50).attach();
            if let Poll::Ready(seen) = poll_once(future.as_mut()) {
                break seen;
            }
        };
        assert_eq!(seen, [Some(1); 3]);
    }

    #[test]
    fn preserve_context_binds_the_context_where_it_is_called() {
        async fn worker() -> Option<u64> {
            USER_ID.get()
        }
        let workers = USER_ID.sync_scope(789, || {
            (preserve_context(worker()), worker().in_current_context())
        });
        let seen = block_on(async { futures::join!(workers.0, workers.1) });
        assert_eq!(seen, (Some(789), Some(789)));
    }

    #[test]
    fn accessors_expose_the_inner_value_and_context() {
        let cx = Context::empty().with_value(&STEP, 4);
        let mut wrapped = vec![1, 2].in_context(cx.clone());
        assert!(Context::ptr_eq(wrapped.context(), &cx));
        wrapped.inner_mut().push(3);
        assert_eq!(wrapped.inner(), &[1, 2, 3]);
        assert_eq!(wrapped.into_inner(), [1, 2, 3]);
    }
}

/// A value released by its token has its `Drop` run in a scope of its own: a token it makes is
/// another scope's, which the caller refuses, and the caller's value stays.
#[test]
fn a_token_made_by_a_released_values_drop_is_refused_by_the_caller() {
    use std::sync::Mutex;

    static STASH: Mutex<Option<ctxflow::context::Token<u64>>> = Mutex::new(None);
    static HELD: ContextVar<SetsOnDrop> = ContextVar::new("held");

    struct SetsOnDrop;
    impl Drop for SetsOnDrop {
        fn drop(&mut self) {
            *STASH.lock().unwrap() = Some(USER_ID.set(42));
        }
    }

    Context::empty().run(|| {
        let _user = USER_ID.set(1);
        let token = HELD.set(SetsOnDrop);
        HELD.reset(token).unwrap();
        let made_in_the_drop = STASH.lock().unwrap().take().unwrap();
        assert_eq!(
            USER_ID.reset(made_in_the_drop),
            Err(ResetError::OtherContext { var: "user_id" })
        );
        assert_eq!(USER_ID.get(), Some(1));
    });
}

/// A guard attached inside a `run` and dropped after it leaves the context it replaced (the
/// closure's) with the thread, to be put back when the guard's own context comes back, which
/// here it never does: a value of it whose `Drop` panics is dropped as the thread exits, and
/// the process goes on.
#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "a plain thread, whose exit releases what its own context holds"
)]
fn a_value_left_by_a_guard_dropped_out_of_place_does_not_abort_the_thread_exit() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("the value's drop fails");
        }
    }
    static HELD: ContextVar<PanicsOnDrop> = ContextVar::new("held");

    let exited = std::thread::spawn(|| {
        let guard = Context::empty().run(|| {
            std::mem::forget(HELD.set(PanicsOnDrop));
            Context::empty().attach()
        });
        drop(guard);
        assert!(!HELD.is_set());
    })
    .join();
    assert!(exited.is_ok());
}
