//! Waiting on etcd: a waiter watches the key for a delete, from the revision its refused
//! claim saw, so it wakes on a release (or an expiry) without polling, and a release that
//! happened before the watch started is not missed.
//!
//! Each wait is given a pause of a minute: it returning well before that shows it was woken,
//! not timed out (a bound from the safe side only).
#![cfg(feature = "etcd")]

use std::time::{Duration, Instant};

use cachelock::etcd::EtcdStore;
use cachelock::tree::TreeScope;
use cachelock::{Claim, Lock, LockStore};
use cachelock_testkit::etcd::EtcdServer;

const PAUSE: Duration = Duration::from_secs(60);
const WOKEN: Duration = Duration::from_secs(30);

fn long() -> Claim<'static> {
    Claim::new(Duration::from_secs(60))
}

#[test]
fn a_waiter_wakes_on_the_release() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).unwrap();
    let (a, b) = (long(), long());
    assert!(store.claim("wake", &a).unwrap().is_some());
    assert!(store.claim("wake", &b).unwrap().is_none());
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            store.wait_for_release("wake", PAUSE);
            started.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(store.release("wake", a.token(), None).unwrap());
    let waited = waiter.join().unwrap();
    assert!(
        waited < WOKEN,
        "the waiter slept its whole pause ({waited:?})"
    );
    assert!(store.claim("wake", &b).unwrap().is_some());
}

#[test]
fn a_release_before_the_watch_starts_is_not_missed() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).unwrap();
    let (a, b) = (long(), long());
    assert!(store.claim("early", &a).unwrap().is_some());
    assert!(store.claim("early", &b).unwrap().is_none());
    // Released between the refused claim and the wait: the watch starts at the revision the
    // claim saw, so it sees the delete at once.
    assert!(store.release("early", a.token(), None).unwrap());
    let started = Instant::now();
    store.wait_for_release("early", PAUSE);
    assert!(started.elapsed() < WOKEN, "missed: {:?}", started.elapsed());
}

#[test]
fn a_waiter_wakes_on_an_expiry() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).unwrap();
    let short = Claim::new(Duration::from_millis(100));
    assert!(store.claim("expiry", &short).unwrap().is_some());
    assert!(store.claim("expiry", &long()).unwrap().is_none());
    let started = Instant::now();
    store.wait_for_release("expiry", PAUSE);
    assert!(started.elapsed() < WOKEN, "slept {:?}", started.elapsed());
    assert!(store.claim("expiry", &long()).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_waiter_acquires_after_the_release() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).unwrap();
    let lock = Lock::new("async-wake").cache(store.clone());
    let guard = lock.try_acquire_async().await.unwrap();
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move {
            let guard = lock
                .acquire_timeout_async(Duration::from_secs(60))
                .await
                .expect("acquired after the release");
            let fence = guard.fence();
            guard.release().await.unwrap();
            fence
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = guard.fence();
    guard.release().await.unwrap();
    assert!(waiter.await.unwrap() > first);
}

#[test]
fn a_tree_waiter_wakes_on_a_release_in_its_space() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).unwrap();
    let trees = store.trees().expect("etcd has tree locks");
    let all = TreeScope::default();
    let (a, b) = (long(), long());
    assert!(trees.claim("space:", "/a", all, &a).unwrap().is_some());
    assert!(trees.claim("space:", "/a/b", all, &b).unwrap().is_none());
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let trees = store.trees().unwrap();
            trees.wait_for_release("space:", "/a/b", TreeScope::default(), PAUSE);
            started.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(trees.release("space:", "/a", a.token(), None).unwrap());
    let waited = waiter.join().unwrap();
    assert!(
        waited < WOKEN,
        "the waiter slept its whole pause ({waited:?})"
    );
    assert!(trees.claim("space:", "/a/b", all, &b).unwrap().is_some());
}
