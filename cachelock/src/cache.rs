//! [`Cache`]: the plug-in for a get/set/delete cache an application already has.

use std::sync::Arc;
use std::time::Duration;

use crate::result::CacheResult;

/// A cache that can **get**, **set** and **delete** a string value by key: the plug-in
/// python-cachelock users know.
///
/// Implement these three methods and wrap the cache in a [`CacheStore`](crate::CacheStore):
/// [`Lock`](crate::Lock), [`set_default_cache`](crate::set_default_cache) and `#[once]`
/// accept it as it is.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use cachelock::{Cache, CacheResult, CacheStore, Lock};
///
/// #[derive(Default)]
/// struct MyCache(Mutex<HashMap<String, String>>);
///
/// impl Cache for MyCache {
///     fn get(&self, key: &str) -> CacheResult<Option<String>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
///         self.0.lock().unwrap().insert(key.to_owned(), value.to_owned());
///         Ok(())
///     }
///     fn delete(&self, key: &str) -> CacheResult<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// let cache = CacheStore::new(MyCache::default());
/// let guard = Lock::new("report").cache(cache.clone()).try_acquire()?;
/// assert!(guard.fence() > 0);
/// assert!(Lock::new("report").cache(cache.clone()).try_acquire().unwrap_err().is_locked());
/// guard.release()?;
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// Locks built from get/set/delete are **atomic within one process only**: see
/// [`CacheStore`](crate::CacheStore) for exactly what they guarantee, and
/// [`LockStore`](crate::LockStore) for a store with its own atomic operations.
///
/// Values are UTF-8 strings. A cache may ignore the TTL passed to `set`: the lock value
/// carries its own deadline.
pub trait Cache: Send + Sync {
    /// Returns the value stored under `key`, or `None` if it is absent or expired.
    fn get(&self, key: &str) -> CacheResult<Option<String>>;

    /// Stores `value` under `key`, replacing any value, expiring after `ttl` if given.
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()>;

    /// Removes `key`. Removing an absent key is not an error.
    fn delete(&self, key: &str) -> CacheResult<()>;
}

impl<T: Cache + ?Sized> Cache for &T {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        (**self).set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        (**self).delete(key)
    }
}

impl<T: Cache + ?Sized> Cache for Arc<T> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        (**self).set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        (**self).delete(key)
    }
}

impl<T: Cache + ?Sized> Cache for Box<T> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        (**self).set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        (**self).delete(key)
    }
}
