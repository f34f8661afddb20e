//! What `tracing_subscriber::fmt` really writes, in text and in JSON, for a request's background
//! tasks, blocking closures and `preserve_context` workers: each line carries the request's id
//! and nests under its span, on every runtime.

mod common;

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context as TaskContext, Poll};

use common::text_line;
use common::yield_now;
use ctxflow::testing::{each_runtime, spawn_unwrapped};
use ctxflow::tracing::{LogFields, LogFieldsExt as _};
use ctxflow::{preserve_context, Context, ContextVar, Spawner};
use futures::channel::oneshot;
use serde_json::Value;
use tracing::{info, info_span, Instrument, Level};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static USER_ID: ContextVar<u64> = ContextVar::new("user_id");

fn log_fields() -> LogFields {
    LogFields::new().field(&REQUEST_ID).field(&USER_ID)
}

/// What one fmt layer wrote, shared with the test that reads it.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.bytes().write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_lines(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.bytes());
        let text = String::from_utf8(bytes).expect("fmt writes UTF-8");
        text.lines().map(str::to_owned).collect()
    }
}

/// The lines a test produced, as the text layer and the JSON layer wrote them.
struct Lines {
    text: Vec<String>,
    json: Vec<Value>,
}

/// Runs `run` and returns the lines logged meanwhile.
///
/// Tasks log from the runtimes' worker threads, which a thread's default subscriber does not
/// reach, so the whole binary logs through one global subscriber; tests take turns with it. The
/// turn is an async lock because a test waits for it inside its runtime.
async fn capture(run: impl Future<Output = ()>) -> Lines {
    static TURN: futures::lock::Mutex<()> = futures::lock::Mutex::new(());
    static OUTPUTS: OnceLock<(Output, Output)> = OnceLock::new();
    let _turn = TURN.lock().await;
    let (text, json) = OUTPUTS.get_or_init(install_global_subscriber);
    text.take_lines();
    json.take_lines();
    run.await;
    Lines {
        text: text.take_lines(),
        json: json
            .take_lines()
            .iter()
            .map(|line| serde_json::from_str(line).expect("each JSON line is one JSON object"))
            .collect(),
    }
}

/// [`capture`] for code that runs on the test thread, outside any runtime.
fn capture_on_this_thread(run: impl FnOnce()) -> Lines {
    futures::executor::block_on(capture(async { run() }))
}

fn install_global_subscriber() -> (Output, Output) {
    let (text, json) = (Output::default(), Output::default());
    let text_writer = text.clone();
    let json_writer = json.clone();
    // Only this binary's lines: with the `log` bridge, the runtimes' own logs are events too.
    let only_these_tests = Targets::new().with_target("logging", Level::TRACE);
    let subscriber = tracing_subscriber::registry()
        .with(only_these_tests)
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_writer(move || text_writer.clone())
                .map_event_format(|format| log_fields().wrap(format)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .without_time()
                .with_writer(move || json_writer.clone())
                .map_event_format(|format| log_fields().wrap(format)),
        );
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    tracing_log::LogTracer::init().expect("the only `log` logger");
    (text, json)
}

/// Runs `body` as a request handler: inside the span `request{route="/orders"}`, with
/// `request_id` set to `req-123`.
fn handle_request<F: Future<Output = ()> + Send>(body: F) -> impl Future<Output = ()> + Send {
    async move {
        let _token = REQUEST_ID.set("req-123".into());
        body.await;
    }
    .instrument(info_span!("request", route = "/orders"))
}

/// What a line must show besides its message.
#[derive(Clone, Copy, Debug)]
struct Expected<'a> {
    request_id: Option<&'a str>,
    in_request_span: bool,
}

const IN_REQUEST: Expected<'static> = Expected {
    request_id: Some("req-123"),
    in_request_span: true,
};

const BARE: Expected<'static> = Expected {
    request_id: None,
    in_request_span: false,
};

/// The value of `name=value` on a text line, which ends with the logged variables.
fn text_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split(' ').next()
}

fn json_message(line: &Value) -> Option<&str> {
    line["fields"]["message"].as_str()
}

