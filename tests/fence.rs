//! Fencing tokens: strictly increasing across 1,000 claims from 8 contenders, across a
//! holder's expiry, and available to an `#[once]` body. On memory and on a real redis-server
//! (standalone and cluster).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cachelock::{once, Lock, LockStore, MemoryCache};

const CONTENDERS: usize = 8;
const CLAIMS: usize = 1_000;

/// 8 threads take turns on one key until 1,000 claims are done; each records its fence
/// while holding the lock, so the record is in hold order.
fn contended_fences<C: LockStore + Clone + 'static>(cache: C, key: &str) -> Vec<u64> {
    let seen = Mutex::new(Vec::with_capacity(CLAIMS));
    std::thread::scope(|s| {
        for _ in 0..CONTENDERS {
            s.spawn(|| loop {
                let lock = Lock::new(key)
                    .cache(cache.clone())
                    .ttl(Duration::from_secs(30));
                let guard = lock
                    .acquire_timeout(Duration::from_secs(60))
                    .expect("every contender gets its turn");
                {
                    let mut seen = seen.lock().unwrap();
                    if seen.len() == CLAIMS {
                        break;
                    }
                    seen.push(guard.fence());
                }
                guard.release().expect("owner releases");
            });
        }
    });
    seen.into_inner().unwrap()
}

fn assert_strictly_increasing(fences: &[u64]) {
    assert_eq!(fences.len(), CLAIMS);
    for pair in fences.windows(2) {
        assert!(pair[0] < pair[1], "fence {} then {}", pair[0], pair[1]);
    }
}

