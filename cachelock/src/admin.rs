//! [`held_locks`]: every lock held under a prefix, with its holder.

use crate::error::Error;
use crate::owner::{parse, Holder};
use crate::store::{no_admin, LockAdmin, LockStore};

fn admin<'s, S: LockStore + ?Sized>(
    store: &'s S,
    prefix: &str,
) -> Result<&'s dyn LockAdmin, Error> {
    store
        .admin()
        .ok_or_else(|| Error::backend(prefix, no_admin()))
}

/// Every lock held under `prefix` (the full stored prefix, e.g. `"cachelock:"`), with its
/// holder. Redis: `SCAN` (never `KEYS`), on every primary of a Redis Cluster; memory:
/// iterates its entries.
///
/// An admin call: it walks the key space, so it costs time proportional to the number of
/// keys, and a lock taken or released meanwhile may or may not be listed. A store that
/// cannot list keys (a get/set/delete [`CacheStore`](crate::CacheStore)) returns
/// [`Error::Backend`], and so does a `RedisCache` pointed at one node of a Redis Cluster (a
/// `SCAN` there would see that node's keys alone; use `RedisClusterCache`).
///
/// ```
/// use cachelock::{held_locks, Lock, MemoryCache};
///
/// let cache = MemoryCache::new();
/// let _guard = Lock::new("report").cache(cache.clone()).label("nightly").try_acquire()?;
/// let held = held_locks(&cache, "cachelock:")?;
/// assert_eq!(held.len(), 1);
/// assert_eq!((held[0].key.as_str(), held[0].label.as_deref()), ("cachelock:report", Some("nightly")));
/// # Ok::<(), cachelock::Error>(())
/// ```
pub fn held_locks<S: LockStore + ?Sized>(store: &S, prefix: &str) -> Result<Vec<Holder>, Error> {
    let admin = admin(store, prefix)?;
    let keys = admin
        .keys(prefix)
        .map_err(|source| Error::backend(prefix, source))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match admin.holder(&key) {
            Ok(Some((value, ttl))) => out.push(parse(&key, &value, ttl)),
            Ok(None) => {} // released or expired since the listing
            Err(source) => return Err(Error::backend(key, source)),
        }
    }
    Ok(out)
}

/// Async twin of [`held_locks`], through the store's async admin calls.
pub async fn held_locks_async<S: LockStore + ?Sized>(
    store: &S,
    prefix: &str,
) -> Result<Vec<Holder>, Error> {
    let admin = admin(store, prefix)?;
    let keys = admin
        .keys_async(prefix)
        .await
        .map_err(|source| Error::backend(prefix, source))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match admin.holder_async(&key).await {
            Ok(Some((value, ttl))) => out.push(parse(&key, &value, ttl)),
            Ok(None) => {} // released or expired since the listing
            Err(source) => return Err(Error::backend(key, source)),
        }
    }
    Ok(out)
}
