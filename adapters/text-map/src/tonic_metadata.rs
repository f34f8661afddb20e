//! gRPC metadata as a text map (feature `tonic`, which `ctxflow-tonic` turns on).

use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::{Extractor, Injector};

/// Keys that are not valid ASCII metadata keys, and values that are not valid ASCII metadata
/// values, are left out.
impl Injector for MetadataMap {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) else {
            return;
        };
        self.insert(key, value);
    }

    fn remove(&mut self, key: &str) {
        MetadataMap::remove(self, key);
    }
}

/// Values that are not visible ASCII are not read.
impl Extractor for MetadataMap {
    fn get(&self, key: &str) -> Option<&str> {
        MetadataMap::get(self, key)?.to_str().ok()
    }

    fn get_all(&self, key: &str) -> Vec<&str> {
        let values = MetadataMap::get_all(self, key).iter();
        values.filter_map(|value| value.to_str().ok()).collect()
    }
}
