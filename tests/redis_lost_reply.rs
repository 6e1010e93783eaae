//! A claim, unfenced (`Lock::fencing(false)`, `#[once]` without `fence = ...`) or fenced
//! (the default), whose first send ran on the server but whose reply was lost with its
//! connection.
//!
//! The backend sends it again once; the first form sent again (a plain `SET NX PX`, or the
//! fenced script that returns at once on a held key) would find the key holding the claim's
//! own value and report it held, by nobody, for a whole TTL. The resent claim must recognise
//! its own value and win, and still never take another holder's key.
//!
//! Standalone: a [`LostReplyProxy`] in front of a real `redis-server` lets the `SET` run and
//! cuts the connection before its reply. Redis Cluster: the cluster client resends by
//! itself, so its resend is the same `SET NX` sent again; the tests send it again.
//!
//! A release whose reply was lost the same way is sent again too; the key is gone by then
//! (the first send deleted it), and that must not be reported as a lost lock, while a key
//! that changed hands is still never deleted.
#![cfg(feature = "redis")]

use std::collections::BTreeMap;
use std::time::Duration;

use cachelock::redis::{RedisCache, RedisClusterCache};
use cachelock::{once, Claim, Lock, LockStore};
use cachelock_testkit::{LostReplyProxy, RedisCluster, RedisServer};

#[path = "common/commands.rs"]
mod commands;
use commands::{admin, command_calls, delta};

const TTL: Duration = Duration::from_secs(10);

/// A cache that reaches `server` through `proxy`; short timeouts, so a failure is quick.
fn cache(proxy: &LostReplyProxy) -> RedisCache {
    RedisCache::builder(&proxy.url())
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .build()
        .expect("valid settings")
}

/// One command on `cache` (a holder lookup of a key nobody holds): its connection is open
/// and pooled afterwards.
fn warm_up(cache: &RedisCache) {
    let admin = cache.admin().expect("Redis has admin operations");
    assert_eq!(admin.holder("warm-up").expect("holder"), None);
}

/// Async twin of [`warm_up`]: the runtime's connection is made and connected.
async fn warm_up_async(cache: &RedisCache) {
    let admin = cache.admin().expect("Redis has admin operations");
    assert_eq!(admin.holder_async("warm-up").await.expect("holder"), None);
}

fn pttl(admin: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(admin).expect("PTTL")
}

fn value(admin: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(admin).expect("GET")
}

/// The server ran the plain `SET NX PX` (first send), then the resent form: a script whose
/// own `SET NX` was refused and whose `GET` found the claim's value.
fn assert_resent_as_script(delta: &BTreeMap<String, u64>) {
    assert_eq!(delta.get("set"), Some(&2), "{delta:?}");
    assert_eq!(delta.get("get"), Some(&1), "{delta:?}");
    assert!(delta.contains_key("evalsha"), "{delta:?}");
}

