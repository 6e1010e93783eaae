//! The owner value: what a lock stores beside its key, and [`Holder`], what it tells.
//!
//! A lock's stored value is `<token>|<pid>|<host>|<label>`: the owner token (32 hex digits),
//! then the holder's process id, host name and optional [`label`](crate::Lock::label).
//! Owner checks (release, extend) compare the token alone: the part before the first `|`.
//! A store that keeps the owner typed ([`MemoryCache`](crate::MemoryCache)) formats this
//! value only when an admin call asks who holds a key.

use std::sync::OnceLock;
use std::time::Duration;

/// Who holds a lock, as [`Lock::holder`](crate::Lock::holder) and
/// [`held_locks`](crate::held_locks) report it.
///
/// The owner token is never included: it is what lets its owner release the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The key as stored (prefix included); for a tree lock, the held path.
    pub key: String,
    /// The holder's host name (empty if the value carries no metadata).
    pub host: String,
    /// The holder's process id (`None` if the value carries no metadata).
    pub pid: Option<u32>,
    /// The label set with [`Lock::label`](crate::Lock::label), if any.
    pub label: Option<String>,
    /// How long the lock has left, if the store can tell.
    pub ttl: Option<Duration>,
}

/// This host's name: `/proc/sys/kernel/hostname`, `/etc/hostname`, or `$HOSTNAME` /
/// `$COMPUTERNAME`; empty if none is readable. `|` and control characters are replaced by
/// `_`.
pub(crate) fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .unwrap_or_default();
        raw.trim()
            .chars()
            .map(|c| if c == '|' || c.is_control() { '_' } else { c })
            .collect()
    })
}

/// `|<pid>|<host>|`: what follows the token in every owner value of this process, formatted
/// once.
fn owner_infix() -> &'static str {
    static INFIX: OnceLock<String> = OnceLock::new();
    INFIX.get_or_init(|| format!("|{}|{}|", std::process::id(), host_name()))
}

/// Owner values up to this many bytes are built on the stack (token, pid, a host name of up
/// to ~60 bytes and a short label), longer ones in a `String`.
const INLINE: usize = 128;

/// A formatted owner value, `<token>|<pid>|<host>|<label>`, built without an allocation
/// when it fits 128 bytes. Dereferences to `str`.
pub struct OwnerValue(Repr);

enum Repr {
    Inline { len: usize, bytes: [u8; INLINE] },
    Heap(String),
}

impl OwnerValue {
    /// The value as a string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only whole `str`s are copied in, so the bytes are UTF-8.
            Repr::Inline { len, bytes } => std::str::from_utf8(&bytes[..*len]).unwrap_or_default(),
            Repr::Heap(value) => value,
        }
    }
}

impl std::ops::Deref for OwnerValue {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for OwnerValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a capability: show the metadata only.
        let value = self.as_str();
        let rest = value.split_once('|').map_or("", |(_, rest)| rest);
        write!(f, "OwnerValue(..|{rest})")
    }
}

/// The value a claim by `token` from this process stores, with `label`.
pub(crate) fn owner_value(token: &str, label: Option<&str>) -> OwnerValue {
    let infix = owner_infix();
    let label = label.unwrap_or_default();
    let len = token.len() + infix.len() + label.len();
    if len <= INLINE {
        let mut bytes = [0u8; INLINE];
        let mut at = 0;
        for part in [token, infix, label] {
            bytes[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        OwnerValue(Repr::Inline { len, bytes })
    } else {
        let mut value = String::with_capacity(len);
        value.push_str(token);
        value.push_str(infix);
        value.push_str(label);
        OwnerValue(Repr::Heap(value))
    }
}

/// The token part of a stored owner value.
pub(crate) fn token_of(value: &str) -> &str {
    value.split_once('|').map_or(value, |(token, _)| token)
}

/// Whether the stored owner `value` is owned by `token`: its token part equals `token`,
/// and `token` is not empty.
pub(crate) fn is_owned_by(value: &str, token: &str) -> bool {
    !token.is_empty() && token_of(value) == token
}

/// Reads a stored value into a [`Holder`] of `key`.
pub(crate) fn parse(key: &str, value: &str, ttl: Option<Duration>) -> Holder {
    let mut parts = value.splitn(4, '|').skip(1);
    let pid = parts.next().and_then(|p| p.parse().ok());
    let host = parts.next().unwrap_or_default().to_owned();
    let label = parts.next().filter(|l| !l.is_empty()).map(str::to_owned);
    Holder {
        key: key.to_owned(),
        host,
        pid,
        label,
        ttl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_the_token_is_the_first_field() {
        let value = owner_value("0123456789abcdef0123456789abcdef", Some("nightly|v2"));
        let value = value.as_str();
        assert_eq!(token_of(value), "0123456789abcdef0123456789abcdef");
        assert!(is_owned_by(value, "0123456789abcdef0123456789abcdef"));
        assert!(!is_owned_by(value, "0123456789abcdef"));
        assert!(!is_owned_by("", ""));
        let holder = parse("k", value, None);
        assert_eq!(holder.pid, Some(std::process::id()));
        assert_eq!(holder.label.as_deref(), Some("nightly|v2"));
        assert_eq!(holder.host, host_name());
        assert_eq!(token_of("bare"), "bare");
        let bare = parse("k", "bare", None);
        assert_eq!((bare.pid, bare.label), (None, None));
    }

    #[test]
    fn long_labels_are_kept_whole() {
        let label = "l".repeat(300);
        let value = owner_value("0123456789abcdef0123456789abcdef", Some(&label));
        let holder = parse("k", value.as_str(), None);
        assert_eq!(holder.label.as_deref(), Some(label.as_str()));
        assert_eq!(holder.pid, Some(std::process::id()));
        let short = owner_value("0123456789abcdef0123456789abcdef", None);
        assert!(short
            .as_str()
            .starts_with("0123456789abcdef0123456789abcdef|"));
        assert!(short.as_str().ends_with('|'));
        assert!(!format!("{short:?}").contains("0123456789abcdef"));
    }
}
