//! The conformance suite on a real redis-server: sync methods, async methods, and both
//! through `Lock` and its guards.
#![cfg(feature = "redis")]

use std::time::Duration;

use cachelock::redis::RedisCache;
use cachelock::testing::{conformance, conformance_async};
use cachelock::{Claim, Lock, LockStore};
use cachelock_testkit::RedisServer;

#[test]
fn sync_redis_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    conformance(cache).expect("sync Redis conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_redis_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    conformance_async(cache)
        .await
        .expect("async Redis conforms");
}

#[tokio::test(flavor = "current_thread")]
async fn async_redis_conforms_on_a_current_thread_runtime() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    conformance_async(cache)
        .await
        .expect("async Redis conforms");
}

#[test]
fn a_cache_from_a_client_conforms() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).expect("valid url");
    conformance(RedisCache::from_client(client)).expect("conforms");
}

#[test]
fn a_cache_prefix_namespaces_every_key() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url())
        .key_prefix("app1:")
        .build()
        .expect("valid settings");
    conformance(cache.clone()).expect("conforms with a prefix");
    let claim = Claim::new(Duration::from_secs(30));
    assert!(cache.claim("k", &claim).expect("claim").is_some(), "free");
    // Straight on the server: the key is stored under the prefix, and only there.
    let mut raw = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let get = |raw: &mut redis::Connection, key: &str| -> Option<String> {
        redis::cmd("GET").arg(key).query(raw).expect("GET")
    };
    assert_eq!(
        get(&mut raw, "app1:k"),
        Some(claim.owner_value().as_str().to_owned())
    );
    assert_eq!(get(&mut raw, "k"), None);
    // An unprefixed cache sees it under the full key; the prefixed one under its own.
    let unprefixed = RedisCache::from_url(&server.url()).expect("valid url");
    let admin = unprefixed.admin().expect("Redis has admin operations");
    assert_eq!(
        admin
            .holder("app1:k")
            .expect("holder")
            .map(|(value, _)| value),
        Some(claim.owner_value().as_str().to_owned())
    );
    assert_eq!(admin.holder("k").expect("holder"), None);
    assert!(cache.release("k", claim.token(), None).expect("release"));
    assert_eq!(get(&mut raw, "app1:k"), None);
}

#[test]
fn lock_and_guard_work_over_redis_sync() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("sync-guard")
        .cache(cache.clone())
        .ttl(Duration::from_secs(10));
    let guard = lock.try_acquire().expect("free");
    assert!(lock.try_acquire().expect_err("held").is_locked());
    guard.extend().expect("owner extends");
    drop(guard);
    let guard = lock.try_acquire().expect("free again after drop");
    guard.release().expect("owner releases");
    assert_eq!(lock.run(|| 7).expect("run"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_guard_work_over_redis_async() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("async-guard")
        .cache(cache.clone())
        .ttl(Duration::from_secs(10));
    let guard = lock.try_acquire_async().await.expect("free");
    assert!(lock
        .try_acquire_async()
        .await
        .expect_err("held")
        .is_locked());
    guard.extend().await.expect("owner extends");
    guard.release().await.expect("owner releases");

    // Dropped without release: released in the background, without blocking this thread.
    let guard = lock.try_acquire_async().await.expect("free");
    drop(guard);
    let guard = lock
        .acquire_timeout_async(Duration::from_secs(5))
        .await
        .expect("freed by the background release");
    guard.release().await.expect("released");
    assert_eq!(lock.run_async(async { 7 }).await.expect("run"), 7);
}

#[test]
fn an_async_guard_dropped_outside_a_runtime_is_released_in_the_background() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("detached").cache(cache.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let guard = runtime.block_on(lock.try_acquire_async()).expect("free");
    drop(runtime);
    drop(guard); // no runtime here: released on a background thread
    lock.acquire_timeout(Duration::from_secs(5))
        .expect("freed by the background release")
        .release()
        .expect("released");
}

#[test]
fn one_cache_value_serves_several_runtimes_in_turn() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let guard = Lock::new("per-runtime")
                .cache(cache.clone())
                .try_acquire_async()
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            guard.release().await.expect("released");
        });
    }
}

/// The handle's gate answers its own claims without the server (`cachelock::redis`, "Claims
/// inside one process"), so the suite above, run on one handle, no longer sends every
/// contended claim to Redis. Here every contender is its own handle, as separate processes
/// are: each claim reaches the server, and the server alone picks the one winner.
#[test]
fn separate_handles_have_exactly_one_winner_on_the_server() {
    let server = RedisServer::start();
    let handles: Vec<RedisCache> = (0..8)
        .map(|_| RedisCache::from_url(&server.url()).expect("valid url"))
        .collect();
    for round in 0..50 {
        let key = format!("one-winner-{round}");
        let barrier = std::sync::Barrier::new(handles.len());
        let winners: Vec<Claim> = std::thread::scope(|scope| {
            let contenders: Vec<_> = handles
                .iter()
                .map(|handle| {
                    let (key, barrier) = (&key, &barrier);
                    scope.spawn(move || {
                        let claim = Claim::new(Duration::from_secs(30));
                        barrier.wait();
                        let won = handle.claim(key, &claim).expect("claim");
                        won.map(|_| claim)
                    })
                })
                .collect();
            contenders
                .into_iter()
                .filter_map(|c| c.join().expect("contender"))
                .collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: one winner");
        let winner = &winners[0];
        for handle in &handles {
            let late = Claim::new(Duration::from_secs(30));
            assert!(handle.claim(&key, &late).expect("claim").is_none(), "held");
        }
        let released = handles
            .iter()
            .filter(|h| h.release(&key, winner.token(), None).expect("release"))
            .count();
        assert_eq!(released, 1, "released by the winner's token, once");
    }
}
