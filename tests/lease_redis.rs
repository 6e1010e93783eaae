//! Lease lifecycle on a real redis-server: renewal, the lost signal, hold_at_least.
//!
//! As in `lease_memory.rs`, timing only bounds from the safe side.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use cachelock::redis::RedisCache;
use cachelock::Lock;
use cachelock_testkit::eventually;
use cachelock_testkit::RedisServer;

fn cache(server: &RedisServer) -> RedisCache {
    RedisCache::from_url(&server.url()).expect("valid url")
}

/// Whether another, independent client sees the key held.
fn held_elsewhere(server: &RedisServer, key: &str) -> bool {
    match Lock::new(key).cache(cache(server)).try_acquire() {
        Ok(_) => false,
        Err(e) if e.is_locked() => true,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn renewal_keeps_a_redis_lock_held_for_five_times_its_ttl() {
    let server = RedisServer::start();
    let ttl = Duration::from_millis(900);
    let guard = Lock::new("long-job")
        .cache(cache(&server))
        .ttl(ttl)
        .try_acquire()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < ttl * 5 {
        assert!(
            held_elsewhere(&server, "long-job"),
            "lost after {:?}",
            start.elapsed()
        );
        assert!(!guard.is_lost());
        std::thread::sleep(ttl / 4);
    }
    guard.release().unwrap();
    assert!(!held_elsewhere(&server, "long-job"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_redis_key_raises_the_lost_signal() {
    let server = RedisServer::start();
    let guard = Lock::new("taken-over")
        .cache(cache(&server))
        .ttl(Duration::from_millis(600))
        .try_acquire_async()
        .await
        .unwrap();
    // Another client overwrites the key, straight through a raw connection.
    let mut intruder = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let () = redis::cmd("SET")
        .arg("cachelock:taken-over")
        .arg("intruder")
        .arg("EX")
        .arg(60)
        .query(&mut intruder)
        .expect("SET");
    tokio::time::timeout(Duration::from_secs(30), guard.lost())
        .await
        .expect("the renewal notices the overwritten key");
    assert!(guard.release().await.unwrap_err().is_lost());
    let value: Option<String> = redis::cmd("GET")
        .arg("cachelock:taken-over")
        .query(&mut intruder)
        .expect("GET");
    assert_eq!(value.as_deref(), Some("intruder"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_paused_past_the_ttl_raises_the_lost_signal() {
    let server = RedisServer::start();
    let mut admin = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("admin connection");
    let guard = Lock::new("paused")
        .cache(cache(&server))
        .ttl(Duration::from_millis(600))
        .try_acquire_async()
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3_000)
        .arg("ALL")
        .query(&mut admin)
        .expect("CLIENT PAUSE");
    tokio::time::timeout(Duration::from_secs(30), guard.lost())
        .await
        .expect("renewals that cannot reach the server end in the lost signal");
    assert!(guard.is_lost());
    drop(guard);
}

#[test]
fn hold_at_least_keeps_the_redis_key_after_an_early_release() {
    let server = RedisServer::start();
    let at_least = Duration::from_secs(2);
    let start = Instant::now();
    let guard = Lock::new("five-minutely")
        .cache(cache(&server))
        .hold_at_least(at_least)
        .try_acquire()
        .unwrap();
    guard.release().unwrap();
    assert!(held_elsewhere(&server, "five-minutely"));
    let second = Lock::new("five-minutely")
        .cache(cache(&server))
        .acquire_timeout(Duration::from_secs(30))
        .unwrap();
    assert!(
        start.elapsed() >= at_least,
        "got in after {:?}",
        start.elapsed()
    );
    second.release().unwrap();
    eventually("the key is gone", || {
        !held_elsewhere(&server, "five-minutely")
    });
}
