//! Carriers: ambient state kept in a library's own thread-locals flows with the context into
//! every kind of spawned work, on every runtime, and a carrier that panics leaves the thread as
//! it was.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};

use common::{poll_once, yield_now};
use ctxflow::pool::ContextPool;
use ctxflow::testing::{each_local_runtime, each_runtime};
use ctxflow::{
    register_carrier, suppress_flow, Carrier, Context, ContextVar, InContext, LocalSpawner,
    Spawner, TaskGroup,
};

static REQUEST_ID: ContextVar<&'static str> = ContextVar::new("request_id");

thread_local! {
    /// A framework's own thread-local, which knows nothing of ctxflow.
    static TENANT: RefCell<Option<&'static str>> = const { RefCell::new(None) };
    /// Another one, whose carrier is registered after the faulty one.
    static LOCALE: RefCell<Option<&'static str>> = const { RefCell::new(None) };
    /// What the faulty carrier captures: the fault it will show.
    static FAULT: Cell<Fault> = const { Cell::new(Fault::None) };
    /// A thread-local whose carrier does not flow into spawned work.
    static TRANSACTION: Cell<Option<u32>> = const { Cell::new(None) };
    /// Another, whose state counts who holds it.
    static LEASE: RefCell<Option<Arc<u32>>> = const { RefCell::new(None) };
}

fn tenant() -> Option<&'static str> {
    TENANT.with(|tenant| *tenant.borrow())
}

fn locale() -> Option<&'static str> {
    LOCALE.with(|locale| *locale.borrow())
}

/// Runs `f` with the thread's tenant set, as a framework would, and puts the previous back.
fn as_tenant<R>(tenant: &'static str, f: impl FnOnce() -> R) -> R {
    let previous = TENANT.with(|cell| cell.replace(Some(tenant)));
    let output = f();
    TENANT.with(|cell| *cell.borrow_mut() = previous);
    output
}

struct TenantCarrier;

impl Carrier for TenantCarrier {
    type Captured = Option<&'static str>;
    type Saved = Option<&'static str>;
    const NAME: &'static str = "tenant";

    fn capture(&self) -> Self::Captured {
        tenant()
    }
    fn install(&self, captured: &Self::Captured) -> Self::Saved {
        TENANT.with(|tenant| tenant.replace(*captured))
    }
    fn restore(&self, _: &Self::Captured, saved: Self::Saved) {
        TENANT.with(|tenant| *tenant.borrow_mut() = saved);
    }
}

struct LocaleCarrier;

impl Carrier for LocaleCarrier {
    type Captured = Option<&'static str>;
    type Saved = Option<&'static str>;
    const NAME: &'static str = "locale";

