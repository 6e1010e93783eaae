//! The cost of a lock on Redis: an uncontended acquire + release is exactly two commands
//! sent to the server (`EVALSHA` of the claim script, then `EVALSHA` of the release script),
//! read from `INFO commandstats`.
//!
//! Redis also counts the commands a script runs inside the server: the claim script's `SET
//! NX PX` of the lock, `TIME`, and one `SET … GET` that reads and writes the fence counter;
//! the release script's `GET`, `DEL` and `PUBLISH` (the release notification). Those are not
//! round trips, and the test names them separately.
//!
//! An `#[once]` without `fence = ...` claims without a fencing token: `SET NX PX` (sent by
//! the client), then the release `EVALSHA`; still two commands.
#![cfg(feature = "redis")]

use std::collections::BTreeMap;
use std::time::Duration;

use cachelock::redis::RedisCache;
use cachelock::{once, Lock};
use cachelock_testkit::RedisServer;

#[path = "common/commands.rs"]
mod commands;
use commands::{admin, command_calls, delta};

/// Commands the scripts run inside the server: not sent by the client.
const INSIDE_SCRIPTS: [&str; 5] = ["get", "set", "time", "del", "publish"];

fn sent_by_client(delta: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    delta
        .iter()
        .filter(|(name, _)| !INSIDE_SCRIPTS.contains(&name.as_str()))
        .map(|(name, &calls)| (name.clone(), calls))
        .collect()
}

fn expected_two() -> BTreeMap<String, u64> {
    BTreeMap::from([("evalsha".to_owned(), 2)])
}

/// Everything the server runs for an unfenced acquire + release: `SET NX PX` and the release
/// `EVALSHA` (sent), the release script's `GET`, `DEL`, `PUBLISH` (inside).
fn expected_unfenced() -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("set".to_owned(), 1),
        ("evalsha".to_owned(), 1),
        ("get".to_owned(), 1),
        ("del".to_owned(), 1),
        ("publish".to_owned(), 1),
    ])
}

#[test]
fn uncontended_sync_acquire_and_release_cost_two_commands() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("count-sync")
        .cache(cache.clone())
        .ttl(Duration::from_secs(10));
    // Warm up: opens the pooled connection (its handshake) and loads the script once.
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("released");

    let before = command_calls(&mut admin);
    let guard = lock.try_acquire().expect("free");
    guard.release().expect("released");
    let delta = delta(&before, &command_calls(&mut admin));

    assert_eq!(
        sent_by_client(&delta),
        expected_two(),
        "all commands: {delta:?}"
    );
    // Inside the scripts: claim = SET NX PX, TIME, SET counter GET (read and written in one
    // call); release = GET, DEL, PUBLISH.
    let inside: BTreeMap<String, u64> = delta
        .iter()
        .filter(|(name, _)| INSIDE_SCRIPTS.contains(&name.as_str()))
        .map(|(name, &calls)| (name.clone(), calls))
        .collect();
    assert_eq!(
        inside,
        BTreeMap::from([
            ("get".to_owned(), 1),
            ("set".to_owned(), 2),
            ("time".to_owned(), 1),
            ("del".to_owned(), 1),
            ("publish".to_owned(), 1),
        ]),
        "all commands: {delta:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncontended_async_acquire_and_release_cost_two_commands() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("count-async")
        .cache(cache.clone())
        .ttl(Duration::from_secs(10));
    let warm = lock.try_acquire_async().await.expect("free");
    warm.release().await.expect("released");

    let before = command_calls(&mut admin);
    let guard = lock.try_acquire_async().await.expect("free");
    guard.release().await.expect("released");
    let delta = delta(&before, &command_calls(&mut admin));

    assert_eq!(
        sent_by_client(&delta),
        expected_two(),
        "all commands: {delta:?}"
    );
}

#[test]
fn a_refused_attempt_costs_one_command() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    // Another process's holder: a second handle (the gate of one handle answers for its own
    // holders without a command, see the next test).
    let holder = RedisCache::from_url(&server.url()).expect("valid url");
    let guard = Lock::new("count-refused")
        .cache(holder)
        .try_acquire()
        .expect("free");
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("count-refused").cache(cache.clone());

    let before = command_calls(&mut admin);
    assert!(lock.try_acquire().expect_err("held").is_locked());
    let delta = delta(&before, &command_calls(&mut admin));

    assert_eq!(
        sent_by_client(&delta),
        BTreeMap::from([("evalsha".to_owned(), 1)]),
        "all commands: {delta:?}"
    );
    // Inside the claim script: the refused SET NX alone, as a plain lock's refusal costs; no
    // GET of the counter or of the key (a resent claim checks for its own value in its own
    // script), no TIME, no write.
    assert_eq!(delta.get("get"), None, "{delta:?}");
    assert_eq!(delta.get("set"), Some(&1), "{delta:?}");
    assert_eq!(delta.get("time"), None, "{delta:?}");
    guard.release().expect("released");
}

#[test]
fn a_key_held_through_the_same_handle_is_refused_without_a_command() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("count-held-here").cache(cache.clone());
    let guard = lock.try_acquire().expect("free");

    let before = command_calls(&mut admin);
    assert!(lock.try_acquire().expect_err("held").is_locked());
    let async_refused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(lock.try_acquire_async())
        .expect_err("held");
    assert!(async_refused.is_locked());
    let delta = delta(&before, &command_calls(&mut admin));
    assert_eq!(delta, BTreeMap::new(), "nothing sent");

    guard.release().expect("released");
    let again = lock
        .try_acquire()
        .expect("free again: the release opened the gate");
    again.release().expect("released");
}

#[once(key = "count-once-<id>", cache = cache, ttl = "10s")]
fn job(cache: &RedisCache, id: u32) -> Option<u32> {
    Some(id)
}

#[once(key = "count-once-async-<id>", cache = cache, ttl = "10s")]
async fn async_job(cache: &RedisCache, id: u32) -> Option<u32> {
    Some(id)
}

#[test]
fn an_uncontended_once_call_costs_two_commands() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    assert_eq!(job(&cache, 1), Some(1), "warm-up call runs");

    let before = command_calls(&mut admin);
    assert_eq!(job(&cache, 2), Some(2), "the measured call runs");
    let delta = delta(&before, &command_calls(&mut admin));

    assert_eq!(delta, expected_unfenced());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_async_once_call_costs_two_commands() {
    let server = RedisServer::start();
    let mut admin = admin(&server);
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    assert_eq!(async_job(&cache, 1).await, Some(1), "warm-up call runs");

    let before = command_calls(&mut admin);
    assert_eq!(
        async_job(&cache, 2).await,
        Some(2),
        "the measured call runs"
    );
    let delta = delta(&before, &command_calls(&mut admin));

    assert_eq!(delta, expected_unfenced());
}
