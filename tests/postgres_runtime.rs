//! The sync path of the PostgreSQL store called from inside a tokio runtime: tokio panics
//! when a thread inside a runtime blocks on another runtime, which is how a blocking
//! PostgreSQL client works; the store must run such calls elsewhere and answer.
#![cfg(feature = "postgres")]

use std::time::Duration;

use cachelock::postgres::PostgresStore;
use cachelock::{testing, Claim, Lock, LockAdmin, LockStore};
use cachelock_testkit::postgres::TestDb;

fn store(db: &TestDb) -> PostgresStore {
    PostgresStore::from_url(&db.url()).expect("valid url")
}

#[tokio::test(flavor = "current_thread")]
async fn sync_calls_work_on_a_current_thread_runtime() {
    let db = TestDb::create();
    let store = store(&db);
    let lock = Lock::new("in-runtime").cache(store.clone());
    let guard = lock
        .try_acquire()
        .expect("a sync acquire inside async code");
    assert!(guard.fence() > 0);
    assert!(lock.try_acquire().unwrap_err().is_locked());
    assert!(lock.holder().unwrap().is_some());
    drop(guard); // a sync Guard dropped in async code releases inline
    assert!(
        LockAdmin::holder(&store, &lock.full_key())
            .unwrap()
            .is_none(),
        "released"
    );
    // The async path on the same store value still works afterwards.
    lock.try_acquire_async()
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_calls_work_on_a_multi_thread_runtime_and_a_sync_guard_drops_in_a_task() {
    let db = TestDb::create();
    let store = store(&db);
    let task = {
        let store = store.clone();
        tokio::spawn(async move {
            let guard = Lock::new("in-task").cache(store.clone()).try_acquire()?;
            tokio::task::yield_now().await;
            drop(guard);
            Ok::<_, cachelock::Error>(())
        })
    };
    task.await.unwrap().unwrap();
    let claim = Claim::new(Duration::from_secs(30));
    assert!(
        LockStore::claim(&store, "cachelock:in-task", &claim)
            .unwrap()
            .is_some(),
        "released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_conformance_suite_passes_inside_a_runtime() {
    let db = TestDb::create();
    testing::conformance(store(&db)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn one_store_value_serves_several_runtimes_in_turn() {
    let db = TestDb::create();
    let store = store(&db);
    for _ in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let lock = Lock::new("turns").cache(store.clone());
            lock.try_acquire_async()
                .await
                .unwrap()
                .release()
                .await
                .unwrap();
        });
        // and the sync path between runtimes
        Lock::new("turns")
            .cache(store.clone())
            .try_acquire()
            .unwrap()
            .release()
            .unwrap();
    }
}
