//! Caller authentication: `[auth] api_keys`, compared in constant time.

use http::header::AUTHORIZATION;
use http::HeaderMap;
use subtle::{Choice, ConstantTimeEq};

use crate::config::Secret;

/// The keys callers may present. Empty: the bridge is open.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiKeys {
    keys: Vec<Secret>,
}

impl ApiKeys {
    pub(crate) fn new(keys: &[Secret]) -> Self {
        Self {
            keys: keys.to_vec(),
        }
    }

    /// Whether the request carries one of the keys, as `Authorization: Bearer <key>`, `api-key`
    /// (Azure OpenAI's header) or `x-api-key`.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let Some(presented) = presented_key(headers) else {
            return false;
        };
        // Every key is compared, without stopping at a match, so timing says nothing about
        // which key (or how much of one) matched.
        let admitted = self.keys.iter().fold(Choice::from(0), |admitted, key| {
            admitted | key_matches(key.expose().as_bytes(), presented)
        });
        admitted.into()
    }
}

/// Whether `presented` is `key`, in a time that depends on `key`'s length only. subtle's slice
/// `ct_eq` returns at once when the lengths differ, which tells a caller the key's length; here
/// every byte of `key` is compared whatever `presented` is, and the lengths' equality is folded
/// in like any byte.
fn key_matches(key: &[u8], presented: &[u8]) -> Choice {
    let same_length = (key.len() as u64).ct_eq(&(presented.len() as u64));
    key.iter()
        .enumerate()
        .fold(same_length, |equal, (i, byte)| {
            equal & byte.ct_eq(presented.get(i).unwrap_or(&0))
        })
}

fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.as_bytes();
        let scheme = value.get(..7)?;
        return scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| value.get(7..))
            .flatten()
            .map(<[u8]>::trim_ascii);
    }
    headers
        .get("api-key")
        .or_else(|| headers.get("x-api-key"))
        .map(|value| value.as_bytes().trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    fn matches(key: &str, presented: &str) -> bool {
        key_matches(key.as_bytes(), presented.as_bytes()).into()
    }

    #[test]
    fn keys_match_only_exactly() {
        assert!(matches("sk-key", "sk-key"));
        assert!(!matches("sk-key", "sk-ke"), "a prefix");
        assert!(!matches("sk-key", "sk-keyx"), "longer");
        assert!(!matches("sk-key", ""), "empty");
        assert!(!matches("sk-key", "sk-kez"), "the last byte differs");
        assert!(!matches("sk-key", "xk-key"), "the first byte differs");
        // Padding with the bytes the comparison reads past the end must not help.
        assert!(!matches("ab\0", "ab"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }

    #[test]
    fn no_keys_means_open() {
        assert!(ApiKeys::default().admits(&HeaderMap::new()));
    }

    #[test]
    fn each_header_is_accepted() {
        let keys = ApiKeys::new(&[Secret::new("k1"), Secret::new("k2")]);
        assert!(keys.admits(&headers("authorization", "Bearer k1")));
        assert!(keys.admits(&headers("authorization", "bearer k2")));
        assert!(keys.admits(&headers("api-key", "k2")));
        assert!(keys.admits(&headers("x-api-key", "k1")));
    }

    #[test]
    fn wrong_or_missing_keys_are_refused() {
        let keys = ApiKeys::new(&[Secret::new("k1")]);
        assert!(!keys.admits(&HeaderMap::new()));
        assert!(!keys.admits(&headers("authorization", "Bearer k")));
        assert!(!keys.admits(&headers("authorization", "Bearer k1x")));
        assert!(!keys.admits(&headers("authorization", "Basic k1")));
        assert!(!keys.admits(&headers("authorization", "Bearer")));
        assert!(!keys.admits(&headers("x-api-key", "")));
        // A wrong Authorization is not rescued by another header.
        let mut both = headers("authorization", "Bearer nope");
        both.insert("x-api-key", HeaderValue::from_static("k1"));
        assert!(!keys.admits(&both));
    }
}
