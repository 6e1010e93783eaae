//! The memcached store's TTLs (whole seconds, rounded up, plus one for memcached's clock
//! tick; a Unix time past 30 days) and keys (any lock key, up to 1 KiB of anything, mapped
//! onto memcached's 250 printable bytes), checked on a real server.
//!
//! The TTL checks read what the server holds (`mg <key> t`, seconds left) right after the
//! claim; they allow for the ticks of memcached's clock during the exchange, never for a
//! deadline.
#![cfg(feature = "memcached")]

use std::time::{Duration, Instant};

use cachelock::memcached::MemcachedCache;
use cachelock::{Claim, Lock, LockStore, MAX_KEY_LEN, MAX_TTL};
use cachelock_testkit::memcached::MemcachedServer;

/// The seconds memcached has left on `key` (`mg <key> t`).
fn seconds_left(server: &MemcachedServer, key: &str) -> i64 {
    let reply = server.command(&format!("mg {key} t\r\n"));
    reply[0]
        .strip_prefix("HD t")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no TTL for {key}: {reply:?}"))
}

/// Whether an I/O timeout is anywhere in `error`'s chain.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// Claims `key` for `ttl` and returns the seconds memcached has left on it, and how many
/// ticks of its clock may have passed since the claim was sent.
fn claim_and_read(
    cache: &MemcachedCache,
    server: &MemcachedServer,
    key: &str,
    ttl: Duration,
) -> (i64, i64) {
    // A claim waits for its reply no longer than its TTL: with a TTL of 1 ms, a busy machine
    // can time the exchange out. What is checked here is the TTL the server keeps, so such a
    // claim is tried again, on a fresh key (the timed-out one may have landed).
    for attempt in 0..50 {
        let key = format!("{key}-{attempt}");
        let started = Instant::now();
        let claim = Claim::new(ttl);
        match cache.claim(&key, &claim) {
            Ok(won) => assert!(won.is_some(), "{key} is free"),
            Err(error) if ttl < Duration::from_millis(100) && timed_out(&*error) => continue,
            Err(error) => panic!("claim: {error:?}"),
        }
        let left = seconds_left(server, &key);
        let ticks = i64::try_from(started.elapsed().as_secs()).expect("small") + 1;
        return (left, ticks);
    }
    panic!("50 claims of {key} with a TTL of {ttl:?} all timed out");
}

#[test]
fn ttls_are_whole_seconds_rounded_up_plus_one() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    for (key, ttl_ms, sent) in [
        ("ttl-1ms", 1, 2),
        ("ttl-150ms", 150, 2),
        ("ttl-1s", 1_000, 2),
        ("ttl-1500ms", 1_500, 3),
        ("ttl-30s", 30_000, 31),
    ] {
        let (left, ticks) = claim_and_read(&cache, &server, key, Duration::from_millis(ttl_ms));
        // memcached's clock may tick between the claim and the read, never backwards.
        assert!(
            left <= sent && left >= sent - ticks,
            "{key}: {left} s left, sent {sent}"
        );
    }
    // An extend sends the same rounding.
    let claim = Claim::new(Duration::from_secs(5));
    assert!(cache
        .claim("ttl-extended", &claim)
        .expect("claim")
        .is_some());
    let started = Instant::now();
    assert!(cache
        .extend(
            "ttl-extended",
            claim.token(),
            Duration::from_millis(2_200),
            None
        )
        .expect("extend"));
    let left = seconds_left(&server, "ttl-extended");
    let ticks = i64::try_from(started.elapsed().as_secs()).expect("small") + 1;
    assert!(left <= 4 && left >= 4 - ticks, "{left}");
}

