//! Who holds a lock: the owner metadata stored beside the token, and the admin calls.
//!
//! A lock's stored value is `<token>|<pid>|<host>|<label>`: the owner token (32 hex digits),
//! then the holder's process id, host name and optional [`label`](crate::Lock::label).
//! Owner checks (release, extend) compare the token alone: the part before the first `|`.

use std::sync::OnceLock;
use std::time::Duration;

use crate::cache::{Cache, CacheResult};
use crate::error::Error;
use crate::lock::Lock;

/// Who holds a lock, as [`Lock::holder`](crate::Lock::holder) and [`held_locks`] report it.
///
/// The owner token is never included: it is what lets its owner release the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The key as stored in the cache (prefix included).
    pub key: String,
    /// The holder's host name (empty if the value carries no metadata).
    pub host: String,
    /// The holder's process id (`None` if the value carries no metadata).
    pub pid: Option<u32>,
    /// The label set with [`Lock::label`](crate::Lock::label), if any.
    pub label: Option<String>,
    /// How long the lock has left, if the cache can tell.
    pub ttl: Option<Duration>,
}

/// This host's name: `/proc/sys/kernel/hostname`, `/etc/hostname`, or `$HOSTNAME` / `$COMPUTERNAME`;
/// empty if none is readable. `|` and control characters are replaced by `_`.
fn host_name() -> &'static str {
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

/// The value a claim stores, `<token>|<pid>|<host>|<label>`, built without an allocation
/// when it fits [`INLINE`] bytes.
pub(crate) enum OwnerValue {
    Inline { len: usize, bytes: [u8; INLINE] },
    Heap(String),
}

impl OwnerValue {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Only whole `str`s are copied in, so the bytes are UTF-8.
            OwnerValue::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len]).unwrap_or_default()
            }
            OwnerValue::Heap(value) => value,
        }
    }
}

/// The value a claim stores: the token and this holder's metadata.
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
        OwnerValue::Inline { len, bytes }
    } else {
        let mut value = String::with_capacity(len);
        value.push_str(token);
        value.push_str(infix);
        value.push_str(label);
        OwnerValue::Heap(value)
    }
}

/// Whether `key` (as a lock stores it, before any cache-level prefix) is one of the keys
/// cachelock keeps for itself: the Redis fencing counters (`cachelock-fence`,
/// `cachelock-fence:{tag}`) and the keys of a tree lock space (`<space>{cachelock-tree}:..`).
/// [`Lock`](crate::Lock) refuses such keys (a plain lock or `force_release` on one would
/// overwrite or delete the bookkeeping), and the admin listings skip them.
pub(crate) fn is_reserved_key(key: &str) -> bool {
    key.starts_with("cachelock-fence")
        && (key.len() == "cachelock-fence".len() || key[15..].starts_with(":{"))
        || (key.as_bytes().contains(&b'{') && key.contains("{cachelock-tree}:"))
}

/// The token part of a stored owner value.
pub(crate) fn token_of(value: &str) -> &str {
    value.split_once('|').map_or(value, |(token, _)| token)
}

/// Reads a stored value into a [`Holder`].
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

/// The holder of `key` from what `get_with_ttl` answered.
pub(crate) fn holder_of(
    key: String,
    value: CacheResult<Option<(String, Option<Duration>)>>,
) -> Result<Option<Holder>, Error> {
    match value {
        Ok(value) => Ok(value.map(|(value, ttl)| parse(&key, &value, ttl))),
        Err(source) => Err(Error::backend(key, source)),
    }
}

/// The warn-level event of a force-release, with the holder's metadata.
pub(crate) fn log_force_release(key: &str, holder: Option<&Holder>) {
    tracing::warn!(
        key = %key,
        holder_host = holder.map(|h| h.host.as_str()).unwrap_or_default(),
        holder_pid = holder.and_then(|h| h.pid),
        holder_label = holder.and_then(|h| h.label.as_deref()),
        "lock force-released"
    );
}

/// The async admin calls: the same as the sync ones, through the cache's async methods, so
/// a network cache never blocks a runtime thread.
impl<C: Cache> Lock<C> {
    /// Async twin of [`holder`](Lock::holder).
    pub async fn holder_async(&self) -> Result<Option<Holder>, Error> {
        let key = self.checked_key()?;
        let value = self.cache_ref().get_with_ttl_async(&key).await;
        holder_of(key, value)
    }

    /// Async twin of [`force_release`](Lock::force_release).
    pub async fn force_release_async(&self) -> Result<(), Error> {
        let key = self.checked_key()?;
        let holder = self.holder_async().await?;
        log_force_release(&key, holder.as_ref());
        self.cache_ref()
            .delete_async(&key)
            .await
            .map_err(|source| Error::backend(key, source))
    }
}

/// Every lock held under `prefix` (the full stored prefix, e.g. `"cachelock:"`), with its
/// holder. Redis: `SCAN` (never `KEYS`), on every primary of a Redis Cluster; memory:
/// iterates its entries.
///
/// An admin call: it walks the key space, so it costs time proportional to the number of
/// keys, and a lock taken or released meanwhile may or may not be listed. Values that were
/// not written by a lock are listed too, with empty metadata. A cache that cannot list
/// keys (the get/set/delete defaults) returns [`Error::Backend`], and so does a `RedisCache`
/// pointed at one node of a Redis Cluster (a `SCAN` there would see that node's keys alone;
/// use `RedisClusterCache`).
pub fn held_locks<C: Cache + ?Sized>(cache: &C, prefix: &str) -> Result<Vec<Holder>, Error> {
    let keys = cache
        .keys_with_prefix(prefix)
        .map_err(|source| Error::backend(prefix, source))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(holder) = holder_of(key.clone(), cache.get_with_ttl(&key))? {
            out.push(holder);
        } // else released or expired since the listing
    }
    Ok(out)
}

/// Async twin of [`held_locks`], through the cache's async methods.
pub async fn held_locks_async<C: Cache + ?Sized>(
    cache: &C,
    prefix: &str,
) -> Result<Vec<Holder>, Error> {
    let keys = cache
        .keys_with_prefix_async(prefix)
        .await
        .map_err(|source| Error::backend(prefix, source))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let value = cache.get_with_ttl_async(&key).await;
        if let Some(holder) = holder_of(key, value)? {
            out.push(holder);
        } // else released or expired since the listing
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_the_token_is_the_first_field() {
        let value = owner_value("0123456789abcdef0123456789abcdef", Some("nightly|v2"));
        let value = value.as_str();
        assert_eq!(token_of(value), "0123456789abcdef0123456789abcdef");
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
    }
}
