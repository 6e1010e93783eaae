//! `cachelock run`, end to end with the real binary (Redis tests start their own
//! redis-server on a free loopback port).

mod common;

use std::os::unix::fs::PermissionsExt;

use cachelock_testkit::RedisServer;
use common::*;

#[test]
fn two_concurrent_runs_on_one_key_one_runs_and_the_other_exits_75() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let ran = dir.file("ran");
    // Each command appends its name to `ran`, then waits for `stop`.
    let command = |name: &str| format!("echo {name} >> {ran}; {}", hold_until_stop(&dir, name, 0));
    let (a, b) = (command("a"), command("b"));
    let first = spawn_with_redis(
        &redis.url(),
        &["run", "--key", "deploy", "--", "sh", "-c", &a],
    );
    let second = spawn_with_redis(
        &redis.url(),
        &["run", "--key", "deploy", "--", "sh", "-c", &b],
    );

    // While the winner holds the key, the loser gives up at once: it needs no `stop`.
    let (loser, winner) = first_to_exit(first, second);
    assert_eq!(code(&loser), 75, "stderr: {}", stderr(&loser));
    let message = stderr(&loser);
    assert_eq!(message.lines().count(), 1, "one line on stderr: {message}");
    assert!(message.contains("`deploy` is held by pid"), "{message}");

    let winner_name = std::fs::read_to_string(&ran).unwrap();
    assert_eq!(
        winner_name.lines().count(),
        1,
        "exactly one command ran: {winner_name}"
    );
    assert!(
        message.contains("label \"sh\""),
        "the holder's label is its command: {message}"
    );
    assert!(
        message.contains(&format!("pid {}", winner.id())),
        "the message names the holder's pid {}: {message}",
        winner.id()
    );

    std::fs::write(dir.file("stop"), "").unwrap();
    let winner = wait_exit(winner, "the winning run");
    assert_eq!(code(&winner), 0, "stderr: {}", stderr(&winner));
    assert_eq!(std::fs::read_to_string(&ran).unwrap().lines().count(), 1);

    // Released on exit: the key is free and the next run gets it.
    let status = with_redis(&redis.url(), &["status", "deploy"]);
    assert_eq!(
        code(&status),
        1,
        "free after the winner exited: {}",
        stdout(&status)
    );
    let again = with_redis(&redis.url(), &["run", "--key", "deploy", "--", "true"]);
    assert_eq!(code(&again), 0, "stderr: {}", stderr(&again));
}

#[test]
fn the_command_exit_status_passes_through() {
    let cases: [(&str, i32); 4] = [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -9 $$", 128 + 9),
    ];
    for (script, expected) in cases {
        let output = cachelock()
            .args(["run", "--key", "status", "--", "sh", "-c", script])
            .output()
            .unwrap();
        assert_eq!(code(&output), expected, "`{script}`: {}", stderr(&output));
    }
}

#[test]
fn the_command_gets_its_arguments_and_stdio_unchanged() {
    let output = cachelock()
        .args([
            "run", "-k", "args", "--", "printf", "%s|", "a b", "--key", "-x", "",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "a b|--key|-x||");
}

#[test]
fn a_missing_command_exits_127_and_a_non_executable_one_126() {
    let missing = cachelock()
        .args([
            "run",
            "--key",
            "k",
            "--",
            "/nonexistent/cachelock-test-command",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&missing), 127, "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("command not found"),
        "{}",
        stderr(&missing)
    );

    let dir = TempDir::new();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let denied = cachelock()
        .args(["run", "--key", "k", "--"])
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(code(&denied), 126, "{}", stderr(&denied));
    assert!(
        stderr(&denied).contains("cannot execute"),
        "{}",
        stderr(&denied)
    );
    assert_eq!(stdout(&denied), "");
}

#[test]
fn a_missing_command_releases_the_lock() {
    let redis = RedisServer::start();
    let missing = with_redis(&redis.url(), &["run", "-k", "gone", "--", "/nonexistent/x"]);
    assert_eq!(code(&missing), 127);
    let status = with_redis(&redis.url(), &["status", "gone"]);
    assert_eq!(code(&status), 1, "{}", stdout(&status));
}

#[test]
fn the_conflict_exit_code_can_be_changed_and_the_command_does_not_run() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let holder = spawn_with_redis(
        &redis.url(),
        &[
            "run",
            "-k",
            "cron",
            "--",
            "sh",
            "-c",
            &hold_until_stop(&dir, "holder", 0),
        ],
    );
    recorded_pid(&dir, "holder");
    let marker = dir.file("second-ran");
    for (flag, expected) in [(None, 75), (Some("0"), 0), (Some("3"), 3)] {
        let mut args = vec!["run", "-k", "cron"];
        if let Some(code) = flag {
            args.extend(["-E", code]);
        }
        let touch = format!("touch {marker}");
        args.extend(["--", "sh", "-c", &touch]);
        let output = with_redis(&redis.url(), &args);
        assert_eq!(code(&output), expected, "{}", stderr(&output));
        assert!(
            stderr(&output).contains("`cron` is held by"),
            "{}",
            stderr(&output)
        );
    }
    // -q: nothing on stderr (cron mails whatever a job prints).
    let quiet = with_redis(
        &redis.url(),
        &["run", "-k", "cron", "-E", "0", "-q", "--", "true"],
    );
    assert_eq!((code(&quiet), stderr(&quiet)), (0, String::new()));
    assert!(
        !std::path::Path::new(&marker).exists(),
        "the command never ran"
    );
    std::fs::write(dir.file("stop"), "").unwrap();
    assert_eq!(code(&wait_exit(holder, "holder")), 0);
}

