//! Security: passwords never leak into `Debug`, `Display`, errors or tracing output, and a
//! lock can only be released or extended by its owner, even from another cache value.
#![cfg(feature = "redis")]

use std::collections::HashSet;
use std::time::Duration;

use cachelock::redis::{RedisCache, RedisClusterCache};
use cachelock::{Claim, Error, Guard, Lock, LockStore};
use cachelock_testkit::{RedisServer, TracingCapture};

const PASSWORD: &str = "S3cretPassw0rdXyz";
const ACL_PASSWORD: &str = "AlicePassw0rdQrs";

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, ACL_PASSWORD, "Wr0ngPassw0rdAbc"] {
        assert!(!text.contains(secret), "{what} shows a password: {text}");
    }
}

/// Display and Debug of an error and of every source under it.
fn error_texts(error: &Error) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(source) = next {
        text.push_str(&format!(" | {source} | {source:?}"));
        next = source.source();
    }
    text
}

fn secured_server() -> RedisServer {
    let acl = format!(">{ACL_PASSWORD}");
    RedisServer::start_with_args(&[
        "--requirepass",
        PASSWORD,
        "--user",
        "alice",
        "on",
        &acl,
        "~*",
        "&*",
        "+@all",
    ])
}

#[test]
fn passwords_never_show_in_debug_display_errors_or_tracing() {
    let server = secured_server();
    let port = server.port();
    let good = format!("redis://:{PASSWORD}@127.0.0.1:{port}/0");
    let acl = format!("redis://alice:{ACL_PASSWORD}@127.0.0.1:{port}");
    let wrong = format!("redis://:Wr0ngPassw0rdAbc@127.0.0.1:{port}");
    let capture = TracingCapture::new();

    tracing::subscriber::with_default(capture.clone(), || {
        // The right password, and an ACL user: both work.
        for url in [&good, &acl] {
            let cache = RedisCache::from_url(url).expect("valid url");
            assert_no_secret("Debug of RedisCache", &format!("{cache:?}"));
            assert_no_secret(
                "Debug of the builder",
                &format!("{:?}", RedisCache::builder(url)),
            );
            let guard = Lock::new("secure")
                .cache(cache.clone())
                .try_acquire()
                .expect("auth works");
            assert_no_secret("Debug of a guard", &format!("{guard:?}"));
            guard.release().expect("released");
        }

        // From a client the user built.
        let client = redis::Client::open(good.as_str()).expect("valid url");
        assert_no_secret(
            "Debug of RedisCache::from_client",
            &format!("{:?}", RedisCache::from_client(client)),
        );

        // A cluster cache built from URLs with passwords.
        let cluster = RedisClusterCache::from_urls([&acl]).expect("valid urls");
        assert_no_secret("Debug of RedisClusterCache", &format!("{cluster:?}"));

        // The wrong password: an error, sync and dropped guard paths, all redacted.
        let cache = RedisCache::from_url(&wrong).expect("valid url");
        assert_no_secret("Debug of RedisCache", &format!("{cache:?}"));
        let error = Lock::new("secure")
            .cache(cache.clone())
            .try_acquire()
            .expect_err("wrong password");
        assert!(error.is_backend(), "{error:?}");
        assert_no_secret("an authentication error", &error_texts(&error));
        // The store's own errors (not wrapped in `Error`), from a claim and an admin lookup.
        let raw = cache
            .claim("k", &Claim::new(Duration::from_secs(5)))
            .expect_err("wrong password");
        assert_no_secret("a raw store error", &format!("{raw} | {raw:?}"));
        let raw = cache
            .admin()
            .expect("Redis has admin operations")
            .holder("k")
            .expect_err("wrong password");
        assert_no_secret("a raw admin error", &format!("{raw} | {raw:?}"));

        // A lock whose server goes away logs its failed release on drop.
        let good_cache = RedisCache::from_url(&good).expect("valid url");
        let guard = Lock::new("dropped")
            .cache(good_cache.clone())
            .try_acquire()
            .expect("free");
        let mut admin = redis::Client::open(good.as_str())
            .and_then(|c| c.get_connection())
            .expect("admin connection");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("Wr0ngPassw0rdAbc")
            .query(&mut admin)
            .expect("CONFIG SET");
        // Drop the cache's pooled connection: its next one must authenticate, and fails.
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query(&mut admin)
            .expect("CLIENT KILL");
        drop(guard);
    });

    // Bad URLs: the configuration error redacts them.
    for bad in [
        format!("redis://user:{PASSWORD}@127.0.0.1:notaport"),
        format!("redis://:{PASSWORD}@"),
        format!("rediss+nope://:{PASSWORD}@host"),
        format!("redis+unix:///nowhere.sock?pass={PASSWORD}&db=x"),
    ] {
        if let Err(error) = RedisCache::from_url(&bad) {
            assert_no_secret("a configuration error", &format!("{error} | {error:?}"));
        }
        if let Err(error) = RedisClusterCache::from_urls([&bad]) {
            assert_no_secret(
                "a cluster configuration error",
                &format!("{error} | {error:?}"),
            );
        }
    }

    let logs = capture.text();
    assert!(
        logs.contains("releasing lock failed"),
        "tracing captured the failed release: {logs}"
    );
    assert_no_secret("tracing output", &logs);
}

