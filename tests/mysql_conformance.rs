//! The conformance suite on a real MariaDB/MySQL server (a fresh database per test): sync
//! and async methods, directly and boxed (the suite does both), on a store from a URL and
//! on one from the app's own pools; plus what the store keeps in its table.
#![cfg(feature = "mysql")]

use std::time::Duration;

use cachelock::mysql::{async_driver, driver, MysqlStore};
use cachelock::testing::{conformance, conformance_async};
use cachelock::{Claim, Lock, LockStore};
use cachelock_testkit::mysql::MysqlDb;

#[test]
fn sync_mysql_passes_the_conformance_suite() {
    let db = MysqlDb::create();
    let store = MysqlStore::from_url(&db.url()).expect("valid url");
    conformance(store).expect("sync MariaDB/MySQL conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mysql_passes_the_conformance_suite() {
    let db = MysqlDb::create();
    let store = MysqlStore::from_url(&db.url()).expect("valid url");
    conformance_async(store)
        .await
        .expect("async MariaDB/MySQL conforms");
}

#[tokio::test(flavor = "current_thread")]
async fn async_mysql_conforms_on_a_current_thread_runtime() {
    let db = MysqlDb::create();
    let store = MysqlStore::from_url(&db.url()).expect("valid url");
    conformance_async(store)
        .await
        .expect("async MariaDB/MySQL conforms");
}

#[test]
fn a_store_from_the_apps_sync_pool_conforms_sync_and_async() {
    let db = MysqlDb::create();
    let pool = driver::Pool::new(db.url().as_str()).expect("pool");
    let store = MysqlStore::from_pool(pool);
    conformance(store.clone()).expect("sync on the app's pool conforms");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(conformance_async(store))
        .expect("async on the blocking pool conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_the_apps_two_pools_conforms() {
    let db = MysqlDb::create();
    let url = db.url();
    let pool = tokio::task::spawn_blocking(move || driver::Pool::new(url.as_str()))
        .await
        .expect("joined")
        .expect("pool");
    let async_pool = async_driver::Pool::from_url(db.url()).expect("async pool");
    let store = MysqlStore::from_pools(pool, async_pool);
    conformance_async(store.clone())
        .await
        .expect("async conforms");
    tokio::task::spawn_blocking(move || conformance(store))
        .await
        .expect("joined")
        .expect("sync conforms");
}

#[test]
fn a_named_table_is_created_and_released_rows_keep_their_fence() {
    let db = MysqlDb::create();
    let store = MysqlStore::builder(&format!("{}?table=app_locks", db.url()))
        .build()
        .expect("valid url");
    assert_eq!(store.table(), "app_locks");
    let claim = Claim::new(Duration::from_secs(30));
    let fence = store
        .claim("k", &claim)
        .expect("claim")
        .expect("free")
        .fence;
    let row = db.sql("SELECT token, fence, scope IS NULL FROM app_locks WHERE lock_key = 'k'");
    assert_eq!(row.trim(), format!("{}\t{fence}\t1", claim.token()));
    assert!(store.release("k", claim.token(), None).expect("release"));
    // The row stays, without an owner, with its fence.
    let row =
        db.sql("SELECT token IS NULL, owner IS NULL, fence FROM app_locks WHERE lock_key = 'k'");
    assert_eq!(row.trim(), format!("1\t1\t{fence}"));
    let next = Lock::new("k")
        .prefix("")
        .cache(store.clone())
        .try_acquire()
        .expect("free again");
    assert!(next.fence() > fence, "{} after {fence}", next.fence());
    assert!(db.sql("SHOW TABLES").contains("app_locks"));
    assert!(!db.sql("SHOW TABLES").contains("cachelock_locks"));
}

#[test]
fn without_create_table_a_missing_table_is_a_clear_error() {
    let db = MysqlDb::create();
    let store = MysqlStore::builder(&db.url())
        .create_table(false)
        .build()
        .expect("valid url");
    let error = store
        .claim("k", &Claim::new(Duration::from_secs(5)))
        .expect_err("no table");
    assert!(error.to_string().contains("1146"), "{error}");
    // Created by hand from the documented statement, it works.
    db.sql(&MysqlStore::create_table_statement("cachelock_locks").expect("valid name"));
    assert!(store
        .claim("k", &Claim::new(Duration::from_secs(5)))
        .expect("claim")
        .is_some());
}
