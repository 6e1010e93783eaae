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
    let now = std::time::Instant::now();
    let ttl = Duration::from_secs(60);
    let claimed = cache
        .claim_for_lock("k", "tok|1|host|", ttl, true, now)
        .unwrap()
        .expect("free key");
    assert!(claimed.fence >= 1);
    let handle = claimed.handle.expect("memory hands out its slot");
    assert!(cache
        .claim_for_lock("k", "other|1|host|", ttl, true, now)
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
        .claim_for_lock(
            "k",
            "tok",
            Duration::from_secs(1),
            false,
            std::time::Instant::now(),
        )
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