impl Lines {
    /// Checks that `message` was logged once, as `expected` says, in both formats.
    fn assert_logged_once(&self, message: &str, expected: Expected<'_>) {
        self.assert_logged(message, 1, expected);
    }

    fn assert_logged(&self, message: &str, times: usize, expected: Expected<'_>) {
        let text: Vec<_> = self
            .text
            .iter()
            .filter(|line| line.contains(&format!(": {message}")))
            .collect();
        assert_eq!(text.len(), times, "text lines for {message:?}: {text:#?}");
        for line in text {
            assert_eq!(
                text_field(line, "request_id"),
                expected.request_id,
                "request_id on {line:?}"
            );
            assert_eq!(
                line.contains(r#" request{route="/orders"}: "#),
                expected.in_request_span,
                "span of {line:?}"
            );
        }

        let json: Vec<_> = self
            .json
            .iter()
            .filter(|line| json_message(line) == Some(message))
            .collect();
        assert_eq!(json.len(), times, "JSON lines for {message:?}: {json:#?}");
        for line in json {
            assert_eq!(
                line.get("request_id").and_then(Value::as_str),
                expected.request_id,
                "request_id on {line}"
            );
            let span = line.get("span").map(|span| (&span["name"], &span["route"]));
            let request_span = (&Value::from("request"), &Value::from("/orders"));
            assert_eq!(
                span == Some(request_span),
                expected.in_request_span,
                "span of {line}"
            );
        }
    }
}

mod seed_scenarios {
    use super::*;

    each_runtime! {
        fn a_background_task_logs_in_the_parents_span_with_its_request_id(spawner) {
            let lines = capture(handle_request(async move {
                let background = spawner.spawn(async {
                    yield_now().await;
                    info!("background task");
                });
                background.await.unwrap();
            }))
            .await;
            lines.assert_logged_once("background task", IN_REQUEST);
        }
    }

    each_runtime! {
        fn a_blocking_closure_logs_in_the_parents_span_with_its_request_id(spawner) {
            let lines = capture(handle_request(async move {
                let item_id = "item-123";
                let blocking = spawner.spawn_blocking(move || {
                    info!(item_id, "blocking closure");
                });
                blocking.await.unwrap();
            }))
            .await;
            lines.assert_logged_once("blocking closure", IN_REQUEST);
        }
    }

    each_runtime! {
        fn preserve_context_workers_log_in_the_callers_span_with_its_request_id(spawner) {
            async fn worker(name: &'static str) {
                yield_now().await;
                info!("{name}");
            }
            let lines = capture(handle_request(async move {
                futures::join!(
                    preserve_context(worker("joined worker")),
                    preserve_context(worker("joined worker")),
                );
                spawner
                    .spawn(preserve_context(worker("spawned worker")))
                    .await
                    .unwrap();

                // The runtime's own spawn: the worker keeps what it was created with.
                let (done, finished) = oneshot::channel();
                let preserved = preserve_context(worker("worker on the runtime's own spawn"));
                spawn_unwrapped(&spawner, async move {
                    preserved.await;
                    let _ = done.send(());
                });
                finished.await.unwrap();
            }))
            .await;
            lines.assert_logged("joined worker", 2, IN_REQUEST);
            lines.assert_logged_once("spawned worker", IN_REQUEST);
            lines.assert_logged_once("worker on the runtime's own spawn", IN_REQUEST);
        }
    }

    each_runtime! {
        fn a_childs_override_shows_on_its_own_lines_and_never_on_the_parents(spawner) {
            let lines = capture(handle_request(async move {
                let child = spawner.spawn(async {
                    let _token = REQUEST_ID.set("child-override".into());
                    yield_now().await;
                    info!("child after its override");
                });
                child.await.unwrap();
                info!("parent after the child");
            }))
            .await;
            let overridden = Expected {
                request_id: Some("child-override"),
                ..IN_REQUEST
            };
            lines.assert_logged_once("child after its override", overridden);
            lines.assert_logged_once("parent after the child", IN_REQUEST);
        }
    }
}

mod fields {
    use super::*;

