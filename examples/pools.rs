//! One request id, set once by the caller, seen by a std thread, by rayon and by a pool of the
//! application's own; the workers themselves keep nothing of it.
//!
//! Run with `cargo run --example pools --features rayon`.

use std::collections::BTreeMap;
use std::sync::mpsc;

use ctxflow::pool::{ContextPool, Job};
use ctxflow::rayon::{ParallelIteratorExt, ThreadPoolExt};
use ctxflow::ContextVar;
use futures::executor::block_on;
use rayon::prelude::*;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");

/// CPU work that takes arguments and returns a status, as a handler would hand to a pool.
fn process_item(item_id: &str, priority: u8) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("item_id", item_id.to_string()),
        ("priority", priority.to_string()),
        ("request_id", REQUEST_ID.get().unwrap_or_default()),
        ("status", "processed".to_string()),
    ])
}

fn main() {
    let _token = REQUEST_ID.set("req-123".into());
    println!("{:<34} sees {:?}", "caller", REQUEST_ID.get());

    println!("\n-- std::thread");
    #[allow(clippy::disallowed_methods, reason = "shows what a plain thread sees")]
    let plain = std::thread::spawn(|| REQUEST_ID.get()).join().unwrap();
    println!("{:<34} sees {plain:?}", "std::thread::spawn");
    let carried = ctxflow::thread::spawn(|| REQUEST_ID.get()).join().unwrap();
    println!("{:<34} sees {carried:?}", "ctxflow::thread::spawn");

    println!("\n-- rayon");
    let (left, right) = ctxflow::rayon::join(|| REQUEST_ID.get(), || REQUEST_ID.get());
    println!("{:<34} sees {left:?} and {right:?}", "ctxflow::rayon::join");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("cannot start the rayon pool");
    let items: Vec<String> = pool.install_with_context(|| {
        (1..=4)
            .into_par_iter()
            .with_current_context()
            .map(|item| format!("item {item} sees {:?}", REQUEST_ID.get()))
            .collect()
    });
    for item in items {
        println!("{:<34} {item}", "par_iter().with_current_context()");
    }
    let workers = pool.broadcast(|_| REQUEST_ID.get());
    println!("{:<34} sees {workers:?}", "rayon workers, between jobs");

    println!("\n-- a pool of the application's own");
    let (queue, jobs) = mpsc::channel::<Job>();
    #[allow(
        clippy::disallowed_methods,
        reason = "the application's own pool is a plain thread; `ContextPool` carries each job's context"
    )]
    let worker = std::thread::spawn(move || jobs.into_iter().for_each(|job| job()));
    let raw_queue = queue.clone();
    let own_pool = ContextPool::new(move |job| queue.send(job).expect("the worker is running"));
    let status = block_on(own_pool.spawn(|| process_item("item-123", 1)))
        .expect("process_item does not panic");
    println!(
        "{:<34} returns {status:?}",
        "ContextPool::spawn(process_item)"
    );
    let (report, seen) = mpsc::channel();
    raw_queue
        .send(Box::new(move || report.send(REQUEST_ID.get()).unwrap()))
        .expect("the worker is running");
    println!(
        "{:<34} sees {:?}",
        "the worker, between jobs",
        seen.recv().unwrap()
    );

    drop((own_pool, raw_queue));
    worker.join().expect("the worker does not panic");
}