    fn capture(&self) -> Self::Captured {
        locale()
    }
    fn install(&self, captured: &Self::Captured) -> Self::Saved {
        LOCALE.with(|locale| locale.replace(*captured))
    }
    fn restore(&self, _: &Self::Captured, saved: Self::Saved) {
        LOCALE.with(|locale| *locale.borrow_mut() = saved);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    InCapture,
    InInstall,
    InRestore,
}

/// Counts the states `FaultyCarrier` saved that are still alive: every one must be dropped
/// exactly once.
static SAVED_ALIVE: AtomicUsize = AtomicUsize::new(0);

struct Saved;

impl Saved {
    fn new() -> Self {
        SAVED_ALIVE.fetch_add(1, Ordering::SeqCst);
        Saved
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        SAVED_ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Panics where the thread's `FAULT` said when it captured.
struct FaultyCarrier;

impl Carrier for FaultyCarrier {
    type Captured = Fault;
    type Saved = Saved;
    const NAME: &'static str = "faulty";

    fn capture(&self) -> Fault {
        let fault = FAULT.with(Cell::get);
        assert_ne!(fault, Fault::InCapture, "capture failed on purpose");
        fault
    }
    fn install(&self, fault: &Fault) -> Saved {
        assert_ne!(*fault, Fault::InInstall, "install failed on purpose");
        Saved::new()
    }
    fn restore(&self, fault: &Fault, saved: Saved) {
        drop(saved);
        assert_ne!(*fault, Fault::InRestore, "restore failed on purpose");
    }
}

struct TransactionCarrier;

impl Carrier for TransactionCarrier {
    type Captured = Option<u32>;
    type Saved = Option<u32>;
    const NAME: &'static str = "transaction";
    const FLOWS: bool = false;

    fn capture(&self) -> Option<u32> {
        TRANSACTION.with(Cell::get)
    }
    fn install(&self, captured: &Option<u32>) -> Option<u32> {
        TRANSACTION.with(|cell| cell.replace(*captured))
    }
    fn restore(&self, _: &Option<u32>, saved: Option<u32>) {
        TRANSACTION.with(|cell| cell.set(saved));
    }
}

struct LeaseCarrier;

impl Carrier for LeaseCarrier {
    type Captured = Option<Arc<u32>>;
    type Saved = Option<Arc<u32>>;
    const NAME: &'static str = "lease";
    const FLOWS: bool = false;

    fn capture(&self) -> Self::Captured {
        LEASE.with(|lease| lease.borrow().clone())
    }
    fn install(&self, captured: &Self::Captured) -> Self::Saved {
        LEASE.with(|lease| lease.replace(captured.clone()))
    }
    fn restore(&self, _: &Self::Captured, saved: Self::Saved) {
        LEASE.with(|lease| *lease.borrow_mut() = saved);
    }
    fn is_empty(&self, captured: &Self::Captured) -> bool {
        captured.is_none()
    }
}

/// Registers the carriers once for the whole test binary, in the order the tests rely on:
/// the tenant before the faulty carrier, the locale after it.
fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        register_carrier(TenantCarrier).unwrap();
        register_carrier(FaultyCarrier).unwrap();
        register_carrier(LocaleCarrier).unwrap();
        register_carrier(TransactionCarrier).unwrap();
        register_carrier(LeaseCarrier).unwrap();
    });
}

#[test]
fn tasks_and_blocking_closures_see_the_spawners_tenant_on_every_runtime() {
    register();
    each_runtime(|spawner| async move {
        let (task, named, blocking) = as_tenant("acme", || {
            (
                spawner.spawn(async {
                    yield_now().await;
                    tenant()
                }),
                spawner.spawn_named("named", async {
                    yield_now().await;
                    tenant()
                }),
                spawner.spawn_blocking(tenant),
            )
        });
        assert_eq!(tenant(), None, "the spawner's thread is back to its own");
        assert_eq!(task.await.unwrap(), Some("acme"));
        assert_eq!(named.await.unwrap(), Some("acme"));
        assert_eq!(blocking.await.unwrap(), Some("acme"));
    });
}

#[test]
fn task_group_members_see_the_spawners_tenant_on_every_runtime() {
    register();
    each_runtime(|spawner| async move {
        let mut group = TaskGroup::new(spawner);
        as_tenant("acme", || {
            group.spawn(async {
                yield_now().await;
                tenant()
            });
            group.spawn_blocking(tenant);
        });
        while let Some(seen) = group.join_next().await {
            assert_eq!(seen.unwrap(), Some("acme"));
        }
    });
}

#[test]
fn local_tasks_see_the_spawners_tenant_on_every_runtime() {
    register();
    each_local_runtime(|local| async move {
        let task = as_tenant("acme", || {
            local.spawn_local(async {
                yield_now().await;
                tenant()
            })
        });
        assert_eq!(task.await.unwrap(), Some("acme"));
    });
}

#[test]
fn what_a_task_installs_never_reaches_its_spawner_or_its_next_poll_elsewhere() {
    register();
    each_runtime(|spawner| async move {
        let task = as_tenant("acme", || {
            spawner.spawn(async {
                TENANT.with(|tenant| *tenant.borrow_mut() = Some("changed in the task"));
                yield_now().await;
                tenant()
            })
        });
        // The task's own change is gone at its next poll: the carrier installs what was
        // captured, as a span entered per poll is.
        assert_eq!(task.await.unwrap(), Some("acme"));
        assert_eq!(tenant(), None);
    });
}

