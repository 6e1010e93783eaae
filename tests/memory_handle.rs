//! A guard on a `MemoryCache` keeps the key's slot (`Cache::claim_for_lock` hands it over)
//! and releases and extends through it, without a lookup. These tests check that this does
//! exactly what the lookup did: a slot that expired, was swept, or was taken over is lost.

use std::sync::Arc;
use std::time::Duration;

use cachelock::{Cache, Handle, Lock, MemoryCache};

/// Polls until `guard` reports its lock lost (bounded: the lock has a 30 ms TTL).
fn wait_lost<C: Cache>(guard: &cachelock::Guard<C>) {
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
    // No sweep: the new holder claims the same slot the stale guard points at.
    let lock = Lock::new("retaken").cache(cache.clone());
    let fresh = lock.try_acquire().expect("the expired key is free");
    assert!(stale.extend().unwrap_err().is_lost());
    assert!(stale.release().unwrap_err().is_lost());
    assert!(lock.try_acquire().unwrap_err().is_locked());
    fresh.release().expect("the new holder releases");
    assert!(lock.try_acquire().is_ok());
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
fn claim_for_lock_hands_out_the_slot_and_release_claimed_checks_the_owner() {
    let cache = MemoryCache::new();
    let ttl = Duration::from_secs(60);
    let claimed = cache
        .claim_for_lock("k", "tok|1|host|", ttl, true)
        .unwrap()
        .expect("free key");
    assert!(claimed.fence >= 1);
    let handle = claimed.handle.expect("memory hands out its slot");
    assert!(cache
        .claim_for_lock("k", "other|1|host|", ttl, true)
        .unwrap()
        .is_none());
    // Another owner's token neither extends nor releases through the handle.
    assert!(!cache.extend_claimed("k", "other", ttl, &handle).unwrap());
    assert!(!cache.release_claimed("k", "other", &handle).unwrap());
    assert!(cache.extend_claimed("k", "tok", ttl, &handle).unwrap());
    assert!(cache.release_claimed("k", "tok", &handle).unwrap());
    assert!(cache.get("k").unwrap().is_none());
    // Released once: a second release finds nothing.
    assert!(!cache.release_claimed("k", "tok", &handle).unwrap());
}

#[test]
fn unfenced_claims_report_fence_zero_and_keep_the_handle() {
    let cache = MemoryCache::new();
    let claimed = cache
        .claim_for_lock("k", "tok", Duration::from_secs(1), false)
        .unwrap()
        .expect("free key");
    assert_eq!(claimed.fence, 0);
    assert!(claimed.handle.is_some());
}

#[test]
fn a_handle_of_another_kind_falls_back_to_the_lookup() {
    let cache = MemoryCache::new();
    assert!(cache
        .claim("k", "tok", Duration::from_secs(60))
        .unwrap()
        .is_some());
    let foreign: Handle = Arc::new(7_u8);
    assert!(!cache.release_claimed("k", "other", &foreign).unwrap());
    assert!(cache
        .extend_claimed("k", "tok", Duration::from_secs(60), &foreign)
        .unwrap());
    assert!(cache.release_claimed("k", "tok", &foreign).unwrap());
    assert!(cache.get("k").unwrap().is_none());
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

/// A `MemoryCache` whose claims for a lock stall for `stall` before they reach it: a thread
/// preempted, or stopped, between the `Lock`'s clock reading and the store.
struct Stalling {
    inner: MemoryCache,
    stall: Duration,
}

impl Cache for Stalling {
    fn get(&self, key: &str) -> cachelock::CacheResult<Option<String>> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> cachelock::CacheResult<()> {
        self.inner.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> cachelock::CacheResult<()> {
        self.inner.delete(key)
    }
    fn claim(&self, key: &str, token: &str, ttl: Duration) -> cachelock::CacheResult<Option<u64>> {
        self.inner.claim(key, token, ttl)
    }
    fn release(&self, key: &str, token: &str) -> cachelock::CacheResult<bool> {
        self.inner.release(key, token)
    }
    fn extend(&self, key: &str, token: &str, ttl: Duration) -> cachelock::CacheResult<bool> {
        self.inner.extend(key, token, ttl)
    }
    fn claim_for_lock(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        fencing: bool,
    ) -> cachelock::CacheResult<Option<cachelock::Claimed>> {
        std::thread::sleep(self.stall);
        self.inner.claim_for_lock(key, value, ttl, fencing)
    }
    fn release_claimed(
        &self,
        key: &str,
        token: &str,
        handle: &Handle,
    ) -> cachelock::CacheResult<bool> {
        self.inner.release_claimed(key, token, handle)
    }
    fn extend_claimed(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: &Handle,
    ) -> cachelock::CacheResult<bool> {
        self.inner.extend_claimed(key, token, ttl, handle)
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
