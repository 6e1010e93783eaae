//! Faults against a real memcached: not running, killed while a lock is held, restarted on
//! the same port, paused (a hung server), a reply lost after the server ran a claim, another
//! value at a lock's key, and servers the store cannot use (`-C`, authentication wanted).
//!
//! No timing is asserted tightly: a wait is only bounded by ten times the configured
//! timeouts, so a loaded machine cannot make these tests flaky.
#![cfg(feature = "memcached")]

use std::time::{Duration, Instant};

use cachelock::memcached::MemcachedCache;
use cachelock::{Claim, Error, Lock, LockStore};
use cachelock_testkit::memcached::MemcachedServer;
use cachelock_testkit::{free_port, LostReplyProxy};

const CONNECT: Duration = Duration::from_millis(300);
const RESPONSE: Duration = Duration::from_millis(300);
/// Generous: ten times what the settings allow for one operation.
const BOUND: Duration = Duration::from_millis(10 * (300 + 300));

fn cache(url: &str) -> MemcachedCache {
    MemcachedCache::builder(url)
        .connect_timeout(CONNECT)
        .response_timeout(RESPONSE)
        .build()
        .expect("valid settings")
}

fn assert_backend_error<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) -> Error {
    let error = result.expect_err(what);
    assert!(
        error.is_backend(),
        "{what}: expected a backend error, got {error:?}"
    );
    error
}

/// An error's message and those of its sources.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        text.push_str(&format!(": {source}"));
        next = source.source();
    }
    text
}