/// A holder without renewal expires; the next holder's fence is greater.
fn fence_grows_across_expiry<C: LockStore + Clone + 'static>(cache: C, key: &str) {
    let first = Lock::new(key)
        .cache(cache.clone())
        .ttl(Duration::from_millis(150))
        .renew(false)
        .try_acquire()
        .expect("free");
    let start = Instant::now();
    let second = loop {
        match Lock::new(key).cache(cache.clone()).try_acquire() {
            Ok(guard) => break guard,
            Err(e) if e.is_locked() => {
                assert!(start.elapsed() < Duration::from_secs(30), "never expired");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "not before the TTL"
    );
    assert!(first.is_lost());
    assert!(
        second.fence() > first.fence(),
        "{} after {}",
        second.fence(),
        first.fence()
    );
    assert!(first.release().unwrap_err().is_lost());
    second.release().unwrap();
}

#[test]
fn memory_fences_strictly_increase_across_contended_claims() {
    assert_strictly_increasing(&contended_fences(MemoryCache::new(), "fence-contended"));
}

#[test]
fn memory_fences_increase_across_expiry() {
    fence_grows_across_expiry(MemoryCache::new(), "fence-expiry");
}

#[once(key = "fenced-<id>", cache = cache, fence = token)]
fn fenced(cache: &MemoryCache, id: u32) -> Option<u64> {
    let _ = id;
    Some(token)
}

#[once(key = "fenced-async", cache = cache, fence = token)]
async fn fenced_async(cache: &MemoryCache) -> Option<u64> {
    tokio::task::yield_now().await;
    Some(token)
}

#[tokio::test]
async fn an_once_body_sees_its_fence() {
    let cache = MemoryCache::new();
    let a = fenced(&cache, 1).expect("runs");
    let b = fenced(&cache, 1).expect("runs");
    assert!(b > a);
    let c = fenced_async(&cache).await.expect("runs");
    let d = fenced_async(&cache).await.expect("runs");
    assert!(d > c);
}

#[cfg(feature = "redis")]
mod redis_server {
    use super::*;
    use cachelock::redis::{RedisCache, RedisClusterCache};
    use cachelock::Claim;
    use cachelock_testkit::{RedisCluster, RedisServer};

    /// A plain client connection to `server`, to read and write keys behind the cache.
    fn admin_connection(server: &RedisServer) -> redis::Connection {
        redis::Client::open(server.url())
            .and_then(|c| c.get_connection())
            .unwrap()
    }

    #[test]
    fn redis_fences_strictly_increase_across_contended_claims_from_separate_clients() {
        let server = RedisServer::start();
        // Each contender has its own client (its own pool): as far apart as processes.
        let seen = Mutex::new(Vec::with_capacity(CLAIMS));
        std::thread::scope(|s| {
            for _ in 0..CONTENDERS {
                let cache = RedisCache::from_url(&server.url()).expect("valid url");
                let seen = &seen;
                s.spawn(move || loop {
                    let guard = Lock::new("fence-contended")
                        .cache(cache.clone())
                        .ttl(Duration::from_secs(30))
                        .acquire_timeout(Duration::from_secs(60))
                        .expect("every contender gets its turn");
                    {
                        let mut seen = seen.lock().unwrap();
                        if seen.len() == CLAIMS {
                            break;
                        }
                        seen.push(guard.fence());
                    }
                    guard.release().expect("owner releases");
                });
            }
        });
        assert_strictly_increasing(&seen.into_inner().unwrap());
    }

    #[test]
    fn redis_fences_increase_across_expiry() {
        let server = RedisServer::start();
        fence_grows_across_expiry(
            RedisCache::from_url(&server.url()).expect("valid url"),
            "fence-expiry",
        );
    }

    #[test]
    fn redis_fences_survive_a_lost_counter() {
        // Even if the counters vanish (FLUSHALL), the next fence is above the last one: the
        // script's floor is the server time in microseconds.
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let lock = Lock::new("fence-flushed").cache(cache.clone());
        let before = lock.try_acquire().unwrap();
        let last = before.fence();
        before.release().unwrap();
        let mut admin = admin_connection(&server);
        let () = redis::cmd("FLUSHALL").query(&mut admin).unwrap();
        let after = lock.try_acquire().unwrap();
        assert!(after.fence() > last, "{} after {last}", after.fence());
    }

    #[test]
    fn a_counter_holding_garbage_fails_the_claim_and_writes_nothing() {
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let mut admin = admin_connection(&server);
        let _: i64 = redis::cmd("RPUSH")
            .arg("cachelock-fence")
            .arg("x")
            .query(&mut admin)
            .unwrap();
        let error = Lock::new("fence-garbage")
            .cache(cache.clone())
            .try_acquire()
            .unwrap_err();
        assert!(error.is_backend(), "{error}");
        let stored: Option<String> = redis::cmd("GET")
            .arg("cachelock:fence-garbage")
            .query(&mut admin)
            .unwrap();
        assert_eq!(stored, None);
        let store_admin = cache.admin().expect("redis has admin");
        assert_eq!(store_admin.holder("cachelock:fence-garbage").unwrap(), None);
    }

    #[test]
    fn a_counter_holding_a_string_that_is_no_number_fails_the_claim_and_is_put_back() {
        // The claim reads and writes the counter in one `SET .. GET`: a string that is no
        // number was overwritten by then, and must be put back as it was.
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let mut admin = admin_connection(&server);
        let () = redis::cmd("SET")
            .arg("cachelock-fence")
            .arg("not a number")
            .query(&mut admin)
            .unwrap();
        let error = Lock::new("fence-string")
            .cache(cache.clone())
            .try_acquire()
            .unwrap_err();
        assert!(error.is_backend(), "{error}");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .unwrap_or("")
                .contains("does not hold a number"),
            "{error}: {cause:?}"
        );
        let counter: Option<String> = redis::cmd("GET")
            .arg("cachelock-fence")
            .query(&mut admin)
            .unwrap();
        assert_eq!(counter.as_deref(), Some("not a number"));
        let stored: Option<String> = redis::cmd("GET")
            .arg("cachelock:fence-string")
            .query(&mut admin)
            .unwrap();
        assert_eq!(stored, None);
    }

    /// The server clock in µs, read as the claim script reads it.
    fn server_micros(admin: &mut redis::Connection) -> u64 {
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(admin).unwrap();
        secs * 1_000_000 + micros
    }

    fn set_counter(admin: &mut redis::Connection, value: &str) {
        let () = redis::cmd("SET")
            .arg("cachelock-fence")
            .arg(value)
            .query(admin)
            .unwrap();
    }

    #[test]
    fn a_counter_ahead_of_the_server_clock_is_counted_on_by_one() {
        // The script's common case compares the counter with the clock as digit strings; a
        // counter of as many digits and higher (a clock set back, or grants within one µs)
        // must be read as a number and bumped, and the next claim bumps it again.
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let mut admin = admin_connection(&server);
        let ahead = server_micros(&mut admin) + 3_600_000_000;
        set_counter(&mut admin, &ahead.to_string());
        let lock = Lock::new("fence-ahead").cache(cache.clone());
        let first = lock.try_acquire().unwrap();
        assert_eq!(first.fence(), ahead + 1);
        first.release().unwrap();
        let second = lock.try_acquire().unwrap();
        assert_eq!(second.fence(), ahead + 2);
    }

    #[test]
    fn a_counter_behind_the_server_clock_gives_the_clock() {
        // Shorter digit strings, and ones with leading zeros, are numerically below the
        // clock: the fence is the server time, not the counter + 1.
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let mut admin = admin_connection(&server);
        for (n, counter) in ["5", "0000000000000007", "-3"].into_iter().enumerate() {
            set_counter(&mut admin, counter);
            let before = server_micros(&mut admin);
            let guard = Lock::new(format!("fence-behind-{n}"))
                .cache(cache.clone())
                .try_acquire()
                .unwrap();
            let after = server_micros(&mut admin);
            assert!(
                (before..=after).contains(&guard.fence()),
                "counter {counter:?}: fence {} not between {before} and {after}",
                guard.fence()
            );
            let stored: String = redis::cmd("GET")
                .arg("cachelock-fence")
                .query(&mut admin)
                .unwrap();
            assert_eq!(stored, guard.fence().to_string());
        }
    }

    #[test]
    fn a_repeated_first_send_of_a_claim_is_refused_a_resent_one_wins() {
        // The first send of a fenced claim returns at once on a held key, even its own: only
        // the form sent after a dead connection checks for its own value (the
        // `tests/redis_lost_reply.rs` tests lose a real reply and see it win).
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let ttl = Duration::from_secs(30);
        let claim = Claim::new(ttl);
        assert!(cache.claim("resent", &claim).unwrap().is_some());
        assert!(cache.claim("resent", &claim).unwrap().is_none());
        let other = Claim::new(ttl);
        assert!(cache.claim("resent", &other).unwrap().is_none());
        assert!(!cache.release("resent", other.token(), None).unwrap());
        assert!(cache.release("resent", claim.token(), None).unwrap());
    }

    #[test]
    fn cluster_fences_increase_and_counters_stay_bounded() {
        let cluster = RedisCluster::start();
        let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
        // Keys with and without their own hash tags: the counter always shares their slot
        // (a CROSSSLOT error would fail the claim).
        for key in ["plain", "{tenant}:job", "a{", "x{}y", "{a}{b}"] {
            let lock = Lock::new(key).cache(cache.clone());
            let first = lock.try_acquire().expect("free").fence();
            let guard = lock.try_acquire().expect("free again after drop");
            assert!(guard.fence() > first, "{key}");
        }
        fence_grows_across_expiry(cache, "fence-expiry");
    }
}