    each_runtime! {
        fn lines_from_the_log_crate_carry_the_request_id_through_its_bridge(spawner) {
            let lines = capture(handle_request(async move {
                let task = spawner.spawn(async { log::info!("through the log bridge") });
                task.await.unwrap();
            }))
            .await;
            lines.assert_logged_once("through the log bridge", IN_REQUEST);
        }
    }

    each_runtime! {
        fn lines_written_where_no_variable_is_set_show_nothing_extra(spawner) {
            let lines = capture(async move {
                info!("in the test with no context");
                let task = spawner.spawn(async { info!("in a task with no context") });
                task.await.unwrap();
            })
            .await;
            lines.assert_logged_once("in the test with no context", BARE);
            lines.assert_logged_once("in a task with no context", BARE);
            let untouched = &lines.text[0];
            assert_eq!(
                *untouched,
                format!(" INFO {}: in the test with no context", module_path!())
            );
        }
    }

    each_runtime! {
        fn every_set_variable_shows_in_the_order_it_was_registered(spawner) {
            let lines = capture(async move {
                let _user = USER_ID.set(42);
                let _request = REQUEST_ID.set("req-7".into());
                spawner
                    .spawn(async { info!(items = 3, "order placed") })
                    .await
                    .unwrap();
            })
            .await;
            assert_eq!(lines.text.len(), 1);
            for line in &lines.text {
                assert!(
                    line.ends_with("order placed items=3 request_id=req-7 user_id=42"),
                    "{line:?}"
                );
            }
            for line in &lines.json {
                assert_eq!(line["request_id"], "req-7", "{line}");
                assert_eq!(line["user_id"], "42", "{line}");
                assert_eq!(line["fields"]["items"], 3, "{line}");
            }
        }
    }

    #[test]
    fn an_awkward_value_is_written_exactly_as_the_subscriber_writes_an_events_own_string_field() {
        let awkward = "req-\u{1b}[31m\"quoted\"\\";
        let lines = capture_on_this_thread(|| {
            let _token = REQUEST_ID.set(awkward.into());
            info!(own = awkward, "awkward request id");
        });
        let [text] = &lines.text[..] else {
            panic!("one text line: {:?}", lines.text)
        };
        assert_eq!(
            text_field(text, "request_id"),
            text_field(text, "own"),
            "{text:?}"
        );
        let [json] = &lines.json[..] else {
            panic!("one JSON line: {:?}", lines.json)
        };
        assert_eq!(json["request_id"], awkward);
        assert_eq!(json["request_id"], json["fields"]["own"]);
    }

    #[test]
    fn a_field_the_event_records_itself_is_kept_instead_of_the_variables_value() {
        let lines = capture_on_this_thread(|| {
            let _user = USER_ID.set(42);
            let _request = REQUEST_ID.set("req-123".into());
            info!(request_id = "req-9", "about another request");
        });
        let [text] = &lines.text[..] else {
            panic!("one text line: {:?}", lines.text)
        };
        assert!(
            text.ends_with("about another request request_id=\"req-9\" user_id=42"),
            "{text:?}"
        );
        // Not flattened, the event's fields are a member of their own: nothing to keep apart.
        let [json] = &lines.json[..] else {
            panic!("one JSON line: {:?}", lines.json)
        };
        assert_eq!(json["request_id"], "req-123", "{json}");
        assert_eq!(json["fields"]["request_id"], "req-9", "{json}");
    }

    #[test]
    fn coloured_text_lines_colour_the_variables_as_the_events_own_fields() {
        let output = Output::default();
        let writer = output.clone();
        let subscriber = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(true)
            .with_writer(move || writer.clone())
            .map_event_format(|format| log_fields().wrap(format))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _token = REQUEST_ID.set("req-123".into());
            info!(items = 3, "order placed");
        });
        let [line] = &output.take_lines()[..] else {
            panic!("one line")
        };
        let italic = |name: &str| format!("\u{1b}[3m{name}\u{1b}[0m");
        assert!(line.contains(&italic("items")), "{line:?}");
        assert!(line.contains(&italic("request_id")), "{line:?}");
        assert!(line.ends_with("req-123"), "{line:?}");
    }
}

