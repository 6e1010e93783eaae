//! `cachelock serve --redis`: several serve processes on one redis-server share one lock
//! space. Each test starts its own redis-server on a free loopback port.

mod common;

use cachelock_testkit::RedisServer;
use common::http::Server;
use common::wait_until;
use serde_json::Value;

#[test]
fn two_serve_processes_on_one_redis_share_their_locks() {
    let redis = RedisServer::start();
    let a = Server::redis(&redis.url(), &[]);
    let b = Server::redis(&redis.url(), &[]);

    let token = a.lock("/shared/printer?id=from-a");
    let refused = b.refused("/shared/printer");
    assert_eq!(refused["lockedBy"], "from-a");
    assert_eq!(refused["lockedPath"], "/shared/printer");
    // The tree rules hold across processes: parent and child refused, sibling granted.
    assert_eq!(b.refused("/shared")["lockedBy"], "from-a");
    assert_eq!(b.refused("/shared/printer/tray")["lockedBy"], "from-a");
    let sibling = b.lock("/shared/scanner?id=from-b");
    assert_eq!(a.get("/dohaz/shared/scanner").1["lockedBy"], "from-b");

    // The HTTP locks live in their own space (--space): `cachelock list` of `run`'s keys
    // neither shows them nor trips over their keys.
    let list = common::with_redis(&redis.url(), &["list"]);
    assert_eq!(common::code(&list), 0, "{}", common::stderr(&list));
    assert_eq!(common::stdout(&list), "");

    // A token from one server releases through the other.
    let (status, _) = b.get("/nowant/shared/printer?token=0123456789abcdef0123456789abcdef");
    assert_eq!(status, 403, "a wrong token is refused on every server");
    b.unlock("/shared/printer", &token);
    assert_eq!(a.get("/dohaz/shared/printer").1["lockedBy"], Value::Null);
    a.unlock("/shared/scanner", &sibling);
    a.lock("/shared");
}

#[test]
fn contenders_on_two_servers_never_hold_related_paths_at_once() {
    let redis = RedisServer::start();
    let servers = [
        Server::redis(&redis.url(), &[]),
        Server::redis(&redis.url(), &[]),
    ];
    // 16 clients, half on each server, each asks once for one path or a relative of it.
    let paths = ["/race", "/race/a", "/race/a/b", "/race/c"];
    let granted: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let server = &servers[i % 2];
                let path = paths[i % paths.len()];
                scope.spawn(move || {
                    let (status, body) = server.get(&format!("/canhaz{path}?id=client-{i}"));
                    assert_eq!(status, 200, "{body}");
                    (body["ok"] == true).then(|| path.to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    // Every pair of granted paths must be unrelated: only /race/a[/b] and /race/c can
    // coexist, and no path twice.
    assert!(!granted.is_empty(), "somebody won");
    for (i, p) in granted.iter().enumerate() {
        for q in &granted[i + 1..] {
            let related =
                p == q || p.starts_with(&format!("{q}/")) || q.starts_with(&format!("{p}/"));
            assert!(!related, "{p} and {q} were both granted: {granted:?}");
        }
    }
}

#[test]
fn locks_outlive_a_restart_of_serve_and_expire_with_their_ttl() {
    let redis = RedisServer::start();
    let first = Server::redis(&redis.url(), &[]);
    let token = first.lock("/deploy/prod?id=release-42");
    let short = first.lock("/deploy/short?ttl=1s");
    assert_eq!(first.stop(), 0);

    let second = Server::redis(&redis.url(), &[]);
    assert_eq!(second.get("/dohaz/deploy/prod").1["lockedBy"], "release-42");
    second.unlock("/deploy/prod", &token);
    wait_until("the 1 s lock to expire", || {
        second.get("/dohaz/deploy/short").1["lockedBy"].is_null()
    });
    let (status, _) = second.get(&format!("/nowant/deploy/short?token={short}"));
    assert_eq!(status, 404, "an expired lock is not held");
}

#[test]
fn a_redis_outage_gets_503_and_service_resumes_after_it() {
    let mut redis = RedisServer::start();
    let server = Server::redis(&redis.url(), &[]);
    server.lock("/before");
    redis.stop();
    let (status, body) = server.get("/canhaz/during");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    redis.restart(); // a fresh, empty server on the same port
    wait_until("serve to reach the restarted redis", || {
        server.get("/dohaz/after").0 == 200
    });
    server.lock("/after");
}