/// Retries until the store answers again (after a pause ends), for at most 20 s. A claim
/// sent while the server was paused runs when it resumes, and its give-back ran (and failed)
/// during the pause: it holds the key until its TTL, so `Locked` is waited out too.
fn until_it_answers(lock: &Lock<MemcachedCache>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match lock.try_acquire() {
            Ok(guard) => return guard.release().expect("released"),
            Err(error) if Instant::now() < deadline => {
                assert!(error.is_backend() || error.is_locked(), "{error}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("the store did not recover: {error}"),
        }
    }
}

// --- server not running --------------------------------------------------------------------

#[test]
fn no_server_gives_a_backend_error_quickly_sync() {
    let url = format!("memcache://127.0.0.1:{}", free_port());
    let lock = Lock::new("nobody-home").cache(cache(&url));
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire without a server");
    assert!(chain(&error).contains("127.0.0.1"), "{error:?}");
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
    let url = format!("memcache://127.0.0.1:{}", free_port());
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
    let mut server = MemcachedServer::start();
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
    let mut server = MemcachedServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("killed").cache(cache.clone());
    let guard = lock.try_acquire_async().await.expect("free");
    let dropped = Lock::new("killed-2")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .expect("free");
    server.stop();

    let started = Instant::now();
    assert_backend_error(guard.release().await, "release without a server");
    drop(dropped); // released in the background; must not hang or panic
    assert_backend_error(lock.try_acquire_async().await, "acquire without a server");
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

// --- server restarted ---------------------------------------------------------------------

#[test]
fn the_same_store_works_after_a_restart_sync() {
    let mut server = MemcachedServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("restarted").cache(cache.clone());
    let held = lock.try_acquire().expect("free");
    assert!(
        cache.idle_connections() > 0,
        "a pooled connection to find dead"
    );
    server.restart();

    // The pooled connection is dead: replaced, and the claim sent once more.
    let again = lock
        .try_acquire()
        .expect("the first operation after a restart works");
    again.release().expect("release");
    // The old holder's lock died with the server: its release deletes nothing.
    assert!(held.release().unwrap_err().is_lost());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_works_after_a_restart_async() {
    let mut server = MemcachedServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("restarted").cache(cache.clone());
    let held = lock.try_acquire_async().await.expect("free");
    server.restart();

    let again = lock
        .try_acquire_async()
        .await
        .expect("the first operation after a restart works");
    again.release().await.expect("release");
    assert!(held.release().await.unwrap_err().is_lost());
}

#[test]
fn a_remembered_cas_is_not_compared_on_a_restarted_server() {
    let mut server = MemcachedServer::start();
    let cache = cache(&server.url());
    let other = MemcachedCache::from_url(&server.url()).expect("valid url");
    let mine = Claim::new(Duration::from_secs(30));
    assert!(cache.claim("k", &mine).expect("claim").is_some());
    server.restart();
    // On the fresh server, another store's claim can get the very CAS `cache` remembers
    // (both servers count from 1): only the run marker tells them apart.
    let theirs = Claim::new(Duration::from_secs(30));
    assert!(other.claim("k", &theirs).expect("claim").is_some());
    assert!(
        !cache.release("k", mine.token(), None).expect("release"),
        "the old owner's release must not delete the new owner's lock"
    );
    assert!(!cache
        .extend("k", mine.token(), Duration::from_secs(60), None)
        .expect("extend"));
    assert!(other.release("k", theirs.token(), None).expect("release"));
}

#[test]
fn fences_increase_across_a_restart_in_a_later_second() {
    let mut server = MemcachedServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("fenced").cache(cache.clone());
    let guard = lock.try_acquire().expect("free");
    let before = guard.fence();
    guard.release().expect("release");
    // The guarantee is for a restart in a later second than the old server's start.
    std::thread::sleep(Duration::from_millis(1_100));
    server.restart();
    let guard = lock.try_acquire().expect("free after the restart");
    assert!(
        guard.fence() > before,
        "fence {} after a restart is not above {before}",
        guard.fence()
    );
    guard.release().expect("release");
}

// --- server paused ------------------------------------------------------------------------

#[test]
fn paused_server_gives_a_timeout_error_sync() {
    let server = MemcachedServer::start();
    let cache = cache(&server.url());
    // A short TTL: the claims sent during the pause land when it ends.
    let lock = Lock::new("paused")
        .cache(cache.clone())
        .ttl(Duration::from_secs(1));
    until_it_answers(&lock); // a pooled connection, and one opened while paused below
    server.pause();

    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire while paused (pooled)");
    assert!(error.is_timeout(), "{error:?}");
    let error = assert_backend_error(lock.try_acquire(), "acquire while paused (new connection)");
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
    server.resume();
    until_it_answers(&lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_gives_a_timeout_error_async() {
    let server = MemcachedServer::start();
    let cache = cache(&server.url());
    // A short TTL: the claims sent during the pause land when it ends.
    let lock = Lock::new("paused")
        .cache(cache.clone())
        .ttl(Duration::from_secs(1));
    lock.try_acquire_async()
        .await
        .expect("free")
        .release()
        .await
        .expect("release");
    server.pause();

    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire_async().await, "acquire while paused");
    assert!(error.is_timeout(), "{error:?}");
    let error = assert_backend_error(lock.try_acquire_async().await, "and on a new connection");
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
    server.resume();
    tokio::task::spawn_blocking(move || until_it_answers(&lock))
        .await
        .expect("recovers");
}

// --- a lost reply -------------------------------------------------------------------------

#[test]
fn a_claim_whose_reply_was_lost_is_won_when_sent_again() {
    let server = MemcachedServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let cache = cache(&format!("memcache://127.0.0.1:{}", proxy.port()));
    // A pooled connection, so that the dead one is found reused and the claim resent.
    Lock::new("warm-up")
        .cache(cache.clone())
        .try_acquire()
        .expect("free")
        .release()
        .expect("release");
    proxy.arm("lost-claim");
    let claim = Claim::new(Duration::from_secs(30));
    let won = cache
        .claim("lost-claim", &claim)
        .expect("the resent claim answers");
    assert_eq!(proxy.lost(), 1, "the first send ran, its reply lost");
    assert!(
        won.is_some(),
        "the key holding this claim's token is its win"
    );
    let other = Claim::new(Duration::from_secs(30));
    assert!(cache.claim("lost-claim", &other).expect("claim").is_none());
    assert!(cache
        .release("lost-claim", claim.token(), None)
        .expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_reply_was_lost_is_won_when_sent_again_async() {
    let server = MemcachedServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let cache = cache(&format!("memcache://127.0.0.1:{}", proxy.port()));
    let warm = Claim::new(Duration::from_secs(30));
    assert!(cache
        .claim_async("warm-up", &warm)
        .await
        .expect("claim")
        .is_some());
    proxy.arm("lost-claim");
    let claim = Claim::new(Duration::from_secs(30));
    let won = cache
        .claim_async("lost-claim", &claim)
        .await
        .expect("the resent claim answers");
    assert_eq!(proxy.lost(), 1);
    assert!(
        won.is_some(),
        "the key holding this claim's token is its win"
    );
    assert!(cache
        .release_async("lost-claim", claim.token(), None)
        .await
        .expect("release"));
}

// --- another value at the key; servers it cannot use ----------------------------------------

#[test]
fn another_value_at_the_key_is_neither_claimed_nor_touched() {
    let server = MemcachedServer::start();
    let cache = cache(&server.url());
    let lock = Lock::new("foreign").cache(cache.clone());
    let key = lock.full_key();
    assert_eq!(
        server.command(&format!("ms {key} 8 T60\r\nnot-ours\r\n")),
        ["HD"]
    );
    assert!(lock.try_acquire().unwrap_err().is_locked());
    let claim = Claim::new(Duration::from_secs(30));
    assert!(!cache.release(&key, claim.token(), None).expect("release"));
    assert!(!cache
        .extend(&key, claim.token(), Duration::from_secs(90), None)
        .expect("extend"));
    assert_eq!(server.command(&format!("mg {key} v\r\n"))[1], "not-ours");
}

#[test]
fn a_server_without_cas_is_refused_with_a_clear_error() {
    let server = MemcachedServer::start_with_args(&["-C"]);
    let lock = Lock::new("no-cas").cache(cache(&server.url()));
    let error = assert_backend_error(lock.try_acquire(), "acquire on a server without CAS");
    assert!(chain(&error).contains("-C"), "{error:?}");
}

#[test]
fn a_server_that_wants_authentication_says_so() {
    let server = MemcachedServer::start_with_auth("locks", "Pa55word");
    let url = format!("memcache://127.0.0.1:{}", server.port());
    let lock = Lock::new("auth").cache(cache(&url));
    let error = assert_backend_error(lock.try_acquire(), "acquire without credentials");
    assert!(
        chain(&error).contains("requires authentication"),
        "{error:?}"
    );
}
