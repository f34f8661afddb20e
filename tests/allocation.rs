//! What allocates and what does not: counted by a global allocator, on this thread only.
#![allow(
    clippy::disallowed_methods,
    reason = "counts what each runtime's own spawn allocates, to compare with ctxflow's"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;

use ctxflow::{Context, ContextVar, InContext};
use futures::task::noop_waker_ref;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// How many allocations `f` makes on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (ALLOCATIONS.with(Cell::get) - before, result)
}

static VARS: [ContextVar<u64>; 64] = [const { ContextVar::new("var") }; 64];

fn context_of(size: usize) -> Context {
    VARS[..size]
        .iter()
        .fold(Context::empty(), |cx, var| cx.with_value(var, 1))
}

/// Also with the integrations compiled in: outside any span and trace, their carriers have no
/// state, and a snapshot holds none (see docs/carriers.md).
#[test]
fn taking_a_snapshot_never_allocates_whatever_its_size() {
    // The integrations' thread-locals allocate on first use.
    drop(Context::current());
    for size in [0, 1, 8, 64] {
        let _guard = context_of(size).attach();
        let (count, snapshot) = allocations(Context::current);
        assert_eq!(count, 0, "snapshot of {size} variables");
        assert_eq!(snapshot.len(), size);
    }
}

#[test]
fn reading_a_variable_never_allocates() {
    let _guard = context_of(64).attach();
    let (count, value) = allocations(|| VARS[63].get());
    assert_eq!((count, value), (0, Some(1)));
}

#[test]
fn set_on_an_unshared_context_edits_in_place_and_on_a_shared_one_copies() {
    // Up to eight entries the table lives inside its `Arc`: a copy is one allocation.
    let _guard = context_of(8).attach();
    let snapshot = Context::current();
    // The snapshot shares the table: the first set copies it, once.
    let (shared, _first) = allocations(|| VARS[0].set(2));
    assert_eq!(snapshot.get(&VARS[0]), Some(&1));
    // Now the current table is this thread's alone: only the new value is allocated.
    let (unshared, _second) = allocations(|| VARS[1].set(3));
    assert_eq!((shared, unshared), (2, 1));
}

#[test]
fn an_empty_context_costs_nothing_to_wrap_and_poll() {
    let (count, ready) = allocations(|| {
        let mut future = pin!(async { 5 }.in_context(Context::empty()));
        future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(noop_waker_ref()))
    });
    assert_eq!(count, 0);
    assert_eq!(ready, std::task::Poll::Ready(5));
}

#[test]
fn polling_in_a_snapshot_never_allocates() {
    let cx = context_of(8);
    let (count, ready) = allocations(|| {
        let mut future = pin!(async { VARS[7].get() }.in_context(cx));
        future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(noop_waker_ref()))
    });
    assert_eq!(count, 0);
    assert_eq!(ready, std::task::Poll::Ready(Some(1)));
}

/// On tokio a ctxflow task is one allocation, as a raw one is: tokio's own join handle reports
/// its outcome, so there is no slot of ctxflow's to allocate, directly or through `AnySpawner`.
#[cfg(feature = "tokio")]
#[test]
fn a_tokio_spawn_allocates_what_a_raw_one_does() {
    use ctxflow::tokio::TokioSpawner;
    use ctxflow::{AnySpawner, Spawner};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let _guard = context_of(8).attach();
        let spawner = TokioSpawner::current();
        let any = AnySpawner::from(spawner.clone());
        // The runtime and the thread's storage allocate on first use: warm both up first.
        tokio::spawn(std::future::pending::<()>()).abort();
        spawner.spawn(std::future::pending::<()>()).abort();
        let (raw, raw_handle) = allocations(|| tokio::spawn(std::future::pending::<()>()));
        let (ctxflow, handle) = allocations(|| spawner.spawn(std::future::pending::<()>()));
        let (through_any, any_handle) = allocations(|| any.spawn(std::future::pending::<()>()));
        assert_eq!((raw, ctxflow, through_any), (1, 1, 1));
        raw_handle.abort();
        handle.abort();
        any_handle.abort();
    });
}

/// Spawns at most ten times and keeps the handles, with the fewest allocations any one spawn
/// made. A runtime's queue and task table grow now and then, on whichever spawn fills them; what
/// every spawn allocates shows in each, so in the fewest.
fn fewest_allocations<H>(mut spawn: impl FnMut() -> H) -> (usize, Vec<H>) {
    let counted: Vec<_> = (0..10).map(|_| allocations(&mut spawn)).collect();
    let fewest = counted.iter().map(|(count, _)| *count).min().unwrap();
    (
        fewest,
        counted.into_iter().map(|(_, handle)| handle).collect(),
    )
}