/// `lock` taken through `cache` (it must be free), and the key as stored.
fn hold(lock: &Lock, cache: &RedisCache) -> (Guard<RedisCache>, String) {
    let guard = lock
        .clone()
        .cache(cache.clone())
        .try_acquire()
        .expect("free");
    let key = guard.key().to_owned();
    (guard, key)
}

#[test]
fn another_cache_cannot_release_or_extend_a_lock() {
    let server = RedisServer::start();
    let owner = RedisCache::from_url(&server.url()).expect("valid url");
    let other = RedisCache::from_url(&server.url()).expect("valid url");
    let lock = Lock::new("owned").ttl(Duration::from_secs(30));
    let (guard, key) = hold(&lock, &owner);

    // The other cache is refused the key, and its tokens neither release nor extend it.
    assert!(lock
        .clone()
        .cache(other.clone())
        .try_acquire()
        .expect_err("held")
        .is_locked());
    for _ in 0..50 {
        let guess = format!("{:032x}", rand_u128());
        assert!(!other.release(&key, &guess, None).expect("refused"));
        assert!(!other
            .extend(&key, &guess, Duration::from_millis(1), None)
            .expect("refused"));
    }
    // Nor does the token of a claim of its own.
    let own = Claim::new(Duration::from_secs(30));
    assert!(other.claim(&key, &own).expect("answers").is_none());
    assert!(!other.release(&key, own.token(), None).expect("refused"));
    assert!(!other
        .extend(&key, own.token(), Duration::from_millis(1), None)
        .expect("refused"));
    // An empty token or the key itself is no better.
    assert!(!other.release(&key, "", None).expect("refused"));
    assert!(!other.release(&key, &key, None).expect("refused"));

    assert!(lock
        .clone()
        .cache(other.clone())
        .try_acquire()
        .expect_err("still held")
        .is_locked());
    guard.release().expect("the owner releases");
    lock.cache(other)
        .try_acquire()
        .expect("now free")
        .release()
        .expect("released");
}

/// The release script compares the owner's whole value first (an unlabelled lock's value
/// as this process stores it), then the token part: either way only the owner releases, with
/// or without a label, also a label that repeats the `|<pid>|<host>|` part of the value.
#[test]
fn only_the_owner_releases_a_lock_with_or_without_a_label() {
    let server = RedisServer::start();
    let owner = RedisCache::from_url(&server.url()).expect("valid url");
    let other = RedisCache::from_url(&server.url()).expect("valid url");
    let admin = owner.admin().expect("Redis has admin operations");
    let probe = Lock::new("probe")
        .cache(owner.clone())
        .try_acquire()
        .expect("free");
    let (value, _) = admin.holder(probe.key()).expect("holder").expect("held");
    probe.release().expect("released");
    // `|<pid>|<host>|`: what follows the token in this process's values.
    let infix = &value[32..];
    for label in [None, Some("nightly".to_owned()), Some(format!("x{infix}"))] {
        let mut lock = Lock::new("labelled").ttl(Duration::from_secs(30));
        if let Some(label) = &label {
            lock = lock.label(label.clone());
        }
        let (guard, key) = hold(&lock, &owner);
        let (stored, _) = admin.holder(&key).expect("holder").expect("held");
        assert!(
            stored.ends_with(label.as_deref().unwrap_or(infix)),
            "{stored}"
        );
        for _ in 0..20 {
            let guess = format!("{:032x}", rand_u128());
            assert!(
                !other.release(&key, &guess, None).expect("refused"),
                "{label:?}"
            );
        }
        assert!(admin.holder(&key).expect("holder").is_some(), "{label:?}");
        guard.release().expect("the owner releases");
        assert!(admin.holder(&key).expect("holder").is_none(), "{label:?}");
    }
}

#[test]
fn tokens_are_unique_and_unguessable_looking() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&server.url()).expect("valid url");
    let mut seen = HashSet::new();
    for i in 0..200 {
        let guard = Lock::new(format!("token-{i}"))
            .cache(cache.clone())
            .try_acquire()
            .expect("free");
        let (value, _ttl) = cache
            .admin()
            .expect("Redis has admin operations")
            .holder(guard.key())
            .expect("holder")
            .expect("the lock value");
        // The value is `<token>|<pid>|<host>|<label>`: the token is its first field.
        let token = value.split('|').next().unwrap_or_default().to_owned();
        assert_eq!(token.len(), 32, "{value}");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert!(seen.insert(token), "a token repeated");
        guard.release().expect("released");
    }
}

/// Not a CSPRNG: only guesses for the test, from the standard library's random hasher.
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    (u128::from(state.hash_one(1u8)) << 64) | u128::from(state.hash_one(2u8))
}
