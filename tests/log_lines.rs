//! What env_logger really writes for `log` records: each line carries the request id of the
//! context it was logged in, from spawned tasks and blocking closures, on every runtime, with
//! values escaped as on `tracing` lines.

mod common;

use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use common::yield_now;
use ctxflow::log::{ContextLogger, LogFields};
use ctxflow::testing::each_runtime;
use ctxflow::{ContextVar, Spawner};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");

/// What env_logger wrote, shared with the test that reads it.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn take_lines(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        let text = String::from_utf8(bytes).expect("env_logger writes UTF-8");
        text.lines().map(str::to_owned).collect()
    }
}

/// Runs `run` and returns the lines logged meanwhile. The logger is global: tests take turns.
fn capture(run: impl FnOnce()) -> Vec<String> {
    static TURN: Mutex<()> = Mutex::new(());
    static OUTPUT: OnceLock<Output> = OnceLock::new();
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let output = OUTPUT.get_or_init(install_logger);
    output.take_lines();
    run();
    output.take_lines()
}

fn install_logger() -> Output {
    let output = Output::default();
    let env_logger = env_logger::Builder::new()
        .filter_module("log_lines", log::LevelFilter::Info)
        .format_timestamp(None)
        .write_style(env_logger::WriteStyle::Never)
        .target(env_logger::Target::Pipe(Box::new(output.clone())))
        .build();
    log::set_max_level(env_logger.filter());
    let fields = LogFields::new().field(&REQUEST_ID).field(&USER_ID);
    log::set_boxed_logger(Box::new(ContextLogger::new(env_logger, fields)))
        .expect("the only logger");
    output
}

/// What follows `message` on the one line that logged it, checked on each runtime's line.
fn tails<'a>(lines: &'a [String], message: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|line| Some(line.split_once(message)?.1))
        .collect()
}

fn assert_each_runtime_logged(lines: &[String], message: &str, tail: &str) {
    let tails = tails(lines, message);
    let runtimes = ctxflow::testing::Runtime::all().len();
    assert_eq!(tails.len(), runtimes, "{message}: {lines:#?}");
    for seen in tails {
        assert_eq!(seen, tail, "{message}");
    }
}

#[test]
fn lines_from_tasks_and_blocking_closures_carry_the_request_id_on_every_runtime() {
    let lines = capture(|| {
        each_runtime(|spawner| async move {
            let _id = REQUEST_ID.set("req-123".into());
            let task = spawner.spawn(async {
                yield_now().await;
                log::info!("from a task");
            });
            let blocking = spawner.spawn_blocking(|| log::info!("from a blocking closure"));
            task.await.unwrap();
            blocking.await.unwrap();
        })
    });
    assert_each_runtime_logged(&lines, "from a task", " request_id=req-123");
    assert_each_runtime_logged(&lines, "from a blocking closure", " request_id=req-123");
}

#[test]
fn a_value_that_could_forge_a_field_or_a_line_stays_one_quoted_field() {
    let lines = capture(|| {
        REQUEST_ID.sync_scope("abc user=admin\nFORGED line".into(), || {
            log::info!("hostile value");
        })
    });
    assert_eq!(
        lines,
        [r#"[INFO  log_lines] hostile value request_id="abc user=admin\nFORGED line""#]
    );
}

#[test]
fn a_records_own_key_values_come_first_and_unset_variables_add_nothing() {
    let lines = capture(|| {
        log::info!("nothing set");
        USER_ID.sync_scope(7, || log::info!(attempt = 2; "own key-values"));
    });
    assert_eq!(
        lines,
        [
            "[INFO  log_lines] nothing set",
            "[INFO  log_lines] own key-values attempt=2 user_id=7",
        ]
    );
}

#[test]
fn a_key_the_record_logs_itself_is_kept_instead_of_the_variables_value() {
    let lines = capture(|| {
        REQUEST_ID.sync_scope("req-123".into(), || {
            USER_ID.sync_scope(
                7,
                || log::info!(request_id = "req-9"; "about another request"),
            );
        })
    });
    assert_eq!(
        lines,
        ["[INFO  log_lines] about another request request_id=req-9 user_id=7"]
    );
}
