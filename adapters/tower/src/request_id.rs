//! The id a request runs under: the one tower-http's `SetRequestId` chose, the one the caller
//! sent, or a fresh one.

use ctxflow_text_map::request_id::{check_request_id, uuid_v7, InvalidRequestId};
use http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

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
        Some(RequestId::new(uuid_v7_header()))
    }
}

fn uuid_v7_header() -> HeaderValue {
    HeaderValue::try_from(uuid_v7()).expect("a hyphenated UUID is a valid header value")
}

/// Which ids a request brings are trusted, besides the one an earlier tower-http
/// `SetRequestIdLayer` chose (that layer runs in the same process, so its id is always used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncomingRequestId {
    /// The request id header, else the request id variable's entry in the W3C `baggage` when
    /// the [`Propagation`](ctxflow_core::Propagation) lists it (feature `trace-context`), else a
    /// fresh id: the default.
    #[default]
    HeaderThenBaggage,
    /// The request id header, else a fresh id: the baggage's entry is not used for the id.
    Header,
    /// Always a fresh id, whatever the request brings: for a service facing callers whose ids
    /// must not reach your logs.
    Fresh,
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
    pub(crate) incoming: IncomingRequestId,
}

impl IdRules<'_> {
    /// Chooses the id for `request` and records it there as tower-http does (its `RequestId`
    /// extension and the header), so that every later layer and the handler agree on it.
    /// `from_baggage` is the request id variable's entry in the request's baggage.
    pub(crate) fn choose<B>(
        &self,
        request: &mut Request<B>,
        make_request_id: &mut impl MakeRequestId,
        from_baggage: Option<&String>,
    ) -> ChosenId {
        let extension = request
            .extensions()
            .get::<RequestId>()
            .map(|id| (id.header_value(), "tower-http's RequestId"));
        let header = match self.incoming {
            IncomingRequestId::Fresh => None,
            _ => request
                .headers()
                .get(self.header)
                .map(|value| (value, self.header.as_str())),
        };
        if let Some(chosen) = self.carried(extension) {
            return chosen;
        }
        // An unusable extension (a `MakeRequestId` of tower-http's own, a header of another
        // name) leaves the header its turn, as every source that fails does.
        if let Some(chosen) = self.carried(header) {
            request
                .extensions_mut()
                .insert(RequestId::new(chosen.header_value.clone()));
            return chosen;
        }
        let baggage = match self.incoming {
            IncomingRequestId::HeaderThenBaggage => from_baggage.and_then(|id| {
                let value = HeaderValue::from_str(id).ok()?;
                self.carried(Some((&value, "the baggage")))
            }),
            _ => None,
        };
        let chosen = baggage.unwrap_or_else(|| self.fresh(request, make_request_id));
        request
            .extensions_mut()
            .insert(RequestId::new(chosen.header_value.clone()));
        request
            .headers_mut()
            .insert(self.header.clone(), chosen.header_value.clone());
        chosen
    }

    /// The id `source` carries, when usable.
    fn carried(&self, carried: Option<(&HeaderValue, &str)>) -> Option<ChosenId> {
        let (value, source) = carried?;
        match self.usable(value) {
            Ok(text) => Some(ChosenId {
                text: text.to_owned(),
                header_value: value.clone(),
            }),
            Err(reason) => {
                tracing::debug!(
                    target: "ctxflow::tower::request_id",
                    source,
                    %reason,
                    "ignoring the request id; trying the next source"
                );
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
                        target: "ctxflow::tower::request_id",
                        %reason,
                        "ignoring the id MakeRequestId made; using a UUID v7"
                    );
                    false
                }
            });
        let header_value = made.unwrap_or_else(uuid_v7_header);
        let text = header_value
            .to_str()
            .expect("a usable request id is ASCII")
            .to_owned();
        ChosenId { text, header_value }
    }

    fn usable<'v>(&self, value: &'v HeaderValue) -> Result<&'v str, InvalidRequestId> {
        check_request_id(value.as_bytes(), self.max_len)?;
        Ok(value.to_str().expect("the request id set is ASCII"))
    }
}
