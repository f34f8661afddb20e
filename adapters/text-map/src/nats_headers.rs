//! NATS message headers as a text map (feature `async-nats`, which `ctxflow-nats` turns on).

use async_nats::{HeaderMap, HeaderValue};

use crate::{Extractor, Injector};

/// Values with a control character are left out: a line break would end the header block on
/// the wire.
impl Injector for HeaderMap {
    fn set(&mut self, key: &str, value: String) {
        if !value.chars().any(char::is_control) {
            self.insert(key, value);
        }
    }
}

impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        values(self, key)?.first().map(|value| value.as_str())
    }

    fn get_all(&self, key: &str) -> Vec<&str> {
        let values = values(self, key).into_iter().flatten();
        values.map(|value| value.as_str()).collect()
    }
}

/// `key`'s values. `HeaderMap::get` turns a `&str` into an owned name first: a search by
/// reference allocates nothing, and a message has a handful of headers.
fn values<'a>(headers: &'a HeaderMap, key: &str) -> Option<&'a Vec<HeaderValue>> {
    let (_, values) = headers
        .iter()
        .find(|(name, _)| AsRef::<str>::as_ref(*name) == key)?;
    Some(values)
}
