//! `cachelock status`, `list`, `release --force`, `--help` and `--version`, end to end.

mod common;

use cachelock_testkit::RedisServer;
use common::*;

/// Starts `run -k KEY -l LABEL` holding the key until `dir/stop` exists; returns it once held.
fn hold(redis: &RedisServer, dir: &TempDir, key: &str, label: &str) -> std::process::Child {
    let name = key.replace('/', "_");
    let child = spawn_with_redis(
        &redis.url(),
        &[
            "run",
            "-k",
            key,
            "-l",
            label,
            "--",
            "sh",
            "-c",
            &hold_until_stop(dir, &name, 0),
        ],
    );
    recorded_pid(dir, &name);
    child
}

#[test]
fn status_tells_who_holds_a_key_and_exits_1_when_free() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let holder = hold(&redis, &dir, "report", "nightly");

    let held = with_redis(&redis.url(), &["status", "report"]);
    assert_eq!(code(&held), 0, "{}", stderr(&held));
    let line = stdout(&held);
    assert!(line.starts_with("report: held by pid "), "{line}");
    assert!(line.contains(&format!("pid {}", holder.id())), "{line}");
    assert!(line.contains("label \"nightly\""), "{line}");
    assert!(line.contains(" left"), "{line}");

    let json = with_redis(&redis.url(), &["status", "report", "--json"]);
    assert_eq!(code(&json), 0);
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["key"], "report");
    assert_eq!(value["held"], true);
    assert_eq!(value["pid"], holder.id());
    assert_eq!(value["label"], "nightly");
    assert!(value["ttl_ms"].as_u64().unwrap() <= 60_000, "{value}");

    let free = with_redis(&redis.url(), &["status", "other"]);
    assert_eq!(code(&free), 1);
    assert_eq!(stdout(&free), "other: free\n");
    let free_json = with_redis(&redis.url(), &["status", "other", "--json"]);
    assert_eq!(code(&free_json), 1);
    let value: serde_json::Value = serde_json::from_str(&stdout(&free_json)).unwrap();
    assert_eq!(value["held"], false);
    assert_eq!(value["pid"], serde_json::Value::Null);

    std::fs::write(dir.file("stop"), "").unwrap();
    assert_eq!(code(&wait_exit(holder, "holder")), 0);
}

#[test]
fn list_shows_held_locks_sorted_and_filtered_by_prefix() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let holders = [
        hold(&redis, &dir, "jobs/b", "second"),
        hold(&redis, &dir, "jobs/a", "first"),
        hold(&redis, &dir, "other", "third"),
    ];

    let all = with_redis(&redis.url(), &["list"]);
    assert_eq!(code(&all), 0, "{}", stderr(&all));
    let text = stdout(&all);
    let keys: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(keys, ["jobs/a", "jobs/b", "other"], "{text}");

    let jobs = with_redis(&redis.url(), &["list", "jobs/", "--json"]);
    assert_eq!(code(&jobs), 0);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&jobs)).unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["first", "second"]);
    assert_eq!(rows[0]["key"], "jobs/a");
    assert_eq!(rows[0]["pid"], holders[1].id());

    let none = with_redis(&redis.url(), &["list", "nothing-here"]);
    assert_eq!(code(&none), 0);
    assert_eq!(stdout(&none), "");

    std::fs::write(dir.file("stop"), "").unwrap();
    for holder in holders {
        assert_eq!(code(&wait_exit(holder, "holder")), 0);
    }
    let empty = with_redis(&redis.url(), &["list", "--json"]);
    assert_eq!(stdout(&empty).trim(), "[]");
}

