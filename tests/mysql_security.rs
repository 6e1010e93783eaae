//! Security: passwords never leak into `Debug`, `Display`, errors or tracing output, and a
//! lock can only be released or extended by its owner, even from another store value.
#![cfg(feature = "mysql")]

use std::time::Duration;

use cachelock::mysql::{driver, MysqlStore};
use cachelock::{Claim, Error, Lock, LockStore};
use cachelock_testkit::mysql::MysqlDb;
use cachelock_testkit::TracingCapture;

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

/// A user with a password, allowed on the test database only; dropped at the end.
struct User<'a> {
    db: &'a MysqlDb,
    name: String,
}

impl<'a> User<'a> {
    fn create(db: &'a MysqlDb) -> User<'a> {
        let name = format!("cl_{}", &db.name()[db.name().len() - 12..]);
        db.sql(&format!(
            "CREATE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON `{}`.* TO '{name}'@'%'",
            db.name()
        ));
        User { db, name }
    }

    fn url(&self, password: &str) -> String {
        let addr = self.db.addr();
        format!("mysql://{}:{password}@{addr}/{}", self.name, self.db.name())
    }
}

impl Drop for User<'_> {
    fn drop(&mut self) {
        let _ = self.db.try_sql(&format!("DROP USER '{}'@'%'", self.name));
    }
}

#[test]
fn passwords_never_show_in_debug_display_errors_or_tracing() {
    let db = MysqlDb::create();
    let user = User::create(&db);
    let good = user.url(PASSWORD);
    let wrong = user.url(WRONG);
    let capture = TracingCapture::new();

    tracing::subscriber::with_default(capture.clone(), || {
        let store = MysqlStore::from_url(&good).expect("valid url");
        assert_no_secret("Debug of MysqlStore", &format!("{store:?}"));
        assert_no_secret(
            "Debug of the builder",
            &format!("{:?}", MysqlStore::builder(&good)),
        );
        let guard = Lock::new("secure")
            .cache(store.clone())
            .try_acquire()
            .expect("the password works");
        assert_no_secret("Debug of a guard", &format!("{guard:?}"));
        guard.release().expect("released");

        // From the app's pool.
        let pool = driver::Pool::new(good.as_str()).expect("pool");
        assert_no_secret(
            "Debug of MysqlStore::from_pool",
            &format!("{:?}", MysqlStore::from_pool(pool)),
        );

        // The wrong password: errors from a lock, a raw claim and an admin lookup.
        let bad = MysqlStore::from_url(&wrong).expect("valid url");
        assert_no_secret("Debug of MysqlStore", &format!("{bad:?}"));
        let error = Lock::new("secure")
            .cache(bad.clone())
            .try_acquire()
            .expect_err("wrong password");
        assert!(error.is_backend(), "{error:?}");
        assert_no_secret("an authentication error", &error_texts(&error));
        let raw = bad
            .claim("k", &Claim::new(Duration::from_secs(5)))
            .expect_err("wrong password");
        assert_no_secret("a raw store error", &format!("{raw} | {raw:?}"));
        let raw = bad
            .admin()
            .expect("MySQL has admin operations")
            .holder("k")
            .expect_err("wrong password");
        assert_no_secret("a raw admin error", &format!("{raw} | {raw:?}"));

        // A guard whose release fails (the password changed, the pooled connection
        // killed) logs the failure on drop.
        let guard = Lock::new("dropped")
            .cache(store.clone())
            .try_acquire()
            .expect("free");
        db.sql(&format!(
            "ALTER USER '{}'@'%' IDENTIFIED BY '{WRONG}'",
            user.name
        ));
        let ids = db.sql(&format!(
            "SELECT id FROM information_schema.processlist WHERE user = '{}'",
            user.name
        ));
        for id in ids.lines().filter(|l| !l.trim().is_empty()) {
            let _ = db.try_sql(&format!("KILL {}", id.trim()));
        }
        drop(guard);
    });

    // Bad URLs: the configuration error redacts them.
    for bad in [
        format!("mysql://u:{PASSWORD}@127.0.0.1:notaport/db"),
        format!("mysql://u:{PASSWORD}@h/db?nonsense=1"),
        format!("mysql://u:{PASSWORD}@h/db?table=bad%20name"),
        format!("mysqlx://u:{PASSWORD}@h/db"),
    ] {
        if let Err(error) = MysqlStore::from_url(&bad) {
            assert_no_secret("a configuration error", &format!("{error} | {error:?}"));
        }
        if let Err(error) = cachelock::store_from_url(&bad) {
            assert_no_secret("store_from_url's error", &format!("{error} | {error:?}"));
        }
    }

    let logs = capture.text();
    assert!(
        logs.contains("releasing lock failed"),
        "tracing captured the failed release: {logs}"
    );
    assert_no_secret("tracing output", &logs);
}

#[test]
fn another_store_cannot_release_or_extend_a_lock() {
    let db = MysqlDb::create();
    let owner = MysqlStore::from_url(&db.url()).expect("valid url");
    let other = MysqlStore::from_url(&db.url()).expect("valid url");
    let guard = Lock::new("owned")
        .cache(owner.clone())
        .ttl(Duration::from_secs(30))
        .try_acquire()
        .expect("free");
    let key = guard.key().to_owned();
    let own = Claim::new(Duration::from_secs(30));
    assert!(other.claim(&key, &own).expect("answers").is_none());
    for token in [own.token(), "", key.as_str(), "%", "' OR '1'='1"] {
        assert!(
            !other.release(&key, token, None).expect("refused"),
            "{token:?}"
        );
        assert!(!other
            .extend(&key, token, Duration::from_millis(1), None)
            .expect("refused"));
    }
    assert!(Lock::new("owned")
        .cache(other.clone())
        .try_acquire()
        .expect_err("still held")
        .is_locked());
    guard.release().expect("the owner releases it");
}