#[test]
fn the_thirty_day_boundary_is_crossed_with_a_unix_time() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    const MONTH: i64 = 30 * 24 * 60 * 60;
    // Just under 30 days: a relative expiry of exactly 30 days.
    let (left, ticks) = claim_and_read(
        &cache,
        &server,
        "month-less-1s",
        MAX_TTL - Duration::from_secs(1),
    );
    assert!(left <= MONTH && left >= MONTH - ticks, "{left}");
    // 30 days (MAX_TTL): 30 days + 1 s would be read as a Unix time in 1970 and expire at
    // once; the store sends a Unix time by the server's clock instead.
    let (left, ticks) = claim_and_read(&cache, &server, "month", MAX_TTL);
    assert!(left >= MONTH + 1 - ticks && left <= MONTH + 4, "{left}");
    // Through a Lock: held, and refused to the next comer.
    let lock = Lock::new("a-month").cache(cache.clone()).ttl(MAX_TTL);
    let guard = lock.try_acquire().expect("free");
    assert!(
        lock.try_acquire().unwrap_err().is_locked(),
        "not expired at once"
    );
    let holder = lock.holder().expect("holder").expect("held");
    let reported = holder.ttl.expect("memcached tells the TTL");
    assert!(reported <= MAX_TTL + Duration::from_secs(3), "{reported:?}");
    assert!(reported >= MAX_TTL - Duration::from_secs(5), "{reported:?}");
    guard.extend_for(MAX_TTL).expect("extend to 30 days");
    assert!(
        lock.try_acquire().unwrap_err().is_locked(),
        "not expired at once"
    );
    guard.release().expect("release");
}

#[test]
fn the_holder_lookup_reports_the_lock_ttl_in_whole_seconds() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("holder-ttl")
        .cache(cache)
        .ttl(Duration::from_secs(30));
    let started = Instant::now();
    let guard = lock.try_acquire().expect("free");
    let ttl = lock
        .holder()
        .expect("holder")
        .expect("held")
        .ttl
        .expect("a TTL");
    let ticks = started.elapsed().as_secs() + 1;
    assert!(ttl <= Duration::from_secs(30), "{ttl:?}");
    assert!(ttl >= Duration::from_secs(30 - ticks), "{ttl:?}");
    assert_eq!(ttl.subsec_nanos(), 0, "whole seconds");
    guard.release().expect("release");
}

#[test]
fn any_lock_key_works_and_distinct_keys_stay_distinct() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let long = "k".repeat(MAX_KEY_LEN);
    let long_other = format!("{}x", "k".repeat(MAX_KEY_LEN - 1));
    let exactly_250 = "p".repeat(250 - "cachelock:".len());
    let keys = [
        "plain-key",
        long.as_str(),
        long_other.as_str(),
        exactly_250.as_str(),
        "with space",
        "with_space",
        "new\nline\r\n",
        "tab\there",
        "日本語のキー",
        "hash#tag",
        "nul\u{0}byte",
    ];
    // Every key held at once: none of them collides with another.
    let guards: Vec<_> = keys
        .iter()
        .map(|key| {
            let lock = Lock::new(*key).cache(cache.clone()).label("keys test");
            let guard = lock
                .try_acquire()
                .unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert!(
                lock.try_acquire().unwrap_err().is_locked(),
                "{key:?} is held"
            );
            let holder = lock.holder().expect("holder").expect("held");
            assert_eq!(holder.label.as_deref(), Some("keys test"), "{key:?}");
            assert_eq!(holder.key, lock.full_key(), "the holder names the lock key");
            guard
        })
        .collect();
    // A short plain key is stored as it is; the 250-byte one too (the limit is inclusive).
    assert_eq!(server.command("mg cachelock:plain-key\r\n"), ["HD"]);
    assert_eq!(
        server.command(&format!("mg cachelock:{exactly_250}\r\n")),
        ["HD"]
    );
    for guard in guards {
        guard.release().expect("release");
    }
    for key in keys {
        let lock = Lock::new(key).cache(cache.clone());
        assert!(lock.holder().expect("holder").is_none(), "{key:?} released");
        lock.try_acquire()
            .unwrap_or_else(|e| panic!("{key:?}: {e}"))
            .release()
            .expect("release");
    }
}

#[test]
fn a_key_over_the_lock_limit_is_refused_before_the_store() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let error = Lock::new("k".repeat(MAX_KEY_LEN + 1))
        .cache(cache)
        .try_acquire()
        .expect_err("too long");
    assert!(!error.is_backend(), "{error:?}");
}
