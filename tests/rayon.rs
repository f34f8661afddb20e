//! The caller's context reaches every closure rayon runs through `ctxflow::rayon`, and never
//! stays behind on a worker.
#![cfg(feature = "rayon")]

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use ctxflow::rayon::{ParallelIteratorExt, ThreadPoolExt};
use ctxflow::{Context, ContextVar};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static JOB_ID: ContextVar<u64> = ContextVar::new("job_id");
static SCRATCH: ContextVar<&'static str> = ContextVar::new("scratch");
static TRANSACTION: ContextVar<u32> = ContextVar::non_flowing("transaction");

fn pool_of(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Whether every worker of `pool` is back to an empty context of its own.
fn every_worker_is_clean(pool: &ThreadPool) -> bool {
    pool.broadcast(|_| Context::current().is_empty())
        .into_iter()
        .all(|clean| clean)
}

#[test]
fn closure_spawned_on_global_pool_sees_callers_request_id() {
    let _token = REQUEST_ID.set("req-spawn".into());
    let (report, seen) = mpsc::channel();

    ctxflow::rayon::spawn(move || report.send(REQUEST_ID.get()).unwrap());

    assert_eq!(seen.recv().unwrap().as_deref(), Some("req-spawn"));
}

#[test]
fn awaited_handle_gives_the_result_of_a_closure_run_in_the_callers_context() {
    let seen = ctxflow::block_on(async {
        let _token = REQUEST_ID.set("req-handle".into());
        ctxflow::rayon::spawn_with_handle(|| REQUEST_ID.get())
            .await
            .unwrap()
    });
    assert_eq!(seen.as_deref(), Some("req-handle"));
}

#[test]
fn panic_in_a_closure_spawned_with_a_handle_comes_back_as_a_join_error() {
    let _token = REQUEST_ID.set("req-panic".into());
    let handle = ctxflow::rayon::spawn_with_handle(|| -> u32 { panic!("rayon job failed") });

    let error = handle.join().unwrap_err();
    assert!(error.is_panic());
    assert_eq!(
        *error.into_panic().downcast::<&str>().unwrap(),
        "rayon job failed"
    );
    // The panic never reached the caller's context either.
    assert_eq!(REQUEST_ID.get().as_deref(), Some("req-panic"));
}

#[test]
fn closure_whose_handle_is_dropped_still_runs_in_the_callers_context() {
    let _token = REQUEST_ID.set("req-detached".into());
    let (report, seen) = mpsc::channel();

    drop(ctxflow::rayon::spawn_with_handle(move || {
        report.send(REQUEST_ID.get()).unwrap()
    }));
    assert_eq!(seen.recv().unwrap().as_deref(), Some("req-detached"));
}

#[test]
fn writes_inside_a_closure_spawned_with_a_handle_never_reach_the_caller() {
    let _token = REQUEST_ID.set("req-parent".into());
    let inner = ctxflow::rayon::spawn_with_handle(|| {
        let _child = REQUEST_ID.set("req-child".into());
        REQUEST_ID.get()
    })
    .join()
    .unwrap();

    assert_eq!(inner.as_deref(), Some("req-child"));
    assert_eq!(REQUEST_ID.get().as_deref(), Some("req-parent"));
}

#[test]
fn both_sides_of_join_see_callers_request_id() {
    let _token = REQUEST_ID.set("req-join".into());

    let (a, b) = ctxflow::rayon::join(|| REQUEST_ID.get(), || REQUEST_ID.get());

    assert_eq!(a.as_deref(), Some("req-join"));
    assert_eq!(b.as_deref(), Some("req-join"));
}

#[test]
fn closures_spawned_in_a_scope_see_the_context_of_their_spawner() {
    let _token = REQUEST_ID.set("req-scope".into());
    let seen = Mutex::new(Vec::new());

    ctxflow::rayon::scope(|s| {
        s.spawn(|s| {
            seen.lock().unwrap().push(REQUEST_ID.get());
            let _token = REQUEST_ID.set("req-nested".into());
            s.spawn(|_| seen.lock().unwrap().push(REQUEST_ID.get()));
        });
    });

    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    assert_eq!(seen, [Some("req-nested".into()), Some("req-scope".into())]);
    assert_eq!(REQUEST_ID.get().as_deref(), Some("req-scope"));
}

#[test]
fn closures_spawned_in_an_in_place_scope_see_callers_request_id() {
    let _token = REQUEST_ID.set("req-in-place".into());
    let seen = Mutex::new(Vec::new());

    ctxflow::rayon::in_place_scope(|s| {
        for _ in 0..4 {
            s.spawn(|_| seen.lock().unwrap().push(REQUEST_ID.get()));
        }
    });

    assert_eq!(
        seen.into_inner().unwrap(),
        vec![Some("req-in-place".to_string()); 4]
    );
}

#[test]
fn closure_spawned_on_own_pool_sees_callers_request_id() {
    let pool = pool_of(2);
    let _token = REQUEST_ID.set("req-own-pool".into());
    let (report, seen) = mpsc::channel();

    pool.spawn_with_context(move || report.send(REQUEST_ID.get()).unwrap());

    assert_eq!(seen.recv().unwrap().as_deref(), Some("req-own-pool"));
}

#[test]
fn join_scope_and_install_on_own_pool_see_callers_request_id() {
    let pool = pool_of(2);
    let _token = REQUEST_ID.set("req-own-pool".into());
    let scoped = Mutex::new(Vec::new());

    let joined = pool.join_with_context(|| REQUEST_ID.get(), || REQUEST_ID.get());
    pool.scope_with_context(|s| s.spawn(|_| scoped.lock().unwrap().push(REQUEST_ID.get())));
    pool.in_place_scope_with_context(|s| {
        s.spawn(|_| scoped.lock().unwrap().push(REQUEST_ID.get()))
    });
    let installed = pool.install_with_context(|| REQUEST_ID.get());

    let expected = Some("req-own-pool".to_string());
    assert_eq!(joined, (expected.clone(), expected.clone()));
    assert_eq!(
        scoped.into_inner().unwrap(),
        [expected.clone(), expected.clone()]
    );
    assert_eq!(installed, expected);
    assert!(every_worker_is_clean(&pool));
}

#[test]
fn every_item_of_a_parallel_iterator_sees_callers_request_id() {
    let pool = pool_of(2);
    let _token = REQUEST_ID.set("req-par-iter".into());

    let items_seeing_it = pool.install_with_context(|| {
        (0..100_000)
            .into_par_iter()
            .with_current_context()
            .filter(|_| REQUEST_ID.get().as_deref() == Some("req-par-iter"))
            .count()
    });

    assert_eq!(items_seeing_it, 100_000);
}

#[test]
fn fold_identity_and_reduce_closures_see_callers_request_id() {
    let pool = pool_of(2);
    let _token = JOB_ID.set(1);
    let outside = AtomicUsize::new(0);
    let count_outside = || {
        if JOB_ID.get() != Some(1) {
            outside.fetch_add(1, Ordering::Relaxed);
        }
    };

    let total = pool.install(|| {
        (0..10_000u64)
            .into_par_iter()
            .with_context(Context::empty().with_value(&JOB_ID, 1))
            .fold(
                || {
                    count_outside();
                    0
                },
                |sum, item| sum + item,
            )
            .reduce(
                || {
                    count_outside();
                    0
                },
                |a, b| {
                    count_outside();
                    a + b
                },
            )
    });

    assert_eq!(total, (0..10_000).sum::<u64>());
    assert_eq!(outside.into_inner(), 0);
}

#[test]
fn collect_after_with_current_context_keeps_the_items_in_order() {
    let _token = JOB_ID.set(1000);

    let shifted: Vec<u64> = (0..10_000u64)
        .into_par_iter()
        .with_current_context()
        .map(|item| item + JOB_ID.get().unwrap())
        .collect();

    assert_eq!(shifted, (1000..11_000).collect::<Vec<_>>());
}

#[test]
fn non_flowing_variable_stays_behind_in_rayon_closures_and_items() {
    let pool = pool_of(2);
    let _request = REQUEST_ID.set("req-flowing".into());
    let _transaction = TRANSACTION.set(7);
    let (report, seen) = mpsc::channel();

    pool.spawn_with_context(move || report.send((REQUEST_ID.get(), TRANSACTION.get())).unwrap());
    let joined = pool.join_with_context(|| TRANSACTION.get(), || TRANSACTION.get());
    // Built on this thread, so that the adaptor itself decides what the items get.
    let items_with_transaction = (0..1_000)
        .into_par_iter()
        .with_current_context()
        .filter(|_| TRANSACTION.is_set())
        .count();

    assert_eq!(seen.recv().unwrap(), (Some("req-flowing".into()), None));
    assert_eq!(joined, (None, None));
    assert_eq!(items_with_transaction, 0);
    assert_eq!(TRANSACTION.get(), Some(7));
}

#[test]
fn nothing_flows_into_rayon_inside_suppress_flow() {
    let _token = REQUEST_ID.set("req-long-lived".into());

    let (joined, items_with_request_id) = ctxflow::suppress_flow(|| {
        let joined = ctxflow::rayon::join(|| REQUEST_ID.get(), || REQUEST_ID.get());
        let items = (0..1_000)
            .into_par_iter()
            .with_current_context()
            .filter(|_| REQUEST_ID.is_set())
            .count();
        (joined, items)
    });

    assert_eq!(joined, (None, None));
    assert_eq!(items_with_request_id, 0);
}

#[test]
fn ten_thousand_closures_on_two_threads_each_see_only_their_own_id() {
    let pool = pool_of(2);
    common::ten_thousand_jobs_see_only_their_own_ids(|job| pool.spawn_with_context(job));
    assert!(every_worker_is_clean(&pool));
}

#[test]
fn closure_that_sets_a_variable_leaves_no_trace_on_the_worker() {
    let pool = pool_of(1);
    let _token = REQUEST_ID.set("req-writer".into());

    pool.install_with_context(|| {
        let _kept = SCRATCH.set("left behind?");
        let _replaced = REQUEST_ID.set("req-overwritten".into());
    });

    assert!(every_worker_is_clean(&pool));
}

#[test]
fn items_that_set_variables_leave_no_trace_on_the_workers() {
    let pool = pool_of(2);
    let _token = REQUEST_ID.set("req-writer".into());

    pool.install(|| {
        (0..100_000)
            .into_par_iter()
            .with_current_context()
            .for_each(|_| {
                let _kept = SCRATCH.set("left behind?");
            });
    });

    assert!(every_worker_is_clean(&pool));
}

#[test]
fn panicking_spawned_closure_leaves_the_worker_clean() {
    let (panicked, panic_seen) = mpsc::channel();
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .panic_handler(move |_| panicked.send(()).unwrap())
        .build()
        .unwrap();

    REQUEST_ID.sync_scope("req-doomed".into(), || {
        pool.spawn_with_context(|| {
            let _kept = SCRATCH.set("set before the panic");
            panic!("job failed");
        });
    });
    panic_seen.recv().unwrap();

    assert!(every_worker_is_clean(&pool));
}

#[test]
fn panicking_item_leaves_the_workers_and_the_caller_clean() {
    let pool = pool_of(2);
    let _token = REQUEST_ID.set("req-caller".into());

    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install_with_context(|| {
            (0..1_000)
                .into_par_iter()
                .with_current_context()
                .for_each(|item| {
                    let _kept = SCRATCH.set("set before the panic");
                    assert_ne!(item, 500, "item 500 is malformed");
                });
        });
    }));

    assert!(outcome.is_err());
    assert!(every_worker_is_clean(&pool));
    assert_eq!(REQUEST_ID.get().as_deref(), Some("req-caller"));
    assert_eq!(SCRATCH.get(), None);
}

