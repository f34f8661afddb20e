//! What a task costs in memory with and without ctxflow: the size of the future each runtime
//! receives, the heap allocations each spawn makes, and the resident memory of a million
//! pending tasks. Not a criterion benchmark: it prints tables (`cargo bench -p ctxflow-benches --bench memory`).
//!
//! The resident-memory figures come from child processes of this binary, one per variant, so
//! that no variant inherits another's heap.
//!
//! `--workload VARIANT` runs the spawn benchmark's work once on a current-thread runtime and
//! exits: a fixed amount of work to count instructions on, which no other load on the machine
//! can disturb (`valgrind --tool=callgrind <this binary> --workload ctxflow`).
#![allow(
    clippy::disallowed_methods,
    reason = "the runtimes' own spawns are the baselines measured against"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{pending, Future, Pending};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::context_with;
use ctxflow::async_task::Contained;
use ctxflow::rt::{BlockingTask, Closing, Task, Unwinding};
use ctxflow::{AnySpawner, Context, InContext, Spawner};
use opentelemetry::context::FutureExt as _;

/// Pending tasks held at once by each resident-memory child.
const PENDING_TASKS: usize = 1_000_000;

/// Spawns per allocation count.
const COUNTED_SPAWNS: usize = 10_000;

/// Counts the allocations the current thread makes while `COUNTING` is on; other threads (a
/// runtime's workers) are not counted.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

