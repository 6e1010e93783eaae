//! Edges of taking a lock that no backend normally shows: a grant that comes back after
//! the lock's whole TTL, and keys reserved for cachelock's own bookkeeping.

use std::time::Duration;

use cachelock::tree::TreeLock;
use cachelock::{
    BoxFuture, CacheResult, Claim, Claimed, Error, Handle, Lock, LockAdmin, LockStore, MemoryCache,
};
use cachelock_testkit::eventually;

/// A memory store whose claims answer late: the claim is stored, then the reply takes
/// `delay` (a reconnect, retries, a stalled server). It stores claims with ten times the
/// TTL asked for, as a server whose TTL started later than the client's count does, so a
/// late grant is still held when it comes back unless it is given back.
///
/// It behaves as a network store: it returns no [`Handle`] (the memory slot is kept to
/// itself), so the lock does not trust the TTL to have started inside the claim and checks
/// how long the grant took.
#[derive(Clone)]
struct SlowClaims {
    inner: MemoryCache,
    delay: Duration,
}

impl SlowClaims {
    /// Stores the claim in memory for ten times its TTL (a claim, then an owner-checked
    /// extend by the same token: a claim's token cannot be carried to a new `Claim`), and
    /// answers as a network store: the fence, no handle.
    fn store(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let Some(won) = self.inner.claim(key, claim)? else {
            return Ok(None);
        };
        assert!(self
            .inner
            .extend(key, claim.token(), claim.ttl() * 10, won.handle.as_ref())?);
        Ok(Some(Claimed::new(won.fence)))
    }
}

impl LockStore for SlowClaims {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let won = self.store(key, claim);
        std::thread::sleep(self.delay);
        won
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            let won = self.store(key, claim);
            tokio::time::sleep(self.delay).await;
            won
        })
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        assert!(handle.is_none(), "this store hands out no handle");
        self.inner.release(key, token, None)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        assert!(handle.is_none(), "this store hands out no handle");
        self.inner.release_async(key, token, None)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        assert!(handle.is_none(), "this store hands out no handle");
        self.inner.extend(key, token, ttl, None)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        assert!(handle.is_none(), "this store hands out no handle");
        self.inner.extend_async(key, token, ttl, None)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        self.inner.admin()
    }
}

#[test]
fn a_grant_that_answers_after_the_ttl_is_a_timeout_and_is_given_back() {
    let cache = SlowClaims {
        inner: MemoryCache::new(),
        delay: Duration::from_millis(600),
    };
    // TTL 200 ms, the reply comes after 600 ms: the hold cannot be trusted.
    let late = Lock::new("late-grant")
        .cache(cache.clone())
        .ttl(Duration::from_millis(200))
        .try_acquire();
    match late {
        Err(error) => assert!(error.is_timeout(), "a timeout, got {error}"),
        Ok(_) => panic!("a grant that came back after its TTL must not become a guard"),
    }
    // Nothing of it is left behind: a normal lock on the key is granted at once.
    let next = Lock::new("late-grant")
        .cache(cache.inner.clone())
        .try_acquire();
    assert!(
        next.is_ok(),
        "the late grant was given back: {:?}",
        next.err()
    );
}

#[test]
fn a_grant_that_answers_within_the_ttl_is_a_guard() {
    let cache = SlowClaims {
        inner: MemoryCache::new(),
        delay: Duration::from_millis(20),
    };
    let guard = Lock::new("slow-but-fine")
        .cache(cache.clone())
        .ttl(Duration::from_secs(30))
        .try_acquire()
        .expect("granted well within the TTL");
    assert!(!guard.is_lost());
}

#[tokio::test]
async fn an_async_grant_that_answers_after_the_ttl_is_a_timeout_and_is_given_back() {
    let cache = SlowClaims {
        inner: MemoryCache::new(),
        delay: Duration::from_millis(600),
    };
    let late = Lock::new("late-grant-async")
        .cache(cache.clone())
        .ttl(Duration::from_millis(200))
        .try_acquire_async()
        .await;
    match late {
        Err(error) => assert!(error.is_timeout(), "a timeout, got {error}"),
        Ok(_) => panic!("a grant that came back after its TTL must not become a guard"),
    }
    assert!(Lock::new("late-grant-async")
        .cache(cache.inner.clone())
        .try_acquire()
        .is_ok());
}

#[test]
fn keys_reserved_for_bookkeeping_are_refused_with_invalid_key() {
    let cache = MemoryCache::new();
    let reserved = [
        ("", "cachelock-fence"),
        ("", "cachelock-fence:{abc}"),
        ("cachelock-http:", "{cachelock-tree}:own"),
        ("cachelock:", "x{cachelock-tree}:fence"),
    ];
    for (prefix, key) in reserved {
        let lock = Lock::new(key).prefix(prefix).cache(cache.clone());
        match lock.try_acquire() {
            Err(Error::InvalidKey { reason, .. }) => {
                assert!(reason.contains("reserved"), "{reason}")
            }
            other => panic!(
                "{prefix}{key}: expected InvalidKey, got {:?}",
                other.map(|_| ())
            ),
        }
        assert!(
            matches!(lock.force_release(), Err(Error::InvalidKey { .. })),
            "force_release must refuse {prefix}{key} too"
        );
    }
    // Look-alikes are ordinary keys.
    for key in ["cachelock-fence-report", "{tag}:job", "cachelock-tree"] {
        assert!(
            Lock::new(key).cache(cache.clone()).try_acquire().is_ok(),
            "{key} is an ordinary key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_dropped_while_in_flight_is_given_back() {
    // The claim lands at once; its answer takes 10 s; the caller gives up after 50 ms (a
    // `select!` with a shutdown signal, a request timeout). The TTL is long (5 min × 10
    // stored), so only the give-back can free the key.
    let cache = SlowClaims {
        inner: MemoryCache::new(),
        delay: Duration::from_secs(10),
    };
    let lock = Lock::new("dropped-claim")
        .cache(cache.clone())
        .ttl(Duration::from_secs(300));
    let gave_up = tokio::time::timeout(Duration::from_millis(50), lock.try_acquire_async()).await;
    assert!(gave_up.is_err(), "the claim was still in flight");
    eventually("the dropped claim is given back", || {
        Lock::new("dropped-claim")
            .cache(cache.inner.clone())
            .try_acquire()
            .is_ok()
    });
}

#[tokio::test]
async fn a_claim_that_answered_is_not_given_back() {
    let cache = SlowClaims {
        inner: MemoryCache::new(),
        delay: Duration::from_millis(1),
    };
    let guard = Lock::new("answered-claim")
        .cache(cache.clone())
        .ttl(Duration::from_secs(300))
        .try_acquire_async()
        .await
        .expect("granted");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(Lock::new("answered-claim")
        .cache(cache.inner.clone())
        .try_acquire()
        .is_err_and(|e| e.is_locked()));
    guard.release().await.expect("still ours");
}

#[tokio::test]
async fn a_completed_async_tree_claim_is_kept() {
    // The tree path arms the same give-back as `Lock` while its claim is in flight; once the
    // claim has answered, the lock must stay held.
    let cache = MemoryCache::new();
    let guard = TreeLock::new("/a/b")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .expect("granted");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TreeLock::new("/a")
        .cache(cache.clone())
        .try_acquire()
        .is_err_and(|e| e.is_locked()));
    guard.release().await.expect("still ours");
}
