//! Faults against a real redis-server: not running, killed while a lock is held, restarted
//! on the same port, paused (slow), and garbage at a lock's key.
//!
//! No timing is asserted tightly: a wait is only bounded by ten times the configured
//! timeouts, so a loaded machine cannot make these tests flaky.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use cachelock::redis::RedisCache;
use cachelock::{Claim, Error, Lock, LockStore};
use cachelock_testkit::{free_port, RedisServer};

const CONNECT: Duration = Duration::from_millis(300);
const RESPONSE: Duration = Duration::from_millis(300);
/// Generous: ten times what the settings allow for one operation.
const BOUND: Duration = Duration::from_millis(10 * (300 + 300));

fn cache(url: &str) -> RedisCache {
    RedisCache::builder(url)
        .connect_timeout(CONNECT)
        .response_timeout(RESPONSE)
        .build()
        .expect("valid settings")
}

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("admin connection")
}

fn assert_backend_error<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) -> Error {
    let error = result.expect_err(what);
    assert!(
        error.is_backend(),
        "{what}: expected a backend error, got {error:?}"
    );
    error
}

/// Retries until the cache answers again (after a pause ends), for at most 20 s.
fn until_it_answers(lock: &Lock<RedisCache>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match lock.try_acquire() {
            Ok(guard) => return guard.release().expect("released"),
            Err(error) if Instant::now() < deadline => {
                assert!(error.is_backend(), "{error}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("the cache did not recover: {error}"),
        }
    }
}

// --- server not running --------------------------------------------------------------------

#[test]
fn no_server_gives_a_backend_error_quickly_sync() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let lock = Lock::new("nobody-home").cache(cache(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire(), "acquire without a server");
    assert_backend_error(
        lock.acquire_timeout(Duration::from_secs(30)),
        "a backend error ends the wait at once",
    );
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_gives_a_backend_error_quickly_async() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let lock = Lock::new("nobody-home").cache(cache(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire_async().await, "acquire without a server");
    assert_backend_error(lock.try_acquire_async().await, "and again");
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

// --- server killed while a lock is held ---------------------------------------------------

#[test]
fn server_killed_while_held_sync() {
    let mut server = RedisServer::start();
    let cache = cache(&server.url());
    let released_explicitly = Lock::new("killed")
        .cache(cache.clone())
        .try_acquire()
        .expect("free");
    let dropped = Lock::new("killed-2")
        .cache(cache.clone())
        .try_acquire()
        .expect("free");
    server.stop();

    let started = Instant::now();
    assert_backend_error(released_explicitly.release(), "release without a server");
    drop(dropped); // logs the failure; must not hang or panic
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_while_held_async() {
    let mut server = RedisServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("killed").cache(cache.clone());
    let released_explicitly = lock.try_acquire_async().await.expect("free");
    let extended = Lock::new("killed-2")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .expect("free");
    server.stop();

    let started = Instant::now();
    assert_backend_error(extended.extend().await, "extend without a server");
    drop(extended); // hands the release to a background task: returns at once
    assert_backend_error(
        released_explicitly.release().await,
        "release without a server",
    );
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

// --- server restarted on the same port ----------------------------------------------------

#[test]
fn restarted_server_is_used_by_the_same_cache_sync() {
    let mut server = RedisServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("restart").cache(cache.clone());
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("released");
    assert!(
        cache.idle_connections() > 0,
        "a pooled connection to go stale"
    );

    server.restart();
    lock.try_acquire()
        .expect("the next acquire after a restart succeeds")
        .release()
        .expect("released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_server_is_used_by_the_same_cache_async() {
    let mut server = RedisServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("restart").cache(cache.clone());
    let guard = lock.try_acquire_async().await.expect("free");
    guard.release().await.expect("released");

    server.restart();
    let guard = lock
        .try_acquire_async()
        .await
        .expect("the next acquire after a restart succeeds");
    guard.release().await.expect("released");
}

#[test]
fn a_lock_held_across_a_crash_is_free_on_the_new_server() {
    let mut server = RedisServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("crash").cache(cache.clone());
    let guard = lock.try_acquire().expect("free");
    server.restart(); // the new server has no data (no persistence)
                      // The holder still believes it holds the key: the handle it claimed through refuses the
                      // key to its other claims (its gate), until the holder learns the lock is gone.
    assert!(lock.try_acquire().expect_err("held here").is_locked());
    // Another process (another handle) finds the key free on the new server.
    let other = Lock::new("crash").cache(self::cache(&server.url()));
    let again = other.try_acquire().expect("free on the new server");
    assert!(guard.release().expect_err("the old lock is gone").is_lost());
    again.release().expect("released");
    let mine = lock
        .try_acquire()
        .expect("the handle asks the server again");
    mine.release().expect("released");
}

#[test]
fn a_holder_that_finds_its_lock_gone_opens_its_handle_again() {
    let mut server = RedisServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("crash-extend").cache(cache.clone());
    let guard = lock.try_acquire().expect("free");
    server.restart();
    assert!(lock.try_acquire().expect_err("held here").is_locked());
    // The renewal (here by hand) finds the key gone: from then on the handle asks the server.
    assert!(guard.extend().expect_err("gone").is_lost());
    let again = lock.try_acquire().expect("free on the new server");
    again.release().expect("released");
}

// --- server slow ---------------------------------------------------------------------------

#[test]
fn paused_server_gives_a_timeout_error_sync() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = cache(&server.url());
    let lock = Lock::new("paused").cache(cache.clone());
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("released"); // warm connection

    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(5_000)
        .arg("ALL")
        .query(&mut admin)
        .expect("CLIENT PAUSE");
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire while paused");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    // A plain read (a holder lookup, bounded by the response timeout alone) times out too.
    let holder = cache
        .admin()
        .expect("Redis has admin operations")
        .holder("x");
    let error = assert_backend_error(holder.map_err(|e| Error::backend("x", e)), "holder");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

    until_it_answers(&lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_gives_a_timeout_error_async() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = cache(&server.url());
    let lock = Lock::new("paused").cache(cache.clone());
    let guard = lock.try_acquire_async().await.expect("free");
    guard.release().await.expect("released");

    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(5_000)
        .arg("ALL")
        .query(&mut admin)
        .expect("CLIENT PAUSE");
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire_async().await, "acquire while paused");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

#[test]
fn claim_never_waits_longer_than_the_ttl() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = RedisCache::builder(&server.url())
        .response_timeout(Duration::from_secs(30))
        .build()
        .expect("valid settings");
    let lock = Lock::new("short-ttl")
        .cache(cache.clone())
        .ttl(Duration::from_millis(200));
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("released");

    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(5_000)
        .arg("ALL")
        .query(&mut admin)
        .expect("CLIENT PAUSE");
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire while paused");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    // Bounded by the 200 ms TTL, not the 30 s response timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

// --- garbage at the key --------------------------------------------------------------------

fn put_garbage(admin: &mut redis::Connection) {
    let _: () = redis::cmd("SET")
        .arg("cachelock:garbage-string")
        .arg("not-a-token")
        .query(admin)
        .expect("SET");
    let _: i64 = redis::cmd("RPUSH")
        .arg("cachelock:garbage-list")
        .arg("a")
        .arg("b")
        .query(admin)
        .expect("RPUSH");
}

fn assert_garbage_untouched(admin: &mut redis::Connection) {
    let value: String = redis::cmd("GET")
        .arg("cachelock:garbage-string")
        .query(admin)
        .expect("GET");
    assert_eq!(value, "not-a-token");
    let len: i64 = redis::cmd("LLEN")
        .arg("cachelock:garbage-list")
        .query(admin)
        .expect("LLEN");
    assert_eq!(len, 2);
}

#[test]
fn garbage_at_the_key_is_locked_and_never_touched_sync() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = cache(&server.url());
    put_garbage(&mut admin);
    for key in ["garbage-string", "garbage-list"] {
        let lock = Lock::new(key).cache(cache.clone());
        assert!(lock.try_acquire().expect_err(key).is_locked(), "{key}");
        let stored = lock.full_key();
        let claim = Claim::new(Duration::from_secs(5));
        let token = claim.token();
        assert!(
            !cache
                .release(&stored, token, None)
                .expect("release refuses"),
            "{key}"
        );
        assert!(
            !cache
                .extend(&stored, token, Duration::from_secs(5), None)
                .expect("extend refuses"),
            "{key}"
        );
        assert!(
            cache
                .claim(&stored, &claim)
                .expect("claim refuses")
                .is_none(),
            "{key}"
        );
        let unfenced = Claim::new(Duration::from_secs(5)).with_fencing(false);
        assert!(
            cache
                .claim(&stored, &unfenced)
                .expect("unfenced claim refuses")
                .is_none(),
            "{key}"
        );
    }
    // A holder lookup of a list (`GET` answers WRONGTYPE inside the script) is no lock and
    // no panic: it answers "nobody".
    let admin_ops = cache.admin().expect("Redis has admin operations");
    assert_eq!(
        admin_ops.holder("cachelock:garbage-list").expect("answers"),
        None
    );
    assert_garbage_untouched(&mut admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_at_the_key_is_locked_and_never_touched_async() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = cache(&server.url());
    put_garbage(&mut admin);
    for key in ["garbage-string", "garbage-list"] {
        let lock = Lock::new(key).cache(cache.clone());
        assert!(lock.try_acquire_async().await.expect_err(key).is_locked());
        let stored = lock.full_key();
        let claim = Claim::new(Duration::from_secs(5));
        let token = claim.token();
        assert!(!cache
            .release_async(&stored, token, None)
            .await
            .expect("refuses"));
        assert!(!cache
            .extend_async(&stored, token, Duration::from_secs(5), None)
            .await
            .expect("refuses"));
        assert!(cache
            .claim_async(&stored, &claim)
            .await
            .expect("refuses")
            .is_none());
    }
    let admin_ops = cache.admin().expect("Redis has admin operations");
    assert_eq!(
        admin_ops
            .holder_async("cachelock:garbage-list")
            .await
            .expect("answers"),
        None
    );
    assert_garbage_untouched(&mut admin);
}

#[test]
fn a_held_key_overwritten_by_garbage_is_reported_lost_and_left_alone() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = cache(&server.url());
    let string_guard = Lock::new("garbage-string")
        .cache(cache.clone())
        .try_acquire()
        .expect("free");
    let list_guard = Lock::new("garbage-list")
        .cache(cache.clone())
        .try_acquire()
        .expect("free");
    let _: i64 = redis::cmd("DEL")
        .arg("cachelock:garbage-list")
        .query(&mut admin)
        .expect("DEL");
    put_garbage(&mut admin);
    assert!(string_guard.extend().expect_err("not ours").is_lost());
    assert!(list_guard.extend().expect_err("not ours").is_lost());
    assert!(string_guard.release().expect_err("not ours").is_lost());
    assert!(list_guard.release().expect_err("not ours").is_lost());
    assert_garbage_untouched(&mut admin);
}

#[test]
fn out_of_range_input_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    let cache = cache(&server.url());
    // Past what Redis accepts as an expiry: Redis answers with an error, for the claim
    // script and for the plain `SET NX PX` of an unfenced claim alike.
    assert!(cache.claim("huge-ttl", &Claim::new(Duration::MAX)).is_err());
    assert!(cache
        .claim("huge-ttl", &Claim::new(Duration::MAX).with_fencing(false))
        .is_err());
    // A zero TTL rounds up to 1 ms (never "no TTL"); the reply may even time out, as the
    // claim must not wait past the TTL: either way, no panic.
    let _ = cache.claim("zero-ttl", &Claim::new(Duration::ZERO));
    assert!(RedisCache::builder(&server.url())
        .response_timeout(Duration::ZERO)
        .build()
        .is_err());
    assert!(RedisCache::from_url("redis://127.0.0.1:notaport").is_err());
    assert!(RedisCache::from_url("").is_err());
    assert!(RedisCache::from_url("http://127.0.0.1").is_err());
}
