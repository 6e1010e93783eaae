//! Faults against a real MariaDB server: none listening, one that never answers, a row
//! lock held long by another session (a slow server), the link cut and healed (through a
//! `CutProxy`, as the tests share the machine's server), a private server killed and
//! restarted (locks and fences survive), a claim sent again after a lost reply, and a sync
//! guard dropped on a runtime thread.
//!
//! No timing is asserted tightly: a wait is only bounded by ten times the configured
//! timeouts, so a loaded machine cannot make these tests flaky.
#![cfg(feature = "mysql")]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use cachelock::mysql::{driver, MysqlStore};
use cachelock::{Claim, Error, Lock, LockStore};
use cachelock_testkit::mysql::{MysqlDb, MysqlServer};
use cachelock_testkit::{eventually, free_port, CutProxy};

const CONNECT: Duration = Duration::from_millis(300);
const RESPONSE: Duration = Duration::from_millis(300);
/// Generous: ten times what the settings allow for one operation.
const BOUND: Duration = Duration::from_millis(10 * (300 + 300));

fn store(url: &str) -> MysqlStore {
    MysqlStore::builder(url)
        .connect_timeout(CONNECT)
        .response_timeout(RESPONSE)
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

// --- no server, or one that never answers ------------------------------------------------

#[test]
fn no_server_gives_a_backend_error_quickly_sync() {
    let url = format!("mysql://root@127.0.0.1:{}/db", free_port());
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
    let url = format!("mysql://root@127.0.0.1:{}/db", free_port());
    let lock = Lock::new("nobody-home").cache(store(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire_async().await, "acquire without a server");
    assert_backend_error(lock.try_acquire_async().await, "and again");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

/// A listener that accepts connections (the kernel does, into its backlog) and never
/// says a word: the MySQL handshake never comes.
fn silent_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, format!("mysql://root@127.0.0.1:{port}/db"))
}

#[test]
fn a_server_that_never_answers_gives_a_timeout_sync() {
    let (_listener, url) = silent_server();
    let lock = Lock::new("silent").cache(store(&url));
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire from a silent server");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_gives_a_timeout_async() {
    let (_listener, url) = silent_server();
    let lock = Lock::new("silent").cache(store(&url));
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire_async().await, "acquire");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

// --- slow: a row lock held by another session ----------------------------------------------

/// Another session that holds the row of `key` locked in an open transaction.
fn hold_row(db: &MysqlDb, key: &str) -> driver::Conn {
    use cachelock::mysql::driver::prelude::Queryable;
    let mut conn =
        driver::Conn::new(driver::Opts::from_url(&db.url()).expect("url")).expect("connect");
    conn.query_drop("START TRANSACTION").expect("begin");
    conn.exec_drop(
        "SELECT * FROM cachelock_locks WHERE lock_key = ? FOR UPDATE",
        (key,),
    )
    .expect("lock the row");
    conn
}

#[test]
fn a_row_lock_held_elsewhere_gives_a_timeout_then_the_store_recovers_sync() {
    let db = MysqlDb::create();
    let store = store(&db.url());
    let lock = Lock::new("slow").cache(store.clone());
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("released");
    let holder = hold_row(&db, "cachelock:slow");
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire of a locked row");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    drop(holder); // its transaction rolls back
                  // The claim that timed out may still run once the row is free (the server finishes
                  // the statement of a closed connection); the lock gives it back in the background.
    eventually("the same store takes the lock again", || {
        match lock.try_acquire() {
            Ok(guard) => guard.release().is_ok(),
            Err(error) => {
                assert!(error.is_locked(), "{error:?}");
                false
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_lock_held_elsewhere_gives_a_timeout_then_the_store_recovers_async() {
    let db = MysqlDb::create();
    let store = store(&db.url());
    let lock = Lock::new("slow").cache(store.clone());
    lock.try_acquire_async()
        .await
        .expect("free")
        .release()
        .await
        .expect("released");
    let holder = tokio::task::block_in_place(|| hold_row(&db, "cachelock:slow"));
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire_async().await, "acquire of a locked row");
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    tokio::task::block_in_place(|| drop(holder));
    // As in the sync test: the timed-out claim may land, and is given back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lock.try_acquire_async().await {
            Ok(guard) => return guard.release().await.expect("released"),
            Err(error) if error.is_locked() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the store did not take the lock again: {error:?}"),
        }
    }
}

// --- the link cut and healed ---------------------------------------------------------------

#[test]
fn a_cut_link_gives_backend_errors_and_the_healed_link_works_on_the_same_store_sync() {
    let db = MysqlDb::create();
    let proxy = CutProxy::start(db.addr());
    let store = store(&db.url_via(proxy.port()));
    let lock = Lock::new("cut").cache(store.clone());
    let held = lock.try_acquire().expect("free");
    let dropped = Lock::new("cut-2")
        .cache(store.clone())
        .try_acquire()
        .expect("free");
    assert!(
        store.idle_connections() > 0,
        "a pooled connection to go stale"
    );

    proxy.cut();
    let started = Instant::now();
    assert_backend_error(held.release(), "release over a cut link");
    drop(dropped); // logs the failure; must not hang or panic
    assert_backend_error(lock.try_acquire(), "acquire over a cut link");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

    proxy.heal();
    // The lock released over the cut link is still held in the database (its release never
    // arrived): force it free, then the same store takes it again.
    let admin = store.admin().expect("MySQL has admin operations");
    admin
        .force_release("cachelock:cut")
        .expect("force-release after the heal");
    lock.try_acquire()
        .expect("the next acquire after the heal succeeds")
        .release()
        .expect("released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_gives_backend_errors_and_the_healed_link_works_on_the_same_store_async() {
    let db = MysqlDb::create();
    let proxy = CutProxy::start(db.addr());
    let store = store(&db.url_via(proxy.port()));
    let lock = Lock::new("cut").cache(store.clone());
    let held = lock.try_acquire_async().await.expect("free");
    let extended = Lock::new("cut-2")
        .cache(store.clone())
        .try_acquire_async()
        .await
        .expect("free");

    proxy.cut();
    let started = Instant::now();
    assert_backend_error(extended.extend().await, "extend over a cut link");
    drop(extended); // hands the release to a background task: returns at once
    assert_backend_error(held.release().await, "release over a cut link");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());

    proxy.heal();
    let admin = store.admin().expect("MySQL has admin operations");
    admin
        .force_release_async("cachelock:cut")
        .await
        .expect("force-release after the heal");
    let guard = lock
        .try_acquire_async()
        .await
        .expect("the next acquire after the heal succeeds");
    guard.release().await.expect("released");
}

// --- a private server killed and restarted -------------------------------------------------

#[test]
fn locks_and_fences_survive_a_server_restart_and_the_same_store_goes_on() {
    let server = MysqlServer::start();
    let db = server.database();
    let store = store(&db.url());
    let lock = Lock::new("restart").cache(store.clone());
    let held = lock.try_acquire().expect("free");
    let fence = held.fence();

    server.restart();
    // The lock outlived the crash (InnoDB is durable), and the same store sees it.
    assert!(lock.try_acquire().expect_err("still held").is_locked());
    held.release()
        .expect("the holder releases it after the restart");
    let next = lock.try_acquire().expect("free after the release");
    assert!(next.fence() > fence, "{} after {fence}", next.fence());
    next.release().expect("released");

    // Async, on the same store value.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fence = runtime.block_on(async {
        let guard = lock.try_acquire_async().await.expect("free");
        let fence = guard.fence();
        guard.release().await.expect("released");
        fence
    });
    server.restart();
    runtime.block_on(async {
        let guard = lock
            .try_acquire_async()
            .await
            .expect("the next async acquire after a restart succeeds");
        assert!(guard.fence() > fence);
        guard.release().await.expect("released");
    });
}

// --- a resent claim, and sync code on a runtime thread -------------------------------------

#[test]
fn a_claim_sent_again_with_its_token_wins_with_the_same_fence() {
    let db = MysqlDb::create();
    let store = store(&db.url());
    let claim = Claim::new(Duration::from_secs(30));
    let first = store.claim("k", &claim).expect("claim").expect("free");
    let again = store.claim("k", &claim).expect("claim").expect("its own");
    assert_eq!(again.fence, first.fence);
    assert!(store
        .claim("k", &Claim::new(Duration::from_secs(30)))
        .expect("claim")
        .is_none());
    assert!(store.release("k", claim.token(), None).expect("release"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_sync_guard_taken_and_dropped_on_a_runtime_thread_does_not_panic() {
    let db = MysqlDb::create();
    let store = store(&db.url());
    let lock = Lock::new("sync-in-async").cache(store.clone());
    let guard = lock.try_acquire().expect("free");
    drop(guard); // a sync release, on the runtime's only thread
    let guard = lock
        .try_acquire_async()
        .await
        .expect("released by the drop");
    guard.release().await.expect("released");
}

#[test]
fn keys_too_long_or_reserved_are_errors_not_panics() {
    let db = MysqlDb::create();
    let store = store(&db.url());
    let claim = Claim::new(Duration::from_secs(5));
    let long = "k".repeat(4000);
    assert!(store.claim(&long, &claim).is_err());
    assert!(!store
        .release(&long, claim.token(), None)
        .expect("nothing to release"));
    assert!(store.claim("a{cachelock-tree}:b", &claim).is_err());
}
