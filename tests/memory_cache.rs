//! MemoryCache: conformance, exactly one winner under contention, memory back to zero.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use cachelock::{testing, Cache, Lock, MemoryCache};

#[test]
fn memory_cache_passes_the_conformance_suite() {
    testing::conformance(MemoryCache::new()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_passes_the_async_conformance_suite() {
    testing::conformance_async(MemoryCache::new())
        .await
        .unwrap();
}

#[test]
fn exactly_one_winner_among_many_threads_over_many_rounds() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 2_000;
    let cache = MemoryCache::new();
    let barrier = Barrier::new(THREADS);
    let winners: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for (round, count) in winners.iter().enumerate() {
                    barrier.wait();
                    let key = format!("contended-{round}");
                    // Keep the guard alive until every thread has tried, so a fast winner
                    // releasing early cannot let a slow thread win the same round.
                    let guard = Lock::new(key).cache(cache.clone()).try_acquire();
                    if guard.is_ok() {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    barrier.wait();
                    drop(guard);
                }
            });
        }
    });
    for (round, count) in winners.iter().enumerate() {
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "round {round} had a wrong number of winners"
        );
    }
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn entry_count_returns_to_zero_after_a_million_distinct_keys() {
    let cache = MemoryCache::new();
    for i in 0..1_000_000u32 {
        let guard = Lock::new(format!("key-{i}"))
            .cache(cache.clone())
            .try_acquire()
            .unwrap();
        guard.release().unwrap();
    }
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn entry_count_follows_held_locks_and_expiry() {
    let cache = MemoryCache::new();
    let held: Vec<_> = (0..100)
        .map(|i| {
            Lock::new(format!("held-{i}"))
                .cache(cache.clone())
                .try_acquire()
                .unwrap()
        })
        .collect();
    assert_eq!(cache.entry_count(), 100);
    drop(held);
    assert_eq!(cache.entry_count(), 0);

    // An abandoned lock's entry goes away with its TTL (checked by polling, not by timing).
    assert!(cache
        .claim("abandoned", "token", Duration::from_millis(20))
        .unwrap()
        .is_some());
    let mut waited = Duration::ZERO;
    while cache.entry_count() != 0 {
        assert!(
            waited < Duration::from_secs(30),
            "expired entry never left the cache"
        );
        std::thread::sleep(Duration::from_millis(10));
        waited += Duration::from_millis(10);
    }
}

#[test]
fn clones_share_one_store() {
    let cache = MemoryCache::new();
    let _guard = Lock::new("shared")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    assert!(Lock::new("shared")
        .cache(cache)
        .try_acquire()
        .unwrap_err()
        .is_locked());
}

#[test]
fn plain_values_expire_with_their_ttl() {
    let cache = MemoryCache::new();
    cache
        .set("plain", "v", Some(Duration::from_millis(30)))
        .unwrap();
    cache.set("forever", "v", None).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(cache.get("plain").unwrap(), None);
    assert_eq!(cache.get("forever").unwrap().as_deref(), Some("v"));
}

#[test]
fn short_and_long_values_round_trip() {
    let cache = MemoryCache::new();
    for len in [0, 1, 32, 61, 62, 63, 100, 10_000] {
        let value: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
        cache.set("k", &value, None).unwrap();
        assert_eq!(
            cache.get("k").unwrap().as_deref(),
            Some(value.as_str()),
            "len {len}"
        );
        let token = "t".repeat(len + 1);
        cache.delete("k").unwrap();
        assert!(cache
            .claim("k", &token, Duration::from_secs(5))
            .unwrap()
            .is_some());
        assert!(!cache.release("k", &token[1..]).unwrap());
        assert!(cache.release("k", &token).unwrap());
    }
}

#[test]
fn a_released_key_keeps_its_empty_slot_until_a_sweep() {
    let cache = MemoryCache::new();
    let guard = Lock::new("reused")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    guard.release().unwrap();
    assert_eq!(cache.get("reused").unwrap(), None, "released means free");
    assert_eq!(cache.stored_slots(), 1, "the empty slot stays for reuse");
    // Taking it again reuses the slot.
    let guard = Lock::new("reused")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    assert_eq!(cache.stored_slots(), 1);
    assert_eq!(cache.entry_count(), 1, "a held lock survives a full sweep");
    guard.release().unwrap();
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(
        cache.stored_slots(),
        0,
        "the full sweep dropped the free slot"
    );
}

/// Free slots are swept while new keys stream in: the store never grows with the number of
/// keys ever used, only with the number held (a few times 1024 free slots at most, sweep.rs).
#[test]
fn stored_slots_stay_bounded_over_a_stream_of_new_keys() {
    const BOUND: u64 = 6 * 1024;
    let cache = MemoryCache::new();
    let mut largest = 0;
    for i in 0..200_000u32 {
        let guard = Lock::new(format!("stream-{i}"))
            .cache(cache.clone())
            .try_acquire()
            .unwrap();
        guard.release().unwrap();
        if i % 10_000 == 9_999 {
            largest = largest.max(cache.stored_slots());
        }
    }
    assert!(
        largest <= BOUND,
        "{largest} slots stored for 200,000 keys used one after the other"
    );
    assert_eq!(cache.entry_count(), 0);
}

/// Sweeps (full ones from `entry_count`, and background ones started by a stream of new
/// keys) run while threads claim and release a few keys: never two holders at once, and a
/// lock held all along is never swept away.
#[test]
fn sweeps_never_remove_a_held_lock_or_let_two_holders_in() {
    const THREADS: usize = 6;
    const KEYS: usize = 3;
    let cache = MemoryCache::new();
    let long = Lock::new("held-all-along")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    let inside: Vec<AtomicUsize> = (0..KEYS).map(|_| AtomicUsize::new(0)).collect();
    let violations = AtomicUsize::new(0);
    let wins = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cache, inside, violations, wins, stop) =
                (&cache, &inside, &violations, &wins, &stop);
            s.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let k = i % KEYS;
                    if let Ok(guard) = Lock::new(format!("contended-{k}"))
                        .cache(cache.clone())
                        .try_acquire()
                    {
                        if inside[k].fetch_add(1, Ordering::SeqCst) != 0 {
                            violations.fetch_add(1, Ordering::SeqCst);
                        }
                        std::hint::spin_loop();
                        inside[k].fetch_sub(1, Ordering::SeqCst);
                        wins.fetch_add(1, Ordering::Relaxed);
                        guard.release().unwrap();
                    }
                    assert!(Lock::new("held-all-along")
                        .cache(cache.clone())
                        .try_acquire()
                        .unwrap_err()
                        .is_locked());
                }
            });
        }
        // New keys, to start background sweeps.
        s.spawn(|| {
            for i in 0..60_000u32 {
                let guard = Lock::new(format!("new-{i}"))
                    .cache(cache.clone())
                    .try_acquire()
                    .unwrap();
                guard.release().unwrap();
            }
        });
        // Full sweeps.
        for _ in 0..200 {
            assert!(cache.entry_count() >= 1, "the long-held lock is counted");
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(violations.load(Ordering::SeqCst), 0);
    assert!(wins.load(Ordering::Relaxed) > 0);
    let key = Lock::new("held-all-along").full_key();
    assert!(cache.get(&key).unwrap().is_some(), "still held");
    long.release().unwrap();
    assert_eq!(cache.entry_count(), 0);
}

/// Many locks held at once and then released, with no new key afterwards: the background
/// thread's idle pass drops the free slots (no caller inserts, so no caller would).
#[test]
fn free_slots_go_after_a_mass_release_without_new_keys() {
    let cache = MemoryCache::new();
    let guards: Vec<_> = (0..5_000)
        .map(|i| {
            Lock::new(format!("mass-{i}"))
                .cache(cache.clone())
                .try_acquire()
                .unwrap()
        })
        .collect();
    drop(guards);
    let _hot = Lock::new("mass-0")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    cachelock_testkit::eventually("the free slots are dropped", || {
        cache.stored_slots() <= 1024
    });
    assert!(
        cache
            .get(&Lock::new("mass-0").full_key())
            .unwrap()
            .is_some(),
        "the held one stays"
    );
}
