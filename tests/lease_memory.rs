//! Lease lifecycle on the memory cache: renewal, the lost signal, max_hold, hold_at_least.
//!
//! Timing here only ever bounds from one side: "still held after N TTLs" holds however slow
//! the machine (renewal runs at a third of the TTL, so a stall of two thirds of a TTL would be
//! needed to lose it); "free after X" is awaited with a generous limit, never asserted to
//! happen by a deadline.

use std::time::{Duration, Instant};

use cachelock::{once, Claim, Lock, LockAdmin, LockStore, MemoryCache};
use cachelock_testkit::eventually;

fn lock(cache: &MemoryCache, key: &str) -> Lock<MemoryCache> {
    Lock::new(key).cache(cache.clone())
}

fn held(cache: &MemoryCache, key: &str) -> bool {
    match lock(cache, key).try_acquire() {
        Ok(_) => false,
        Err(e) if e.is_locked() => true,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn renewal_keeps_a_lock_held_for_five_times_its_ttl() {
    let cache = MemoryCache::new();
    let ttl = Duration::from_millis(900);
    let guard = lock(&cache, "long-job").ttl(ttl).try_acquire().unwrap();
    let start = Instant::now();
    while start.elapsed() < ttl * 5 {
        assert!(held(&cache, "long-job"), "lost after {:?}", start.elapsed());
        assert!(!guard.is_lost());
        std::thread::sleep(ttl / 4);
    }
    guard.release().unwrap();
    assert!(!held(&cache, "long-job"));
}

#[test]
fn without_renewal_the_lock_expires_and_the_guard_says_so() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "short")
        .ttl(Duration::from_millis(100))
        .renew(false)
        .try_acquire()
        .unwrap();
    eventually("the unrenewed lock is lost", || guard.is_lost());
    // The guard is told a margin before the store lets the key go (`Lock::lost_margin`);
    // then the key runs out.
    eventually("the key runs out", || !held(&cache, "short"));
    assert!(guard.release().unwrap_err().is_lost());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_key_raises_the_lost_signal() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "taken-over")
        .ttl(Duration::from_millis(600))
        .try_acquire_async()
        .await
        .unwrap();
    // Someone else's value replaces ours (an operator, or a holder after our TTL ran out):
    // the key is force-released and claimed by another owner.
    let intruder = Claim::new(Duration::from_secs(60));
    cache.force_release("cachelock:taken-over").unwrap();
    assert!(cache
        .claim("cachelock:taken-over", &intruder)
        .unwrap()
        .is_some());
    tokio::time::timeout(Duration::from_secs(30), guard.lost())
        .await
        .expect("the renewal notices the overwritten key");
    assert!(guard.is_lost());
    assert!(guard.release().await.unwrap_err().is_lost());
    let (value, _) = cache
        .holder("cachelock:taken-over")
        .unwrap()
        .expect("a lost lock's release deletes nothing");
    assert!(
        value.starts_with(intruder.token()),
        "the intruder still holds the key: {value}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_can_stop_the_moment_the_lock_is_lost() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "cancel")
        .ttl(Duration::from_millis(300))
        .try_acquire_async()
        .await
        .unwrap();
    let intruder = cache.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        intruder.force_release("cachelock:cancel").unwrap();
        assert!(intruder
            .claim("cachelock:cancel", &Claim::new(Duration::from_secs(60)))
            .unwrap()
            .is_some());
    });
    let outcome = tokio::select! {
        () = guard.lost() => "stopped: lock lost",
        () = tokio::time::sleep(Duration::from_secs(60)) => "work finished",
    };
    assert_eq!(outcome, "stopped: lock lost");
}

#[test]
fn max_hold_bounds_how_long_renewal_keeps_the_lock() {
    let cache = MemoryCache::new();
    let max_hold = Duration::from_millis(800);
    let start = Instant::now();
    let guard = lock(&cache, "runaway")
        .ttl(Duration::from_millis(300))
        .max_hold(max_hold)
        .try_acquire()
        .unwrap();
    eventually("the lock runs out after max_hold", || {
        !held(&cache, "runaway")
    });
    assert!(
        start.elapsed() >= max_hold,
        "renewal stopped early, after {:?}",
        start.elapsed()
    );
    assert!(guard.is_lost());
}

#[test]
fn hold_at_least_keeps_the_key_after_an_early_release() {
    let cache = MemoryCache::new();
    let at_least = Duration::from_secs(3);
    let start = Instant::now();
    let guard = lock(&cache, "five-minutely")
        .hold_at_least(at_least)
        .try_acquire()
        .unwrap();
    guard.release().unwrap();
    assert!(
        held(&cache, "five-minutely"),
        "released early, the key must stay held"
    );
    let second = lock(&cache, "five-minutely")
        .acquire_timeout(Duration::from_secs(30))
        .unwrap();
    assert!(
        start.elapsed() >= at_least,
        "a second run got in after {:?}",
        start.elapsed()
    );
    second.release().unwrap();
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn hold_at_least_does_not_extend_a_lock_released_after_it() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "slow-job")
        .hold_at_least(Duration::from_millis(10))
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    guard.release().unwrap();
    assert!(!held(&cache, "slow-job"));
}

#[test]
fn many_short_lived_guards_all_renew_and_release() {
    let cache = MemoryCache::new();
    let guards: Vec<_> = (0..200)
        .map(|i| {
            lock(&cache, &format!("many-{i}"))
                .ttl(Duration::from_millis(900))
                .try_acquire()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    for guard in &guards {
        assert!(!guard.is_lost(), "{} was lost", guard.key());
    }
    for guard in guards {
        guard.release().unwrap();
    }
    assert_eq!(cache.entry_count(), 0);
}

static ONCE_CACHE: std::sync::LazyLock<MemoryCache> = std::sync::LazyLock::new(MemoryCache::new);

#[once(key = "renewed-body", ttl = "600ms", cache = *ONCE_CACHE)]
fn long_body(duration: Duration) -> Option<()> {
    std::thread::sleep(duration);
    Some(())
}

#[test]
fn a_once_body_longer_than_its_ttl_keeps_the_lock() {
    std::thread::scope(|s| {
        let runner = s.spawn(|| long_body(Duration::from_millis(3000)));
        // Read-only probe: trying to acquire here could steal the key from the runner.
        eventually("the body has started", || {
            ONCE_CACHE
                .holder("cachelock:renewed-body")
                .unwrap()
                .is_some()
        });
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2000) {
            assert_eq!(long_body(Duration::ZERO), None, "a second run got in");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(runner.join().unwrap(), Some(()));
    });
    assert!(!held(&ONCE_CACHE, "renewed-body"));
}
