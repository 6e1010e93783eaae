//! The conformance suite on a real memcached (sync, async, boxed), and the store through
//! `Lock` and its guards: sync guards dropped on a runtime thread, the URL form, the key
//! prefix, admin operations, no tree locks.
//!
//! memcached counts TTLs in whole seconds and the store adds one for its clock's tick, so a
//! short lock lives up to 2 s past its TTL: the store says so (`min_ttl`), and the suites'
//! expiry checks wait that long.
#![cfg(feature = "memcached")]

use std::time::Duration;

use cachelock::memcached::MemcachedCache;
use cachelock::testing::{conformance, conformance_async};
use cachelock::{store_from_url, Claim, Lock, LockStore};
use cachelock_testkit::memcached::MemcachedServer;

/// An error's message and those of its sources.
fn chain(error: &cachelock::Error) -> String {
    let mut text = error.to_string();
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        text.push_str(&format!(": {source}"));
        next = source.source();
    }
    text
}

#[test]
fn sync_memcached_passes_the_conformance_suite() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    conformance(cache).expect("sync memcached conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_memcached_passes_the_conformance_suite() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    conformance_async(cache)
        .await
        .expect("async memcached conforms");
}

#[tokio::test(flavor = "current_thread")]
async fn async_memcached_conforms_on_a_current_thread_runtime() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    conformance_async(cache)
        .await
        .expect("async memcached conforms");
}

#[test]
fn a_store_from_the_url_works() {
    let server = MemcachedServer::start();
    for url in [
        server.url(),
        server.url().replace("memcache://", "memcached://"),
    ] {
        let store = store_from_url(&url).expect("memcache URLs open a store");
        let claim = Claim::new(Duration::from_secs(30));
        let won = store.claim("from-url", &claim).expect("claim");
        assert!(won.is_some(), "{url}: a free key is granted");
        assert!(store
            .release("from-url", claim.token(), None)
            .expect("release"));
    }
    // The suites run on the same type above; here, the holder lookup through the Arc.
    let store = store_from_url(&server.url()).expect("opens");
    let claim = Claim::new(Duration::from_secs(30)).with_label("via url");
    assert!(store.claim("from-url", &claim).expect("claim").is_some());
    let admin = store.admin().expect("memcached has admin operations");
    let (value, _) = admin.holder("from-url").expect("holder").expect("held");
    assert_eq!(value, claim.owner_value().as_str());
}

#[test]
fn a_key_prefix_namespaces_every_key() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::builder(&server.url())
        .key_prefix("app1:")
        .build()
        .expect("valid settings");
    let claim = Claim::new(Duration::from_secs(30));
    assert!(cache.claim("k", &claim).expect("claim").is_some(), "free");
    // Straight on the server: the key is stored under the prefix, and only there.
    let stored = server.command("mg app1:k v\r\n");
    assert_eq!(
        stored.get(1).map(String::as_str),
        Some(claim.owner_value().as_str())
    );
    assert_eq!(server.command("mg k v\r\n"), ["EN"]);
    // The run marker carries the prefix too.
    assert_eq!(server.command("mg app1:cachelock-run\r\n"), ["HD"]);
    // An unprefixed store sees it under the full key; the prefixed one under its own.
    let unprefixed = MemcachedCache::from_url(&server.url()).expect("valid url");
    let admin = unprefixed.admin().expect("memcached has admin operations");
    assert_eq!(
        admin
            .holder("app1:k")
            .expect("holder")
            .map(|(value, _)| value),
        Some(claim.owner_value().as_str().to_owned())
    );
    assert_eq!(admin.holder("k").expect("holder"), None);
    assert!(cache.release("k", claim.token(), None).expect("release"));
    assert_eq!(server.command("mg app1:k v\r\n"), ["EN"]);
}

#[test]
fn lock_and_guard_work_over_memcached_sync() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("report").cache(cache.clone()).label("nightly");
    let guard = lock.try_acquire().expect("free");
    assert!(guard.fence() > 0);
    let holder = lock.holder().expect("holder lookup").expect("held");
    assert_eq!(holder.label.as_deref(), Some("nightly"));
    assert_eq!(holder.pid, Some(std::process::id()));
    assert!(holder.ttl.is_some_and(|ttl| ttl <= cachelock::DEFAULT_TTL));
    assert!(lock.try_acquire().unwrap_err().is_locked());
    guard
        .extend_for(Duration::from_secs(120))
        .expect("extend by the owner");
    let first = guard.fence();
    guard.release().expect("release");
    let again = lock.try_acquire().expect("free again");
    assert!(again.fence() > first, "fences increase");
    drop(again);
    assert!(
        lock.holder().expect("holder lookup").is_none(),
        "a dropped guard releases"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_guard_work_over_memcached_async() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("report").cache(cache.clone());
    let guard = lock.try_acquire_async().await.expect("free");
    assert!(lock.try_acquire_async().await.unwrap_err().is_locked());
    assert!(lock.holder_async().await.expect("holder").is_some());
    let first = guard.fence();
    guard.release().await.expect("release");
    let again = lock.try_acquire_async().await.expect("free again");
    assert!(again.fence() > first);
    drop(again); // released in the background
    cachelock_testkit::eventually("the dropped guard's release", || {
        lock.holder().expect("holder lookup").is_none()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_guard_used_and_dropped_on_a_runtime_thread_does_not_panic() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("sync-in-async").cache(cache.clone());
    // The sync path blocks this runtime thread (as any sync call does), never panics.
    let guard = lock.try_acquire().expect("free");
    assert!(lock.try_acquire_async().await.unwrap_err().is_locked());
    drop(guard);
    assert!(lock.holder_async().await.expect("holder").is_none());
    let guard = lock.try_acquire_async().await.expect("free again");
    guard.release().await.expect("release");
}

#[test]
fn listing_is_refused_with_a_clear_error_and_force_release_works() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("listed").cache(cache.clone());
    let guard = lock.try_acquire().expect("free");
    let error = cachelock::held_locks(&cache, "").expect_err("memcached cannot list its keys");
    assert!(chain(&error).contains("cannot list"), "{error:?}");
    lock.force_release().expect("force-release");
    assert!(lock.holder().expect("holder").is_none());
    let next = lock.try_acquire().expect("free after a force-release");
    assert!(guard.release().unwrap_err().is_lost());
    next.release().expect("release");
}

#[test]
fn tree_locks_are_refused() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    assert!(cache.trees().is_none());
    let error = cachelock::tree::TreeLock::new("/space/a/b")
        .cache(cache)
        .try_acquire()
        .expect_err("no tree locks on memcached");
    assert!(
        chain(&error).contains("does not support tree locks"),
        "{error:?}"
    );
}

#[test]
fn one_store_value_serves_several_runtimes_in_turn() {
    let server = MemcachedServer::start();
    let cache = MemcachedCache::from_url(&server.url()).expect("valid url");
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let lock = Lock::new("runtimes").cache(cache.clone());
            let guard = lock.try_acquire_async().await.expect("free");
            guard.release().await.expect("release");
        });
        drop(runtime);
        // And the sync path in between.
        let guard = Lock::new("runtimes").cache(cache.clone()).try_acquire();
        guard.expect("free").release().expect("release");
        let _ = round;
    }
}
