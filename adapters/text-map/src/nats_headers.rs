//! NATS message headers as a text map (feature `async-nats`, which `ctxflow-nats` turns on).

use async_nats::HeaderMap;

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
        // `HeaderMap::get` turns a `&str` into an owned name first: a search by reference
        // allocates nothing, and a message has a handful of headers.
        let (_, values) = self
            .iter()
            .find(|(name, _)| AsRef::<str>::as_ref(*name) == key)?;
        values.first().map(|value| value.as_str())
    }
}
