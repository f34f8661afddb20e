//! Request ids: which ones are taken from outside, and fresh ones. Shared by the integrations
//! that read request ids (`ctxflow::tower`), so that they all accept and refuse the same.

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

/// Whether an id from outside may be used: `Err` says why not, in words fit for a log line
/// (longer than `max_len` bytes, empty, or a byte outside `A-Z a-z 0-9 - _ . : / + = @`).
///
/// ```
/// use ctxflow::text_map::request_id::check_request_id;
///
/// assert!(check_request_id(b"req-123", 128).is_ok());
/// assert_eq!(check_request_id(b"", 128), Err("empty"));
/// assert!(check_request_id(b"abc user=admin", 128).is_err());
/// ```
pub fn check_request_id(value: &[u8], max_len: usize) -> Result<(), &'static str> {
    if value.len() > max_len {
        return Err("longer than the maximum length");
    }
    if value.is_empty() {
        return Err("empty");
    }
    if !value.iter().all(|&byte| is_id_byte(byte)) {
        return Err("a character outside the request id set (A-Z a-z 0-9 - _ . : / + = @)");
    }
    Ok(())
}

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