#[allow(
    clippy::disallowed_methods,
    reason = "a plain thread: the context must get there with nothing but the snapshot"
)]
#[test]
fn context_wrap_run_and_in_context_carry_the_tenant_to_another_thread() {
    register();
    let (wrapped, context, future) = as_tenant("acme", || {
        REQUEST_ID.sync_scope("req-1", || {
            (
                Context::current().wrap(|| (tenant(), REQUEST_ID.get())),
                Context::current(),
                async { tenant() }.in_current_context(),
            )
        })
    });
    assert_eq!(
        std::thread::spawn(wrapped).join().unwrap(),
        (Some("acme"), Some("req-1"))
    );
    let in_context = async { tenant() }.in_context(context.clone());
    let seen = std::thread::spawn(move || {
        (
            context.run(tenant),
            futures::executor::block_on(in_context),
            futures::executor::block_on(future),
        )
    })
    .join()
    .unwrap();
    assert_eq!(seen, (Some("acme"), Some("acme"), Some("acme")));
    assert!(format!("{:?}", Context::current()).contains("tenant"));
}

#[allow(
    clippy::disallowed_methods,
    reason = "a plain thread: the context must get there with nothing but the snapshot"
)]
#[test]
fn threads_pools_and_job_envelopes_see_the_tenant_of_where_they_were_made() {
    register();
    let (report, seen) = mpsc::channel();
    let pool = ContextPool::new(|job| drop(std::thread::spawn(job)));
    let carry = ctxflow::task::CarryContext::new(futures::executor::ThreadPool::new().unwrap());
    let (thread, envelope, carried) = as_tenant("acme", || {
        let report = report.clone();
        pool.execute(move || report.send(tenant()).unwrap());
        use futures::task::SpawnExt;
        (
            ctxflow::thread::spawn(tenant),
            (Context::inheritable(), "job"),
            carry.spawn_with_handle(async { tenant() }).unwrap(),
        )
    });
    assert_eq!(thread.join().unwrap(), Some("acme"));
    assert_eq!(seen.recv().unwrap(), Some("acme"));
    assert_eq!(futures::executor::block_on(carried), Some("acme"));
    let worker = std::thread::spawn(move || envelope.0.run(tenant));
    assert_eq!(worker.join().unwrap(), Some("acme"));
}

#[cfg(feature = "rayon")]
#[test]
fn rayon_jobs_see_the_tenant_of_where_they_were_made() {
    register();
    let (a, b) = as_tenant("acme", || ctxflow::rayon::join(tenant, tenant));
    assert_eq!((a, b), (Some("acme"), Some("acme")));
}

#[test]
fn nothing_flows_inside_suppress_flow_on_every_runtime() {
    register();
    each_runtime(|spawner| async move {
        let task = as_tenant("acme", || {
            suppress_flow(|| spawner.spawn(async { tenant() }))
        });
        assert_eq!(task.await.unwrap(), None);
        let envelope = as_tenant("acme", || suppress_flow(Context::inheritable));
        assert_eq!(envelope.run(tenant), None);
    });
}

#[test]
fn a_carrier_that_does_not_flow_stays_with_its_task_on_every_runtime() {
    register();
    each_runtime(|spawner| async move {
        TRANSACTION.with(|cell| cell.set(Some(17)));
        let here = Context::current();
        let task = spawner.spawn(async { TRANSACTION.with(Cell::get) });
        let blocking = spawner.spawn_blocking(|| TRANSACTION.with(Cell::get));
        let inheritable = Context::inheritable();
        TRANSACTION.with(|cell| cell.set(None));
        assert_eq!(task.await.unwrap(), None);
        assert_eq!(blocking.await.unwrap(), None);
        assert_eq!(inheritable.run(|| TRANSACTION.with(Cell::get)), None);
        assert_eq!(here.run(|| TRANSACTION.with(Cell::get)), Some(17));
    });
}

