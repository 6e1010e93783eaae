//! `cachelock serve`, end to end: the real binary driven by a real HTTP client (ureq)
//! through every endpoint and every error. Memory backend here; `serve_redis.rs` for Redis.

mod common;

use std::net::TcpListener;

use common::http::Server;
use common::*;
use serde_json::{json, Value};

#[test]
fn canhaz_grants_a_token_and_refuses_the_same_path_naming_the_holder() {
    let server = Server::memory(&[]);
    let (status, granted) = server.get("/canhaz/my/resource");
    assert_eq!(status, 200);
    assert_eq!(granted["ok"], true);
    let token = granted["token"].as_str().unwrap();
    assert_eq!(token.len(), 32, "{granted}");
    assert_eq!(granted["path"], "/my/resource");
    assert_eq!(granted["ttl"], 3600.0, "the default TTL is 1h");

    // Locker: a holder without an id is "?".
    let refused = server.refused("/my/resource");
    assert_eq!(refused["lockedBy"], "?");
    assert_eq!(refused["lockedPath"], "/my/resource");
    assert!(refused["ttl"].as_f64().unwrap() <= 3600.0);
    assert!(
        refused.get("token").is_none(),
        "no token for the refused: {refused}"
    );

    // With an id, lockedBy is the id (canhaz and dohaz).
    server.lock("/this?id=timmy");
    assert_eq!(server.refused("/this?id=other")["lockedBy"], "timmy");
    assert_eq!(server.get("/dohaz/this").1["lockedBy"], "timmy");

    // Paths and ids are percent-decoded; an id may hold any printable text.
    let (_, body) = server.get("/canhaz/build%20farm/caf%C3%A9?id=job%7C42%20%C3%A9");
    assert_eq!(
        (&body["ok"], &body["path"]),
        (&json!(true), &json!("/build farm/café"))
    );
    let refused = server.refused("/build%20farm");
    assert_eq!(refused["lockedBy"], "job|42 é");
    assert_eq!(refused["lockedPath"], "/build farm/café");
}

#[test]
fn the_tree_rules_hold_over_http() {
    let server = Server::memory(&[]);
    let bar = server.lock("/foo/bar");
    // A parent and a child are refused, naming the held path; a sibling is granted.
    assert_eq!(server.refused("/foo")["lockedPath"], "/foo/bar");
    assert_eq!(server.refused("/foo/bar/baz")["lockedPath"], "/foo/bar");
    let zip = server.lock("/foo/zip");
    server.unlock("/foo/bar", &bar);
    server.unlock("/foo/zip", &zip);

    // Locker's examples: lockParents=False leaves the parent free...
    let bar = server.lock("/foo/bar?lockParents=False");
    let foo = server.lock("/foo");
    server.unlock("/foo", &foo);
    server.unlock("/foo/bar", &bar);
    // ...and lockChildren=False the children.
    let parent = server.lock("/bar?lockChildren=False");
    let child = server.lock("/bar/foo");
    // The flags relax only their direction: /bar itself and /bar/foo's parent stay locked.
    assert_eq!(server.refused("/bar")["lockedPath"], "/bar");
    server.unlock("/bar/foo", &child);
    server.unlock("/bar", &parent);

    // Both flags together; the root conflicts with everything below it.
    let alone = server.lock("/x/y?lockParents=false&lockChildren=false");
    let child = server.lock("/x/y/z");
    server.unlock("/x/y/z", &child);
    server.lock("/x");
    assert_eq!(
        server.refused("/x/y/z")["lockedPath"],
        "/x",
        "/x locks its children"
    );
    assert_eq!(server.refused("/")["ok"], false);
    server.unlock("/x/y", &alone);
}

#[test]
fn the_root_locks_everything() {
    let server = Server::memory(&[]);
    let root = server.lock("/?id=admin");
    assert_eq!(server.refused("/any/path")["lockedBy"], "admin");
    assert_eq!(server.get("/dohaz/any").1["lockedPath"], "/");
    server.unlock("/", &root);
    server.lock("/any/path");
}

