//! An in-process job queue: workers start once, jobs arrive later from many requests, and each
//! job runs with the request id of whoever submitted it.
//!
//! Wrapping the workers' spawn would give every job the context of start-up; the context has to
//! travel in the job's envelope instead, captured at enqueue.
//!
//! ```text
//! cargo run --example job_queue
//! ```

use ctxflow::{Context, ContextVar, InContext, Spawner};
use futures::channel::mpsc;
use futures::lock::Mutex;
use futures::StreamExt;
use std::sync::Arc;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static DB_TRANSACTION: ContextVar<u32> = ContextVar::non_flowing("db_transaction");

/// What travels through the queue: the job and its submitter's context.
struct Envelope {
    context: Context,
    order: u32,
}

fn submit(queue: &mpsc::UnboundedSender<Envelope>, order: u32) {
    let context = Context::inheritable();
    queue
        .unbounded_send(Envelope { context, order })
        .expect("the workers are running");
}

async fn send_confirmation(worker: usize, order: u32) {
    let request_id = REQUEST_ID.get().unwrap_or_else(|| "-".into());
    let transaction = DB_TRANSACTION.get().map_or("-".into(), |tx| tx.to_string());
    println!("worker={worker} request_id={request_id:<8} db_transaction={transaction} confirm order {order}");
}

fn main() {
    let spawner = ctxflow::DefaultSpawner;
    spawner.block_on(async {
        let (queue, jobs) = mpsc::unbounded::<Envelope>();
        let jobs = Arc::new(Mutex::new(jobs));

        // Workers start once, outside any request: `suppress_flow` makes sure of it even if
        // this code moves into a handler one day.
        let workers: Vec<_> = ctxflow::suppress_flow(|| {
            (0..2)
                .map(|worker| {
                    let jobs = jobs.clone();
                    spawner.spawn(async move {
                        while let Some(Envelope { context, order }) = jobs.lock().await.next().await
                        {
                            // The job's own context, installed around each of its polls.
                            send_confirmation(worker, order).in_context(context).await;
                        }
                    })
                })
                .collect()
        });

        // Requests come and go, each queueing work under its own id; the open transaction
        // stays behind, since it will be gone by the time the job runs.
        for order in 1..=4 {
            let _request = REQUEST_ID.set(format!("req-{order}"));
            let _transaction = DB_TRANSACTION.set(100 + order);
            submit(&queue, order);
        }
        drop(queue);
        for worker in workers {
            worker.await.unwrap();
        }
    });
}