#[test]
fn wait_takes_the_key_once_the_holder_lets_go() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let holder = spawn_with_redis(
        &redis.url(),
        &[
            "run",
            "-k",
            "queue",
            "--",
            "sh",
            "-c",
            &hold_until_stop(&dir, "holder", 0),
        ],
    );
    recorded_pid(&dir, "holder");
    let marker = dir.file("waiter-ran");
    let touch = format!("touch {marker}");
    let waiter = spawn_with_redis(
        &redis.url(),
        &[
            "run", "-k", "queue", "--wait", "10m", "--", "sh", "-c", &touch,
        ],
    );
    std::fs::write(dir.file("stop"), "").unwrap();
    assert_eq!(code(&wait_exit(holder, "holder")), 0);
    let waiter = wait_exit(waiter, "waiter");
    assert_eq!(code(&waiter), 0, "{}", stderr(&waiter));
    assert!(std::path::Path::new(&marker).exists());
}

#[test]
fn signals_reach_the_command_and_the_lock_is_released() {
    let redis = RedisServer::start();
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
    ] {
        let dir = TempDir::new();
        let got = dir.file("got");
        // The command traps the signal, records it, and exits 3.
        let script = format!(
            "trap 'echo {name} > {got}; exit 3' {name}; {}",
            hold_until_stop(&dir, "cmd", 0)
        );
        let run = spawn_with_redis(
            &redis.url(),
            &["run", "-k", "sig", "--", "sh", "-c", &script],
        );
        recorded_pid(&dir, "cmd");
        signal(run.id(), sig);
        let output = wait_exit(run, "the signalled run");
        assert_eq!(code(&output), 3, "SIG{name}: {}", stderr(&output));
        assert_eq!(std::fs::read_to_string(&got).unwrap().trim(), name);
        let status = with_redis(&redis.url(), &["status", "sig"]);
        assert_eq!(
            code(&status),
            1,
            "released after SIG{name}: {}",
            stdout(&status)
        );
    }
}

#[test]
fn a_command_killed_by_a_forwarded_signal_exits_128_plus_n() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    // `exec sleep`: no shell left to trap anything; SIGTERM's default action kills it.
    let script = format!("echo $$ > {}; exec sleep 600", dir.file("cmd.pid"));
    let run = spawn_with_redis(
        &redis.url(),
        &["run", "-k", "sig", "--", "sh", "-c", &script],
    );
    recorded_pid(&dir, "cmd");
    signal(run.id(), libc::SIGTERM);
    let output = wait_exit(run, "the signalled run");
    assert_eq!(code(&output), 128 + libc::SIGTERM, "{}", stderr(&output));
    assert_eq!(code(&with_redis(&redis.url(), &["status", "sig"])), 1);
}

#[test]
fn a_killed_run_frees_its_lock_after_its_ttl_and_its_command_is_stopped() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let script = format!("echo $$ > {}; exec sleep 600", dir.file("cmd.pid"));
    let mut run = spawn_with_redis(
        &redis.url(),
        &[
            "run", "-k", "crash", "--ttl", "2s", "--", "sh", "-c", &script,
        ],
    );
    let command_pid = recorded_pid(&dir, "cmd");
    let status = with_redis(&redis.url(), &["status", "crash", "--json"]);
    assert_eq!(code(&status), 0, "held while it runs");
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(json["pid"], run.id(), "held by the run process: {json}");

    run.kill().unwrap(); // SIGKILL: no release, no renewal from here on
    run.wait().unwrap();
    wait_until("the killed run's command to get SIGTERM", || {
        !is_alive(command_pid)
    });
    wait_until("the lock to expire with its TTL", || {
        code(&with_redis(&redis.url(), &["status", "crash"])) == 1
    });
    let next = with_redis(&redis.url(), &["run", "-k", "crash", "--", "true"]);
    assert_eq!(code(&next), 0, "{}", stderr(&next));
}