/// Work spawned, and job envelopes taken, inside a snapshot that carries state hold what flows
/// and nothing else: not the state of a carrier that does not flow (a transaction, a lease),
/// which would otherwise live as long as the work.
#[test]
fn spawned_work_keeps_no_state_of_a_carrier_that_does_not_flow_on_every_runtime() {
    register();
    each_runtime(|spawner| async move {
        let lease = Arc::new(7);
        LEASE.with(|cell| *cell.borrow_mut() = Some(lease.clone()));
        let (finish, on_finish) = futures::channel::oneshot::channel::<()>();
        let in_scope = REQUEST_ID.scope("req-1", async {
            let worker = spawner.spawn(async {
                on_finish.await.unwrap();
                REQUEST_ID.get()
            });
            (worker, Context::inheritable())
        });
        let (worker, envelope) = in_scope.await;
        let in_run = Context::current().run(Context::inheritable);
        let in_context = async { Context::inheritable() }
            .in_context(Context::current())
            .await;
        LEASE.with(|cell| *cell.borrow_mut() = None);
        assert_eq!(Arc::strong_count(&lease), 1, "the lease is held on");
        assert_eq!(envelope.run(|| REQUEST_ID.get()), Some("req-1"));
        finish.send(()).unwrap();
        assert_eq!(worker.await.unwrap(), Some("req-1"));
        drop((in_run, in_context));
    });
}

/// A snapshot that carries state stays the same snapshot of variables where it is installed,
/// also once a variable is set on it.
#[test]
fn a_carrying_snapshot_with_a_variable_set_on_it_is_the_snapshot_installed() {
    register();
    let cx = as_tenant("acme", || {
        Context::current().with_value(&REQUEST_ID, "req-4")
    });
    assert!(Context::ptr_eq(&cx.run(Context::current), &cx));
    let wrapped = async {}.in_context(cx.clone());
    assert!(Context::ptr_eq(wrapped.context(), &cx));
    assert_eq!(
        cx.run(|| (tenant(), REQUEST_ID.get())),
        (Some("acme"), Some("req-4"))
    );
    let unset = cx.without(&REQUEST_ID);
    assert!(unset.is_empty());
    assert!(Context::ptr_eq(
        &unset.run(Context::current),
        &Context::empty()
    ));
    assert_eq!(unset.run(tenant), Some("acme"));
}

/// A blocking closure aborted before it runs is dropped unrun inside its context: a carrier
/// that panics there is the closure's panic, and the pool's job returns.
#[test]
fn an_aborted_blocking_closure_whose_carrier_panics_gives_its_handle_the_panic() {
    register();
    let queued = Arc::new(std::sync::Mutex::new(Vec::new()));
    let pool = ContextPool::new({
        let queued = queued.clone();
        move |job| queued.lock().unwrap().push(job)
    });
    FAULT.with(|cell| cell.set(Fault::InInstall));
    let handle = pool.spawn(|| ());
    FAULT.with(|cell| cell.set(Fault::None));
    handle.abort();
    let job = queued.lock().unwrap().pop().unwrap();
    assert!(
        panic::catch_unwind(AssertUnwindSafe(job)).is_ok(),
        "the carrier's panic escaped the pool's job"
    );
    let error = handle.join().unwrap_err();
    assert!(error.is_panic());
    assert_named(
        &panic_message(&*error.into_panic()),
        "installing",
        "install failed on purpose",
    );
}