#[test]
fn release_needs_force_and_then_frees_the_key() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let holder = hold(&redis, &dir, "stuck", "old");

    let refused = with_redis(&redis.url(), &["release", "stuck"]);
    assert_eq!(code(&refused), 64);
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert_eq!(
        code(&with_redis(&redis.url(), &["status", "stuck"])),
        0,
        "still held"
    );

    let released = with_redis(&redis.url(), &["release", "stuck", "--force"]);
    assert_eq!(code(&released), 0, "{}", stderr(&released));
    assert!(
        stdout(&released).contains("label \"old\""),
        "{}",
        stdout(&released)
    );
    assert_eq!(
        code(&with_redis(&redis.url(), &["status", "stuck"])),
        1,
        "freed"
    );
    // Someone else can take it now, while the old holder still runs.
    let next = with_redis(&redis.url(), &["run", "-k", "stuck", "--", "true"]);
    assert_eq!(code(&next), 0, "{}", stderr(&next));

    let again = with_redis(&redis.url(), &["release", "stuck", "--force"]);
    assert_eq!(code(&again), 1);
    assert_eq!(stdout(&again), "stuck: was not held\n");

    // The old holder learns at release that its lock was gone, and keeps its exit status.
    std::fs::write(dir.file("stop"), "").unwrap();
    let old = wait_exit(holder, "old holder");
    assert_eq!(code(&old), 0);
    assert!(
        stderr(&old).contains("had already been lost"),
        "{}",
        stderr(&old)
    );
}

#[test]
fn admin_commands_on_the_memory_store_say_why_they_need_a_shared_one() {
    for args in [
        &["status", "k"][..],
        &["list"][..],
        &["release", "k", "--force"][..],
    ] {
        let output = cachelock()
            .args(["--store", "memory://"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&output), 64, "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains("needs a store other processes share"),
            "{message}"
        );
        assert!(message.contains("this process's memory"), "{message}");
    }
}

#[test]
fn the_redis_url_can_come_from_the_environment() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let holder = hold(&redis, &dir, "env", "via-flag");
    let output = cachelock()
        .env("CACHELOCK_REDIS_URL", redis.url())
        .args(["status", "env"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("via-flag"));
    std::fs::write(dir.file("stop"), "").unwrap();
    wait_exit(holder, "holder");
}

#[test]
fn the_prefix_separates_lock_spaces() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let script = hold_until_stop(&dir, "holder", 0);
    let holder = spawn_with_redis(
        &redis.url(),
        &[
            "run", "--prefix", "billing:", "-k", "k", "--", "sh", "-c", &script,
        ],
    );
    recorded_pid(&dir, "holder");
    assert_eq!(
        code(&with_redis(&redis.url(), &["status", "k"])),
        1,
        "default prefix: free"
    );
    let output = cachelock()
        .env("CACHELOCK_PREFIX", "billing:")
        .args(["--redis", &redis.url(), "status", "k"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "billing: prefix: held");
    std::fs::write(dir.file("stop"), "").unwrap();
    wait_exit(holder, "holder");
}

#[test]
fn backend_failures_exit_69_and_bad_urls_64() {
    let port = cachelock_testkit::free_port();
    let down = with_redis(&format!("redis://127.0.0.1:{port}"), &["status", "k"]);
    assert_eq!(code(&down), 69);
    assert!(
        stderr(&down).contains("backend failed"),
        "{}",
        stderr(&down)
    );

    let bad = with_redis("http://user:hunter2@127.0.0.1", &["list"]);
    assert_eq!(code(&bad), 64);
    assert!(
        stderr(&bad).contains("invalid --redis URL"),
        "{}",
        stderr(&bad)
    );
    assert!(
        !stderr(&bad).contains("hunter2"),
        "the password is masked: {}",
        stderr(&bad)
    );
}

#[test]
fn every_command_has_help_and_the_binary_a_version() {
    for command in [
        &[][..],
        &["run"],
        &["status"],
        &["list"],
        &["release"],
        &["serve"],
        &["completions"],
        &["man"],
    ] {
        let output = cachelock().args(command).arg("--help").output().unwrap();
        assert_eq!(code(&output), 0, "{command:?} --help");
        assert!(stdout(&output).contains("Usage: cachelock"), "{command:?}");
    }
    let help = stdout(&cachelock().arg("--help").output().unwrap());
    assert!(
        help.contains("Exit codes:") && help.contains("75"),
        "{help}"
    );
    // `--version` lists the stores too (tests/explain.rs); `-V` is the version alone.
    let version = cachelock().arg("-V").output().unwrap();
    assert_eq!(code(&version), 0);
    assert_eq!(
        stdout(&version).trim(),
        format!("cachelock {}", env!("CARGO_PKG_VERSION"))
    );
}
