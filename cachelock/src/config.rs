//! Process-wide settings: the default cache and the key prefix.

use std::sync::{Arc, OnceLock};

use crate::cache::Cache;
use crate::error::Error;
use crate::memory::MemoryCache;

/// The key prefix used when none is configured: `"cachelock:"`.
pub const DEFAULT_PREFIX: &str = "cachelock:";

static DEFAULT_CACHE: OnceLock<Arc<dyn Cache>> = OnceLock::new();
static PREFIX: OnceLock<String> = OnceLock::new();

/// Sets the cache every [`Lock`](crate::Lock) and `#[once]` uses unless told otherwise.
///
/// Call it once, at start-up, before the first lock is taken. A second call, or a call after
/// the default (a [`MemoryCache`]) has been used, returns [`Error::AlreadyConfigured`] and
/// changes nothing: silently switching caches under held locks would break exclusion.
///
/// ```
/// use cachelock::{set_default_cache, MemoryCache};
///
/// set_default_cache(MemoryCache::new())?;
/// assert!(set_default_cache(MemoryCache::new()).is_err());
/// # Ok::<(), cachelock::Error>(())
/// ```
pub fn set_default_cache(cache: impl Cache + 'static) -> Result<(), Error> {
    set_default_cache_arc(Arc::new(cache))
}

/// Like [`set_default_cache`], for a cache that is already behind an `Arc`.
pub fn set_default_cache_arc(cache: Arc<dyn Cache>) -> Result<(), Error> {
    DEFAULT_CACHE
        .set(cache)
        .map_err(|_| Error::AlreadyConfigured {
            what: "default cache",
        })
}

/// The process default cache (a [`MemoryCache`] unless [`set_default_cache`] was called).
pub fn default_cache() -> &'static dyn Cache {
    &**default_cache_arc()
}

/// The process default cache, as a shared handle.
pub fn default_cache_arc() -> &'static Arc<dyn Cache> {
    DEFAULT_CACHE.get_or_init(|| Arc::new(MemoryCache::new()))
}

/// Sets the prefix put in front of every lock key (default [`DEFAULT_PREFIX`]).
///
/// Once per process, before the first lock, like [`set_default_cache`]; a second call
/// returns [`Error::AlreadyConfigured`]. A single [`Lock`](crate::Lock) can still choose its
/// own prefix with [`Lock::prefix`](crate::Lock::prefix).
pub fn set_key_prefix(prefix: impl Into<String>) -> Result<(), Error> {
    PREFIX
        .set(prefix.into())
        .map_err(|_| Error::AlreadyConfigured { what: "key prefix" })
}

/// The process-wide key prefix.
pub fn key_prefix() -> &'static str {
    PREFIX.get_or_init(|| DEFAULT_PREFIX.to_owned())
}