/// Takes a snapshot with the tenant, the locale, a variable and `fault` all set.
fn snapshot_with(fault: Fault) -> Context {
    as_tenant("acme", || {
        LOCALE.with(|locale| *locale.borrow_mut() = Some("fr"));
        FAULT.with(|cell| cell.set(fault));
        let snapshot = REQUEST_ID.sync_scope("req-faulty", Context::current);
        FAULT.with(|cell| cell.set(Fault::None));
        LOCALE.with(|locale| *locale.borrow_mut() = None);
        snapshot
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// What the thread has before and after: the tenant, the locale and a variable.
fn thread_state() -> (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
) {
    (tenant(), locale(), REQUEST_ID.get())
}

fn assert_named(message: &str, doing: &str, fault: &str) {
    let expected = format!("ctxflow: carrier `faulty` panicked while {doing}: ");
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains(fault), "{message}");
}

const FAULTS: [(Fault, &str, &str); 3] = [
    (Fault::InCapture, "capturing", "capture failed on purpose"),
    (Fault::InInstall, "installing", "install failed on purpose"),
    (Fault::InRestore, "restoring", "restore failed on purpose"),
];

#[test]
fn a_panicking_carrier_leaves_the_thread_as_it_was_and_names_itself() {
    register();
    let _own = REQUEST_ID.set("own");
    for (fault, doing, message) in FAULTS {
        let snapshot = snapshot_with(fault);
        let before = thread_state();
        let alive = SAVED_ALIVE.load(Ordering::SeqCst);
        let payload = panic::catch_unwind(AssertUnwindSafe(|| {
            snapshot.run(|| {
                assert_eq!(
                    thread_state(),
                    (Some("acme"), Some("fr"), Some("req-faulty"))
                )
            })
        }))
        .expect_err("the carrier's panic is the closure's");
        assert_named(&panic_message(&*payload), doing, message);
        assert_eq!(thread_state(), before, "{doing}");
        assert_eq!(SAVED_ALIVE.load(Ordering::SeqCst), alive, "{doing}");
    }
}

#[test]
fn a_panicking_carrier_is_the_panic_of_the_task_it_runs_on_every_runtime() {
    register();
    each_runtime(|spawner| async move {
        for (fault, doing, message) in FAULTS {
            let snapshot = snapshot_with(fault);
            let task = spawner.spawn_in(snapshot.clone(), async { yield_now().await });
            let error = task.await.expect_err("the carrier's panic is the task's");
            assert!(error.is_panic());
            assert_named(&panic_message(&*error.into_panic()), doing, message);

            let blocking = spawner.spawn_blocking_in(snapshot.clone(), || ());
            let error = blocking
                .await
                .expect_err("the carrier's panic is the closure's");
            assert_named(&panic_message(&*error.into_panic()), doing, message);

            // Polled here, it leaves this thread as it was.
            let before = thread_state();
            let payload = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut polled = pin!(async {}.in_context(snapshot));
                poll_once(polled.as_mut())
            }))
            .expect_err("the poll panics");
            assert_named(&panic_message(&*payload), doing, message);
            assert_eq!(thread_state(), before, "{doing}");
        }
    });
}

#[test]
fn an_attached_context_installs_the_carriers_until_its_guard_drops() {
    register();
    let snapshot = as_tenant("acme", || {
        REQUEST_ID.sync_scope("req-attached", Context::current)
    });
    {
        let _guard = snapshot.attach();
        assert_eq!(
            (tenant(), REQUEST_ID.get()),
            (Some("acme"), Some("req-attached"))
        );
    }
    assert_eq!((tenant(), REQUEST_ID.get()), (None, None));
}

#[test]
fn attaching_a_context_whose_carrier_panics_leaves_the_thread_as_it_was() {
    register();
    let _own = REQUEST_ID.set("own");
    for (fault, doing, message) in FAULTS {
        let snapshot = snapshot_with(fault);
        let before = thread_state();
        let alive = SAVED_ALIVE.load(Ordering::SeqCst);
        let payload = panic::catch_unwind(AssertUnwindSafe(|| drop(snapshot.attach())))
            .expect_err("the carrier's panic is the attach's or the detach's");
        assert_named(&panic_message(&*payload), doing, message);
        assert_eq!(thread_state(), before, "{doing}");
        assert_eq!(SAVED_ALIVE.load(Ordering::SeqCst), alive, "{doing}");
    }
}

#[test]
fn guards_dropped_out_of_order_leave_the_carriers_state_as_it_was() {
    register();
    let first = as_tenant("first", Context::current);
    let second = as_tenant("second", Context::current);
    let outer = first.attach();
    let inner = second.attach();
    assert_eq!(tenant(), Some("second"));
    drop(outer);
    assert_eq!(
        tenant(),
        Some("second"),
        "the later guard is still attached"
    );
    drop(inner);
    assert_eq!(tenant(), None);
}

/// Carriers that fail where the ones above do not. Each is registered by one test only, in this
/// binary or in a child process of its own, and has state only on a thread that arms it, so
/// that the other tests never install it.
mod hostile_carriers {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::pin::pin;
    use std::process::Command;
    use std::sync::{Arc, Barrier};

