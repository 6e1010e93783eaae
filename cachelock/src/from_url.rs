//! [`store_from_url`]: one URL picks the store.

use std::sync::Arc;

use crate::error::{BoxError, Error};
use crate::memory::MemoryCache;
use crate::noop::NoopCache;
use crate::redact::redact_url;
use crate::store::LockStore;

/// The store a URL names, ready for [`set_default_cache_arc`](crate::set_default_cache_arc),
/// [`Lock::cache`](crate::Lock::cache) or `#[once(cache = ...)]` (in the spirit of
/// `object_store::parse_url`):
///
/// | URL | store | cargo feature |
/// |---|---|---|
/// | `memory://` | a new [`MemoryCache`] (this process only) | always |
/// | `noop://` | [`NoopCache`] (grants everything: tests only) | always |
/// | `file:///var/lock/app` | a directory of lock files (this host) | `file` (default) |
/// | `redis://host:6379/0`, `rediss://…`, `redis+unix:///path` | `RedisCache` | `redis` (`redis-tls` for `rediss`) |
/// | `redis-cluster://host1:7000,host2:7000` (`rediss-cluster://…`) | `RedisClusterCache` | `redis` |
/// | `postgres://user:pass@host/db` (`postgresql://`) | PostgreSQL | `postgres` |
/// | `mysql://user:pass@host/db` (`mariadb://`) | MariaDB / MySQL | `mysql` |
/// | `memcache://host:11211` (`memcached://`) | Memcached | `memcached` |
/// | `etcd://host:2379[,host2:2379]` | etcd | `etcd` |
///
/// Nothing connects until the first lock is taken, so a server that is down fails the first
/// lock, not this call. A URL whose store's feature is off, an unknown scheme, or a URL the
/// store cannot read is an [`Error::InvalidStore`] whose message names the URL (password
/// hidden) and, for a feature that is off, the feature to turn on.
///
/// ```
/// use cachelock::{store_from_url, Lock};
///
/// let store = store_from_url("memory://")?;
/// let guard = Lock::new("report").cache(store.clone()).try_acquire()?;
/// assert!(Lock::new("report").cache(store).try_acquire().unwrap_err().is_locked());
/// # drop(guard);
/// let error = store_from_url("gopher://x").err().expect("an unknown scheme");
/// assert!(error.to_string().contains("gopher"));
/// # Ok::<(), cachelock::Error>(())
/// ```
pub fn store_from_url(url: &str) -> Result<Arc<dyn LockStore>, Error> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let opened: Result<Arc<dyn LockStore>, BoxError> = match scheme.to_ascii_lowercase().as_str() {
        "memory" => Ok(Arc::new(MemoryCache::new())),
        "noop" => Ok(Arc::new(NoopCache)),
        "file" => feature("file", cfg!(feature = "file"), url, |url| {
            #[cfg(feature = "file")]
            return crate::file::open_url(url);
            #[cfg(not(feature = "file"))]
            return Err(url.into());
        }),
        "redis" | "rediss" | "redis+unix" | "unix" => feature("redis", cfg!(feature = "redis"), url, |url| {
            #[cfg(feature = "redis")]
            return crate::redis::open_url(url);
            #[cfg(not(feature = "redis"))]
            return Err(url.into());
        }),
        "redis-cluster" | "rediss-cluster" => feature("redis", cfg!(feature = "redis"), url, |url| {
            #[cfg(feature = "redis")]
            return crate::redis::open_cluster_url(url);
            #[cfg(not(feature = "redis"))]
            return Err(url.into());
        }),
        "postgres" | "postgresql" => feature("postgres", cfg!(feature = "postgres"), url, |url| {
            #[cfg(feature = "postgres")]
            return crate::postgres::open_url(url);
            #[cfg(not(feature = "postgres"))]
            return Err(url.into());
        }),
        "mysql" | "mariadb" => feature("mysql", cfg!(feature = "mysql"), url, |url| {
            #[cfg(feature = "mysql")]
            return crate::mysql::open_url(url);
            #[cfg(not(feature = "mysql"))]
            return Err(url.into());
        }),
        "memcache" | "memcached" => feature("memcached", cfg!(feature = "memcached"), url, |url| {
            #[cfg(feature = "memcached")]
            return crate::memcached::open_url(url);
            #[cfg(not(feature = "memcached"))]
            return Err(url.into());
        }),
        "etcd" => feature("etcd", cfg!(feature = "etcd"), url, |url| {
            #[cfg(feature = "etcd")]
            return crate::etcd::open_url(url);
            #[cfg(not(feature = "etcd"))]
            return Err(url.into());
        }),
        _ => Err(format!(
            "unknown store scheme {scheme:?}; use memory://, file://, redis://, rediss://, redis-cluster://, postgres://, mysql://, memcache:// or etcd://"
        )
        .into()),
    };
    opened.map_err(|error| Error::InvalidStore {
        store: redact_url(url),
        reason: error.to_string(),
    })
}

/// Opens `url` with `open` if the cargo feature `name` is `on`; else says which feature to
/// turn on.
fn feature(
    name: &str,
    on: bool,
    url: &str,
    open: impl FnOnce(&str) -> Result<Arc<dyn LockStore>, BoxError>,
) -> Result<Arc<dyn LockStore>, BoxError> {
    if !on {
        return Err(format!(
            "this store needs cachelock's cargo feature `{name}` (cargo add cachelock --features {name})"
        )
        .into());
    }
    open(url)
}
