//! [`NoopCache`]: a store that grants every lock (pylock's "open" backend).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::claim::{Claim, Claimed, Handle};
use crate::clock::next_fence;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::{TreeEntry, TreeScope, TreeStore};

/// A store that stores nothing and grants every claim. **It gives no exclusion at all.**
///
/// Meant for your own tests, where the code under test takes locks but the test does not
/// care about exclusion and should not need a server (pylock's "open" backend). Every
/// claim, release and extend succeeds. Fences come from the process's fence clock (wall
/// clock microseconds, strictly increasing within the process). Tree locks
/// ([`cachelock::tree`](crate::tree)) are granted the same way; nobody is ever reported as
/// a holder, and nothing is listed. Claims come with a [`Handle`], as from any in-process
/// store, so a dropped async guard lets go inline.
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

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// A won claim: the next fence (0 without fencing), and a handle, so that guards release
/// inline (nothing here waits on I/O).
fn won(fencing: bool) -> Claimed {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| Arc::new(())).clone();
    Claimed::with_handle(if fencing { next_fence() } else { 0 }, handle)
}

impl LockStore for NoopCache {
    fn claim(&self, _key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        Ok(Some(won(claim.fencing())))
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        ready(LockStore::claim(self, key, claim))
    }

    fn release(&self, _key: &str, _token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        Ok(true)
    }

    fn release_async<'a>(
        &'a self,
        _key: &'a str,
        _token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        ready(Ok(true))
    }

    fn extend(
        &self,
        _key: &str,
        _token: &str,
        _ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(true)
    }

    fn extend_async<'a>(
        &'a self,
        _key: &'a str,
        _token: &'a str,
        _ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        ready(Ok(true))
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(self)
    }
}

/// Nothing is ever stored: nobody holds anything, nothing is listed.
impl LockAdmin for NoopCache {
    fn holder(&self, _key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        Ok(None)
    }

    fn holder_async<'a>(
        &'a self,
        _key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        ready(Ok(None))
    }

    fn keys(&self, _prefix: &str) -> CacheResult<Vec<String>> {
        Ok(Vec::new())
    }

    fn keys_async<'a>(&'a self, _prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        ready(Ok(Vec::new()))
    }

    fn force_release(&self, _key: &str) -> CacheResult<()> {
        Ok(())
    }

    fn force_release_async<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        ready(Ok(()))
    }
}

impl TreeStore for NoopCache {
    fn claim(
        &self,
        _space: &str,
        _path: &str,
        _scope: TreeScope,
        _claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        Ok(Some(won(true)))
    }

    fn claim_async<'a>(
        &'a self,
        _space: &'a str,
        _path: &'a str,
        _scope: TreeScope,
        _claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        ready(Ok(Some(won(true))))
    }

    fn release(
        &self,
        _space: &str,
        _path: &str,
        _token: &str,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(true)
    }

    fn release_async<'a>(
        &'a self,
        _space: &'a str,
        _path: &'a str,
        _token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        ready(Ok(true))
    }

    fn extend(
        &self,
        _space: &str,
        _path: &str,
        _token: &str,
        _ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(true)
    }

    fn extend_async<'a>(
        &'a self,
        _space: &'a str,
        _path: &'a str,
        _token: &'a str,
        _ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        ready(Ok(true))
    }

    fn holder(
        &self,
        _space: &str,
        _path: &str,
        _scope: TreeScope,
    ) -> CacheResult<Option<TreeEntry>> {
        Ok(None)
    }

    fn holder_async<'a>(
        &'a self,
        _space: &'a str,
        _path: &'a str,
        _scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        ready(Ok(None))
    }

    fn list(&self, _space: &str) -> CacheResult<Vec<TreeEntry>> {
        Ok(Vec::new())
    }

    fn list_async<'a>(&'a self, _space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        ready(Ok(Vec::new()))
    }
}
