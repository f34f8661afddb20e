//! [`WithLogFields`]: `tracing_subscriber::fmt`'s line formats, showing the registered context
//! variables on every line.
//!
//! A `Layer` cannot add fields to what another layer formats, so the variables join the line at
//! the format: the wrapped format writes the line, and the variables go in before its end, text
//! fields through the subscriber's own field formatter, JSON members through `serde_json`.
//! Either way a value stays one field of one line: quoted and escaped in text when it is not
//! plain, a JSON string otherwise.

use std::cell::RefCell;
use std::fmt::{self, Display, Write as _};
use std::thread::LocalKey;

use ::tracing::{Event, Subscriber};
use ctxflow_core::fields::LogFields;
use tracing_subscriber::fmt::format::{Compact, Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::record::with_record;

/// A `tracing_subscriber::fmt` format that also writes the [`LogFields`] set where each line
/// is written: `request_id=req-123` at the end of a text line, `"request_id":"req-123"` in a
/// JSON object. Lines written where none is set are exactly the wrapped format's.
///
/// Made by [`LogFieldsExt::wrap`], for the full (default), compact and JSON (`ctxflow`'s
/// feature `tracing-json`, this crate's `json`) formats; most easily through the builders'
/// `map_event_format`.
///
/// ```
/// use ctxflow::tracing::{LogFields, LogFieldsExt as _};
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
///
/// # use std::io::{self, Write};
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Clone, Default)]
/// # struct Captured(Arc<Mutex<Vec<u8>>>);
/// # impl Write for Captured {
/// #     fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
/// #         self.0.lock().unwrap().write(bytes)
/// #     }
/// #     fn flush(&mut self) -> io::Result<()> {
/// #         Ok(())
/// #     }
/// # }
/// # let output = Captured::default();
/// # let writer = output.clone();
/// let fields = LogFields::new().field(&REQUEST_ID);
/// let subscriber = tracing_subscriber::fmt()
///     .compact()
///     .without_time()
///     .with_ansi(false)
///     .map_event_format(|format| fields.wrap(format))
/// #   .with_writer(move || writer.clone())
///     .finish();
///
/// tracing::subscriber::with_default(subscriber, || {
///     let _token = REQUEST_ID.set("req-123".into());
///     tracing::info!(items = 3, "order placed");
/// });
/// # let output = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
/// assert!(output.ends_with("order placed items=3 request_id=req-123\n"));
/// ```
#[derive(Clone, Debug)]
pub struct WithLogFields<E> {
    fields: LogFields,
    format: E,
    /// `format`, told to colour its output. The wrapped format writes into a buffer, whose
    /// writer cannot say whether the layer colours its lines, so the colour is chosen here.
    coloured: E,
}

/// [`LogFields::wrap`](LogFieldsExt::wrap): [`LogFields`] belongs to `ctxflow-core`, which
/// knows nothing of `tracing`, so the method that wraps a `tracing_subscriber` format comes
/// with this trait. It is sealed: [`LogFields`] is the only type that has it.
pub trait LogFieldsExt: sealed::Sealed {
    /// `format`, showing these variables on every line; see [`WithLogFields`].
    ///
    /// ```
    /// use ctxflow::tracing::{LogFields, LogFieldsExt as _};
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    ///
    /// let fields = LogFields::new().field(&REQUEST_ID);
    /// let subscriber = tracing_subscriber::fmt()
    ///     .map_event_format(|format| fields.wrap(format))
    ///     .finish();
    /// # drop(subscriber);
    /// ```
    fn wrap<F: Clone, T: Clone>(self, format: Format<F, T>) -> WithLogFields<Format<F, T>>;
}

impl LogFieldsExt for LogFields {
    fn wrap<F: Clone, T: Clone>(self, format: Format<F, T>) -> WithLogFields<Format<F, T>> {
        WithLogFields {
            fields: self,
            coloured: format.clone().with_ansi(true),
            format,
        }
    }
}

mod sealed {
    pub trait Sealed {}

    impl Sealed for ctxflow_core::fields::LogFields {}
}

