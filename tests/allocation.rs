//! What allocates and what does not: counted by a global allocator, on this thread only.

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

#[cfg(not(any(feature = "tracing", feature = "opentelemetry")))]
#[test]
fn taking_a_snapshot_never_allocates_whatever_its_size() {
    for size in [0, 1, 8, 64] {
        let _guard = context_of(size).attach();
        let (count, snapshot) = allocations(Context::current);
        assert_eq!(count, 0, "snapshot of {size} variables");
        assert_eq!(snapshot.len(), size);
    }
}

/// With the integrations compiled in, a snapshot also holds the span and OpenTelemetry's
/// context (see docs/carriers.md), beside the variables' table, which it shares.
#[cfg(any(feature = "tracing", feature = "opentelemetry"))]
#[test]
fn a_snapshot_that_carries_the_integrations_state_is_one_allocation_whatever_its_size() {
    // The integrations' thread-locals allocate on first use.
    drop(Context::current());
    for size in [0, 1, 8, 64] {
        let _guard = context_of(size).attach();
        let (count, snapshot) = allocations(Context::current);
        assert_eq!(count, 1, "snapshot of {size} variables");
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
