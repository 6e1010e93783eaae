//! `cachelock serve --auth-token-file`: the bearer token, end to end.

mod common;

use common::http::Server;
use common::*;

/// A token file under cargo's temp dir holding `text`.
fn token_file(text: &str) -> std::path::PathBuf {
    let path = fresh_runtime_dir().join("token");
    std::fs::write(&path, text).expect("write the token file");
    path
}

#[test]
fn requests_without_the_token_or_with_a_wrong_one_get_401_and_the_right_one_is_served() {
    // The file's surrounding white space (a trailing newline) is not part of the token.
    let file = token_file("  correct-horse-battery\n");
    let server = Server::memory(&["--auth-token-file", file.to_str().unwrap()]);

    let (status, body, headers) = server.get_with("/canhaz/a", &[]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["ok"], false);
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");

    for wrong in [
        "Bearer wrong",
        "Bearer correct-horse-batter",
        "Bearer correct-horse-battery!",
        "Basic correct-horse-battery",
        "correct-horse-battery",
    ] {
        let (status, body, headers) = server.get_with("/canhaz/a", &[("Authorization", wrong)]);
        assert_eq!(status, 401, "{wrong}: {body}");
        assert_eq!(body["ok"], false, "{wrong}");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    // Nothing was taken by the refused requests; unknown URLs are refused too (no hint of
    // what exists without the token).
    let (status, _, _) = server.get_with("/no/such/endpoint", &[]);
    assert_eq!(status, 401);

    let auth = [("Authorization", "Bearer correct-horse-battery")];
    let (status, granted, _) = server.get_with("/canhaz/a", &auth);
    assert_eq!((status, &granted["ok"]), (200, &serde_json::json!(true)));
    let token = granted["token"].as_str().unwrap();
    let (status, released, _) = server.get_with(&format!("/nowant/a?token={token}"), &auth);
    assert_eq!((status, released), (200, serde_json::json!({"ok": true})));
    // The scheme is case-insensitive.
    let (status, _, _) = server.get_with(
        "/dohaz/a",
        &[("authorization", "bearer correct-horse-battery")],
    );
    assert_eq!(status, 200);
    assert!(
        !server.stderr().contains("correct-horse-battery"),
        "the token is never logged"
    );
}

#[test]
fn without_a_token_file_loopback_serves_everyone_as_before() {
    let server = Server::memory(&[]);
    assert_eq!(server.get("/dohaz/a").0, 200);
    assert!(!server.stderr().contains("WARNING"), "{}", server.stderr());
}

#[test]
fn an_empty_or_missing_token_file_is_a_usage_error() {
    let empty = token_file(" \n");
    let output = cachelock()
        .args(["--store", "memory://", "serve", "--listen", "127.0.0.1:0"])
        .arg("--auth-token-file")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    assert!(stderr(&output).contains("is empty"), "{}", stderr(&output));

    let missing = fresh_runtime_dir().join("no-such-token");
    let output = cachelock()
        .args(["--store", "memory://", "serve", "--listen", "127.0.0.1:0"])
        .arg("--auth-token-file")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot read the token file"),
        "{}",
        stderr(&output)
    );
}
