//! [`NoopCache`]: a cache that grants every lock (pylock's "open" backend).

use std::time::Duration;

use crate::cache::{Cache, CacheResult};

/// A cache that stores nothing and grants every claim. **It gives no exclusion at all.**
///
/// Meant for your own tests, where the code under test takes locks but the test does not care
/// about exclusion and should not need a server (pylock's "open" backend). Every `claim`,
/// `release` and `extend` succeeds; `get` always returns `None`. Fences are those of the
/// get/set/delete defaults (strictly increasing within the process). Tree locks
/// ([`cachelock::tree`](crate::tree)) are granted the same way.
///
/// ```
/// use cachelock::{Lock, NoopCache};
///
/// let a = Lock::new("job").cache(NoopCache).try_acquire()?;
/// let b = Lock::new("job").cache(NoopCache).try_acquire()?; // granted too: no exclusion
/// # drop((a, b));
/// # Ok::<(), cachelock::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopCache;

impl Cache for NoopCache {
    fn get(&self, _key: &str) -> CacheResult<Option<String>> {
        Ok(None)
    }

    fn set(&self, _key: &str, _value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        Ok(())
    }

    fn delete(&self, _key: &str) -> CacheResult<()> {
        Ok(())
    }

    fn claim(&self, _key: &str, _token: &str, _ttl: Duration) -> CacheResult<Option<u64>> {
        Ok(Some(crate::basic::next_fence()))
    }

    fn release(&self, _key: &str, _token: &str) -> CacheResult<bool> {
        Ok(true)
    }

    fn extend(&self, _key: &str, _token: &str, _ttl: Duration) -> CacheResult<bool> {
        Ok(true)
    }

    fn tree_claim(
        &self,
        _space: &str,
        _path: &str,
        _value: &str,
        _ttl: Duration,
        _scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<u64>> {
        Ok(Some(crate::basic::next_fence()))
    }

    fn tree_release(&self, _space: &str, _path: &str, _token: &str) -> CacheResult<bool> {
        Ok(true)
    }

    fn tree_extend(
        &self,
        _space: &str,
        _path: &str,
        _token: &str,
        _ttl: Duration,
    ) -> CacheResult<bool> {
        Ok(true)
    }

    fn tree_holder(
        &self,
        _space: &str,
        _path: &str,
        _scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<crate::tree::TreeEntry>> {
        Ok(None)
    }

    /// Nothing is ever stored, so nothing is listed.
    fn tree_list(&self, _space: &str) -> CacheResult<Vec<crate::tree::TreeEntry>> {
        Ok(Vec::new())
    }
}
