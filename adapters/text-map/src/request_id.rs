//! Request ids: which ones are taken from outside, and fresh ones. Shared by the integrations
//! that read request ids (`ctxflow::tower`), so that they all accept and refuse the same.

use std::error::Error;
use std::fmt;

use uuid::Uuid;

/// The longest incoming request id taken, in bytes, unless configured otherwise: longer ones are
/// ignored, since an id is logged with every line of the request.
pub const DEFAULT_MAX_REQUEST_ID_LEN: usize = 128;

/// A fresh request id: a UUID v7 in its lowercase hyphenated form.
///
/// ```
/// let id = ctxflow::text_map::request_id::uuid_v7();
/// assert_eq!(id.len(), 36);
/// assert!(ctxflow::text_map::request_id::check_request_id(id.as_bytes(), 128).is_ok());
/// ```
pub fn uuid_v7() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

/// Whether an id from outside may be used: [`InvalidRequestId`] says why not (longer than
/// `max_len` bytes, empty, or a byte outside `A-Z a-z 0-9 - _ . : / + = @`).
///
/// ```
/// use ctxflow::text_map::request_id::{check_request_id, InvalidRequestId};
///
/// assert!(check_request_id(b"req-123", 128).is_ok());
/// assert_eq!(check_request_id(b"", 128), Err(InvalidRequestId::Empty));
/// assert_eq!(
///     check_request_id(b"abc user=admin", 128),
///     Err(InvalidRequestId::ForbiddenByte { index: 3, byte: b' ' })
/// );
/// assert_eq!(
///     check_request_id(b"req-123", 4),
///     Err(InvalidRequestId::TooLong { len: 7, max_len: 4 })
/// );
/// ```
pub fn check_request_id(value: &[u8], max_len: usize) -> Result<(), InvalidRequestId> {
    if value.len() > max_len {
        return Err(InvalidRequestId::TooLong {
            len: value.len(),
            max_len,
        });
    }
    if value.is_empty() {
        return Err(InvalidRequestId::Empty);
    }
    match value.iter().position(|&byte| !is_id_byte(byte)) {
        Some(index) => Err(InvalidRequestId::ForbiddenByte {
            index,
            byte: value[index],
        }),
        None => Ok(()),
    }
}

/// Why [`check_request_id`] refused an id from outside. Its `Display` is fit for a log line:
/// it never shows the refused id, nor a refused byte other than as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidRequestId {
    /// Longer than the longest id taken.
    TooLong {
        /// The id's length, in bytes.
        len: usize,
        /// The longest id taken, in bytes.
        max_len: usize,
    },
    /// No id at all.
    Empty,
    /// A byte outside `A-Z a-z 0-9 - _ . : / + = @`: one that could change how a log line
    /// reads.
    ForbiddenByte {
        /// Where the first such byte is.
        index: usize,
        /// The byte.
        byte: u8,
    },
}

impl fmt::Display for InvalidRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidRequestId::TooLong { len, max_len } => {
                write!(f, "{len} bytes long, longer than the {max_len} taken")
            }
            InvalidRequestId::Empty => f.write_str("empty"),
            InvalidRequestId::ForbiddenByte { index, byte } => write!(
                f,
                "byte {byte:#04x} at {index} is outside the request id set \
                 (A-Z a-z 0-9 - _ . : / + = @)"
            ),
        }
    }
}

impl Error for InvalidRequestId {}

/// Whether `byte` may be part of a request id taken from a request.
///
/// The set covers the ids in use (UUIDs, ULIDs, base64 and base64url with padding, `host:pid`,
/// `service/instance`, `name@host`) and nothing that can change how a log line reads: no space,
/// tab or control character (a new field, a new line, a terminal escape), no quote or
/// backslash (closing a quoted value), no `,` or `;` (header list separators), no `%` (an
/// escape decoded later), no brackets or `<>&` (markup in log viewers). `=` is allowed for
/// base64 padding: with no space beside it, it cannot start a field of its own.
fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&byte)
}
