//! Waking waiters with `LISTEN/NOTIFY`: the release statement notifies the key on
//! `cachelock_released`, the store's listener wakes its waiters (polling with backoff stays
//! the fallback). Each test checks the mechanism: the notification arrives, is counted, and
//! ends a wait whose pause is far longer than the test.
#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use cachelock::postgres::PostgresStore;
use cachelock::tree::{TreeScope, TreeStore};
use cachelock::{Claim, Lock, LockStore};
use cachelock_testkit::eventually;
use cachelock_testkit::postgres::TestDb;

/// A pause no wait in these tests may sit out: a waiter that returns before it was woken.
const LONG: Duration = Duration::from_secs(120);

fn store(db: &TestDb) -> PostgresStore {
    PostgresStore::from_url(&db.url()).expect("valid url")
}

/// Starts the listener of `store` and waits until it listens.
fn listening(store: &PostgresStore) {
    LockStore::wait_for_release(store, "cachelock:warm-up", Duration::from_millis(1));
    eventually("the listener listens", || store.is_listening());
}

#[test]
fn a_release_from_another_store_value_wakes_a_sync_waiter_by_notification() {
    let db = TestDb::create();
    let waiter_store = store(&db);
    let holder_store = store(&db); // another value: another process, as far as it knows
    let claim = Claim::new(Duration::from_secs(60));
    LockStore::claim(&holder_store, "cachelock:wake", &claim)
        .unwrap()
        .expect("free");
    listening(&waiter_store);
    let before = waiter_store.release_notifications();

    let waiter = {
        let store = waiter_store.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            LockStore::wait_for_release(&store, "cachelock:wake", LONG);
            started.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(100)); // let it register (not required)
    assert!(LockStore::release(&holder_store, "cachelock:wake", claim.token(), None).unwrap());
    let waited = waiter.join().unwrap();
    assert!(waited < LONG, "woken, not timed out");
    assert!(
        waiter_store.release_notifications() > before,
        "the wake-up came from a notification"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_waiter_acquires_after_the_release_by_notification() {
    let db = TestDb::create();
    let store = store(&db);
    let guard = Lock::new("wake-async")
        .cache(store.clone())
        .try_acquire_async()
        .await
        .unwrap();
    listening(&store);
    let before = store.release_notifications();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            LockStore::wait_for_release_async(&store, "cachelock:wake-async", LONG).await;
            let waited = started.elapsed();
            Lock::new("wake-async")
                .cache(store)
                .try_acquire_async()
                .await
                .expect("free after the release")
                .release()
                .await
                .unwrap();
            waited
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    guard.release().await.unwrap();
    assert!(waiter.await.unwrap() < LONG, "woken, not timed out");
    assert!(store.release_notifications() > before);
}

#[test]
fn a_waiting_acquire_is_woken_by_the_notification() {
    let db = TestDb::create();
    let store = store(&db);
    let guard = Lock::new("acq").cache(store.clone()).try_acquire().unwrap();
    listening(&store);
    let before = store.release_notifications();
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            Lock::new("acq")
                .cache(store)
                .acquire_timeout(Duration::from_secs(60))
                .expect("acquired after the release")
                .release()
                .unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    guard.release().unwrap();
    waiter.join().unwrap();
    assert!(store.release_notifications() > before);
}

#[test]
fn a_tree_release_wakes_a_waiter_of_the_space() {
    let db = TestDb::create();
    let store = store(&db);
    let claim = Claim::new(Duration::from_secs(60));
    let scope = TreeScope::default();
    TreeStore::claim(&store, "space", "/a/b", scope, &claim)
        .unwrap()
        .expect("free");
    listening(&store);
    let before = store.release_notifications();
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            TreeStore::wait_for_release(&store, "space", "/a", scope, LONG);
            started.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(TreeStore::release(&store, "space", "/a/b", claim.token(), None).unwrap());
    assert!(waiter.join().unwrap() < LONG, "woken, not timed out");
    assert!(store.release_notifications() > before);
}

#[test]
fn the_listener_comes_back_after_its_connection_is_killed() {
    let db = TestDb::create();
    let store = store(&db);
    listening(&store);
    db.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND query LIKE 'LISTEN%'",
        db.name()
    ));
    eventually("the listener notices", || !store.is_listening());
    eventually("the listener listens again", || store.is_listening());
    let before = store.release_notifications();
    Lock::new("again")
        .cache(store.clone())
        .try_acquire()
        .unwrap()
        .release()
        .unwrap();
    eventually("the release is notified", || {
        store.release_notifications() > before
    });
}
