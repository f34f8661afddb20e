//! HTTP headers as a text map (feature `http`, which `ctxflow-tower` turns on).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{Extractor, Injector};

/// Names that are not valid header names, and values that are not valid header values, are
/// left out.
impl Injector for HeaderMap {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value))
        else {
            return;
        };
        self.insert(name, value);
    }

    fn remove(&mut self, key: &str) {
        HeaderMap::remove(self, key);
    }
}

/// Values that are not visible ASCII are not read.
impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        HeaderMap::get(self, key)?.to_str().ok()
    }

    fn get_all(&self, key: &str) -> Vec<&str> {
        let values = HeaderMap::get_all(self, key).iter();
        values.filter_map(|value| value.to_str().ok()).collect()
    }
}