mod spans {
    use super::*;

    each_runtime! {
        #[allow(
            clippy::disallowed_methods,
            reason = "a plain thread: the context must get there with nothing but the snapshot"
        )]
        fn work_given_the_current_context_by_hand_logs_in_the_callers_span(spawner) {
            let lines = capture(handle_request(async move {
                let wrapped = Context::current().wrap(|| info!("wrapped closure"));
                let envelope = Context::inheritable();
                let task = spawner.spawn_in(Context::current(), async {
                    yield_now().await;
                    info!("task in the current context");
                });
                std::thread::spawn(wrapped).join().unwrap();
                std::thread::spawn(move || envelope.run(|| info!("job from its envelope")))
                    .join()
                    .unwrap();
                task.await.unwrap();
            }))
            .await;
            lines.assert_logged_once("wrapped closure", IN_REQUEST);
            lines.assert_logged_once("job from its envelope", IN_REQUEST);
            lines.assert_logged_once("task in the current context", IN_REQUEST);
        }
    }

    each_runtime! {
        fn a_task_spawned_in_another_context_runs_outside_the_callers_span(spawner) {
            let lines = capture(handle_request(async move {
                let task = spawner.spawn_in(Context::empty(), async {
                    info!("task in another context");
                });
                task.await.unwrap();
            }))
            .await;
            lines.assert_logged_once("task in another context", BARE);
        }
    }

    /// Logs `message` when dropped.
    struct LogsWhenDropped(&'static str);

    impl Drop for LogsWhenDropped {
        fn drop(&mut self) {
            info!("{}", self.0);
        }
    }

    /// A future that is ready at once and lets go of what it holds only when it is dropped.
    struct ReadyHolding {
        _held: LogsWhenDropped,
    }

    impl Future for ReadyHolding {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }

    each_runtime! {
        fn a_tasks_future_is_dropped_in_its_span_whether_it_finishes_or_is_aborted(spawner) {
            let lines = capture(handle_request(async move {
                let finished = ReadyHolding {
                    _held: LogsWhenDropped("finished future dropped"),
                };
                spawner.spawn(finished).await.unwrap();

                let (started, has_started) = oneshot::channel();
                let aborted = spawner.spawn(async move {
                    let _held = LogsWhenDropped("aborted future dropped");
                    started.send(()).unwrap();
                    std::future::pending::<()>().await;
                });
                has_started.await.unwrap();
                aborted.abort();
                assert!(aborted.await.unwrap_err().is_cancelled());
            }))
            .await;
            lines.assert_logged_once("finished future dropped", IN_REQUEST);
            lines.assert_logged_once("aborted future dropped", IN_REQUEST);
        }
    }
}

mod isolation {
    use super::*;

    const REQUESTS: usize = 1_000;

    /// One of many concurrent requests: its own span and id, a background task, a blocking
    /// closure and a worker, each logging the id it expects to carry.
    async fn request(spawner: ctxflow::AnySpawner, number: usize) {
        let id = format!("req-{number}");
        let span = info_span!("request", id = %id);
        async move {
            let _token = REQUEST_ID.set(id.clone());
            yield_now().await;
            let expected = id.clone();
            let background = spawner.spawn(async move {
                yield_now().await;
                info!(expected = %expected, "background task");
            });
            let expected = id.clone();
            let blocking =
                spawner.spawn_blocking(move || info!(expected = %expected, "blocking closure"));
            preserve_context(async {
                yield_now().await;
                info!(expected = %id, "worker");
            })
            .await;
            background.await.unwrap();
            blocking.await.unwrap();
        }
        .instrument(span)
        .await
    }

