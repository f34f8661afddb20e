//! The id a request runs under: the one tower-http's `SetRequestId` chose, the one the caller
//! sent, or a fresh one.

use http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};
use uuid::Uuid;

/// Makes a fresh request id: a UUID v7 in its lowercase hyphenated form.
///
/// Version 7 UUIDs start with a millisecond timestamp, so ids sort by arrival and index well
/// in logs and databases. This is [`RequestContextLayer`](super::RequestContextLayer)'s
/// default, and a [`MakeRequestId`] for tower-http's `SetRequestIdLayer` too.
///
/// ```
/// use ctxflow::tower::MakeRequestUuidV7;
/// use tower_http::request_id::MakeRequestId;
///
/// let request = http::Request::new(());
/// let id = MakeRequestUuidV7.make_request_id(&request).unwrap();
/// let uuid = uuid::Uuid::parse_str(id.header_value().to_str().unwrap()).unwrap();
/// assert_eq!(uuid.get_version(), Some(uuid::Version::SortRand));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(uuid_v7()))
    }
}

fn uuid_v7() -> HeaderValue {
    let mut text = Uuid::encode_buffer();
    let text = Uuid::now_v7().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).expect("a hyphenated UUID is a valid header value")
}

/// The request id chosen for one request, as the context holds it and as headers carry it.
pub(crate) struct ChosenId {
    pub(crate) text: String,
    pub(crate) header_value: HeaderValue,
}

/// How ids are read and made.
pub(crate) struct IdRules<'a> {
    pub(crate) header: &'a HeaderName,
    pub(crate) max_len: usize,
}

impl IdRules<'_> {
    /// Chooses the id for `request` and records it there as tower-http does (its `RequestId`
    /// extension and the header), so that every later layer and the handler agree on it.
    pub(crate) fn choose<B>(
        &self,
        request: &mut Request<B>,
        make_request_id: &mut impl MakeRequestId,
    ) -> ChosenId {
        if let Some(chosen) = self.carried(request) {
            if request.extensions().get::<RequestId>().is_none() {
                request
                    .extensions_mut()
                    .insert(RequestId::new(chosen.header_value.clone()));
            }
            return chosen;
        }
        let chosen = self.fresh(request, make_request_id);
        request
            .extensions_mut()
            .insert(RequestId::new(chosen.header_value.clone()));
        request
            .headers_mut()
            .insert(self.header.clone(), chosen.header_value.clone());
        chosen
    }

    /// The id an earlier `SetRequestIdLayer` chose, else the caller's header, when usable.
    fn carried<B>(&self, request: &Request<B>) -> Option<ChosenId> {
        let (value, source) = match request.extensions().get::<RequestId>() {
            Some(id) => (id.header_value(), "tower-http's RequestId"),
            None => (request.headers().get(self.header)?, self.header.as_str()),
        };
        match self.usable(value) {
            Ok(text) => Some(ChosenId {
                text: text.to_owned(),
                header_value: value.clone(),
            }),
            Err(reason) => {
                tracing::debug!(source, reason, "ignoring the request id; using a fresh one");
                None
            }
        }
    }

    fn fresh<B>(&self, request: &Request<B>, make_request_id: &mut impl MakeRequestId) -> ChosenId {
        let made = make_request_id
            .make_request_id(request)
            .map(RequestId::into_header_value)
            .filter(|value| match self.usable(value) {
                Ok(_) => true,
                Err(reason) => {
                    tracing::debug!(
                        reason,
                        "ignoring the id MakeRequestId made; using a UUID v7"
                    );
                    false
                }
            });
        let header_value = made.unwrap_or_else(uuid_v7);
        let text = header_value
            .to_str()
            .expect("a usable request id is ASCII")
            .to_owned();
        ChosenId { text, header_value }
    }

    fn usable<'v>(&self, value: &'v HeaderValue) -> Result<&'v str, &'static str> {
        if value.len() > self.max_len {
            return Err("longer than the maximum length");
        }
        if value.is_empty() {
            return Err("empty");
        }
        if !value.as_bytes().iter().all(|&byte| is_id_byte(byte)) {
            return Err("a character outside the request id set (A-Z a-z 0-9 - _ . : / + = @)");
        }
        Ok(value.to_str().expect("the request id set is ASCII"))
    }
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