#[test]
fn nowant_releases_only_with_the_right_token() {
    let server = Server::memory(&[]);
    let token = server.lock("/printer");

    let (status, body) = server.get("/nowant/printer");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let (status, _) = server.get("/nowant/printer?token=");
    assert_eq!(status, 400, "an empty token is a missing token");

    let (status, body) = server.get("/nowant/printer?token=0123456789abcdef0123456789abcdef");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["ok"], false);
    let (status, _) = server.get("/nowant/printer?token=a|b");
    assert_eq!(status, 403);
    assert_eq!(
        server.get("/dohaz/printer").1["lockedPath"],
        "/printer",
        "still held"
    );

    // The token of another path does not release this one.
    let other = server.lock("/scanner");
    let (status, _) = server.get(&format!("/nowant/printer?token={other}"));
    assert_eq!(status, 403);

    server.unlock("/printer", &token);
    assert_eq!(server.get("/dohaz/printer").1["lockedBy"], Value::Null);
    let (status, body) = server.get(&format!("/nowant/printer?token={token}"));
    assert_eq!(status, 404, "released twice: {body}");
    assert!(
        body["error"].as_str().unwrap().contains("not locked"),
        "{body}"
    );
}

#[test]
fn dohaz_tells_who_is_in_the_way() {
    let server = Server::memory(&[]);
    assert_eq!(
        server.get("/dohaz/some/resource"),
        (
            200,
            json!({"lockedBy": null, "lockedPath": null, "ttl": null})
        )
    );
    server.lock("/a/b?id=job-7&ttl=10m");
    for path in ["/dohaz/a/b", "/dohaz/a", "/dohaz/a/b/c"] {
        let (status, body) = server.get(path);
        assert_eq!(status, 200);
        assert_eq!(
            (&body["lockedBy"], &body["lockedPath"]),
            (&json!("job-7"), &json!("/a/b")),
            "{path}"
        );
        assert!(body["ttl"].as_f64().unwrap() <= 600.0, "{body}");
    }
    assert_eq!(
        server.get("/dohaz/a/c").1["lockedBy"],
        Value::Null,
        "a sibling"
    );
    // With the flags: would a canhaz that does not lock children run into anything?
    assert_eq!(
        server.get("/dohaz/a?lockChildren=false").1["lockedBy"],
        Value::Null
    );
}

#[test]
fn a_lock_ends_with_its_ttl() {
    let server = Server::memory(&["--default-ttl", "10m", "--max-ttl", "1h"]);
    let (_, body) = server.get("/canhaz/short?ttl=1s");
    assert_eq!(
        (&body["ok"], &body["ttl"]),
        (&json!(true), &json!(1.0)),
        "{body}"
    );
    wait_until("the 1 s lock to expire", || {
        server.get("/dohaz/short").1["lockedBy"].is_null()
    });
    server.lock("/short");
    assert_eq!(
        server.get("/canhaz/default").1["ttl"],
        600.0,
        "--default-ttl"
    );
    assert_eq!(
        server.get("/canhaz/bare?ttl=90").1["ttl"],
        90.0,
        "bare seconds"
    );
}

