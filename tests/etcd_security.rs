//! Security: the password of an `etcd://user:password@` URL never shows in `Debug`, errors
//! or logs; authentication works; a lock is released and extended by its owner only, even
//! from another store value.
#![cfg(feature = "etcd")]

use std::time::Duration;

use cachelock::etcd::EtcdStore;
use cachelock::{Claim, Error, Lock, LockStore};
use cachelock_testkit::etcd::EtcdServer;
use cachelock_testkit::{free_port, TracingCapture};

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

fn quick(url: &str) -> EtcdStore {
    EtcdStore::builder(url)
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .build()
        .expect("valid settings")
}

#[test]
fn passwords_never_show_and_authentication_works() {
    let capture = TracingCapture::new();
    tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");
    let server = EtcdServer::start();
    server.enable_auth("root", PASSWORD);
    let port = server.port();

    // The right password: locks work.
    let url = format!("etcd://root:{PASSWORD}@127.0.0.1:{port}");
    let store = quick(&url);
    assert_no_secret("Debug of the store", &format!("{store:?}"));
    assert_no_secret(
        "Debug of the builder",
        &format!("{:?}", EtcdStore::builder(&url)),
    );
    let guard = Lock::new("secured")
        .cache(store.clone())
        .try_acquire()
        .expect("acquired");
    assert!(guard.fence() > 0);
    guard.release().expect("released");
    let by_url = cachelock::store_from_url(&url).expect("opens");
    let guard = Lock::new("secured")
        .cache(by_url)
        .try_acquire()
        .expect("acquired by URL");
    guard.release().expect("released");

    // A wrong password, no credentials, and a server that is not there: errors, no secrets.
    for url in [
        format!("etcd://root:{WRONG}@127.0.0.1:{port}"),
        format!("etcd://127.0.0.1:{port}"),
        format!("etcd://root:{WRONG}@127.0.0.1:{}", free_port()),
    ] {
        let store = quick(&url);
        let error = Lock::new("secured")
            .cache(store.clone())
            .try_acquire()
            .expect_err("refused");
        assert!(error.is_backend(), "{error:?}");
        assert_no_secret("the error", &error_texts(&error));
        assert_no_secret("Debug of the store", &format!("{store:?}"));
    }
    // A URL that does not parse.
    let error = EtcdStore::from_url(&format!("etcd://root:{WRONG}@host:notaport")).unwrap_err();
    assert_no_secret("a configuration error", &format!("{error} {error:?}"));
    let Err(error) = cachelock::store_from_url(&format!("etcd://root:{WRONG}@host/x")) else {
        panic!("a URL with a path was accepted");
    };
    assert_no_secret("a store_from_url error", &format!("{error} {error:?}"));

    assert_no_secret("the logs", &capture.text());
}

#[test]
fn only_the_owner_releases_or_extends_even_from_another_store_value() {
    let server = EtcdServer::start();
    let (one, two) = (quick(&server.url()), quick(&server.url()));
    let claim = Claim::new(Duration::from_secs(30)).with_label("owner");
    assert!(one.claim("owned", &claim).unwrap().is_some());
    let token = claim.token();
    for wrong in [
        "",
        &token[..31],
        &token[..token.len() - 1],
        "0123456789abcdef0123456789abcdef",
        &format!("{token}|"),
        &format!("{token}x"),
    ] {
        assert!(!two.release("owned", wrong, None).unwrap(), "{wrong:?}");
        assert!(
            !two.extend("owned", wrong, Duration::from_secs(60), None)
                .unwrap(),
            "{wrong:?}"
        );
    }
    assert!(two
        .extend("owned", token, Duration::from_secs(60), None)
        .unwrap());
    assert!(two.release("owned", token, None).unwrap());
    assert!(!one.release("owned", token, None).unwrap());
}
