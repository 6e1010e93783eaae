//! Passwords in PostgreSQL URLs never show in `Debug`, errors or logs.
#![cfg(feature = "postgres")]

use cachelock::postgres::PostgresStore;
use cachelock::{store_from_url, Error, Lock, LockStore};
use cachelock_testkit::postgres::TestDb;
use cachelock_testkit::{free_port, TracingCapture};

const PASSWORD: &str = "S3cretPassw0rdXyz";

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
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
fn passwords_never_show_in_debug_errors_or_logs() {
    let capture = TracingCapture::new();
    tracing::subscriber::with_default(capture.clone(), || {
        // A server that is down: the error names the target, not the password.
        let down = format!("postgres://app:{PASSWORD}@127.0.0.1:{}/db", free_port());
        let store = PostgresStore::from_url(&down).expect("valid url");
        let debug = format!("{store:?}");
        assert_no_secret("Debug of PostgresStore", &debug);
        assert!(debug.contains("app:***@127.0.0.1"), "{debug}");
        assert_no_secret(
            "Debug of the builder",
            &format!("{:?}", PostgresStore::builder(&down)),
        );
        let lock = Lock::new("secret").cache(store.clone());
        let error = lock.try_acquire().expect_err("no server");
        assert_no_secret("an error", &error_texts(&error));
        let guard_error = lock.holder().expect_err("no server");
        assert_no_secret("a holder error", &error_texts(&guard_error));

        // A URL that does not parse, directly and through store_from_url.
        let bad = format!("postgres://app:{PASSWORD}@127.0.0.1:notaport/db");
        let error = PostgresStore::from_url(&bad).expect_err("bad port");
        assert_no_secret("a ConfigError", &format!("{error} {error:?}"));
        let Err(error) = store_from_url(&bad) else {
            panic!("bad port")
        };
        assert_no_secret("store_from_url's error", &error_texts(&error));

        // A working store with a password in its URL (the test server may ignore it).
        let db = TestDb::create();
        let url = db.url().replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{PASSWORD}@"),
            1,
        );
        if url != db.url() {
            let store = PostgresStore::from_url(&url).expect("valid url");
            let lock = Lock::new("secret").cache(store.clone());
            lock.try_acquire().unwrap().release().unwrap();
            LockStore::wait_for_release(
                &store,
                "cachelock:secret",
                std::time::Duration::from_millis(50),
            );
            assert_no_secret("Debug of a used store", &format!("{store:?}"));
        }
    });
    assert_no_secret("tracing output", &capture.text());
}
