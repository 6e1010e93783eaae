//! A fail-closed `#[once]` (a function with no `Result`, its store down) is never silent:
//! the skip is counted, handed to the `on_fail_closed` hook, and with no hook and no
//! `tracing` subscriber written to stderr.
//!
//! Each case runs in a child process (this test binary, run again on one test), because the
//! hook and the global subscriber can be set only once per process.

mod common;

use std::process::Command;

use cachelock::once;
use common::DownCache;

#[once(key = "down-<n>", cache = DownCache)]
fn nightly(n: u32) {
    panic!("the body of a fail-closed call must not run ({n})");
}

#[once(key = "held", cache = cachelock::MemoryCache::new())]
fn never_held() {}

/// Runs `test` of this binary in a child process with `CACHELOCK_CHILD` set; its stderr.
fn child(test: &str) -> String {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("CACHELOCK_CHILD", "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child {test} failed: {stderr}");
    stderr
}

fn in_child() -> bool {
    std::env::var_os("CACHELOCK_CHILD").is_some()
}

#[test]
fn without_a_hook_or_a_subscriber_a_skip_is_written_to_stderr_once_a_minute() {
    if in_child() {
        let before = cachelock::fail_closed_count();
        nightly(1);
        nightly(2);
        never_held(); // a call that ran is not a failure
        assert_eq!(cachelock::fail_closed_count(), before + 2);
        return;
    }
    let stderr = child("without_a_hook_or_a_subscriber_a_skip_is_written_to_stderr_once_a_minute");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("cachelock: #[once] fn nightly did not run"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line for two skips within a minute: {stderr}"
    );
    assert!(lines[0].contains("connection refused"), "{}", lines[0]);
    assert!(
        lines[0].contains("cachelock::on_fail_closed"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_hook_sees_every_skip_and_nothing_goes_to_stderr() {
    if in_child() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Mutex;
        static SEEN: AtomicU64 = AtomicU64::new(0);
        static WHAT: Mutex<Vec<String>> = Mutex::new(Vec::new());
        cachelock::on_fail_closed(|skip| {
            SEEN.fetch_add(1, Ordering::SeqCst);
            WHAT.lock()
                .unwrap()
                .push(format!("{} {}", skip.function, skip.error));
        })
        .expect("first hook");
        assert!(cachelock::on_fail_closed(|_| {}).is_err(), "set once");
        nightly(1);
        nightly(2);
        assert_eq!(SEEN.load(Ordering::SeqCst), 2);
        let what = WHAT.lock().unwrap();
        assert!(
            what.iter()
                .all(|w| w.starts_with("nightly ") && w.contains("down-")),
            "{what:?}"
        );
        assert_eq!(cachelock::fail_closed_count(), 2);
        return;
    }
    let stderr = child("a_hook_sees_every_skip_and_nothing_goes_to_stderr");
    assert!(!stderr.contains("did not run"), "{stderr}");
}