#[test]
fn bad_input_gets_a_4xx_with_a_json_error_never_a_500() {
    let server = Server::memory(&["--max-ttl", "1h"]);
    let cases: [(&str, u16, &str); 17] = [
        ("/canhaz/a//b", 400, "empty segment"),
        ("/canhaz/a/", 400, "end with"),
        ("/canhaz/a/../b", 400, "invalid path"),
        ("/canhaz/a/./b", 400, "invalid path"),
        ("/canhaz/%FF", 400, "UTF-8"),
        ("/canhaz/a%01b", 400, "control"),
        ("/canhaz/x?ttl=0", 400, "greater than zero"),
        ("/canhaz/x?ttl=2h", 400, "maximum"),
        ("/canhaz/x?ttl=soon", 400, "invalid duration"),
        ("/canhaz/x?lockParents=maybe", 400, "not a boolean"),
        ("/canhaz/x?lockparents=false", 400, "unknown parameter"),
        ("/canhaz/x?id=a&id=b", 400, "more than once"),
        ("/nowant/x?token=t&id=a", 400, "unknown parameter"),
        ("/dohaz/x?ttl=1s", 400, "unknown parameter"),
        ("/dohaz/a//b", 400, "empty segment"),
        ("/canhaz", 404, "no endpoint"),
        ("/unlock/x", 404, "no endpoint"),
    ];
    for (path, expected, words) in cases {
        let (status, body) = server.get(path);
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["ok"], false, "{path}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(error.contains(words), "{path}: {error}");
    }
    let long_id = format!("/canhaz/x?id={}", "i".repeat(300));
    assert_eq!(server.get(&long_id).0, 400);
    let long_path = format!("/canhaz/{}", "p".repeat(2000));
    assert_eq!(server.get(&long_path).0, 400);

    for path in [
        "/canhaz/x",
        "/nowant/x?token=t",
        "/stillwant/x?token=t",
        "/canhaz/",
    ] {
        for method in ["POST", "PUT", "DELETE"] {
            let (status, body, allow) = server.request(method, path);
            assert_eq!(status, 405, "{method} {path}: {body}");
            assert!(body["error"].as_str().unwrap().contains(method), "{body}");
            assert_eq!(allow.as_deref(), Some("GET"), "{method} {path}");
        }
        // A HEAD (a link checker, a proxy) must not take or drop a lock.
        let (status, _, allow) = server.request("HEAD", path);
        assert_eq!(
            (status, allow.as_deref()),
            (405, Some("GET")),
            "HEAD {path}"
        );
    }
    let (status, body, allow) = server.request("POST", "/dohaz/x");
    assert_eq!(
        (status, allow.as_deref()),
        (405, Some("GET, HEAD")),
        "{body}"
    );
    let (status, _, _) = server.request("HEAD", "/dohaz/x");
    assert_eq!(status, 200, "HEAD of a query is fine");
    // None of it locked anything, and the server still answers.
    assert_eq!(server.get("/dohaz/").1["lockedBy"], Value::Null);
}

#[test]
fn stillwant_extends_a_lock_with_its_token_only() {
    let server = Server::memory(&["--max-ttl", "1h"]);
    let token = server.lock("/long/job?ttl=2s");
    let (status, body) = server.get(&format!("/stillwant/long/job?token={token}&ttl=30m"));
    assert_eq!((status, &body), (200, &json!({"ok": true, "ttl": 1800.0})));
    let left = server.get("/dohaz/long/job").1["ttl"].as_f64().unwrap();
    assert!(left > 2.0, "the TTL was reset to 30 min: {left}");
    let (status, body) = server.get(&format!("/stillwant/long/job?token={token}"));
    assert_eq!(
        (status, &body["ttl"]),
        (200, &json!(3600.0)),
        "default TTL: {body}"
    );

    let cases: [(String, u16); 6] = [
        ("/stillwant/long/job".to_owned(), 400),
        (format!("/stillwant/long/job?token={token}&ttl=2h"), 400),
        (format!("/stillwant/long/job?token={token}&id=x"), 400),
        (
            "/stillwant/long/job?token=0123456789abcdef0123456789abcdef".to_owned(),
            403,
        ),
        (format!("/stillwant/long?token={token}"), 404),
        (format!("/stillwant/long//job?token={token}"), 400),
    ];
    for (path, expected) in cases {
        let (status, body) = server.get(&path);
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["ok"], false, "{path}: {body}");
    }
    server.unlock("/long/job", &token);
    let (status, _) = server.get(&format!("/stillwant/long/job?token={token}"));
    assert_eq!(status, 404, "a released lock cannot be extended");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let server = Server::memory(&[]);
    server.lock("/held");
    assert_eq!(server.stop(), 0);
}

