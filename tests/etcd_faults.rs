//! Faults against a real etcd: no member running, killed while a lock is held, restarted on
//! the same data (fences keep increasing, held locks stay held), paused (slow), a claim sent
//! twice, a foreign value at a lock's key; and the store used from inside and across tokio
//! runtimes.
//!
//! No timing is asserted tightly: a wait is only bounded by ten times the configured
//! timeouts, so a loaded machine cannot make these tests flaky.
#![cfg(feature = "etcd")]

use std::time::{Duration, Instant};

use cachelock::etcd::etcd_client;
use cachelock::etcd::EtcdStore;
use cachelock::{Claim, Error, Lock, LockStore};
use cachelock_testkit::etcd::EtcdServer;
use cachelock_testkit::free_port;

const CONNECT: Duration = Duration::from_millis(300);
const RESPONSE: Duration = Duration::from_millis(300);
/// Generous: ten times what the settings allow for one operation.
const BOUND: Duration = Duration::from_millis(10 * (300 + 300));

fn store(url: &str) -> EtcdStore {
    EtcdStore::builder(url)
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

/// Runs `f` with a raw etcd client on a throwaway runtime.
fn raw<T>(
    server: &EtcdServer,
    f: impl AsyncFnOnce(&mut etcd_client::Client) -> Result<T, etcd_client::Error>,
) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = etcd_client::Client::connect([server.endpoint()], None)
            .await
            .expect("a raw client");
        f(&mut client).await.expect("a raw etcd request")
    })
}

// --- no member running ----------------------------------------------------------------------

