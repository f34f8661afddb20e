//! NATS message headers as a text map (feature `async-nats`, which `ctxflow-nats` turns on).

use async_nats::{HeaderMap, HeaderValue};

use crate::{Extractor, Injector};

/// Values with a control character are left out: a line break would end the header block on
/// the wire. Setting or removing a name replaces it in every spelling the extractor reads.
impl Injector for HeaderMap {
    fn set(&mut self, key: &str, value: String) {
        if !value.chars().any(char::is_control) {
            Injector::remove(self, key);
            self.insert(key, value);
        }
    }

    fn remove(&mut self, key: &str) {
        // async-nats' map has no removal: the headers are copied without the key's spellings,
        // only when there is one.
        if spellings(self, key).next().is_none() {
            return;
        }
        let mut kept = HeaderMap::new();
        for (name, values) in self.iter() {
            if !AsRef::<str>::as_ref(name).eq_ignore_ascii_case(key) {
                for value in values {
                    kept.append(name.clone(), value.clone());
                }
            }
        }
        *self = kept;
    }
}

/// Names are matched whatever their case: NATS keeps a name as its sender wrote it, and a
/// sender in another language may write `Traceparent` or `X-Request-Id` (Go's `http.Header`
/// does). A name written exactly as asked comes first; among other spellings, the one that
/// sorts first, so that the same message always reads the same.
impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        values(self, key)?.first().map(|value| value.as_str())
    }

    fn get_all(&self, key: &str) -> Vec<&str> {
        let mut spellings: Vec<_> = spellings(self, key).collect();
        spellings.sort_unstable_by_key(|(name, _)| reading_order(name, key));
        let values = spellings.into_iter().flat_map(|(_, values)| values);
        values.map(|value| value.as_str()).collect()
    }
}

/// The values of the spelling of `key` that [`Extractor::get`] reads. `HeaderMap::get` turns a
/// `&str` into an owned name first and matches case: a search by reference allocates nothing,
/// and a message has a handful of headers.
fn values<'a>(headers: &'a HeaderMap, key: &str) -> Option<&'a Vec<HeaderValue>> {
    let (_, values) = spellings(headers, key).min_by_key(|(name, _)| reading_order(name, key))?;
    Some(values)
}

/// Where `name`, a spelling of `key`, comes when they are read: the exact spelling first, then
/// the others sorted, so that the same message always reads the same.
fn reading_order<'a>(name: &'a str, key: &str) -> (bool, &'a str) {
    (name != key, name)
}

/// Every header whose name is `key` in any case.
fn spellings<'a, 'k>(
    headers: &'a HeaderMap,
    key: &'k str,
) -> impl Iterator<Item = (&'a str, &'a Vec<HeaderValue>)> + use<'a, 'k> {
    headers
        .iter()
        .map(|(name, values)| (AsRef::<str>::as_ref(name), values))
        .filter(move |(name, _)| name.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_read_in_any_case_the_exact_spelling_first() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Request-Id", "from-go");
        headers.insert("Baggage", "b=2");
        headers.insert("baggage", "a=1");
        headers.insert("BAGGAGE", "c=3");
        assert_eq!(Extractor::get(&headers, "x-request-id"), Some("from-go"));
        assert_eq!(Extractor::get(&headers, "baggage"), Some("a=1"));
        assert_eq!(
            Extractor::get_all(&headers, "baggage"),
            ["a=1", "c=3", "b=2"]
        );
        assert_eq!(Extractor::get(&headers, "traceparent"), None);
    }

    /// A relay that sets what a Go producer wrote as `Baggage` replaces it, as the extractor
    /// reads both spellings as one name.
    #[test]
    fn setting_or_removing_a_name_replaces_every_spelling() {
        let mut headers = HeaderMap::new();
        headers.insert("Baggage", "tenant=acme");
        headers.insert("X-Request-Id", "stale");
        headers.insert("other", "kept");
        Injector::set(&mut headers, "baggage", "tenant=globex".into());
        Injector::remove(&mut headers, "x-request-id");
        assert_eq!(Extractor::get_all(&headers, "baggage"), ["tenant=globex"]);
        assert_eq!(Extractor::get(&headers, "x-request-id"), None);
        assert_eq!(Extractor::get(&headers, "other"), Some("kept"));
    }
}
