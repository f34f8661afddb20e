//! What the shared local conformance suite cannot see: both of compio's drivers, its blocking
//! pool, and a runtime dropped with tasks still pending.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use compio::driver::{DriverType, ProactorBuilder};
use compio::runtime::Runtime;
use ctxflow::compio::CompioLocalSpawner;
use ctxflow::{ContextVar, LocalSpawner};
use futures::channel::oneshot;
use futures::FutureExt;

static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");

/// A runtime on the polling driver, which compio falls back to where io_uring is refused.
fn polling_runtime() -> Runtime {
    let mut proactor = ProactorBuilder::new();
    proactor.driver_type(DriverType::Poll);
    Runtime::builder()
        .with_proactor(proactor)
        .build()
        .expect("start a compio runtime on its polling driver")
}

/// A runtime on whichever driver compio chooses: io_uring where the kernel allows it.
fn default_runtime() -> Runtime {
    Runtime::new().expect("start a compio runtime")
}

/// Tasks, blocking closures and timers, each checked for the caller's request id.
async fn everything_sees_the_request_id() {
    let _token = REQUEST_ID.set("req-driver");
    let not_send = Rc::new(RefCell::new(Vec::new()));
    let seen = not_send.clone();
    let task = CompioLocalSpawner.spawn_local(async move {
        ctxflow::time::sleep(Duration::from_millis(1)).await;
        seen.borrow_mut().push(REQUEST_ID.get());
        ctxflow::yield_now().await;
        REQUEST_ID.get()
    });
    let blocking = CompioLocalSpawner.spawn_blocking(|| REQUEST_ID.get());
    assert_eq!(task.await.unwrap(), Some("req-driver"));
    assert_eq!(blocking.await.unwrap(), Some("req-driver"));
    assert_eq!(*not_send.borrow(), [Some("req-driver")]);
    assert_eq!(REQUEST_ID.get(), Some("req-driver"));
}

#[test]
fn tasks_blocking_closures_and_timers_keep_the_context_on_the_polling_driver() {
    let runtime = polling_runtime();
    assert_eq!(runtime.driver_type(), DriverType::Poll);
    runtime.block_on(everything_sees_the_request_id());
}

#[test]
fn tasks_blocking_closures_and_timers_keep_the_context_on_the_driver_compio_chooses() {
    default_runtime().block_on(everything_sees_the_request_id());
}

#[test]
fn a_panicking_blocking_closure_gives_a_panic_join_error_and_the_pool_keeps_serving() {
    default_runtime().block_on(async {
        let failed = CompioLocalSpawner.spawn_blocking(|| -> u32 { panic!("blocking failure") });
        assert_eq!(
            failed.await.unwrap_err().to_string(),
            "task panicked: blocking failure"
        );
        assert_eq!(CompioLocalSpawner.spawn_blocking(|| 2).await.unwrap(), 2);
    });
}

#[test]
fn a_blocking_closure_in_a_given_context_sees_that_context_not_the_callers() {
    default_runtime().block_on(async {
        let _token = REQUEST_ID.set("caller");
        let given = ctxflow::Context::empty().with_value(&REQUEST_ID, "given");
        let closure = CompioLocalSpawner.spawn_blocking_in(given, || REQUEST_ID.get());
        assert_eq!(closure.await.unwrap(), Some("given"));
    });
}

#[test]
fn blocking_closures_leave_nothing_on_the_pool_threads() {
    #[allow(
        clippy::disallowed_methods,
        reason = "a raw closure on compio's pool, to see what a pool thread holds"
    )]
    fn raw_request_id() -> compio::runtime::JoinHandle<Option<&'static str>> {
        compio::runtime::spawn_blocking(|| REQUEST_ID.get())
    }
    default_runtime().block_on(async {
        // One closure at a time, so that the pool keeps reusing the thread it has.
        for _ in 0..20 {
            let _token = REQUEST_ID.set("req-pool");
            let closure = CompioLocalSpawner.spawn_blocking(|| REQUEST_ID.get());
            assert_eq!(closure.await.unwrap(), Some("req-pool"));
        }
        for _ in 0..20 {
            assert_eq!(raw_request_id().await.unwrap(), None);
        }
    });
}

/// The spawner holds no runtime, so a pending task keeps none alive: dropping the runtime drops
/// the task, inside its context, and its handle reports it cancelled.
#[test]
fn dropping_the_runtime_drops_its_pending_tasks_inside_their_contexts() {
    struct Probe(Option<oneshot::Sender<Option<&'static str>>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(REQUEST_ID.get());
        }
    }

    let runtime = default_runtime();
    let (dropped, dropped_in) = oneshot::channel();
    let (started, on_start) = oneshot::channel();
    #[allow(
        clippy::async_yields_async,
        reason = "the handle is read once the runtime is gone"
    )]
    let pending = runtime.block_on(async {
        let _token = REQUEST_ID.set("req-pending");
        let probe = Probe(Some(dropped));
        let pending = CompioLocalSpawner.spawn_local(async move {
            let _probe = probe;
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        on_start.await.unwrap();
        pending
    });
    drop(runtime);
    let mut dropped_in = dropped_in;
    assert_eq!(
        dropped_in.try_recv(),
        Ok(Some(Some("req-pending"))),
        "dropped with the runtime, inside its context"
    );
    let outcome = pending
        .now_or_never()
        .expect("reported when the runtime went");
    assert!(outcome.unwrap_err().is_cancelled());
}

#[test]
#[should_panic(expected = "not in a compio runtime")]
fn spawning_outside_a_compio_runtime_panics_with_compios_message() {
    let _handle = CompioLocalSpawner.spawn_local(async {});
}

#[test]
#[should_panic(expected = "not in a compio runtime")]
fn a_blocking_closure_outside_a_compio_runtime_panics_with_compios_message() {
    let _handle = CompioLocalSpawner.spawn_blocking(|| ());
}