#[test]
fn no_server_gives_a_backend_error_quickly_sync() {
    let url = format!("etcd://127.0.0.1:{}", free_port());
    let lock = Lock::new("nobody-home").cache(store(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire(), "acquire without a server");
    assert_backend_error(
        lock.acquire_timeout(Duration::from_secs(30)),
        "a backend error ends the wait at once",
    );
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_gives_a_backend_error_quickly_async() {
    let url = format!("etcd://127.0.0.1:{}", free_port());
    let lock = Lock::new("nobody-home").cache(store(&url));
    let started = Instant::now();
    assert_backend_error(lock.try_acquire_async().await, "acquire without a server");
    assert_backend_error(
        lock.acquire_timeout_async(Duration::from_secs(30)).await,
        "a backend error ends the wait at once",
    );
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

// --- killed, restarted ------------------------------------------------------------------------

#[test]
fn server_killed_while_held_sync() {
    let mut server = EtcdServer::start();
    let store = store(&server.url());
    let released = Lock::new("killed-a")
        .cache(store.clone())
        .try_acquire()
        .expect("acquired");
    let dropped = Lock::new("killed-b")
        .cache(store.clone())
        .try_acquire()
        .expect("acquired");
    server.stop();
    let started = Instant::now();
    assert_backend_error(released.release(), "release with the server gone");
    // A guard dropped with the server gone logs the failure and never hangs.
    drop(dropped);
    assert!(
        started.elapsed() < 2 * BOUND,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_while_held_async() {
    let mut server = EtcdServer::start();
    let lock = Lock::new("killed").cache(store(&server.url()));
    let guard = lock.try_acquire_async().await.expect("acquired");
    server.stop();
    assert_backend_error(guard.release().await, "release with the server gone");
    // A dropped guard releases in the background and never hangs the runtime.
    let guard = Lock::new("killed-2")
        .cache(store(&server.url()))
        .try_acquire_async()
        .await;
    assert_backend_error(guard, "acquire with the server gone");
}

#[test]
fn restarted_server_is_used_by_the_same_store_sync() {
    let mut server = EtcdServer::start();
    let lock = Lock::new("restarted").cache(store(&server.url()));
    lock.try_acquire()
        .expect("acquired")
        .release()
        .expect("released");
    server.restart();
    // The very next operation works: a dead connection is replaced and the request resent.
    let guard = lock.try_acquire().expect("acquired after the restart");
    guard.release().expect("released after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_server_is_used_by_the_same_store_async() {
    let mut server = EtcdServer::start();
    let lock = Lock::new("restarted").cache(store(&server.url()));
    let guard = lock.try_acquire_async().await.expect("acquired");
    guard.release().await.expect("released");
    server.restart();
    let guard = lock
        .try_acquire_async()
        .await
        .expect("acquired after the restart");
    guard.release().await.expect("released after the restart");
}

#[test]
fn fences_keep_increasing_across_a_restart_and_held_locks_stay_held() {
    let mut server = EtcdServer::start();
    let store = store(&server.url());
    let lock = Lock::new("fenced").cache(store.clone());
    let mut last = 0;
    for _ in 0..3 {
        let guard = lock.try_acquire().expect("acquired");
        assert!(guard.fence() > last, "{} after {last}", guard.fence());
        last = guard.fence();
        guard.release().expect("released");
    }
    let held = Lock::new("held-across")
        .cache(store.clone())
        .ttl(Duration::from_secs(60))
        .try_acquire()
        .expect("acquired");
    server.restart();
    let guard = lock.try_acquire().expect("acquired after the restart");
    assert!(
        guard.fence() > last,
        "fence {} after the restart is not above {last}: revisions are kept on disk",
        guard.fence()
    );
    assert!(
        guard.fence() > held.fence(),
        "fences increase across keys too"
    );
    guard.release().expect("released");
    let refused = Lock::new("held-across").cache(store.clone()).try_acquire();
    assert!(
        matches!(refused, Err(Error::Locked { .. })),
        "a lock held across a restart stays held (its lease is kept): {refused:?}"
    );
    held.release()
        .expect("the holder releases it after the restart");
}

#[test]
fn paused_server_gives_a_timeout_error_then_recovers() {
    let server = EtcdServer::start();
    let lock = Lock::new("paused").cache(store(&server.url()));
    lock.try_acquire()
        .expect("acquired")
        .release()
        .expect("released");
    server.pause();
    let started = Instant::now();
    let error = assert_backend_error(lock.try_acquire(), "acquire from a paused server");
    let elapsed = started.elapsed();
    server.resume();
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    assert!(elapsed < BOUND, "took {elapsed:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match lock.try_acquire() {
            Ok(guard) => return guard.release().expect("released"),
            Err(error) if Instant::now() < deadline => {
                assert!(error.is_backend(), "{error}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("the store did not recover: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_gives_a_timeout_error_async() {
    let server = EtcdServer::start();
    let lock = Lock::new("paused").cache(store(&server.url()));
    server.pause();
    let error = assert_backend_error(lock.try_acquire_async().await, "acquire when paused");
    server.resume();
    assert!(error.is_timeout(), "expected a timeout, got {error:?}");
}

// --- resends, foreign values ----------------------------------------------------------------

#[test]
fn a_claim_sent_twice_wins_again_with_the_same_fence() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    let claim = Claim::new(Duration::from_secs(30));
    let first = store.claim("resent", &claim).expect("claim").expect("won");
    // What a resend after a lost answer does: the same claim, the same token.
    let again = store
        .claim("resent", &claim)
        .expect("claim")
        .expect("won again");
    assert_eq!(again.fence, first.fence, "the key's create revision");
    let other = Claim::new(Duration::from_secs(30));
    assert!(store.claim("resent", &other).expect("claim").is_none());
    assert!(store.release("resent", claim.token(), None).unwrap());
}

#[test]
fn a_foreign_value_at_the_key_is_locked_and_never_touched() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    raw(&server, async |c| {
        c.put("garbage", "not an owner value", None).await
    });
    let lock = Lock::new("garbage").prefix("").cache(store.clone());
    assert!(matches!(lock.try_acquire(), Err(Error::Locked { .. })));
    for token in ["not an owner value", "not", "", "x|y"] {
        assert!(!store.release("garbage", token, None).unwrap(), "{token:?}");
        assert!(
            !store
                .extend("garbage", token, Duration::from_secs(5), None)
                .unwrap(),
            "{token:?}"
        );
    }
    let value = raw(&server, async |c| c.get("garbage", None).await);
    assert_eq!(value.kvs()[0].value(), b"not an owner value");
    assert_eq!(value.kvs()[0].lease(), 0, "no lease was put on it");
}

#[test]
fn a_claim_stores_its_fence_as_the_create_revision_with_a_lease_of_its_own() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    let (a, b) = (
        Claim::new(Duration::from_secs(30)),
        Claim::new(Duration::from_secs(30)),
    );
    let fence_a = store.claim("k-a", &a).unwrap().unwrap().fence;
    let fence_b = store.claim("k-b", &b).unwrap().unwrap().fence;
    let (kv_a, kv_b) = raw(&server, async |c| {
        let a = c.get("k-a", None).await?;
        let b = c.get("k-b", None).await?;
        Ok((a.kvs()[0].clone(), b.kvs()[0].clone()))
    });
    assert_eq!(kv_a.create_revision() as u64, fence_a);
    assert_eq!(kv_b.create_revision() as u64, fence_b);
    assert_ne!(kv_a.lease(), 0);
    assert_ne!(kv_a.lease(), kv_b.lease(), "one lease per lock");
    // An extend to another TTL moves the key to a new lease; the fence stays.
    assert!(store
        .extend("k-a", a.token(), Duration::from_secs(45), None)
        .unwrap());
    let moved = raw(&server, async |c| c.get("k-a", None).await);
    assert_ne!(moved.kvs()[0].lease(), kv_a.lease());
    assert_eq!(moved.kvs()[0].create_revision(), kv_a.create_revision());
    let left = raw(&server, async |c| {
        c.lease_time_to_live(moved.kvs()[0].lease(), None).await
    });
    assert_eq!(left.granted_ttl(), 45);
    // The same TTL again: renewed by a keep-alive, the key stays where it is.
    assert!(store
        .extend("k-a", a.token(), Duration::from_secs(45), None)
        .unwrap());
    let kept = raw(&server, async |c| c.get("k-a", None).await);
    assert_eq!(kept.kvs()[0].lease(), moved.kvs()[0].lease());
    assert_eq!(kept.kvs()[0].mod_revision(), moved.kvs()[0].mod_revision());
    assert!(store.release("k-a", a.token(), None).unwrap());
    assert!(store.release("k-b", b.token(), None).unwrap());
}

#[test]
fn short_ttls_are_rounded_up_to_the_servers_minimum_lease() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    let claim = Claim::new(Duration::from_millis(150));
    assert!(store.claim("short", &claim).unwrap().is_some());
    let kv = raw(&server, async |c| c.get("short", None).await).kvs()[0].clone();
    let left = raw(&server, async |c| {
        c.lease_time_to_live(kv.lease(), None).await
    });
    assert_eq!(left.granted_ttl(), 2, "etcd's default minimum lease");
    assert_eq!(store.min_ttl(), Duration::from_secs(2));
    assert!(store.release("short", claim.token(), None).unwrap());
}

// --- runtimes -----------------------------------------------------------------------------

#[test]
fn a_sync_guard_dropped_on_a_runtime_thread_releases_without_panicking() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let guard = Lock::new("sync-in-async")
            .cache(store.clone())
            .try_acquire()
            .expect("a sync acquire on a runtime thread");
        drop(guard);
        let again = Lock::new("sync-in-async")
            .cache(store.clone())
            .try_acquire_async()
            .await
            .expect("released by the drop");
        again.release().await.expect("released");
    });
}

#[test]
fn the_store_outlives_the_runtimes_that_used_it() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let guard = Lock::new("runtimes")
                .cache(store.clone())
                .try_acquire_async()
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            guard.release().await.expect("released");
        });
        drop(runtime);
        let guard = Lock::new("runtimes")
            .cache(store.clone())
            .try_acquire()
            .unwrap_or_else(|e| panic!("sync, after runtime {round} was dropped: {e}"));
        guard.release().expect("released");
    }
}