/// On smol a ctxflow task is one allocation, as a raw one is: smol's own task carries the
/// outcome to ctxflow's handle, directly or through `AnySpawner`.
#[cfg(feature = "smol")]
#[test]
fn a_smol_spawn_allocates_what_a_raw_one_does() {
    use ctxflow::smol::SmolSpawner;
    use ctxflow::{AnySpawner, Spawner};
    use std::future::pending;

    let executor = std::sync::Arc::new(smol::Executor::new());
    let spawner = SmolSpawner::new(executor.clone());
    let any = AnySpawner::from(spawner.clone());
    let _guard = context_of(8).attach();
    let (raw, raw_tasks) = fewest_allocations(|| executor.spawn(pending::<()>()));
    let (ctxflow, handles) = fewest_allocations(|| spawner.spawn(pending::<()>()));
    let (through_any, any_handles) = fewest_allocations(|| any.spawn(pending::<()>()));
    assert_eq!((raw, ctxflow, through_any), (1, 1, 1));
    drop(raw_tasks);
    handles
        .iter()
        .chain(&any_handles)
        .for_each(|handle| handle.abort());
}

/// On async-std a ctxflow task is one allocation, as a raw one is: async-std's own handle
/// carries the outcome to ctxflow's, directly or through `AnySpawner`.
#[cfg(feature = "async-std")]
#[test]
fn an_async_std_spawn_allocates_what_a_raw_one_does() {
    use ctxflow::async_std::AsyncStdSpawner;
    use ctxflow::{AnySpawner, Spawner};
    use std::future::pending;

    let spawner = AsyncStdSpawner::new();
    let any = AnySpawner::from(spawner);
    let _guard = context_of(8).attach();
    // The first spawn starts the runtime.
    spawner.spawn(async {}).detach();
    let (raw, raw_handles) = fewest_allocations(|| async_std::task::spawn(pending::<()>()));
    let (ctxflow, handles) = fewest_allocations(|| spawner.spawn(pending::<()>()));
    let (through_any, any_handles) = fewest_allocations(|| any.spawn(pending::<()>()));
    assert_eq!((raw, ctxflow, through_any), (1, 1, 1));
    for handle in raw_handles {
        async_std::task::block_on(handle.cancel());
    }
    handles
        .iter()
        .chain(&any_handles)
        .for_each(|handle| handle.abort());
}

/// A `TaskGroup` member costs what a plain spawn does: its task carries the group's notice of its
/// end, so there is no node of the group's to allocate, on any runtime.
#[test]
fn a_group_member_allocates_what_a_plain_spawn_does() {
    use ctxflow::{JoinHandle, Spawner, TaskGroup};
    use std::future::pending;

    fn plain_and_member<S: Spawner>(spawner: S) -> (usize, usize) {
        let _guard = context_of(8).attach();
        let mut group = TaskGroup::new(spawner.clone());
        group.spawn(pending::<()>());
        let (plain, handles) = fewest_allocations(|| spawner.spawn(pending::<()>()));
        let (member, _) = fewest_allocations(|| group.spawn(pending::<()>()));
        handles.iter().for_each(JoinHandle::abort);
        (plain, member)
    }

    #[cfg(feature = "tokio")]
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
        assert_eq!(plain_and_member(spawner), (1, 1), "tokio");
    }
    #[cfg(feature = "smol")]
    {
        let executor = std::sync::Arc::new(smol::Executor::new());
        let spawner = ctxflow::smol::SmolSpawner::new(executor);
        assert_eq!(plain_and_member(spawner), (1, 1), "smol");
    }
    #[cfg(feature = "async-std")]
    {
        let spawner = ctxflow::async_std::AsyncStdSpawner::new();
        spawner.spawn(async {}).detach();
        assert_eq!(plain_and_member(spawner), (1, 1), "async-std");
    }
}

thread_local! {
    /// A framework's own thread-locals, each carried by a carrier of its own: one that catches
    /// panics in its calls, and one that does not.
    static TENANT: Cell<Option<&'static str>> = const { Cell::new(None) };
    static REGION: Cell<Option<u64>> = const { Cell::new(None) };
}

struct TenantCarrier;

