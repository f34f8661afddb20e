//! The seed's scenarios on the default runtime: a request id set in a handler reaches a
//! background task, a named task, a blocking closure, `preserve_context` workers and a plain
//! thread, while each task's own writes stay its own.
//!
//! ```text
//! cargo run --example quickstart                                             # tokio
//! cargo run --example quickstart --no-default-features --features smol       # smol
//! cargo run --example quickstart --no-default-features --features async-std  # async-std
//! ```

use ctxflow::{preserve_context, Context, ContextVar, InContext};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<String> = ContextVar::new("user_id");

fn log(message: &str) {
    let request_id = REQUEST_ID.get().unwrap_or_else(|| "-".into());
    let user_id = USER_ID.get().unwrap_or_else(|| "-".into());
    let task = ctxflow::task_name().map_or_else(|| "-".into(), |name| name.to_string());
    println!("request_id={request_id:<16} user_id={user_id:<9} task={task:<18} {message}");
}

async fn background_work() {
    log("background task");
}

fn process_item(item_id: &str, priority: u8) -> String {
    log(&format!(
        "processing {item_id} at priority {priority} on a blocking thread"
    ));
    "done".to_string()
}

async fn worker() {
    log("preserve_context worker");
}

async fn handle_request() {
    let _token = REQUEST_ID.set("req-123".into());
    log("handler");

    // create_task_with_context
    ctxflow::spawn(background_work()).await.unwrap();
    ctxflow::task::spawn_named("process-order-123", background_work())
        .await
        .unwrap();

    // run_in_executor_with_context, with arguments and a result
    let status = ctxflow::spawn_blocking(|| process_item("item-123", 1))
        .await
        .unwrap();
    log(&format!("blocking closure returned {status:?}"));

    // preserve_context: the worker keeps the context it was created in
    let _user = USER_ID.set("user-789".into());
    futures::join!(preserve_context(worker()), preserve_context(worker()));

    // Any thread, through a wrapped closure; a plain thread sees nothing
    #[allow(
        clippy::disallowed_methods,
        reason = "shows a plain thread, wrapped and not"
    )]
    {
        std::thread::spawn(Context::current().wrap(|| log("std::thread with a wrapped closure")))
            .join()
            .unwrap();
        std::thread::spawn(|| log("std::thread without ctxflow"))
            .join()
            .unwrap();
    }

    // Isolation: the child's write stays in the child
    ctxflow::spawn(async {
        let _token = REQUEST_ID.set("child-override".into());
        log("child after its own set");
    })
    .await
    .unwrap();
    log("parent after the child ran");
}

fn main() {
    // Two requests at once: each keeps its own id.
    ctxflow::block_on(async {
        let first = ctxflow::spawn(handle_request());
        let second = ctxflow::spawn(
            async {
                let _token = REQUEST_ID.set("req-456".into());
                ctxflow::spawn_blocking(|| log("another request's blocking closure"))
                    .await
                    .unwrap();
            }
            .in_current_context(),
        );
        first.await.unwrap();
        second.await.unwrap();
    });
}