    use ctxflow::carrier::RegisterError;
    use ctxflow::{register_carrier, Carrier, Context, InContext};

    use super::{as_tenant, panic_message, tenant, REQUEST_ID};

    thread_local! {
        /// Whether `PanickingEmptiness` panics in `is_empty` for what it captures here.
        static EMPTINESS_FAILS: Cell<bool> = const { Cell::new(false) };
        /// Whether the `Uncaught` carriers' restore panics for what they capture here.
        static RESTORE_FAILS: Cell<bool> = const { Cell::new(false) };
    }

    struct PanickingEmptiness;

    impl Carrier for PanickingEmptiness {
        type Captured = bool;
        type Saved = ();
        const NAME: &'static str = "panicking emptiness";

        fn capture(&self) -> bool {
            EMPTINESS_FAILS.with(Cell::get)
        }
        fn install(&self, _: &bool) {}
        fn restore(&self, _: &bool, (): ()) {}
        fn is_empty(&self, fails: &bool) -> bool {
            assert!(!fails, "is_empty failed on purpose");
            true
        }
    }

    #[test]
    fn a_panicking_is_empty_is_reported_where_the_snapshot_runs_naming_the_carrier() {
        register_carrier(PanickingEmptiness).unwrap();
        EMPTINESS_FAILS.with(|fails| fails.set(true));
        let taken = panic::catch_unwind(|| (Context::current(), Context::inheritable()));
        EMPTINESS_FAILS.with(|fails| fails.set(false));
        let (current, inheritable) = taken.expect("taking a snapshot does not panic");
        for snapshot in [current, inheritable] {
            let payload = panic::catch_unwind(AssertUnwindSafe(|| snapshot.run(|| ())))
                .expect_err("the snapshot's run panics");
            let message = panic_message(&*payload);
            assert!(
                message.starts_with(
                    "ctxflow: carrier `panicking emptiness` panicked while capturing: "
                ),
                "{message}"
            );
            assert!(message.contains("is_empty failed on purpose"), "{message}");
        }
    }

    /// Holds a share of what the test owns, so that the test sees whether it was dropped.
    struct Sharing {
        _share: Arc<()>,
    }

    impl Carrier for Sharing {
        type Captured = ();
        type Saved = ();
        const NAME: &'static str = "sharing";

        fn capture(&self) {}
        fn install(&self, (): &()) {}
        fn restore(&self, (): &(), (): ()) {}
        fn is_empty(&self, (): &()) -> bool {
            true
        }
    }

