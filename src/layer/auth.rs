//! Caller authentication: `[auth] api_keys` and `[[auth.keys]]`, compared in constant time, and
//! who the matching key belongs to.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::limits::CallerLimits;
use crate::config::{AuthConfig, Secret};
use crate::metrics::{ANONYMOUS_CALLER, UNNAMED_CALLER};

/// Who a request comes from: the name its log line and metrics carry (never the key), and its
/// limits. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Caller(Arc<CallerEntry>);

#[derive(Debug)]
struct CallerEntry {
    name: Arc<str>,
    limits: CallerLimits,
}

impl Caller {
    fn new(name: &str, limits: CallerLimits) -> Self {
        Self(Arc::new(CallerEntry {
            name: name.into(),
            limits,
        }))
    }

    /// The caller's label: a conf name, `unnamed` or `anonymous`.
    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn limits(&self) -> &CallerLimits {
        &self.0.limits
    }
}

/// The keys callers may present and whose they are. No keys: the bridge is open, and every
/// caller is anonymous.
#[derive(Debug)]
pub(crate) struct Callers {
    /// Each key with the position of its caller in `callers`.
    keys: Vec<(Secret, u32)>,
    callers: Vec<Caller>,
    anonymous: Caller,
}

impl Callers {
    /// The callers of `auth`. A named caller whose limits did not change keeps its limiters from
    /// `previous`, so a reload neither forgives nor repeats what it has spent.
    pub(crate) fn new(auth: &AuthConfig, previous: Option<&Callers>) -> Self {
        let mut callers = vec![Caller::new(UNNAMED_CALLER, CallerLimits::default())];
        let mut keys: Vec<(Secret, u32)> =
            auth.api_keys.iter().map(|key| (key.clone(), 0)).collect();
        for entry in &auth.keys {
            let kept = previous
                .and_then(|previous| previous.named(&entry.name))
                .filter(|caller| caller.limits().same_settings(entry))
                .cloned();
            let caller = kept.unwrap_or_else(|| Caller::new(&entry.name, CallerLimits::new(entry)));
            // The conf holds far fewer than u32::MAX callers.
            let position = u32::try_from(callers.len()).unwrap_or(u32::MAX);
            keys.push((entry.key.clone(), position));
            callers.push(caller);
        }
        Self {
            keys,
            callers,
            anonymous: Caller::new(ANONYMOUS_CALLER, CallerLimits::default()),
        }
    }

    fn named(&self, name: &str) -> Option<&Caller> {
        self.callers
            .iter()
            .skip(1)
            .find(|caller| caller.name() == name)
    }

    /// The names the conf gives, for the metrics' label tables.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.callers.iter().skip(1).map(Caller::name)
    }

    /// The caller that sent no key (or reached an open endpoint).
    pub(crate) fn anonymous(&self) -> &Caller {
        &self.anonymous
    }

    /// The caller whose key the request carries, as `Authorization: Bearer <key>`, `api-key`
    /// (Azure OpenAI's header) or `x-api-key`; anonymous when no keys are configured; `None`
    /// when keys are configured and none matches.
    pub(crate) fn identify(&self, headers: &HeaderMap) -> Option<&Caller> {
        if self.keys.is_empty() {
            return Some(&self.anonymous);
        }
        let presented = presented_key(headers)?;
        // Every key is compared, without stopping at a match, so timing says nothing about
        // which key (or how much of one) matched; the match's position is selected the same way.
        let (admitted, position) = self.keys.iter().fold(
            (Choice::from(0), 0u32),
            |(admitted, position), (key, owner)| {
                let matches = key_matches(key.expose().as_bytes(), presented);
                (
                    admitted | matches,
                    u32::conditional_select(&position, owner, matches),
                )
            },
        );
        if bool::from(admitted) {
            self.callers.get(position as usize)
        } else {
            None
        }
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
    use std::num::NonZeroU32;

    use super::*;
    use crate::config::CallerKey;
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

    fn api_keys(keys: &[&str]) -> Callers {
        let auth = AuthConfig {
            api_keys: keys.iter().map(|key| Secret::new(*key)).collect(),
            keys: Vec::new(),
        };
        Callers::new(&auth, None)
    }

    /// A Callers whose `admits` says whether a key matched.
    trait Admits {
        fn admits(&self, headers: &HeaderMap) -> bool;
    }

    impl Admits for Callers {
        fn admits(&self, headers: &HeaderMap) -> bool {
            self.identify(headers).is_some()
        }
    }

    fn named(name: &str, key: &str, rpm: Option<u32>) -> CallerKey {
        CallerKey {
            name: name.into(),
            key: Secret::new(key),
            requests_per_minute: rpm.and_then(NonZeroU32::new),
            tokens_per_minute: None,
        }
    }

    #[test]
    fn no_keys_means_open() {
        let callers = api_keys(&[]);
        let caller = callers.identify(&HeaderMap::new()).unwrap();
        assert_eq!(caller.name(), "anonymous");
    }

    #[test]
    fn each_header_is_accepted() {
        let keys = api_keys(&["k1", "k2"]);
        assert!(keys.admits(&headers("authorization", "Bearer k1")));
        assert!(keys.admits(&headers("authorization", "bearer k2")));
        assert!(keys.admits(&headers("api-key", "k2")));
        assert!(keys.admits(&headers("x-api-key", "k1")));
        let caller = keys.identify(&headers("x-api-key", "k1")).unwrap();
        assert_eq!(caller.name(), "unnamed");
    }

    #[test]
    fn named_keys_identify_their_caller() {
        let auth = AuthConfig {
            api_keys: vec![Secret::new("k0")],
            keys: vec![named("alice", "ka", Some(1)), named("bob", "kb", None)],
        };
        let callers = Callers::new(&auth, None);
        let name = |key| {
            callers
                .identify(&headers("x-api-key", key))
                .map(Caller::name)
        };
        assert_eq!(name("ka"), Some("alice"));
        assert_eq!(name("kb"), Some("bob"));
        assert_eq!(name("k0"), Some("unnamed"));
        assert_eq!(name("kc"), None);
        assert_eq!(callers.names().collect::<Vec<_>>(), ["alice", "bob"]);

        // A reload keeps alice's spent allowance while her limit stays, and rotates bob's key.
        let alice = callers.identify(&headers("x-api-key", "ka")).unwrap();
        assert!(alice.limits().admit_request().is_ok());
        let auth = AuthConfig {
            api_keys: Vec::new(),
            keys: vec![named("alice", "ka", Some(1)), named("bob", "kb2", Some(3))],
        };
        let reloaded = Callers::new(&auth, Some(&callers));
        let alice = reloaded.identify(&headers("x-api-key", "ka")).unwrap();
        assert!(alice.limits().admit_request().is_err(), "still spent");
        assert!(reloaded.identify(&headers("x-api-key", "kb")).is_none());
        let bob = reloaded.identify(&headers("x-api-key", "kb2")).unwrap();
        assert_eq!(bob.name(), "bob");
        assert!(reloaded.identify(&headers("x-api-key", "k0")).is_none());
    }

    #[test]
    fn wrong_or_missing_keys_are_refused() {
        let keys = api_keys(&["k1"]);
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