#[allow(
    clippy::disallowed_methods,
    reason = "the job must be a plain rayon job, which carries no context"
)]
#[test]
fn unrelated_job_run_while_join_waits_sees_an_empty_context() {
    let pool = pool_of(1);
    let (report, seen) = mpsc::channel();

    pool.install(|| {
        REQUEST_ID.sync_scope("req-waiting".into(), || {
            ctxflow::rayon::join(
                // A plain rayon job, queued on this very worker: rayon runs it while `join`
                // waits for its second closure.
                || rayon::spawn(move || report.send(REQUEST_ID.get()).unwrap()),
                || (),
            )
        });
    });

    assert_eq!(seen.recv().unwrap(), None);
}

/// A thread that drives a parallel iterator waits in rayon's joins and runs other queued jobs
/// meanwhile: those see none of the caller's values, also inside `install_with_context`, where
/// the driving thread runs in the caller's context.
#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "raw rayon jobs, unrelated to the request, queued while its items run"
)]
fn jobs_run_while_a_parallel_iterator_waits_see_none_of_its_callers_values() {
    const ROUNDS: usize = 50;
    const ITEMS: usize = 64;
    let pool = pool_of(2);
    let (report, seen) = mpsc::channel();
    for _ in 0..ROUNDS {
        let _token = REQUEST_ID.set("req-iter".into());
        pool.install_with_context(|| {
            (0..ITEMS)
                .into_par_iter()
                .with_current_context()
                .for_each(|_| {
                    assert_eq!(REQUEST_ID.get().as_deref(), Some("req-iter"));
                    let report = report.clone();
                    rayon::spawn(move || report.send(REQUEST_ID.get()).unwrap());
                });
        });
    }
    let leaked = seen
        .iter()
        .take(ROUNDS * ITEMS)
        .filter(Option::is_some)
        .count();
    assert_eq!(leaked, 0, "unrelated jobs saw the caller's request id");
    assert!(every_worker_is_clean(&pool));
}