#[test]
fn serve_refuses_bad_settings_and_a_taken_address() {
    let output = cachelock()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--default-ttl",
            "2h",
            "--max-ttl",
            "1h",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    assert!(stderr(&output).contains("--max-ttl"), "{}", stderr(&output));

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = cachelock()
        .args(["serve", "--listen", &address])
        .output()
        .unwrap();
    assert_eq!(code(&output), 71, "{}", stderr(&output));
    assert!(stderr(&output).contains(&address), "{}", stderr(&output));

    let help = cachelock().args(["serve", "--help"]).output().unwrap();
    assert_eq!(code(&help), 0);
    assert!(
        stdout(&help).contains("/canhaz/<path>"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn a_backend_that_is_down_gets_503_with_a_json_error() {
    let port = cachelock_testkit::free_port();
    let server = Server::redis(&format!("redis://127.0.0.1:{port}"), &[]);
    for path in [
        "/canhaz/a",
        "/nowant/a?token=0123456789abcdef0123456789abcdef",
        "/dohaz/a",
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["ok"], false);
        assert!(
            body["error"].as_str().unwrap().contains("unavailable"),
            "{body}"
        );
    }
    // Bad input is still the client's fault, whatever the backend.
    assert_eq!(server.get("/canhaz/a//b").0, 400);
}

#[test]
fn canhaz_answers_a_fence_that_grows_with_every_grant() {
    let server = Server::memory(&[]);
    let (_, first) = server.get("/canhaz/fenced/a");
    let fence = |body: &Value| {
        body["fence"]
            .as_u64()
            .unwrap_or_else(|| panic!("a fence: {body}"))
    };
    assert!(fence(&first) > 0, "{first}");
    let token = first["token"].as_str().unwrap().to_owned();
    server.unlock("/fenced/a", &token);
    let (_, again) = server.get("/canhaz/fenced/a");
    assert!(fence(&again) > fence(&first), "{again} after {first}");
    let (_, other) = server.get("/canhaz/fenced/b");
    assert!(
        fence(&other) > fence(&again),
        "one sequence per lock space: {other}"
    );
    // A refused canhaz has no fence.
    assert!(server.refused("/fenced/a").get("fence").is_none());
}

#[test]
fn every_request_is_logged_on_stderr_without_its_token() {
    let server = Server::memory(&[]);
    let token = server.lock("/logged/path?id=job-7");
    server.get(&format!("/stillwant/logged/path?token={token}&ttl=5m"));
    server.unlock("/logged/path", &token);
    server.get("/nowant/logged/path?token=0123456789abcdef0123456789abcdef");
    server.get("/nowhere");
    wait_until("the log of the last request", || {
        server.stderr().contains("path=/nowhere")
    });
    let log = server.stderr();
    assert!(!log.contains(&token), "a token in the log: {log}");
    assert!(
        !log.contains("0123456789abcdef"),
        "a token in the log: {log}"
    );
    assert!(!log.contains("token="), "a query string in the log: {log}");
    let line = |path: &str, status: &str| {
        log.lines()
            .find(|line| line.contains(&format!("path={path} ")) && line.contains(status))
            .unwrap_or_else(|| panic!("no {path} {status} line: {log}"))
            .to_owned()
    };
    let canhaz = line("/canhaz/logged/path", "status=200");
    for field in [
        "INFO",
        "method=GET",
        "lock=\"/logged/path\"",
        "granted=true",
        "fence=",
    ] {
        assert!(canhaz.contains(field), "{field}: {canhaz}");
    }
    line("/stillwant/logged/path", "status=200");
    line("/nowant/logged/path", "status=200");
    line("/nowant/logged/path", "status=404");
    let unknown = line("/nowhere", "status=404");
    assert!(!unknown.contains("lock="), "{unknown}");
}