#[test]
fn an_unfenced_claim_whose_reply_was_lost_is_resent_and_wins_sync() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    // Warm up: a pooled connection, which the claim takes (a reused connection found dead
    // is what the backend resends on).
    warm_up(&cache);

    let lock = Lock::new("lost-reply-sync")
        .cache(cache.clone())
        .ttl(TTL)
        .fencing(false);
    proxy.arm("lost-reply-sync");
    let before = command_calls(&mut admin);
    let guard = lock
        .try_acquire()
        .expect("the resent claim finds its own value and wins");
    let delta = delta(&before, &command_calls(&mut admin));
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_resent_as_script(&delta);
    assert_eq!(guard.fence(), 0);

    // Held by this guard, with the TTL the first send set; others are refused.
    let ttl = pttl(&mut admin, "cachelock:lost-reply-sync");
    assert!(ttl > 0 && ttl <= 10_000, "PTTL {ttl}");
    let other = Lock::new("lost-reply-sync")
        .cache(cache.clone())
        .fencing(false);
    assert!(other.try_acquire().unwrap_err().is_locked());
    guard.release().expect("owner-checked release succeeds");
    assert_eq!(value(&mut admin, "cachelock:lost-reply-sync"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfenced_claim_whose_reply_was_lost_is_resent_and_wins_async() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    // Warm up: the runtime's connection is made and connected.
    warm_up_async(&cache).await;

    let lock = Lock::new("lost-reply-async")
        .cache(cache.clone())
        .ttl(TTL)
        .fencing(false);
    proxy.arm("lost-reply-async");
    let before = command_calls(&mut admin);
    let guard = lock
        .try_acquire_async()
        .await
        .expect("the resent claim finds its own value and wins");
    let delta = delta(&before, &command_calls(&mut admin));
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_resent_as_script(&delta);

    let ttl = pttl(&mut admin, "cachelock:lost-reply-async");
    assert!(ttl > 0 && ttl <= 10_000, "PTTL {ttl}");
    let other = Lock::new("lost-reply-async")
        .cache(cache.clone())
        .fencing(false);
    assert!(other.try_acquire_async().await.unwrap_err().is_locked());
    guard
        .release()
        .await
        .expect("owner-checked release succeeds");
    assert_eq!(value(&mut admin, "cachelock:lost-reply-async"), None);
}

/// The server ran the fenced claim script (its `SET NX` won, and one `SET … GET` read and
/// wrote the counter), then the resent script (loaded on first use: `NOSCRIPT`, `SCRIPT
/// LOAD`, sent again), whose `SET NX` was refused and whose two `GET`s found the claim's
/// value and the counter.
fn assert_fenced_resent_as_script(delta: &BTreeMap<String, u64>) {
    assert!(delta.get("evalsha").is_some_and(|n| *n >= 2), "{delta:?}");
    assert_eq!(delta.get("set"), Some(&3), "{delta:?}");
    assert_eq!(delta.get("get"), Some(&2), "{delta:?}");
}

#[test]
fn a_fenced_claim_whose_reply_was_lost_is_resent_and_wins_sync() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    warm_up(&cache);
    let before_fence = Lock::new("lost-fenced-before")
        .cache(cache.clone())
        .try_acquire()
        .expect("free")
        .fence();

    let lock = Lock::new("lost-fenced-sync").cache(cache.clone()).ttl(TTL);
    proxy.arm("lost-fenced-sync");
    let before = command_calls(&mut admin);
    let guard = lock
        .try_acquire()
        .expect("the resent claim finds its own value and wins");
    let delta = delta(&before, &command_calls(&mut admin));
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_fenced_resent_as_script(&delta);
    assert!(
        guard.fence() > before_fence,
        "{} after {before_fence}",
        guard.fence()
    );
    assert!(lock.try_acquire().unwrap_err().is_locked());
    guard.release().expect("owner-checked release succeeds");
    assert_eq!(value(&mut admin, "cachelock:lost-fenced-sync"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_claim_whose_reply_was_lost_is_resent_and_wins_async() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    warm_up_async(&cache).await;
    // The claim script is loaded, so the first send runs (a `NOSCRIPT` reply lost would be
    // a claim that never ran).
    let first = Lock::new("lost-fenced-before")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .expect("free");
    let before_fence = first.fence();
    // Released here, not by a drop: a dropped async guard releases in the background, and
    // that release could land among the commands counted below.
    first.release().await.expect("released");

    let lock = Lock::new("lost-fenced-async").cache(cache.clone()).ttl(TTL);
    proxy.arm("lost-fenced-async");
    let before = command_calls(&mut admin);
    let guard = lock
        .try_acquire_async()
        .await
        .expect("the resent claim finds its own value and wins");
    let delta = delta(&before, &command_calls(&mut admin));
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_fenced_resent_as_script(&delta);
    assert!(guard.fence() > before_fence);
    assert!(lock.try_acquire_async().await.unwrap_err().is_locked());
    guard
        .release()
        .await
        .expect("owner-checked release succeeds");
    assert_eq!(value(&mut admin, "cachelock:lost-fenced-async"), None);
}

/// On a cluster, a fenced claim refused by its first form is asked again in the resent form
/// (the client may have resent it unseen): a repeat of the same claim wins on its own value,
/// with a fence no lower than its first grant's; another claim is still refused.
#[test]
fn on_a_cluster_a_fenced_claim_that_finds_its_own_value_wins() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    let mine = Claim::new(TTL);
    let other = Claim::new(TTL);
    for key in ["fenced-a", "fenced-b", "fenced-c"] {
        let first = cache.claim(key, &mine).unwrap().expect("free").fence;
        let again = cache
            .claim(key, &mine)
            .unwrap()
            .unwrap_or_else(|| panic!("{key}: the resend finds its own value"));
        assert!(again.fence >= first, "{key}: {} after {first}", again.fence);
        assert!(cache.claim(key, &other).unwrap().is_none(), "{key} held");
        assert!(cache.release(key, mine.token(), None).unwrap());
    }
}

#[once(key = "lost-reply-once", cache = cache, ttl = "10s")]
fn job(cache: &RedisCache) -> Option<u32> {
    Some(7)
}

#[test]
fn an_unfenced_once_whose_claim_reply_was_lost_still_runs() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    warm_up(&cache);

    proxy.arm("lost-reply-once");
    assert_eq!(job(&cache), Some(7), "the call runs: its resent claim won");
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_eq!(
        value(&mut admin, "cachelock:lost-reply-once"),
        None,
        "released after the call"
    );
}