    #[test]
    fn of_carriers_of_one_type_registered_at_once_one_is_kept_and_the_refused_are_dropped() {
        const THREADS: usize = 4;
        let share = Arc::new(());
        let together = Barrier::new(THREADS);
        let registered = std::thread::scope(|scope| {
            let registrations: Vec<_> = (0..THREADS)
                .map(|_| {
                    let carrier = Sharing {
                        _share: share.clone(),
                    };
                    let together = &together;
                    scope.spawn(move || {
                        together.wait();
                        register_carrier(carrier)
                    })
                })
                .collect();
            registrations
                .into_iter()
                .map(|registration| registration.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(
            registered.iter().filter(|outcome| outcome.is_ok()).count(),
            1
        );
        assert!(registered.iter().all(|outcome| outcome.is_ok()
            || *outcome == Err(RegisterError::AlreadyRegistered { name: "sharing" })));
        assert_eq!(
            Arc::strong_count(&share),
            2,
            "only the test's share and the registered carrier's are left"
        );
    }

    /// Panics in its restore for a snapshot taken where `RESTORE_FAILS` was set, and catches
    /// nothing, as the integrations' carriers do; `N` makes as many carriers as a test needs.
    struct Uncaught<const N: usize>;

    impl<const N: usize> Carrier for Uncaught<N> {
        type Captured = bool;
        type Saved = ();
        const NAME: &'static str = "uncaught";
        const CATCH_PANICS: bool = false;

        fn capture(&self) -> bool {
            RESTORE_FAILS.with(Cell::get)
        }
        fn install(&self, _: &bool) {}
        fn restore(&self, fails: &bool, (): ()) {
            assert!(!fails, "restore failed on purpose");
        }
        fn is_empty(&self, fails: &bool) -> bool {
            !fails
        }
    }

    /// Set in the child process that runs one test's body.
    const CHILD: &str = "CTXFLOW_CARRIERS_CHILD";

    /// Runs `body` in a child process running this test alone, where an abort fails this test
    /// and not the whole binary, and where the carriers it registers stay.
    fn in_child_process(test: &str, body: impl FnOnce()) {
        if std::env::var_os(CHILD).is_some() {
            super::register();
            register_carrier(Uncaught::<0>).unwrap();
            register_carrier(Uncaught::<1>).unwrap();
            body();
            return;
        }
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("hostile_carriers::{test}"),
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(
            child.status.success(),
            "{:?}\n{stdout}\n{stderr}",
            child.status
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
    }

    /// A snapshot holding the tenant, a variable, and the `Uncaught` carriers' failing state.
    fn snapshot_whose_restores_fail() -> Context {
        as_tenant("acme", || {
            RESTORE_FAILS.with(|fails| fails.set(true));
            let snapshot = REQUEST_ID.sync_scope("req-uncaught", Context::current);
            RESTORE_FAILS.with(|fails| fails.set(false));
            snapshot
        })
    }

    /// Checks the payload is the work's own panic, and the thread is as it was.
    fn assert_own_panic(outcome: std::thread::Result<()>) {
        let payload = outcome.expect_err("the work panics");
        assert_eq!(panic_message(&*payload), "own");
        assert_eq!((tenant(), REQUEST_ID.get()), (None, None));
    }

    #[test]
    fn an_uncaught_restore_that_fails_while_a_closure_unwinds_leaves_the_closures_panic() {
        in_child_process(
            "an_uncaught_restore_that_fails_while_a_closure_unwinds_leaves_the_closures_panic",
            || {
                let snapshot = snapshot_whose_restores_fail();
                assert_own_panic(panic::catch_unwind(AssertUnwindSafe(|| {
                    snapshot.run(|| panic!("own"))
                })));
            },
        );
    }

    #[test]
    fn an_uncaught_restore_that_fails_after_another_failed_leaves_the_first_panic() {
        in_child_process(
            "an_uncaught_restore_that_fails_after_another_failed_leaves_the_first_panic",
            || {
                let snapshot = snapshot_whose_restores_fail();
                let payload = panic::catch_unwind(AssertUnwindSafe(|| snapshot.run(|| ())))
                    .expect_err("the first restore panics");
                assert_eq!(panic_message(&*payload), "restore failed on purpose");
                assert_eq!((tenant(), REQUEST_ID.get()), (None, None));
            },
        );
    }

    #[test]
    fn an_uncaught_restore_that_fails_as_a_guard_drops_in_a_panic_leaves_that_panic() {
        in_child_process(
            "an_uncaught_restore_that_fails_as_a_guard_drops_in_a_panic_leaves_that_panic",
            || {
                let snapshot = snapshot_whose_restores_fail();
                assert_own_panic(panic::catch_unwind(AssertUnwindSafe(|| {
                    let _attached = snapshot.attach();
                    panic!("own");
                })));
            },
        );
    }

    #[test]
    fn an_uncaught_restore_that_fails_as_a_future_drops_in_a_panic_leaves_that_panic() {
        in_child_process(
            "an_uncaught_restore_that_fails_as_a_future_drops_in_a_panic_leaves_that_panic",
            || {
                let snapshot = snapshot_whose_restores_fail();
                let unpolled = snapshot.clone();
                assert_own_panic(panic::catch_unwind(AssertUnwindSafe(|| {
                    let _dropped_in_the_unwinding = pin!(async {}.in_context(unpolled));
                    panic!("own");
                })));
                assert_own_panic(panic::catch_unwind(AssertUnwindSafe(|| {
                    futures::executor::block_on(async { panic!("own") }.in_context(snapshot))
                })));
            },
        );
    }
}