impl ctxflow::Carrier for TenantCarrier {
    type Captured = Option<&'static str>;
    type Saved = Option<&'static str>;
    const NAME: &'static str = "tenant";

    fn capture(&self) -> Self::Captured {
        TENANT.with(Cell::get)
    }
    fn install(&self, captured: &Self::Captured) -> Self::Saved {
        TENANT.with(|tenant| tenant.replace(*captured))
    }
    fn restore(&self, _: &Self::Captured, saved: Self::Saved) {
        TENANT.with(|tenant| tenant.set(saved));
    }
    /// Outside a tenant there is nothing to carry, so the other tests' snapshots stay free.
    fn is_empty(&self, captured: &Self::Captured) -> bool {
        captured.is_none()
    }
}

struct RegionCarrier;

impl ctxflow::Carrier for RegionCarrier {
    type Captured = Option<u64>;
    type Saved = Option<u64>;
    const NAME: &'static str = "region";
    const CATCH_PANICS: bool = false;

    fn capture(&self) -> Self::Captured {
        REGION.with(Cell::get)
    }
    fn install(&self, captured: &Self::Captured) -> Self::Saved {
        REGION.with(|region| region.replace(*captured))
    }
    fn restore(&self, _: &Self::Captured, saved: Self::Saved) {
        REGION.with(|region| region.set(saved));
    }
    fn is_empty(&self, captured: &Self::Captured) -> bool {
        captured.is_none()
    }
}

ctxflow::static_carrier!(TenantCarrier);
ctxflow::static_carrier!(RegionCarrier);

/// A snapshot taken with two carriers' state, which the thread's own state does not show.
fn context_with_carried_state() -> Context {
    TENANT.with(|tenant| tenant.set(Some("acme")));
    REGION.with(|region| region.set(Some(7)));
    let cx = context_of(8).run(Context::current);
    TENANT.with(|tenant| tenant.set(None));
    REGION.with(|region| region.set(None));
    cx
}

fn carried_state() -> (Option<&'static str>, Option<u64>) {
    (TENANT.with(Cell::get), REGION.with(Cell::get))
}

#[test]
fn attaching_a_context_with_carried_state_never_allocates() {
    let cx = context_with_carried_state();
    drop(cx.attach());
    let (count, seen) = allocations(|| {
        (0..100)
            .map(|_| {
                let _guard = cx.attach();
                carried_state()
            })
            .all(|seen| seen == (Some("acme"), Some(7)))
    });
    assert_eq!((count, seen), (0, true));
    assert_eq!(carried_state(), (None, None));
}

/// What a runtime's poll hooks do around every poll of a task (tokio's task hooks).
#[test]
fn entering_a_task_scope_with_carried_state_never_allocates() {
    use ctxflow::rt::TaskScope;

    let mut scope = TaskScope::new(context_with_carried_state());
    scope = scope.enter().leave();
    let mut seen = Vec::with_capacity(100);
    let (count, ()) = allocations(|| {
        for _ in 0..100 {
            let entered = scope.enter();
            seen.push(carried_state());
            scope = entered.leave();
        }
    });
    assert_eq!(count, 0);
    assert!(seen.iter().all(|seen| *seen == (Some("acme"), Some(7))));
    assert_eq!(carried_state(), (None, None));
}

/// The same, through tokio's task hooks: a task that polls a hundred times more allocates no
/// more.
#[cfg(all(tokio_unstable, feature = "tokio"))]
#[test]
fn polling_a_hooked_task_with_carried_state_never_allocates() {
    use ctxflow::tokio::ContextHooks;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .carry_context()
        .build()
        .unwrap();
    let cx = context_with_carried_state();
    let run = |polls: usize| {
        allocations(|| {
            runtime.block_on(async {
                // The state is the task's alone: the thread's own is back before it is polled.
                let task = {
                    let _guard = cx.attach();
                    tokio::spawn(async move {
                        let mut carried = true;
                        for _ in 0..polls {
                            carried &= carried_state() == (Some("acme"), Some(7));
                            tokio::task::yield_now().await;
                        }
                        carried
                    })
                };
                assert_eq!(carried_state(), (None, None));
                task.await.unwrap()
            })
        })
    };
    // The runtime's queues and the hooks' tables grow on first use.
    run(200);
    let (few, carried_few) = run(10);
    let (many, carried_many) = run(110);
    assert!(carried_few && carried_many);
    assert_eq!(many, few, "allocations of 110 polls, and of 10");
}
