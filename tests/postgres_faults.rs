//! Faults of the PostgreSQL store: no server, a link cut and healed (through a `CutProxy`:
//! the tests share one server, so "down" is the link), the store's connections killed on the
//! server, a server that accepts and never answers, a statement stuck behind a table lock.
//!
//! No timing is asserted tightly: a wait is only bounded by ten times the configured
//! timeouts, so a loaded machine cannot make these tests flaky.
#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use cachelock::postgres::PostgresStore;
use cachelock::{Error, Lock};
use cachelock_testkit::postgres::TestDb;
use cachelock_testkit::{free_port, CutProxy};

const CONNECT: Duration = Duration::from_millis(500);
const STATEMENT: Duration = Duration::from_millis(500);
/// Generous: ten times what the settings allow for one operation (with its one resend).
const BOUND: Duration = Duration::from_millis(10 * (2 * 500 + 2 * 500));

fn store(url: &str) -> PostgresStore {
    PostgresStore::builder(url)
        .connect_timeout(CONNECT)
        .statement_timeout(STATEMENT)
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

fn proxied(db: &TestDb) -> (CutProxy, PostgresStore) {
    let proxy = CutProxy::start(db.addr().expect("the test server is on a loopback address"));
    let store = store(&db.url_via(proxy.port()));
    (proxy, store)
}

#[test]
fn no_server_gives_a_backend_error_quickly_sync() {
    let url = format!("postgres://postgres@127.0.0.1:{}/x", free_port());
    let lock = Lock::new("nobody-home").cache(store(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire(), "acquire without a server");
    assert_backend_error(
        lock.acquire_timeout(Duration::from_secs(30)),
        "a backend error ends the wait at once",
    );
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_gives_a_backend_error_quickly_async() {
    let url = format!("postgres://postgres@127.0.0.1:{}/x", free_port());
    let lock = Lock::new("nobody-home").cache(store(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire_async().await, "acquire without a server");
    assert_backend_error(lock.try_acquire_async().await, "and again");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

#[test]
fn a_server_that_never_answers_is_a_timeout() {
    // Accepts connections, never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://postgres@{}/x", silent.local_addr().unwrap());
    let lock = Lock::new("silent").cache(store(&url));
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire from a silent server");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

#[test]
fn a_statement_stuck_behind_a_table_lock_is_a_timeout_and_the_store_recovers() {
    let db = TestDb::create();
    let store = store(&db.url());
    let lock = Lock::new("stuck").cache(store.clone());
    lock.try_acquire()
        .expect("creates the table")
        .release()
        .unwrap();
    let blocker = {
        let url = db.url();
        std::thread::spawn(move || {
            let _ = std::process::Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-d",
                    &url,
                    "-c",
                    "BEGIN; LOCK TABLE cachelock_locks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;",
                ])
                .output();
        })
    };
    cachelock_testkit::eventually("the table is locked", || {
        db.sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                WHERE c.relname = 'cachelock_locks' AND l.mode = 'AccessExclusiveLock' AND l.granted")
            == "1"
    });
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "a claim behind the lock");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    blocker.join().unwrap();
    lock.try_acquire().expect("works again").release().unwrap();
}

#[test]
fn a_cut_link_is_a_backend_error_and_the_healed_link_works_on_the_same_store_sync() {
    let db = TestDb::create();
    let (proxy, store) = proxied(&db);
    let lock = Lock::new("cut").cache(store.clone());
    let held = lock.try_acquire().expect("free");
    let other = Lock::new("cut-2")
        .cache(store.clone())
        .try_acquire()
        .expect("free");
    proxy.cut();

    let started = Instant::now();
    assert_backend_error(held.release(), "release without a server");
    assert_backend_error(lock.try_acquire(), "acquire without a server");
    drop(other); // logs the failure; must not hang or panic
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

    proxy.heal();
    // The held lock was never released: its TTL runs (60 s), so force it, then the next
    // operations of the same store value work.
    lock.force_release()
        .expect("the first operation after the heal works");
    lock.try_acquire().expect("free").release().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_is_a_backend_error_and_the_healed_link_works_on_the_same_store_async() {
    let db = TestDb::create();
    let (proxy, store) = proxied(&db);
    let lock = Lock::new("cut").cache(store.clone());
    let held = lock.try_acquire_async().await.expect("free");
    let extended = Lock::new("cut-2")
        .cache(store.clone())
        .try_acquire_async()
        .await
        .expect("free");
    proxy.cut();

    let started = Instant::now();
    assert_backend_error(extended.extend().await, "extend without a server");
    drop(extended); // a background release: returns at once
    assert_backend_error(held.release().await, "release without a server");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

    proxy.heal();
    lock.force_release_async()
        .await
        .expect("works after the heal");
    lock.try_acquire_async()
        .await
        .expect("free")
        .release()
        .await
        .unwrap();
}

/// The server closes the store's connections (as a restart does): the next operation
/// replaces its dead pooled connection and works, sync and async.
#[test]
fn connections_killed_by_the_server_are_replaced_without_an_error() {
    let db = TestDb::create();
    let store = store(&db.url());
    let lock = Lock::new("terminated").cache(store.clone());
    lock.try_acquire().unwrap().release().unwrap();
    assert!(store.idle_connections() >= 1, "a pooled connection");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        lock.try_acquire_async()
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    });
    let killed = db.sql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{}' AND application_name = 'cachelock' AND pid <> pg_backend_pid()",
        db.name()
    ));
    assert_ne!(killed, "0", "the store's connections were terminated");
    lock.try_acquire()
        .expect("the first sync operation after the kill works")
        .release()
        .unwrap();
    runtime.block_on(async {
        lock.try_acquire_async()
            .await
            .expect("the first async operation after the kill works")
            .release()
            .await
            .unwrap();
    });
}
