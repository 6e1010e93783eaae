//! Security: a memcached password (ASCII authentication, `-Y`) never leaks into `Debug`,
//! `Display`, errors or tracing output; and a lock is only released or extended by its
//! owner, also from another store value (which reads, compares the token, then deletes by
//! CAS).
#![cfg(feature = "memcached")]

use std::time::Duration;

use cachelock::memcached::MemcachedCache;
use cachelock::{store_from_url, Claim, Error, Lock, LockStore};
use cachelock_testkit::memcached::MemcachedServer;
use cachelock_testkit::TracingCapture;

const USER: &str = "locks";
const PASSWORD: &str = "S3cretPassw0rdXyz";
const WRONG: &str = "Wr0ngPassw0rdAbc";

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, WRONG] {
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

#[test]
fn passwords_never_show_in_debug_display_errors_or_tracing() {
    let server = MemcachedServer::start_with_auth(USER, PASSWORD);
    let port = server.port();
    let good = server.url();
    assert!(
        good.contains(PASSWORD),
        "the test's URL carries the password"
    );
    let wrong = format!("memcache://{USER}:{WRONG}@127.0.0.1:{port}");
    let capture = TracingCapture::new();

    tracing::subscriber::with_default(capture.clone(), || {
        // The right password works, sync and through the URL dispatcher.
        let cache = MemcachedCache::from_url(&good).expect("valid url");
        assert_no_secret("Debug of MemcachedCache", &format!("{cache:?}"));
        assert!(format!("{cache:?}").contains(&format!("{USER}:***@")));
        assert_no_secret(
            "Debug of the builder",
            &format!("{:?}", MemcachedCache::builder(&good)),
        );
        let guard = Lock::new("secure")
            .cache(cache.clone())
            .try_acquire()
            .expect("authentication works");
        assert_no_secret("Debug of a guard", &format!("{guard:?}"));
        guard.release().expect("released");
        let store = store_from_url(&good).expect("opens");
        let claim = Claim::new(Duration::from_secs(5));
        assert!(store.claim("k", &claim).expect("claim").is_some());
        assert!(store.release("k", claim.token(), None).expect("release"));

        // The wrong password: errors, all redacted.
        let cache = MemcachedCache::from_url(&wrong).expect("valid url");
        let error = Lock::new("secure")
            .cache(cache.clone())
            .try_acquire()
            .expect_err("wrong password");
        assert!(error.is_backend(), "{error:?}");
        let texts = error_texts(&error);
        assert_no_secret("an authentication error", &texts);
        assert!(texts.contains("refused the user and password"), "{texts}");
        assert!(texts.contains(&format!("{USER}:***@")), "{texts}");
        // The store's own errors (not wrapped in `Error`), from a claim and an admin lookup.
        let raw = cache
            .claim("k", &Claim::new(Duration::from_secs(5)))
            .expect_err("wrong password");
        assert_no_secret("a raw store error", &format!("{raw} | {raw:?}"));
        let raw = cache
            .admin()
            .expect("memcached has admin operations")
            .holder("k")
            .expect_err("wrong password");
        assert_no_secret("a raw admin error", &format!("{raw} | {raw:?}"));

        // A guard whose server refuses it on drop logs the failure.
        let guard = Lock::new("dropped").cache(cache.clone()).try_acquire();
        assert!(guard.is_err());
    });

    // An async path, and a dropped async guard released in the background.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (good_async, wrong_async) = (good.clone(), wrong.clone());
    let _entered = tracing::subscriber::set_default(capture.clone());
    runtime.block_on(async move {
        let cache = MemcachedCache::from_url(&good_async).expect("valid url");
        let guard = Lock::new("secure-async")
            .cache(cache)
            .try_acquire_async()
            .await
            .expect("authentication works");
        drop(guard);
        let cache = MemcachedCache::from_url(&wrong_async).expect("valid url");
        let error = Lock::new("secure-async")
            .cache(cache)
            .try_acquire_async()
            .await
            .expect_err("wrong password");
        assert_no_secret("an async authentication error", &error_texts(&error));
    });
    drop(runtime);
    assert_no_secret("tracing output", &capture.text());
}

#[test]
fn bad_urls_are_reported_without_their_password() {
    for url in [
        format!("memcache://{USER}:{PASSWORD}@127.0.0.1:notaport"),
        format!("memcache://{USER}:{PASSWORD}@a:1,b:2"),
        format!("memcache://{USER}:{PASSWORD}@host/path"),
        format!("memcache://{PASSWORD}@host"),
    ] {
        let error = MemcachedCache::from_url(&url).expect_err("a bad URL");
        assert_no_secret("a configuration error", &format!("{error} | {error:?}"));
        let error = store_from_url(&url).err().expect("a bad URL");
        assert_no_secret("store_from_url's error", &error_texts(&error));
        assert_no_secret(
            "Debug of the builder",
            &format!("{:?}", MemcachedCache::builder(&url)),
        );
    }
}

#[test]
fn only_the_owner_releases_or_extends_also_from_another_store_value() {
    let server = MemcachedServer::start();
    let mine = MemcachedCache::from_url(&server.url()).expect("valid url");
    // Another store value, as another process would have: it never saw the claim's CAS.
    let theirs = MemcachedCache::from_url(&server.url()).expect("valid url");
    let claim = Claim::new(Duration::from_secs(30));
    let other = Claim::new(Duration::from_secs(30));
    assert!(mine.claim("owned", &claim).expect("claim").is_some());
    assert!(!theirs
        .release("owned", other.token(), None)
        .expect("release"));
    assert!(!theirs
        .release("owned", &claim.token()[..31], None)
        .expect("release"));
    assert!(!theirs
        .extend("owned", other.token(), Duration::from_secs(60), None)
        .expect("extend"));
    assert!(!mine.release("owned", other.token(), None).expect("release"));
    // The owner's token works from either value: the other one reads, compares the token,
    // then extends or deletes by the CAS it read.
    assert!(theirs
        .extend("owned", claim.token(), Duration::from_secs(60), None)
        .expect("extend"));
    // `mine` remembers the claim's CAS, which the extend changed: its release finds a
    // mismatch, reads, and still releases its own lock.
    assert!(mine.release("owned", claim.token(), None).expect("release"));
    assert!(theirs.claim("owned", &other).expect("claim").is_some());
    assert!(!mine.release("owned", claim.token(), None).expect("release"));
    assert!(theirs
        .release("owned", other.token(), None)
        .expect("release"));
}
