//! Connecting: the URL forms (TCP with a database, Unix socket, TLS) and a client handed in.
#![cfg(feature = "redis")]

use std::time::Duration;

use cachelock::redis::RedisCache;
use cachelock::{Claim, Lock, LockStore};
use cachelock_testkit::RedisServer;

fn admin(server: &RedisServer, db: u8) -> redis::Connection {
    redis::Client::open(format!("{}/{db}", server.url()))
        .and_then(|c| c.get_connection())
        .expect("admin connection")
}

/// Claims `key` through `cache`, and returns the value the claim stored.
fn claim(cache: &RedisCache, key: &str) -> String {
    let claim = Claim::new(Duration::from_secs(30));
    assert!(
        cache.claim(key, &claim).expect("claim").is_some(),
        "{key} free"
    );
    claim.owner_value().as_str().to_owned()
}

#[test]
fn the_database_in_the_url_is_used() {
    let server = RedisServer::start();
    let cache = RedisCache::from_url(&format!("{}/3", server.url())).expect("valid url");
    let value = claim(&cache, "where");
    let in_db3: Option<String> = redis::cmd("GET")
        .arg("where")
        .query(&mut admin(&server, 3))
        .expect("GET");
    let in_db0: Option<String> = redis::cmd("GET")
        .arg("where")
        .query(&mut admin(&server, 0))
        .expect("GET");
    assert_eq!(in_db3, Some(value));
    assert_eq!(in_db0, None);
}

#[test]
fn a_unix_socket_url_works() {
    let dir = std::env::temp_dir().join(format!("cachelock-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("redis.sock");
    let server = RedisServer::start_with_args(&[
        "--unixsocket",
        socket.to_str().expect("utf-8 path"),
        "--unixsocketperm",
        "700",
    ]);
    // The socket appears once the server answers on TCP.
    let cache = RedisCache::from_url(&format!("redis+unix://{}?db=1", socket.display()))
        .expect("valid url");
    let guard = Lock::new("over-a-socket")
        .cache(cache.clone())
        .try_acquire()
        .expect("free");
    guard.release().expect("released");
    let value = claim(&cache, "k");
    let in_db1: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut admin(&server, 1))
        .expect("GET");
    assert_eq!(in_db1, Some(value));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_tls_url_builds_only_with_the_tls_feature() {
    // No TLS server here: building connects nothing, so this checks the scheme is known.
    let built = RedisCache::from_url("rediss://127.0.0.1:6380/0");
    if cfg!(feature = "redis-tls") {
        let cache = built.expect("rediss:// builds with the redis-tls feature");
        assert!(format!("{cache:?}").contains("rediss://"));
    } else {
        let error = built.expect_err("rediss:// needs the redis-tls feature");
        assert!(error.to_string().contains("rediss://"), "{error}");
    }
}

#[test]
fn a_client_handed_in_keeps_its_settings() {
    let server = RedisServer::start();
    let client = redis::Client::open(format!("{}/2", server.url())).expect("valid url");
    let cache = RedisCache::from_client(client);
    assert!(format!("{cache:?}").contains("/2"), "{cache:?}");
    let value = claim(&cache, "k");
    let in_db2: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut admin(&server, 2))
        .expect("GET");
    assert_eq!(in_db2, Some(value));
    let in_db0: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut admin(&server, 0))
        .expect("GET");
    assert_eq!(in_db0, None);
}