    each_runtime! {
        fn concurrent_requests_never_carry_each_others_request_id(spawner) {
            let lines = capture(async move {
                let requests: Vec<_> = (0..REQUESTS)
                    .map(|number| spawner.spawn(request(spawner.clone(), number)))
                    .collect();
                for request in requests {
                    request.await.unwrap();
                }
            })
            .await;

            let expected_lines = 3 * REQUESTS;
            assert_eq!(lines.text.len(), expected_lines);
            for line in &lines.text {
                let expected = text_field(line, "expected").expect("every line says what it expects");
                assert_eq!(text_field(line, "request_id"), Some(expected), "{line:?}");
                assert!(
                    line.contains(&format!(" request{{id={expected}}}: ")),
                    "{line:?}"
                );
            }
            assert_eq!(lines.json.len(), expected_lines);
            for line in &lines.json {
                let expected = &line["fields"]["expected"];
                assert!(expected.is_string(), "{line}");
                assert_eq!(&line["request_id"], expected, "{line}");
                assert_eq!(&line["span"]["id"], expected, "{line}");
            }
        }
    }
}

mod forging {
    use super::*;

    /// The fields of the one text line and the one JSON line logged with `message` where
    /// `REQUEST_ID` is `request_id`, checking that each line reads as fields and nothing else.
    fn log_with_request_id(request_id: &str, message: &str) -> (Vec<(String, String)>, Value) {
        let lines = capture_on_this_thread(|| {
            let _token = REQUEST_ID.set(request_id.into());
            info!("{message}");
        });
        let [text] = &lines.text[..] else {
            panic!("one text line: {:?}", lines.text)
        };
        let (_, tail) = text
            .split_once(message)
            .unwrap_or_else(|| panic!("no message in {text:?}"));
        let fields = text_line::fields(tail).unwrap_or_else(|error| panic!("{error}: {text:?}"));
        let [json] = &lines.json[..] else {
            panic!("one JSON line: {:?}", lines.json)
        };
        (fields, json.clone())
    }

    fn request_id_only(value: &str) -> Vec<(String, String)> {
        vec![("request_id".to_owned(), value.to_owned())]
    }

    #[test]
    fn a_value_with_spaces_and_equals_signs_adds_no_field_to_a_line() {
        let forging = "abc user=admin role=root";
        let (fields, json) = log_with_request_id(forging, "spaces and equals signs");
        assert_eq!(fields, request_id_only(forging));
        assert_eq!(json["request_id"], forging, "{json}");
        assert!(
            json.get("user").is_none() && json.get("role").is_none(),
            "{json}"
        );
    }

    #[test]
    fn a_value_with_quotes_and_backslashes_cannot_close_its_quoting_early() {
        let forging = r#"a" user="admin\"#;
        let (fields, json) = log_with_request_id(forging, "quotes and backslashes");
        assert_eq!(fields, request_id_only(forging));
        assert_eq!(json["request_id"], forging, "{json}");
    }

    #[test]
    fn a_value_with_a_line_feed_or_a_terminal_escape_stays_on_its_line_and_escaped() {
        let forging = "req-1\n ERROR forged: admin logged in\r\u{1b}[2J\u{85}\u{2028}\t";
        // `log_with_request_id` finds exactly one line in each format.
        let (fields, json) = log_with_request_id(forging, "line feed and escape");
        assert_eq!(fields, request_id_only(forging));
        assert_eq!(json["request_id"], forging, "{json}");
    }

    #[test]
    fn text_lines_carry_no_raw_control_character_from_a_value() {
        let lines = capture_on_this_thread(|| {
            let _token = REQUEST_ID.set("a\u{1b}]0;title\u{7}b\u{8}\u{7f}".into());
            info!("control characters");
        });
        let [text] = &lines.text[..] else {
            panic!("one text line: {:?}", lines.text)
        };
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(
            text.ends_with(r#"request_id="a\u{1b}]0;title\u{7}b\u{8}\u{7f}""#),
            "{text:?}"
        );
    }

    #[test]
    fn plain_values_still_show_bare() {
        let (fields, _) = log_with_request_id("01a21a73-a383-71d4.8abb:4b21/4b@1768+d0", "plain");
        assert_eq!(
            fields,
            request_id_only("01a21a73-a383-71d4.8abb:4b21/4b@1768+d0")
        );
        let lines = capture_on_this_thread(|| {
            let _token = REQUEST_ID.set("req-123".into());
            info!("bare");
        });
        assert!(
            lines.text[0].ends_with("bare request_id=req-123"),
            "{:?}",
            lines.text
        );
    }
}
