//! MemoryCache: conformance, exactly one winner under contention, memory back to zero.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use cachelock::{testing, Claim, Lock, LockAdmin, LockStore, MemoryCache, MAX_TTL};

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
        .claim("abandoned", &Claim::new(Duration::from_millis(20)))
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

/// Was `plain_values_expire_with_their_ttl` (a `set` with a TTL, and one without): a
/// `MemoryCache` stores only locks now, and every lock has a TTL, so "without a TTL" is a
/// claim for `MAX_TTL`, the longest there is.
#[test]
fn lock_values_expire_with_their_ttl() {
    let cache = MemoryCache::new();
    let short = Claim::new(Duration::from_millis(30));
    let long = Claim::new(MAX_TTL);
    assert!(cache.claim("plain", &short).unwrap().is_some());
    assert!(cache.claim("forever", &long).unwrap().is_some());
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(cache.holder("plain").unwrap(), None);
    let (value, ttl) = cache.holder("forever").unwrap().expect("still held");
    assert!(value.starts_with(long.token()), "{value}");
    let ttl = ttl.expect("memory tells the TTL");
    assert!(
        ttl <= MAX_TTL && ttl > MAX_TTL - Duration::from_secs(60),
        "{ttl:?}"
    );
    // The expired one is free for anybody, and its old owner can no longer release it.
    assert!(!cache.release("plain", short.token(), None).unwrap());
    let next = Claim::new(Duration::from_secs(5));
    assert!(cache.claim("plain", &next).unwrap().is_some());
    assert!(cache.claim("forever", &next).unwrap().is_none());
    assert_eq!(cache.entry_count(), 2);
    assert!(cache.release("plain", next.token(), None).unwrap());
    assert!(cache.release("forever", long.token(), None).unwrap());
    assert_eq!(cache.entry_count(), 0);
}

/// Was `short_and_long_values_round_trip` (values of many lengths through `set`/`get`, and
/// tokens of many lengths through `claim`/`release`): a `MemoryCache` keeps the owner typed
/// and formats the owner value (`<token>|<pid>|<host>|<label>`, inline up to 128 bytes) only
/// for an admin call, so the labels of many lengths, around that bound too, must come back
/// whole from `holder`. Tokens are now always 32 hex digits (callers cannot choose them):
/// release by a token's prefix, suffix, or the token with a byte more, must fail.
#[test]
fn short_and_long_labels_round_trip() {
    let cache = MemoryCache::new();
    let bare = Claim::new(Duration::from_secs(5));
    assert!(cache.claim("k", &bare).unwrap().is_some());
    let (value, _) = cache.holder("k").unwrap().expect("held");
    assert!(
        value.starts_with(bare.token()) && value.ends_with('|'),
        "{value}"
    );
    assert!(cache.release("k", bare.token(), None).unwrap());
    // The label length at which the owner value no longer fits 128 bytes.
    let inline = 128usize.saturating_sub(value.len());
    let mut lengths = vec![0, 1, 32, 100, 10_000];
    lengths.extend([inline.saturating_sub(1), inline, inline + 1]);
    for len in lengths {
        let label: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
        let claim = Claim::new(Duration::from_secs(5)).with_label(&label);
        assert!(cache.claim("k", &claim).unwrap().is_some(), "len {len}");
        let (stored, ttl) = cache.holder("k").unwrap().expect("held");
        assert!(ttl.is_some_and(|ttl| ttl <= Duration::from_secs(5)));
        assert_eq!(stored.len(), value.len() + label.len(), "len {len}");
        let mut parts = stored.splitn(4, '|');
        assert_eq!(parts.next(), Some(claim.token()), "len {len}");
        assert_eq!(parts.nth(2), Some(label.as_str()), "len {len}");
        let token = claim.token();
        assert!(!cache.release("k", &token[1..], None).unwrap());
        assert!(!cache.release("k", &token[..31], None).unwrap());
        assert!(!cache.release("k", &format!("{token}x"), None).unwrap());
        assert!(!cache.release("k", &stored, None).unwrap());
        assert!(cache.release("k", token, None).unwrap(), "len {len}");
        assert_eq!(cache.holder("k").unwrap(), None);
    }
}

#[test]
fn a_released_key_keeps_its_empty_slot_until_a_sweep() {
    let cache = MemoryCache::new();
    let guard = Lock::new("reused")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    // (The old test read `get("reused")`, without the key prefix: a key never stored.)
    let key = Lock::new("reused").full_key();
    assert!(cache.holder(&key).unwrap().is_some(), "held before release");
    guard.release().unwrap();
    assert_eq!(cache.holder(&key).unwrap(), None, "released means free");
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
    assert!(cache.holder(&key).unwrap().is_some(), "still held");
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
            .holder(&Lock::new("mass-0").full_key())
            .unwrap()
            .is_some(),
        "the held one stays"
    );
}
