//! The process default store: [`set_default_cache`], and [`DefaultCache`], the handle that
//! stands for it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::claim::{Claim, Claimed, Handle};
use crate::error::Error;
use crate::memory::MemoryCache;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::TreeStore;

static DEFAULT: OnceLock<Arc<dyn LockStore>> = OnceLock::new();

/// Sets the store every [`Lock`](crate::Lock), [`TreeLock`](crate::tree::TreeLock) and
/// `#[once]` uses unless told otherwise.
///
/// Call it once, at start-up, before the first lock is taken. A second call, or a call after
/// the default (a [`MemoryCache`]) has been used, returns [`Error::AlreadyConfigured`] and
/// changes nothing: silently switching stores under held locks would break exclusion.
///
/// ```
/// use cachelock::{set_default_cache, MemoryCache};
///
/// set_default_cache(MemoryCache::new())?;
/// assert!(set_default_cache(MemoryCache::new()).is_err());
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// A get/set/delete cache of your own goes in a [`CacheStore`](crate::CacheStore):
/// `set_default_cache(CacheStore::new(my_cache))`.
pub fn set_default_cache(store: impl LockStore + 'static) -> Result<(), Error> {
    set_default_cache_arc(Arc::new(store))
}

/// Like [`set_default_cache`], for a store that is already behind an `Arc`.
pub fn set_default_cache_arc(store: Arc<dyn LockStore>) -> Result<(), Error> {
    DEFAULT.set(store).map_err(|_| Error::AlreadyConfigured {
        what: "default cache",
    })
}

/// The process default store (a [`MemoryCache`] unless [`set_default_cache`] was called).
pub fn default_cache() -> &'static dyn LockStore {
    &**default_cache_arc()
}

/// The process default store, as a shared handle.
pub fn default_cache_arc() -> &'static Arc<dyn LockStore> {
    DEFAULT.get_or_init(|| Arc::new(MemoryCache::new()))
}

fn default_store() -> &'static dyn LockStore {
    default_cache()
}

/// Stands for the process default store, looked up on each use.
///
/// It is the store of a [`Lock`](crate::Lock) unless [`Lock::cache`](crate::Lock::cache)
/// names another. Looking the default up on use (not when the `Lock` is built) means that
/// building a `Lock` never fixes the default, so [`set_default_cache`] still works after
/// locks were *built*, as long as none was *taken*.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultCache;

impl LockStore for DefaultCache {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        default_store().claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        default_store().claim_async(key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        default_store().release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        default_store().release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        default_store().extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        default_store().extend_async(key, token, ttl, handle)
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        default_store().wait_for_release(key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        default_store().wait_for_release_async(key, pause)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        default_store().admin()
    }
    fn min_ttl(&self) -> Duration {
        default_store().min_ttl()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        default_store().trees()
    }
}