/// The resent form wins only on the claim's own value: a claim that was refused, and whose
/// refusal was lost, is refused again and leaves the holder's key and TTL alone.
#[test]
fn a_resent_unfenced_claim_never_takes_another_holders_key() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let direct = RedisCache::from_url(&server.url()).expect("valid url");
    let holder = Claim::new(TTL).with_fencing(false);
    assert!(direct.claim("lost-reply-held", &holder).unwrap().is_some());

    let cache = cache(&proxy);
    warm_up(&cache);
    proxy.arm("lost-reply-held");
    let mine = Claim::new(Duration::from_secs(60)).with_fencing(false);
    assert!(cache
        .claim("lost-reply-held", &mine)
        .expect("answers")
        .is_none());
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_eq!(
        value(&mut admin, "lost-reply-held").as_deref(),
        Some(holder.owner_value().as_str())
    );
    let ttl = pttl(&mut admin, "lost-reply-held");
    assert!(
        ttl > 0 && ttl <= 10_000,
        "the holder's TTL is untouched: {ttl}"
    );
}

// --- Redis Cluster ---------------------------------------------------------------------------

/// The cluster client resends a command by itself after a dropped connection, without
/// telling: the resend is the same `SET NX PX` again. Sending it again by hand is that
/// resend: it must win on its own value, and only on it.
#[test]
fn on_a_cluster_an_unfenced_claim_that_finds_its_own_value_wins_sync() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    let mine = Claim::new(TTL).with_fencing(false);
    let other = Claim::new(TTL).with_fencing(false);
    let other_fenced = Claim::new(TTL);
    for key in ["resent-a", "resent-b", "resent-c", "resent-d"] {
        let won = cache.claim(key, &mine).unwrap().expect("free");
        assert_eq!(won.fence, 0, "{key}: unfenced");
        let again = cache
            .claim(key, &mine)
            .unwrap()
            .unwrap_or_else(|| panic!("{key}: the resend finds its own value"));
        assert_eq!(again.fence, 0, "{key}: unfenced");
        assert!(cache.claim(key, &other).unwrap().is_none(), "{key} held");
        assert!(
            cache.claim(key, &other_fenced).unwrap().is_none(),
            "{key} held"
        );
        assert!(cache.release(key, mine.token(), None).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_an_unfenced_claim_that_finds_its_own_value_wins_async() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    let mine = Claim::new(TTL).with_fencing(false);
    let other = Claim::new(TTL).with_fencing(false);
    for key in ["resent-a", "resent-b", "resent-c", "resent-d"] {
        assert!(cache.claim_async(key, &mine).await.unwrap().is_some());
        assert!(
            cache.claim_async(key, &mine).await.unwrap().is_some(),
            "{key}: the resend finds its own value"
        );
        assert!(cache.claim_async(key, &other).await.unwrap().is_none());
        assert!(cache.release_async(key, mine.token(), None).await.unwrap());
    }
}

/// A claim whose reply was lost on a connection the backend does not send again on (a fresh
/// one: nothing is known about it) fails with `Error::Backend`, and the claim that landed is
/// given back at once (owner-checked), instead of blocking the key, held by nobody, for its
/// whole TTL.
#[test]
fn a_claim_that_fails_after_it_landed_is_given_back() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    // No warm-up: the claim opens the connection, so its loss is not sent again.
    let cache = cache(&proxy);
    proxy.arm("lost-reply-fresh");
    let error = Lock::new("lost-reply-fresh")
        .cache(cache.clone())
        .ttl(Duration::from_secs(600))
        .fencing(false)
        .try_acquire()
        .expect_err("the reply was lost on a fresh connection");
    assert!(
        matches!(error, cachelock::Error::Backend { .. }),
        "{error:?}"
    );
    assert_eq!(proxy.lost(), 1, "the SET ran and its reply was lost");
    // Given back in the background: the key goes long before its 600 s TTL.
    cachelock_testkit::eventually("the landed claim is given back", || {
        value(&mut admin, "cachelock:lost-reply-fresh").is_none()
    });
    let again = Lock::new("lost-reply-fresh")
        .cache(cache)
        .fencing(false)
        .try_acquire()
        .expect("free again");
    again.release().expect("release");
}