#[test]
fn a_store_from_the_apps_own_client_works() {
    let server = EtcdServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = runtime
        .block_on(etcd_client::Client::connect([server.endpoint()], None))
        .expect("the app's client");
    let store = EtcdStore::from_client(client);
    let guard = Lock::new("own-client")
        .cache(store.clone())
        .try_acquire()
        .unwrap();
    assert!(matches!(
        Lock::new("own-client").cache(store.clone()).try_acquire(),
        Err(Error::Locked { .. })
    ));
    guard.release().unwrap();
    runtime.block_on(async {
        let guard = Lock::new("own-client")
            .cache(store.clone())
            .try_acquire_async()
            .await
            .unwrap();
        guard.release().await.unwrap();
    });
}

#[test]
fn a_release_revokes_the_locks_lease() {
    let server = EtcdServer::start();
    let store = store(&server.url());
    let claim = Claim::new(Duration::from_secs(30));
    assert!(store.claim("revoked", &claim).unwrap().is_some());
    let lease = raw(&server, async |c| c.get("revoked", None).await).kvs()[0].lease();
    assert!(store.release("revoked", claim.token(), None).unwrap());
    // Revoked in the background: a lease left behind would hold no key, but would linger
    // on the server for its whole TTL.
    cachelock_testkit::eventually("the lease is revoked", || {
        raw(&server, async |c| c.lease_time_to_live(lease, None).await).ttl() == -1
    });
}