#[test]
fn kill_on_lost_stops_the_command_when_the_lock_goes() {
    let redis = RedisServer::start();
    let dir = TempDir::new();
    let script = format!("echo $$ > {}; exec sleep 600", dir.file("cmd.pid"));
    let run = spawn_with_redis(
        &redis.url(),
        &[
            "run",
            "-k",
            "lost",
            "--ttl",
            "1s",
            "--kill-on-lost",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    recorded_pid(&dir, "cmd");
    // Someone deletes the lock; the next renewal finds it gone.
    let forced = with_redis(&redis.url(), &["release", "lost", "--force"]);
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    let output = wait_exit(run, "the run whose lock was lost");
    assert_eq!(code(&output), 128 + libc::SIGTERM, "{}", stderr(&output));
    assert!(stderr(&output).contains("was lost"), "{}", stderr(&output));
}

#[test]
fn a_backend_that_is_down_exits_69_without_running_the_command() {
    let port = cachelock_testkit::free_port();
    let dir = TempDir::new();
    let marker = dir.file("ran");
    let touch = format!("touch {marker}");
    let output = with_redis(
        &format!("redis://127.0.0.1:{port}"),
        &["run", "-k", "k", "--", "sh", "-c", &touch],
    );
    assert_eq!(code(&output), 69, "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&output)
    );
    assert!(!std::path::Path::new(&marker).exists());
}

#[test]
fn bad_arguments_exit_64_with_a_message() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["run", "-k", "k", "--ttl", "0s", "--", "true"],
            "greater than zero",
        ),
        (
            &["run", "-k", "k", "--ttl", "soon", "--", "true"],
            "invalid duration",
        ),
        (&["run", "-k", "k", "--"], "<CMD>"),
        (&["run", "-k", "", "--", "true"], "empty"),
        (&["run", "--", "true"], "--key"),
    ];
    for (args, expected) in cases {
        let output = cachelock().args(args).output().unwrap();
        assert_eq!(code(&output), 64, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn on_the_memory_store_run_warns_that_the_lock_excludes_no_other_process() {
    let output = cachelock()
        .args(["--store", "memory://", "run", "-k", "k", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0);
    let message = stderr(&output);
    assert!(message.contains("excludes no other process"), "{message}");
    assert!(message.contains("this process's memory"), "{message}");
    // The default store excludes other processes: no warning.
    let output = cachelock()
        .args(["run", "-k", "k", "--", "true"])
        .output()
        .unwrap();
    assert_eq!((code(&output), stderr(&output)), (0, String::new()));
}

/// The signals a command starts with ignored: `(SigIgn & mask) != 0` for each signal.
fn ignored_by_command(ignore_in_cachelock: &[i32]) -> Vec<bool> {
    let mut command = cachelock();
    with_signals(&mut command, libc::SIG_IGN, ignore_in_cachelock);
    let output = command
        .args([
            "run",
            "-k",
            "nohup",
            "--",
            "sh",
            "-c",
            "grep SigIgn /proc/$$/status",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let mask = u64::from_str_radix(text.trim().trim_start_matches("SigIgn:").trim(), 16)
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    [libc::SIGHUP, libc::SIGINT, libc::SIGTERM]
        .iter()
        .map(|&signal| mask & (1 << (signal - 1)) != 0)
        .collect()
}

#[test]
fn signals_ignored_at_start_stay_ignored_for_the_command_as_with_nohup() {
    assert_eq!(ignored_by_command(&[]), [false, false, false]);
    // `nohup cachelock run ..`: the command must not die when the terminal hangs up.
    assert_eq!(ignored_by_command(&[libc::SIGHUP]), [true, false, false]);
}

#[test]
fn the_command_gets_its_key_and_fence_on_redis_too() {
    let redis = RedisServer::start();
    let fence = || -> u64 {
        let output = with_redis(
            &redis.url(),
            &[
                "run",
                "-k",
                "fenced",
                "--",
                "sh",
                "-c",
                "echo $CACHELOCK_KEY $CACHELOCK_FENCE",
            ],
        );
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let line = stdout(&output);
        let (key, fence) = line.trim().split_once(' ').unwrap();
        assert_eq!(key, "fenced");
        fence.parse().unwrap()
    };
    let first = fence();
    assert!(first > 0);
    assert!(fence() > first);
}