/// Takes and releases a lock, so that the server has the release script loaded and the
/// next release's first `EVALSHA` runs (instead of answering `NOSCRIPT`).
fn warm_up_release(cache: &RedisCache) {
    Lock::new("warm-up-release")
        .cache(cache.clone())
        .try_acquire()
        .expect("free key")
        .release()
        .expect("release");
}

/// A release whose first send ran (the key is deleted) but whose reply was lost: the
/// backend sends it again, finds the key gone, and must not call that a lost lock.
#[test]
fn a_release_whose_reply_was_lost_is_not_reported_lost_sync() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    warm_up(&cache);
    // The release script is loaded (a first `EVALSHA` would only get `NOSCRIPT`).
    warm_up_release(&cache);

    let guard = Lock::new("lost-release-sync")
        .cache(cache.clone())
        .ttl(TTL)
        .try_acquire()
        .expect("free key");
    proxy.arm("lost-release-sync");
    guard
        .release()
        .expect("the release landed: its resend finds the key gone, not lost");
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_eq!(value(&mut admin, "cachelock:lost-release-sync"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_whose_reply_was_lost_is_not_reported_lost_async() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    warm_up_async(&cache).await;
    warm_up_release(&cache);

    let guard = Lock::new("lost-release-async")
        .cache(cache.clone())
        .ttl(TTL)
        .try_acquire_async()
        .await
        .expect("free key");
    proxy.arm("lost-release-async");
    guard
        .release()
        .await
        .expect("the release landed: its resend finds the key gone, not lost");
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_eq!(value(&mut admin, "cachelock:lost-release-async"), None);
}

/// The resent release still never deletes another holder's key: sent again after the key
/// changed hands, it refuses (the lock is reported lost, and the new holder keeps it).
#[test]
fn a_resent_release_never_deletes_another_holders_key() {
    let server = RedisServer::start();
    let proxy = LostReplyProxy::start(server.port());
    let mut admin = admin(&server);
    let cache = cache(&proxy);
    warm_up(&cache);
    warm_up_release(&cache);

    let guard = Lock::new("resent-release-other")
        .cache(cache.clone())
        .ttl(TTL)
        .try_acquire()
        .expect("free key");
    // An admin frees the key and someone else takes it, straight on the server.
    let _: () = redis::cmd("SET")
        .arg("cachelock:resent-release-other")
        .arg("another-owner|1|elsewhere|")
        .query(&mut admin)
        .expect("SET");
    proxy.arm("resent-release-other");
    assert!(guard.release().unwrap_err().is_lost());
    assert_eq!(proxy.lost(), 1, "the first reply was lost");
    assert_eq!(
        value(&mut admin, "cachelock:resent-release-other").as_deref(),
        Some("another-owner|1|elsewhere|")
    );
}
