//! [`CacheStore`]: a [`LockStore`] built from a get/set/delete [`Cache`].

mod ops;

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};

/// Locks on a get/set/delete [`Cache`]: the adapter that makes any cache a [`LockStore`].
///
/// ```
/// # use std::collections::HashMap;
/// # use std::sync::Mutex;
/// # use std::time::Duration;
/// # use cachelock::{Cache, CacheResult};
/// # #[derive(Default)]
/// # struct MyCache(Mutex<HashMap<String, String>>);
/// # impl Cache for MyCache {
/// #     fn get(&self, key: &str) -> CacheResult<Option<String>> {
/// #         Ok(self.0.lock().unwrap().get(key).cloned())
/// #     }
/// #     fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
/// #         self.0.lock().unwrap().insert(key.to_owned(), value.to_owned());
/// #         Ok(())
/// #     }
/// #     fn delete(&self, key: &str) -> CacheResult<()> {
/// #         self.0.lock().unwrap().remove(key);
/// #         Ok(())
/// #     }
/// # }
/// use cachelock::{CacheStore, Lock};
///
/// let cache = CacheStore::new(MyCache::default()); // clones share the cache
/// let guard = Lock::new("import").cache(cache.clone()).try_acquire()?;
/// assert!(cache.get("cachelock:import")?.is_some()); // the cache is still yours to use
/// guard.release()?;
/// # Ok::<(), cachelock::BoxError>(())
/// ```
///
/// # What it guarantees
///
/// It is honest about what get/set/delete can do:
///
/// - **Within one process** claims are atomic: every claim, release and extend on a key runs
///   under a process-wide mutex for that key's stripe, so two threads never both win.
/// - **Across processes they are not atomic.** A claim reads, writes, then reads back to
///   check that its own value stuck; this catches most races, but two processes that
///   interleave exactly can both believe they hold the key. Use a store with atomic
///   operations (Redis, or a [`LockStore`] of your own on your store's compare-and-set) to
///   coordinate processes.
/// - **Release and extend** are owner-checked, but as a read then a write, under the same
///   per-process mutex: across processes, a release can delete a lock another process took
///   between the read and the delete (after this holder's TTL ran out).
/// - **Fencing tokens** are the process's wall clock in microseconds since the Unix epoch,
///   made strictly increasing within the process. Across processes they are only as ordered
///   as the hosts' clocks.
/// - The lock value carries its own deadline (`<owner value>;<unix ms>`), so a lock expires
///   even in a cache that ignores the TTL passed to `set`: a crashed holder never blocks a
///   key forever.
/// - **Async**: the cache's methods are sync, so the async operations run them on tokio's
///   blocking pool (`spawn_blocking`), never on a runtime thread; outside a runtime they run
///   inline.
/// - **Admin**: [`Lock::holder`](crate::Lock::holder) and
///   [`Lock::force_release`](crate::Lock::force_release) work (a `get`, a `delete`);
///   [`held_locks`](crate::held_locks) fails (a get/set/delete cache cannot list its
///   keys), and so do tree locks (a subtree cannot be checked atomically).
///
/// It dereferences to the cache, and clones share it (an `Arc`).
pub struct CacheStore<C: ?Sized> {
    cache: Arc<C>,
}

impl<C> CacheStore<C> {
    /// A store on `cache`.
    pub fn new(cache: C) -> Self {
        CacheStore {
            cache: Arc::new(cache),
        }
    }
}

impl<C: ?Sized> CacheStore<C> {
    /// A store on a cache that is already shared (an `Arc<MyCache>`, an `Arc<dyn Cache>`).
    pub fn from_arc(cache: Arc<C>) -> Self {
        CacheStore { cache }
    }
}

impl<C: ?Sized> Clone for CacheStore<C> {
    fn clone(&self) -> Self {
        CacheStore {
            cache: Arc::clone(&self.cache),
        }
    }
}

impl<C: ?Sized> Deref for CacheStore<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.cache
    }
}

impl<C: ?Sized> std::fmt::Debug for CacheStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheStore").finish_non_exhaustive()
    }
}

impl<C: Cache + ?Sized + 'static> CacheStore<C> {
    /// Runs `op` on the cache off the runtime's threads: on tokio's blocking pool inside a
    /// runtime, inline outside one.
    fn blocking<'a, T: Send + 'static>(
        &self,
        op: impl FnOnce(&C) -> CacheResult<T> + Send + 'static,
    ) -> BoxFuture<'a, CacheResult<T>> {
        let cache = Arc::clone(&self.cache);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Box::pin(async move {
                runtime
                    .spawn_blocking(move || op(&cache))
                    .await
                    .map_err(|error| format!("the cache operation did not complete: {error}"))?
            }),
            Err(_) => Box::pin(std::future::ready(op(&cache))),
        }
    }
}

/// Sets its flag when the future of an async claim is dropped before it completes; the claim
/// on the blocking pool then gives back what it won, in the same thread, right after winning.
struct Cancelled {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

impl<C: Cache + ?Sized + 'static> LockStore for CacheStore<C> {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let value = claim.owner_value();
        let won = ops::claim(
            &*self.cache,
            key,
            &value,
            claim.token(),
            claim.ttl(),
            claim.fencing(),
        )?;
        Ok(won.map(Claimed::new))
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let (key, value, token) = (
            key.to_owned(),
            claim.owner_value().to_string(),
            claim.token().to_owned(),
        );
        let (ttl, fencing) = (claim.ttl(), claim.fencing());
        let cancelled = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&cancelled);
        let claimed = self.blocking(move |cache| {
            let won = ops::claim(cache, &key, &value, &token, ttl, fencing)?;
            if won.is_some() && seen.load(Ordering::SeqCst) {
                // Nobody waits for this grant any more: give it back at once.
                let _ = ops::release(cache, &key, &token);
                return Ok(None);
            }
            Ok(won.map(Claimed::new))
        });
        Box::pin(async move {
            let mut cancel = Cancelled {
                flag: cancelled,
                armed: true,
            };
            let outcome = claimed.await;
            cancel.armed = false;
            outcome
        })
    }

    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        ops::release(&*self.cache, key, token)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (key, token) = (key.to_owned(), token.to_owned());
        self.blocking(move |cache| ops::release(cache, &key, &token))
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        ops::extend(&*self.cache, key, token, ttl)
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (key, token) = (key.to_owned(), token.to_owned());
        self.blocking(move |cache| ops::extend(cache, &key, &token, ttl))
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }
}

/// Holder lookup is a `get`, force-release a `delete`; a get/set/delete cache cannot list.
impl<C: Cache + ?Sized + 'static> LockAdmin for CacheStore<C> {
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        ops::holder(&*self.cache, key)
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        let key = key.to_owned();
        self.blocking(move |cache| ops::holder(cache, &key))
    }

    fn keys(&self, _prefix: &str) -> CacheResult<Vec<String>> {
        Err(cannot_list())
    }

    fn keys_async<'a>(&'a self, _prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(std::future::ready(Err(cannot_list())))
    }

    fn force_release(&self, key: &str) -> CacheResult<()> {
        self.cache.delete(key)
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        let key = key.to_owned();
        self.blocking(move |cache| cache.delete(&key))
    }
}

fn cannot_list() -> crate::error::BoxError {
    "this cache cannot list its keys (a get/set/delete cache has no listing)".into()
}