macro_rules! text_line_format {
    ($kind:ty) => {
        impl<S, N, T> FormatEvent<S, N> for WithLogFields<Format<$kind, T>>
        where
            S: Subscriber + for<'a> LookupSpan<'a>,
            N: for<'a> FormatFields<'a> + 'static,
            T: FormatTime,
        {
            fn format_event(
                &self,
                ctx: &FmtContext<'_, S, N>,
                writer: Writer<'_>,
                event: &Event<'_>,
            ) -> fmt::Result {
                self.format_text(ctx, writer, event)
            }
        }
    };
}

text_line_format!(Full);
text_line_format!(Compact);

#[cfg(feature = "json")]
impl<S, N, T> FormatEvent<S, N> for WithLogFields<Format<tracing_subscriber::fmt::format::Json, T>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        self.format_json(ctx, writer, event)
    }
}

impl<E> WithLogFields<E> {
    /// Writes the wrapped format's line with ` name=value` for each set variable before its end.
    fn format_text<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result
    where
        E: FormatEvent<S, N>,
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let current = self.fields.current();
        // A field the event records itself says more than the context: it is the one kept.
        let own = event.metadata().fields();
        let mut set = current
            .iter()
            .filter(|field| own.field(field.name()).is_none())
            .peekable();
        if set.peek().is_none() {
            return self.format.format_event(ctx, writer, event);
        }
        let format = match writer.has_ansi_escapes() {
            true => &self.coloured,
            false => &self.format,
        };
        with_buffer(&LINE, |line| {
            format.format_event(ctx, Writer::new(line), event)?;
            let (line, end) = split_line_end(line);
            writer.write_str(line)?;
            for field in set {
                writer.write_char(' ')?;
                with_text(field.value(), |text| {
                    with_record(field.name_slice(), text, |record| {
                        ctx.format_fields(writer.by_ref(), record)
                    })
                })?;
            }
            writer.write_str(end)
        })
    }

    /// Writes the wrapped format's JSON object with a `"name":"value"` member for each set
    /// variable before its closing brace.
    #[cfg(feature = "json")]
    fn format_json<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result
    where
        E: FormatEvent<S, N>,
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let current = self.fields.current();
        let mut set = current.iter().peekable();
        if set.peek().is_none() {
            return self.format.format_event(ctx, writer, event);
        }
        with_buffer(&LINE, |object| {
            self.format.format_event(ctx, Writer::new(object), event)?;
            let (line, end) = split_line_end(object);
            let Some(members) = line.strip_suffix('}') else {
                return writer.write_str(object);
            };
            writer.write_str(members)?;
            let mut separator = match members.trim_end().ends_with('{') {
                true => "",
                false => ",",
            };
            for field in set {
                let name = serde_json::to_string(field.name()).map_err(|_| fmt::Error)?;
                let value = with_text(field.value(), |text| {
                    serde_json::to_string(text).map_err(|_| fmt::Error)
                })?;
                write!(writer, "{separator}{name}:{value}")?;
                separator = ",";
            }
            writer.write_char('}')?;
            writer.write_str(end)
        })
    }
}

thread_local! {
    /// The wrapped format's line.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    /// A variable's value, written out to be escaped.
    static VALUE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Calls `f` with the text of `value`, or the error of its `Display`.
fn with_text<R>(
    value: &dyn Display,
    f: impl FnOnce(&str) -> Result<R, fmt::Error>,
) -> Result<R, fmt::Error> {
    with_buffer(&VALUE, |text| {
        write!(text, "{value}")?;
        f(text)
    })
}

/// Calls `f` with an empty buffer: the thread's own `buffer`, kept between lines so that a
/// line costs no allocation, or a new one when a value's `Display` logs while the thread's is
/// in use.
fn with_buffer<R>(
    buffer: &'static LocalKey<RefCell<String>>,
    f: impl FnOnce(&mut String) -> R,
) -> R {
    let mut f = Some(f);
    let reused = buffer.try_with(|buffer| {
        let mut buffer = buffer.try_borrow_mut().ok()?;
        buffer.clear();
        let f = f.take().expect("called once");
        Some(f(&mut buffer))
    });
    match reused.ok().flatten() {
        Some(result) => result,
        None => (f.take().expect("called once"))(&mut String::new()),
    }
}

/// `line` without its line ending, and the line ending.
fn split_line_end(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\r', '\n']);
    (body, &line[body.len()..])
}
