//! A guard on a `MemoryCache` keeps the key's slot (`LockStore::claim` hands it over as the
//! `Claimed::handle`) and releases and extends through it (`release`/`extend` with
//! `Some(&handle)`), without a lookup. These tests check that this does
//! exactly what the lookup did: a slot that expired, was swept, or was taken over is lost.

use std::sync::Arc;
use std::time::Duration;

use cachelock::tree::TreeStore;
use cachelock::{
    BoxFuture, CacheResult, Claim, Claimed, Handle, Lock, LockAdmin, LockStore, MemoryCache,
};

/// Polls until `guard` reports its lock lost (bounded: the lock has a 30 ms TTL).
fn wait_lost<C: LockStore + Clone + 'static>(guard: &cachelock::Guard<C>) {
    for _ in 0..500 {
        if guard.is_lost() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the lock never ran out");
}

#[test]
fn a_guard_whose_slot_was_swept_and_key_retaken_is_lost_and_frees_nothing() {
    let cache = MemoryCache::new();
    let short = Lock::new("swept")
        .cache(cache.clone())
        .ttl(Duration::from_millis(30))
        .renew(false);
    let stale = short.try_acquire().expect("free key");
    wait_lost(&stale);
    // Told lost a margin before the store lets go (`lost_margin`): wait for the store too.
    wait_expired(&cache, "cachelock:swept");
    // A full sweep drops the expired slot from the map (the guard still holds it).
    assert_eq!(cache.entry_count(), 0);
    let lock = Lock::new("swept").cache(cache.clone());
    let fresh = lock.try_acquire().expect("the expired key is free");

    assert!(stale.extend().unwrap_err().is_lost());
    assert!(stale.release().unwrap_err().is_lost());
    // The new holder still holds the key.
    assert!(lock.try_acquire().unwrap_err().is_locked());
    assert_eq!(cache.entry_count(), 1);
    fresh.release().expect("the new holder releases");
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn a_guard_whose_key_was_retaken_in_the_same_slot_is_lost_and_frees_nothing() {
    let cache = MemoryCache::new();
    let stale = Lock::new("retaken")
        .cache(cache.clone())
        .ttl(Duration::from_millis(30))
        .renew(false)
        .try_acquire()
        .expect("free key");
    wait_lost(&stale);
    // Told lost a margin before the store lets go (`lost_margin`): wait for the store too.
    wait_expired(&cache, "cachelock:retaken");
    // No sweep: the new holder claims the same slot the stale guard points at.
    let lock = Lock::new("retaken").cache(cache.clone());
    let fresh = lock.try_acquire().expect("the expired key is free");
    assert!(stale.extend().unwrap_err().is_lost());
    assert!(stale.release().unwrap_err().is_lost());
    assert!(lock.try_acquire().unwrap_err().is_locked());
    fresh.release().expect("the new holder releases");
    assert!(lock.try_acquire().is_ok());
}

/// Polls until `key` holds no live lock in `cache` (bounded).
fn wait_expired(cache: &MemoryCache, key: &str) {
    for _ in 0..500 {
        if cache.holder(key).unwrap().is_none() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the lock never ran out");
}

#[test]
fn a_stale_handle_of_a_swept_and_retaken_slot_finds_the_lock_lost_and_frees_nothing() {
    // The same property as the guard-level test above, on the store's own calls.
    let cache = MemoryCache::new();
    let stale = Claim::new(Duration::from_millis(30));
    let handle = cache
        .claim("k", &stale)
        .unwrap()
        .expect("free key")
        .handle
        .expect("memory hands out its slot");
    wait_expired(&cache, "k");
    // A full sweep drops the expired slot (the handle still points at it).
    assert_eq!(cache.entry_count(), 0);
    let fresh = Claim::new(Duration::from_secs(60));
    let fresh_handle = cache
        .claim("k", &fresh)
        .unwrap()
        .expect("the expired key is free")
        .handle
        .expect("memory hands out its slot");
    assert!(!Arc::ptr_eq(&handle, &fresh_handle), "a new slot was made");
    let ttl = Duration::from_secs(60);
    assert!(!cache
        .extend("k", stale.token(), ttl, Some(&handle))
        .unwrap());
    assert!(!cache.release("k", stale.token(), Some(&handle)).unwrap());
    // The new holder still holds the key.
    let (value, _) = cache.holder("k").unwrap().expect("still held");
    assert!(value.starts_with(fresh.token()), "{value}");
    assert!(cache.claim("k", &stale).unwrap().is_none());
    assert_eq!(cache.entry_count(), 1);
    assert!(cache
        .release("k", fresh.token(), Some(&fresh_handle))
        .unwrap());
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn a_stale_handle_of_a_slot_retaken_in_place_finds_the_lock_lost_and_frees_nothing() {
    let cache = MemoryCache::new();
    let stale = Claim::new(Duration::from_millis(30));
    let handle = cache
        .claim("k", &stale)
        .unwrap()
        .expect("free key")
        .handle
        .expect("memory hands out its slot");
    wait_expired(&cache, "k");
    // No sweep: the new holder claims the same slot the stale handle points at.
    let fresh = Claim::new(Duration::from_secs(60));
    let fresh_handle = cache
        .claim("k", &fresh)
        .unwrap()
        .expect("the expired key is free")
        .handle
        .expect("memory hands out its slot");
    assert!(Arc::ptr_eq(&handle, &fresh_handle), "the slot was reused");
    let ttl = Duration::from_secs(60);
    assert!(!cache
        .extend("k", stale.token(), ttl, Some(&handle))
        .unwrap());
    assert!(!cache.release("k", stale.token(), Some(&handle)).unwrap());
    let (value, _) = cache.holder("k").unwrap().expect("still held");
    assert!(value.starts_with(fresh.token()), "{value}");
    assert!(cache
        .release("k", fresh.token(), Some(&fresh_handle))
        .unwrap());
    assert!(cache.holder("k").unwrap().is_none());
}

#[test]
fn a_force_release_is_seen_through_a_stored_handle() {
    let cache = MemoryCache::new();
    let ttl = Duration::from_secs(60);
    let first = Claim::new(ttl);
    let handle = cache
        .claim("k", &first)
        .unwrap()
        .expect("free key")
        .handle
        .expect("memory hands out its slot");
    cache.force_release("k").unwrap();
    assert!(!cache
        .extend("k", first.token(), ttl, Some(&handle))
        .unwrap());
    let next = Claim::new(ttl);
    assert!(cache.claim("k", &next).unwrap().is_some());
    assert!(!cache.release("k", first.token(), Some(&handle)).unwrap());
    assert!(cache.claim("k", &first).unwrap().is_none(), "still held");
    assert!(cache.release("k", next.token(), None).unwrap());
}

#[test]
fn force_release_is_seen_through_the_handle() {
    let cache = MemoryCache::new();
    let lock = Lock::new("forced").cache(cache.clone());
    let guard = lock.try_acquire().expect("free key");
    lock.force_release().expect("admin delete");
    assert!(guard.extend().unwrap_err().is_lost());
    let next = lock.try_acquire().expect("free after force_release");
    assert!(guard.release().unwrap_err().is_lost());
    assert!(lock.try_acquire().unwrap_err().is_locked());
    drop(next);
}

#[test]
fn claim_hands_out_the_slot_and_release_through_it_checks_the_owner() {
    let cache = MemoryCache::new();
    let ttl = Duration::from_secs(60);
    let ours = Claim::new(ttl);
    let other = Claim::new(ttl);
    let claimed = cache.claim("k", &ours).unwrap().expect("free key");
    assert!(claimed.fence >= 1);
    let handle = claimed.handle.expect("memory hands out its slot");
    assert!(cache.claim("k", &other).unwrap().is_none());
    // Another owner's token neither extends nor releases through the handle.
    assert!(!cache
        .extend("k", other.token(), ttl, Some(&handle))
        .unwrap());
    assert!(!cache.release("k", other.token(), Some(&handle)).unwrap());
    assert!(cache.extend("k", ours.token(), ttl, Some(&handle)).unwrap());
    assert!(cache.release("k", ours.token(), Some(&handle)).unwrap());
    assert!(cache.holder("k").unwrap().is_none());
    // Released once: a second release finds nothing.
    assert!(!cache.release("k", ours.token(), Some(&handle)).unwrap());
}

#[test]
fn unfenced_claims_report_fence_zero_and_keep_the_handle() {
    let cache = MemoryCache::new();
    let claimed = cache
        .claim("k", &Claim::new(Duration::from_secs(1)).with_fencing(false))
        .unwrap()
        .expect("free key");
    assert_eq!(claimed.fence, 0);
    assert!(claimed.handle.is_some());
}

#[test]
fn a_handle_of_another_kind_falls_back_to_the_lookup() {
    let cache = MemoryCache::new();
    let ours = Claim::new(Duration::from_secs(60));
    let other = Claim::new(Duration::from_secs(60));
    assert!(cache.claim("k", &ours).unwrap().is_some());
    let foreign: Handle = Arc::new(7_u8);
    assert!(!cache.release("k", other.token(), Some(&foreign)).unwrap());
    assert!(cache
        .extend("k", ours.token(), Duration::from_secs(60), Some(&foreign))
        .unwrap());
    assert!(cache.release("k", ours.token(), Some(&foreign)).unwrap());
    assert!(cache.holder("k").unwrap().is_none());
}

#[tokio::test]
async fn an_async_guard_dropped_mid_way_releases_through_the_handle_at_once() {
    let cache = MemoryCache::new();
    let lock = Lock::new("dropped").cache(cache.clone());
    let guard = lock.try_acquire_async().await.expect("free key");
    drop(guard);
    // In memory the drop released inline: the key is free right away.
    let again = lock
        .try_acquire_async()
        .await
        .expect("released by the drop");
    again.release().await.expect("release");
    assert_eq!(cache.entry_count(), 0);
}

/// A `MemoryCache` (as a `LockStore`, forwarding everything) whose claims stall for `stall` before they reach it: a thread
/// preempted, or stopped, between the `Lock`'s clock reading and the store.
struct Stalling {
    inner: MemoryCache,
    stall: Duration,
}

impl LockStore for Stalling {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        std::thread::sleep(self.stall);
        self.inner.claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            tokio::time::sleep(self.stall).await;
            self.inner.claim_async(key, claim).await
        })
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.inner.release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        self.inner.extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.extend_async(key, token, ttl, handle)
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        self.inner.wait_for_release(key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        self.inner.wait_for_release_async(key, pause)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        self.inner.admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        self.inner.trees()
    }
}

#[test]
fn a_claim_stalled_past_its_ttl_still_holds_the_key_for_a_whole_ttl() {
    // The TTL starts when the key is stored, not when the Lock read its clock: a claim that
    // stalled longer than the TTL before reaching the store must not hand out a key that is
    // already free for the next claimant.
    let ttl = Duration::from_secs(1);
    let inner = MemoryCache::new();
    let stalling = Arc::new(Stalling {
        inner: inner.clone(),
        stall: ttl + Duration::from_millis(100),
    });
    let guard = Lock::new("stalled")
        .cache(stalling)
        .ttl(ttl)
        .try_acquire()
        .expect("free key");
    let rival = Lock::new("stalled").cache(inner.clone());
    assert!(rival.try_acquire().unwrap_err().is_locked());
    guard.release().expect("still ours");
    assert!(rival.try_acquire().is_ok());
}

#[tokio::test]
async fn an_async_claim_stalled_past_its_ttl_still_holds_the_key_for_a_whole_ttl() {
    // The async twin: the stall is in `claim_async`.
    let ttl = Duration::from_secs(1);
    let inner = MemoryCache::new();
    let stalling = Arc::new(Stalling {
        inner: inner.clone(),
        stall: ttl + Duration::from_millis(100),
    });
    let guard = Lock::new("stalled-async")
        .cache(stalling)
        .ttl(ttl)
        .try_acquire_async()
        .await
        .expect("free key");
    let rival = Lock::new("stalled-async").cache(inner.clone());
    assert!(rival.try_acquire_async().await.unwrap_err().is_locked());
    guard.release().await.expect("still ours");
    assert!(rival.try_acquire_async().await.is_ok());
}
