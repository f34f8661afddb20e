//! A context variable's value as it shows on a text line: one token that no value can break
//! out of.
//!
//! A value reaches the line from wherever the context got it, a request header included, so
//! its text cannot be trusted to stay one field: `abc user=admin` would add a `user` field, a
//! line feed a whole forged line, an ESC a terminal escape sequence. A value made only of plain
//! characters shows bare (`request_id=req-123`); any other shows as a quoted, escaped string,
//! exactly as `tracing_subscriber::fmt` writes a `&str` field (`request_id="abc user=admin"`,
//! `"a\nb"`, `"\u{1b}[31m"`).

use std::fmt::{self, Display};

/// `text`, bare when it is plain, else quoted and escaped: what a text log line should show for
/// a value that came from anywhere.
///
/// ```
/// use ctxflow::fields::Escaped;
///
/// assert_eq!(Escaped("req-123").to_string(), "req-123");
/// assert_eq!(Escaped("abc user=admin").to_string(), r#""abc user=admin""#);
/// assert_eq!(Escaped("a\nb").to_string(), r#""a\nb""#);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match is_plain(self.0) {
            true => f.write_str(self.0),
            // `str`'s `Debug` quotes, escapes quotes and backslashes, and writes every control
            // or otherwise unprintable character (line and paragraph separators, bidi
            // overrides, C1 controls) as an escape: what is left cannot end the string early.
            false => write!(f, "{:?}", self.0),
        }
    }
}

/// Whether `text` can show bare: non-empty, visible ASCII only, and none of the characters a
/// reader of the line would take for the end of the value or the start of another field.
fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'"' | b'\'' | b'\\' | b'='))
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    fn shown(text: &str) -> String {
        Escaped(text).to_string()
    }

    #[test]
    fn plain_values_show_bare() {
        assert_eq!(shown("req-123"), "req-123");
        assert_eq!(
            shown("01a21a73-a383-71d4-8abb-4b214b1768d0"),
            "01a21a73-a383-71d4-8abb-4b214b1768d0"
        );
        assert_eq!(shown("a/b:c.d_e+f@g"), "a/b:c.d_e+f@g");
    }

    #[test]
    fn values_that_could_forge_a_field_or_a_line_show_quoted_and_escaped() {
        assert_eq!(shown("abc user=admin"), r#""abc user=admin""#);
        assert_eq!(shown("a=b"), r#""a=b""#);
        assert_eq!(shown("a\nb\r"), r#""a\nb\r""#);
        assert_eq!(shown("a\tb"), r#""a\tb""#);
        assert_eq!(shown("\u{1b}[31m"), r#""\u{1b}[31m""#);
        assert_eq!(shown("x\" y=\"z"), r#""x\" y=\"z""#);
        assert_eq!(shown("end\\"), r#""end\\""#);
        assert_eq!(
            shown("a\u{85}b\u{2028}c\u{202e}"),
            r#""a\u{85}b\u{2028}c\u{202e}""#
        );
        assert_eq!(shown(""), r#""""#);
        assert_eq!(shown("José"), r#""José""#);
    }
}
