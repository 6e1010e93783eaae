//! Waiting on Redis: the release script publishes the key on `cachelock:released`, waiters
//! subscribe and try again at once (polling with backoff stays the fallback).
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use cachelock::redis::RedisCache;
use cachelock::Lock;
use cachelock_testkit::RedisServer;

#[test]
fn a_release_is_published_and_a_waiter_acquires_after_it() {
    let server = RedisServer::start();
    let mut admin = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap();
    let mut pubsub_con = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap();
    pubsub_con
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut pubsub = pubsub_con.as_pubsub();
    pubsub.subscribe("cachelock:released").unwrap();

    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let guard = Lock::new("wake")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let guard = Lock::new("wake")
                .cache(cache)
                .acquire_timeout(Duration::from_secs(30))
                .expect("acquired after the release");
            let acquired = Instant::now();
            guard.release().unwrap();
            acquired
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let released = Instant::now();
    guard.release().unwrap();
    let message = pubsub.get_message().expect("the release is published");
    assert_eq!(
        message.get_payload::<String>().unwrap(),
        "cachelock:wake",
        "the payload is the stored key"
    );
    assert!(waiter.join().unwrap() >= released, "not before the release");
    // Only the key goes out, never a token.
    let subscribers: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("cachelock:released")
        .query(&mut admin)
        .unwrap();
    assert!(subscribers[0].1 >= 1, "{subscribers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_waiter_acquires_after_the_release() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let guard = Lock::new("wake-async")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            Lock::new("wake-async")
                .cache(cache)
                .acquire_timeout_async(Duration::from_secs(30))
                .await
                .expect("acquired after the release")
                .release()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap();
}
