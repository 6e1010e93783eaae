//! The PostgreSQL store against a real server (a fresh database per test): the conformance
//! suites, sync and async (each also runs through `Box<dyn LockStore>`), the tree suites,
//! the table, fences, and the URL.
#![cfg(feature = "postgres")]

use std::time::Duration;

use cachelock::postgres::PostgresStore;
use cachelock::{store_from_url, testing, Claim, Lock, LockAdmin, LockStore};
use cachelock_testkit::postgres::TestDb;

fn store(db: &TestDb) -> PostgresStore {
    PostgresStore::from_url(&db.url()).expect("valid url")
}

#[test]
fn sync_postgres_passes_the_conformance_suite() {
    let db = TestDb::create();
    testing::conformance(store(&db)).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_postgres_passes_the_conformance_suite() {
    let db = TestDb::create();
    testing::conformance_async(store(&db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "current_thread")]
async fn async_postgres_conforms_on_a_current_thread_runtime() {
    let db = TestDb::create();
    testing::conformance_async(store(&db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_boxed_store_from_the_url_conforms() {
    let db = TestDb::create();
    let boxed: Box<dyn LockStore> = Box::new(store(&db));
    testing::conformance(boxed).unwrap_or_else(|e| panic!("{e}"));
    let from_url = store_from_url(&db.url()).expect("postgres:// is known");
    testing::conformance(from_url).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn sync_postgres_passes_the_tree_conformance_suite() {
    let db = TestDb::create();
    testing::tree_conformance(store(&db)).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_postgres_passes_the_tree_conformance_suite() {
    let db = TestDb::create();
    testing::tree_conformance_async(store(&db))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_store_from_a_tokio_postgres_config_in_its_own_schema_and_table_conforms() {
    let db = TestDb::create();
    db.sql("CREATE SCHEMA locks");
    let config: cachelock::postgres::tokio_postgres::Config = db.url().parse().unwrap();
    let store = PostgresStore::builder_from_config(config)
        .schema("locks")
        .table("App Locks")
        .build()
        .expect("valid settings");
    testing::conformance(store.clone()).unwrap_or_else(|e| panic!("{e}"));
    let tables = db.sql(
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables \
         WHERE table_schema = 'locks'",
    );
    assert_eq!(tables, "App Locks,App Locks_tree");
    assert!(store.create_table_sql().contains("\"locks\".\"App Locks\""));
}

#[test]
fn with_create_table_off_the_tables_come_from_the_documented_sql() {
    let db = TestDb::create();
    let store = PostgresStore::builder(&db.url())
        .create_table(false)
        .build()
        .unwrap();
    let lock = Lock::new("migrated").cache(store.clone());
    let error = lock.try_acquire().expect_err("no table yet");
    assert!(error.is_backend(), "{error:?}");
    db.sql(store.create_table_sql());
    lock.try_acquire()
        .expect("the table exists now")
        .release()
        .unwrap();
}

#[test]
fn released_rows_are_kept_and_fences_keep_increasing_across_stores_and_deleted_rows() {
    let db = TestDb::create();
    let first = store(&db);
    let claim = Claim::new(Duration::from_secs(30));
    let a = LockStore::claim(&first, "k", &claim)
        .unwrap()
        .expect("free")
        .fence;
    assert!(LockStore::release(&first, "k", claim.token(), None).unwrap());
    assert_eq!(
        db.sql("SELECT count(*), bool_and(expires_at = '-infinity') FROM cachelock_locks"),
        "1|t",
        "the released row is kept, marked free"
    );
    // A second store value (another process, or this one after a restart): above.
    let second = store(&db);
    let claim = Claim::new(Duration::from_millis(200));
    let b = LockStore::claim(&second, "k", &claim)
        .unwrap()
        .expect("free")
        .fence;
    assert!(b > a, "{b} > {a}");
    std::thread::sleep(Duration::from_millis(300)); // expired, never released
                                                    // Rows deleted by an operator: the sequence still keeps fences above.
    db.sql("DELETE FROM cachelock_locks");
    let c = LockStore::claim(&second, "k", &Claim::new(Duration::from_secs(30)))
        .unwrap()
        .expect("free")
        .fence;
    assert!(c > b, "{c} > {b}");
    // The store's own token column holds the token, the owner column the owner value.
    assert_eq!(
        db.sql("SELECT owner LIKE token || '|%' FROM cachelock_locks"),
        "t"
    );
}

#[test]
fn listing_escapes_like_wildcards() {
    let db = TestDb::create();
    let store = store(&db);
    let claim = Claim::new(Duration::from_secs(30));
    for key in ["a_b:1", "axb:2", "a%:3"] {
        LockStore::claim(&store, key, &claim)
            .unwrap()
            .expect("free");
    }
    let mut keys = store.keys("a_b").unwrap();
    keys.sort();
    assert_eq!(keys, ["a_b:1"]);
    assert_eq!(store.keys("a%").unwrap(), ["a%:3"]);
    store.force_release("a_b:1").unwrap();
    assert!(store.keys("a_b").unwrap().is_empty());
}

#[test]
fn a_tree_lock_and_a_plain_lock_work_through_lock_and_tree_lock() {
    let db = TestDb::create();
    let store = store(&db);
    let tree = |path: &str| cachelock::tree::TreeLock::new(path).cache(store.clone());
    let held = tree("/a/b").try_acquire().expect("free");
    assert!(tree("/a").try_acquire().unwrap_err().is_locked());
    assert!(tree("/a/c").try_acquire().is_ok());
    assert!(tree("/a").holder().unwrap().is_some());
    held.release().unwrap();
    tree("/a")
        .try_acquire()
        .expect("free again")
        .release()
        .unwrap();
}