impl CountingAllocator {
    fn record(size: usize) {
        // `try_with`: allocations made while the thread's storage is torn down go uncounted.
        let _ = COUNTING.try_with(|counting| {
            if counting.get() {
                ALLOCATIONS.with(|n| n.set(n.get() + 1));
                BYTES.with(|n| n.set(n.get() + size));
            }
        });
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters only use
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::record(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::record(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::record(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations and bytes per call of `spawn`, over `COUNTED_SPAWNS` calls on this thread.
fn per_spawn(mut spawn: impl FnMut()) -> (f64, f64) {
    // One spawn first, so that lazily built runtime state is not counted.
    spawn();
    ALLOCATIONS.with(|n| n.set(0));
    BYTES.with(|n| n.set(0));
    COUNTING.with(|counting| counting.set(true));
    for _ in 0..COUNTED_SPAWNS {
        spawn();
    }
    COUNTING.with(|counting| counting.set(false));
    let per = |total: usize| total as f64 / COUNTED_SPAWNS as f64;
    (per(ALLOCATIONS.with(Cell::get)), per(BYTES.with(Cell::get)))
}

/// A spawner that only records the size of the task ctxflow hands to a runtime.
#[derive(Clone, Default)]
struct SizeProbe(Arc<Mutex<usize>>);

impl ctxflow::rt::Runtime for SizeProbe {
    fn spawn_task<F>(&self, task: Task<F>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        *self.0.lock().unwrap() = std::mem::size_of_val(&task);
    }

    fn spawn_blocking_task<F>(&self, task: BlockingTask<F>)
    where
        F: FnOnce() + Send + 'static,
    {
        *self.0.lock().unwrap() = std::mem::size_of_val(&task);
    }

    fn run_until_complete<F: Future>(&self, future: F) -> F::Output {
        futures::executor::block_on(future)
    }
}

fn sizes() {
    let probe = SizeProbe::default();
    let size = |spawn: &dyn Fn()| {
        spawn();
        *probe.0.lock().unwrap()
    };
    let task = |_: ()| pending::<()>();
    println!("## Size of the future a runtime receives (inner future: `pending::<()>()`)");
    println!();
    println!("| variant | bytes |");
    println!("| --- | ---: |");
    println!("| raw | {} |", std::mem::size_of_val(&task(())));
    println!(
        "| ctxflow on tokio (`Closing`) | {} |",
        std::mem::size_of::<Closing<Pending<()>, Unwinding>>()
    );
    println!(
        "| ctxflow on smol and async-std (`Contained`) | {} |",
        std::mem::size_of::<Contained<Pending<()>>>()
    );
    println!(
        "| ctxflow on a runtime of one's own (`Runtime::spawn_task`, ctxflow's join slot) | {} |",
        size(&|| drop(probe.spawn(task(()))))
    );
    println!(
        "| ctxflow `AnySpawner::spawn` (boxed; the box holds the rest) | {} |",
        size(&|| drop(AnySpawner::new(probe.clone()).spawn(task(()))))
    );
    println!(
        "| tokio `task_local!` `scope` | {} |",
        std::mem::size_of_val(&TASK_LOCAL.scope(1, task(())))
    );
    println!(
        "| opentelemetry `with_context` | {} |",
        std::mem::size_of_val(&task(()).with_context(opentelemetry::Context::new()))
    );
    println!(
        "| ctxflow `in_context` alone | {} |",
        std::mem::size_of_val(&task(()).in_context(Context::empty()))
    );
    println!(
        "| ctxflow `in_context` around a 24-byte future with a niche, as an `async` block's state has | {} |",
        std::mem::size_of_val(&Niched::default().in_context(Context::empty()))
    );
    println!(
        "| ctxflow blocking closure (capturing nothing) | {} |",
        size(&|| drop(probe.spawn_blocking(|| ())))
    );
    println!();
}

/// A pending future of 24 bytes whose `Option` needs no tag, as an `async` block's state.
struct Niched {
    _state: [u64; 2],
    _key: std::num::NonZeroU64,
}

impl Default for Niched {
    fn default() -> Self {
        Niched {
            _state: [0; 2],
            _key: std::num::NonZeroU64::MIN,
        }
    }
}

impl Future for Niched {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

tokio::task_local! {
    static TASK_LOCAL: u64;
}

fn allocations() {
    println!("## Heap allocations per spawn (spawning thread only, tasks not yet run)");
    println!();
    println!("| runtime | variant | allocations | bytes requested |");
    println!("| --- | --- | ---: | ---: |");
    let row = |runtime: &str, variant: &str, (count, bytes): (f64, f64)| {
        println!("| {runtime} | {variant} | {count:.2} | {bytes:.0} |");
    };
    let _request = context_with(1).attach();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let tokio = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
    let any = AnySpawner::from(tokio.clone());
    row(
        "tokio",
        "raw",
        per_spawn(|| drop(runtime.spawn(pending::<()>()))),
    );
    row(
        "tokio",
        "ctxflow",
        per_spawn(|| drop(tokio.spawn(pending::<()>()))),
    );
    row(
        "tokio",
        "AnySpawner",
        per_spawn(|| drop(any.spawn(pending::<()>()))),
    );
    row(
        "tokio",
        "task_local `scope`",
        per_spawn(|| drop(runtime.spawn(TASK_LOCAL.scope(1, pending::<()>())))),
    );
    let otel = opentelemetry::Context::new().with_value(7_u64);
    row(
        "tokio",
        "opentelemetry `with_context`",
        per_spawn(|| drop(runtime.spawn(pending::<()>().with_context(otel.clone())))),
    );
    row(
        "tokio",
        "blocking raw",
        per_spawn(|| drop(runtime.spawn_blocking(|| ()))),
    );
    row(
        "tokio",
        "blocking ctxflow",
        per_spawn(|| drop(tokio.spawn_blocking(|| ()))),
    );
    drop(runtime);

    let executor = Arc::new(smol::Executor::new());
    let smol = ctxflow::smol::SmolSpawner::new(executor.clone());
    let any = AnySpawner::from(smol.clone());
    row(
        "smol",
        "raw",
        per_spawn(|| executor.spawn(pending::<()>()).detach()),
    );
    row(
        "smol",
        "ctxflow",
        per_spawn(|| drop(smol.spawn(pending::<()>()))),
    );
    row(
        "smol",
        "AnySpawner",
        per_spawn(|| drop(any.spawn(pending::<()>()))),
    );

    let async_std = ctxflow::async_std::AsyncStdSpawner::new();
    let any = AnySpawner::from(async_std);
    row(
        "async-std",
        "raw",
        per_spawn(|| drop(async_std::task::spawn(pending::<()>()))),
    );
    row(
        "async-std",
        "ctxflow",
        per_spawn(|| drop(async_std.spawn(pending::<()>()))),
    );
    row(
        "async-std",
        "AnySpawner",
        per_spawn(|| drop(any.spawn(pending::<()>()))),
    );
    println!();
}

/// The resident-memory variants, each run in a child process of its own.
const RESIDENT: [(&str, &str); 5] = [
    ("raw", "`tokio::spawn`"),
    ("ctxflow-0", "ctxflow, empty context"),
    ("ctxflow-8", "ctxflow, 8 values"),
    ("task-local", "`tokio::spawn(KEY.scope(..))`"),
    (
        "opentelemetry",
        "`tokio::spawn(fut.with_context(cx))`, 1 value",
    ),
];

/// A line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kib: usize = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a size in kB");
    kib * 1024
}

/// Spawns `PENDING_TASKS` tasks that never finish on a current-thread runtime, lets each be
/// polled once, and prints the growth of resident memory per task.
fn resident_child(variant: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
    let context = match variant {
        "ctxflow-8" => context_with(8),
        _ => context_with(0),
    };
    let otel = opentelemetry::Context::new().with_value(7_u64);
    let before = status_bytes("VmRSS:");
    runtime.block_on(
        async {
            for _ in 0..PENDING_TASKS {
                match variant {
                    "raw" => drop(tokio::spawn(pending::<()>())),
                    "ctxflow-0" | "ctxflow-8" => drop(spawner.spawn(pending::<()>())),
                    "task-local" => drop(tokio::spawn(TASK_LOCAL.scope(1, pending::<()>()))),
                    "opentelemetry" => {
                        drop(tokio::spawn(pending::<()>().with_context(otel.clone())))
                    }
                    _ => panic!("unknown variant {variant}"),
                }
            }
            // The queue is FIFO: once this task runs, every task before it was polled once.
            let (polled, all_polled) = tokio::sync::oneshot::channel();
            drop(tokio::spawn(async move { polled.send(()) }));
            all_polled.await.expect("the last task ran");
        }
        .in_context(context),
    );
    let after = status_bytes("VmRSS:");
    let peak = status_bytes("VmHWM:");
    println!(
        "{variant} {} {} {}",
        after - before,
        peak,
        (after - before) / PENDING_TASKS
    );
    // The runtime and its tasks stay alive until here, so nothing was freed before reading.
    drop(runtime);
}

fn resident() {
    println!("## Resident memory of {PENDING_TASKS} pending tasks (tokio current-thread runtime)");
    println!();
    println!("| variant | RSS growth | peak RSS (VmHWM) | bytes per task |");
    println!("| --- | ---: | ---: | ---: |");
    let exe = std::env::current_exe().expect("this benchmark's path");
    for (variant, label) in RESIDENT {
        let output = Command::new(&exe)
            .args(["--child", variant])
            .output()
            .expect("a child process");
        assert!(
            output.status.success(),
            "child {variant} failed: {output:?}"
        );
        let stdout = String::from_utf8(output.stdout).expect("UTF-8");
        let fields: Vec<&str> = stdout.split_whitespace().collect();
        let mib = |bytes: &str| bytes.parse::<f64>().expect("bytes") / (1024.0 * 1024.0);
        println!(
            "| {label} | {:.1} MiB | {:.1} MiB | {} |",
            mib(fields[1]),
            mib(fields[2]),
            fields[3]
        );
    }
    println!();
}

/// Tasks in one `--workload` run, and the yields each makes, as in `benches/spawn.rs`.
const WORKLOAD_TASKS: usize = 10_000;
const WORKLOAD_YIELDS: usize = 10;

/// Spawns and awaits `WORKLOAD_TASKS` tasks that yield `WORKLOAD_YIELDS` times, on a tokio
/// current-thread runtime (or, for the `smol-` variants, a smol executor run by `block_on`);
/// `none` only starts and stops the runtime, to subtract. `task-group` spawns into a
/// `TaskGroup` and joins its members as they finish. The `async-std-` variants run on
/// async-std's global executor instead.
///
/// Each variant drives a future of its own type, so that no variant's code changes how another
/// is compiled: the baselines stay put when ctxflow changes.
fn workload(variant: &str) {
    if let Some(variant) = variant.strip_prefix("smol-") {
        smol_workload(variant);
        return;
    }
    if let Some(variant) = variant.strip_prefix("async-std-") {
        async_std_workload(variant);
        return;
    }
    async fn work() {
        for _ in 0..WORKLOAD_YIELDS {
            tokio::task::yield_now().await;
        }
    }

    match variant {
        "none" => on_tokio(|_| async {}),
        "raw" => on_tokio(|_| async {
            let handles: Vec<_> = (0..WORKLOAD_TASKS).map(|_| tokio::spawn(work())).collect();
            for handle in handles {
                handle.await.unwrap();
            }
        }),
        "ctxflow" => on_tokio(|spawner| async move { spawn_and_join(&spawner, work).await }),
        "any-spawner" => {
            on_tokio(
                |spawner| async move { spawn_and_join(&AnySpawner::from(spawner), work).await },
            )
        }
        "task-group" => on_tokio(|spawner| async move {
            let mut group = ctxflow::TaskGroup::new(spawner);
            for _ in 0..WORKLOAD_TASKS {
                group.spawn(work());
            }
            while let Some(outcome) = group.join_next().await {
                outcome.unwrap();
            }
        }),
        _ => panic!("unknown workload {variant}"),
    }
}

/// Runs the future `driver` makes on a current-thread tokio runtime, inside a context of one
/// variable.
fn on_tokio<D, F>(driver: D)
where
    D: FnOnce(ctxflow::tokio::TokioSpawner) -> F,
    F: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let spawner = ctxflow::tokio::TokioSpawner::from(runtime.handle().clone());
    runtime.block_on(driver(spawner).in_context(context_with(1)));
}

/// Spawns the workload's tasks through `spawner`, then awaits every one.
async fn spawn_and_join<S, W, F>(spawner: &S, work: W)
where
    S: Spawner,
    W: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = (0..WORKLOAD_TASKS).map(|_| spawner.spawn(work())).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

/// The same work on a smol executor that the calling thread runs.
fn smol_workload(variant: &str) {
    async fn work() {
        for _ in 0..WORKLOAD_YIELDS {
            smol::future::yield_now().await;
        }
    }

    match variant {
        "none" => on_smol(|_, _| async {}),
        "raw" => on_smol(|executor, _| async move {
            let tasks: Vec<_> = (0..WORKLOAD_TASKS)
                .map(|_| executor.spawn(work()))
                .collect();
            for task in tasks {
                task.await;
            }
        }),
        "ctxflow" => on_smol(|_, spawner| async move { spawn_and_join(&spawner, work).await }),
        "any-spawner" => {
            on_smol(
                |_, spawner| async move { spawn_and_join(&AnySpawner::from(spawner), work).await },
            )
        }
        _ => panic!("unknown workload smol-{variant}"),
    }
}

/// Runs the future `driver` makes on a smol executor that the calling thread runs, inside a
/// context of one variable.
fn on_smol<D, F>(driver: D)
where
    D: FnOnce(Arc<smol::Executor<'static>>, ctxflow::smol::SmolSpawner) -> F,
    F: Future<Output = ()>,
{
    let executor = Arc::new(smol::Executor::new());
    let spawner = ctxflow::smol::SmolSpawner::new(executor.clone());
    let driver = driver(executor.clone(), spawner);
    smol::block_on(executor.run(driver.in_context(context_with(1))));
}

/// The same work on async-std's global executor, from a `block_on` on the calling thread. The
/// tasks run on the executor's threads (set `ASYNC_STD_THREAD_COUNT=1` for one), which the
/// calling thread waits for: the counts depend on how often either thread parks, so they vary
/// from run to run more than the other variants' do.
fn async_std_workload(variant: &str) {
    async fn work() {
        for _ in 0..WORKLOAD_YIELDS {
            async_std::task::yield_now().await;
        }
    }

    match variant {
        "none" => on_async_std(async {}),
        "raw" => on_async_std(async {
            let tasks: Vec<_> = (0..WORKLOAD_TASKS)
                .map(|_| async_std::task::spawn(work()))
                .collect();
            for task in tasks {
                task.await;
            }
        }),
        "ctxflow" => on_async_std(async {
            spawn_and_join(&ctxflow::async_std::AsyncStdSpawner::new(), work).await
        }),
        _ => panic!("unknown workload async-std-{variant}"),
    }
}

/// Runs `driver` with async-std's `block_on`, inside a context of one variable.
fn on_async_std<F: Future<Output = ()>>(driver: F) {
    async_std::task::block_on(driver.in_context(context_with(1)));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--child") {
        resident_child(&args[at + 1]);
        return;
    }
    if let Some(at) = args.iter().position(|arg| arg == "--workload") {
        workload(&args[at + 1]);
        return;
    }
    // `cargo bench` runs every bench binary; `cargo bench -- <filter>` passes a filter, which
    // this one honours as "run only if it matches `memory`".
    let filter = args[1..].iter().find(|arg| !arg.starts_with('-'));
    if filter.is_some_and(|filter| !"memory".contains(filter.as_str())) {
        return;
    }
    sizes();
    allocations();
    resident();
}
