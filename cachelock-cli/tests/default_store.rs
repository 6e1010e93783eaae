//! The stores without a server, end to end with the real binary: the default store (this
//! user's lock directory), `--store file:///...`, `--store memory://`, `CACHELOCK_STORE`,
//! and serve on the default store.
//!
//! Every `cachelock` gets a fresh `CACHELOCK_DIR` from [`cachelock()`]; the tests that need
//! processes to share the default store give them one `CACHELOCK_DIR` explicitly.

mod common;

use std::process::{Child, Output, Stdio};

use common::http::Server;
use common::*;

/// `cachelock ARGS..` on the default store in `runtime` (its `CACHELOCK_DIR` is `runtime/cachelock`).
fn in_runtime(runtime: &TempDir) -> std::process::Command {
    let mut command = cachelock();
    command.env("CACHELOCK_DIR", runtime.path().join("cachelock"));
    command
}

fn spawn(mut command: std::process::Command, args: &[&str]) -> Child {
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cachelock")
}

fn output(mut command: std::process::Command, args: &[&str]) -> Output {
    command.args(args).output().expect("run cachelock")
}

#[test]
fn two_runs_with_no_server_exclude_each_other_through_the_default_store() {
    let runtime = TempDir::new();
    let dir = TempDir::new();
    let ran = dir.file("ran");
    let command = |name: &str| format!("echo {name} >> {ran}; {}", hold_until_stop(&dir, name, 0));
    let (a, b) = (command("a"), command("b"));
    let first = spawn(
        in_runtime(&runtime),
        &["run", "--key", "deploy", "--", "sh", "-c", &a],
    );
    let second = spawn(
        in_runtime(&runtime),
        &["run", "--key", "deploy", "--", "sh", "-c", &b],
    );
    // The loser gives up at once with 75, naming the winner.
    let (loser, winner) = first_to_exit(first, second);
    assert_eq!(code(&loser), 75, "stderr: {}", stderr(&loser));
    let message = stderr(&loser);
    assert!(
        message.contains(&format!("`deploy` is held by pid {}", winner.id())),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap().lines().count(),
        1,
        "exactly one command ran"
    );
    // The lock is a file in this user's directory, $CACHELOCK_DIR (mode 0700).
    let locks = runtime.path().join("cachelock");
    assert!(
        locks.join("cachelock:deploy.lock").exists(),
        "{:?}",
        std::fs::read_dir(&locks).map(|d| d.count())
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&locks).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");

    // A third run that waits gets the key once the winner lets go.
    let marker = dir.file("waiter-ran");
    let touch = format!("touch {marker}");
    let waiter = spawn(
        in_runtime(&runtime),
        &[
            "run", "-k", "deploy", "--wait", "10m", "--", "sh", "-c", &touch,
        ],
    );
    std::fs::write(dir.file("stop"), "").unwrap();
    assert_eq!(code(&wait_exit(winner, "the winner")), 0);
    let waiter = wait_exit(waiter, "the waiter");
    assert_eq!(code(&waiter), 0, "{}", stderr(&waiter));
    assert!(std::path::Path::new(&marker).exists());
}

#[test]
fn admin_commands_work_on_the_default_store() {
    let runtime = TempDir::new();
    let dir = TempDir::new();
    let holder = spawn(
        in_runtime(&runtime),
        &[
            "run",
            "-k",
            "nightly",
            "-l",
            "backup",
            "--",
            "sh",
            "-c",
            &hold_until_stop(&dir, "holder", 0),
        ],
    );
    recorded_pid(&dir, "holder");
    let status = output(in_runtime(&runtime), &["status", "nightly"]);
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    assert!(
        stdout(&status).contains("label \"backup\""),
        "{}",
        stdout(&status)
    );
    let list = output(in_runtime(&runtime), &["list"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    assert!(
        stdout(&list).starts_with("nightly: held by pid"),
        "{}",
        stdout(&list)
    );
    let forced = output(in_runtime(&runtime), &["release", "nightly", "--force"]);
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    let status = output(in_runtime(&runtime), &["status", "nightly"]);
    assert_eq!(code(&status), 1, "free after the force-release");
    std::fs::write(dir.file("stop"), "").unwrap();
    assert_eq!(code(&wait_exit(holder, "holder")), 0);
}

#[test]
fn a_store_url_from_the_option_or_the_environment_is_used() {
    let locks = TempDir::new();
    let dir = TempDir::new();
    let url = format!("file://{}", locks.path().display());
    // Two processes with different runtime dirs share the directory the URL names.
    let holder = spawn(
        cachelock(),
        &[
            "--store",
            &url,
            "run",
            "-k",
            "shared",
            "--",
            "sh",
            "-c",
            &hold_until_stop(&dir, "holder", 0),
        ],
    );
    recorded_pid(&dir, "holder");
    let mut from_env = cachelock();
    from_env.env("CACHELOCK_STORE", &url);
    let refused = output(from_env, &["run", "-k", "shared", "--", "true"]);
    assert_eq!(code(&refused), 75, "{}", stderr(&refused));
    // The default store (another runtime dir) is not that directory.
    let elsewhere = output(cachelock(), &["run", "-k", "shared", "--", "true"]);
    assert_eq!(code(&elsewhere), 0, "{}", stderr(&elsewhere));
    std::fs::write(dir.file("stop"), "").unwrap();
    assert_eq!(code(&wait_exit(holder, "holder")), 0);
    assert!(locks.path().join("cachelock:shared.lock").exists());

    // memory:// works, and excludes no other process (it says so).
    let memory = output(
        cachelock(),
        &["--store", "memory://", "run", "-k", "m", "--", "true"],
    );
    assert_eq!(code(&memory), 0, "{}", stderr(&memory));
    assert!(stderr(&memory).contains("excludes no other process"));

    // A URL no store takes is a usage error that names it.
    let bad = output(
        cachelock(),
        &["--store", "gopher://x", "run", "-k", "k", "--", "true"],
    );
    assert_eq!(code(&bad), 64, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("invalid --store"), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("gopher"), "{}", stderr(&bad));
}

#[test]
fn a_default_directory_that_cannot_be_used_exits_69_and_says_what_to_do() {
    let dir = TempDir::new();
    // A file where the parent of $CACHELOCK_DIR should be: the directory cannot be made.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let marker = dir.file("ran");
    let output = cachelock()
        .env("CACHELOCK_DIR", file.join("cachelock"))
        .args(["run", "-k", "k", "--", "touch", &marker])
        .output()
        .unwrap();
    assert_eq!(code(&output), 69, "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("{}/cachelock", file.display())),
        "{message}"
    );
    assert!(message.contains("--store"), "{message}");
    assert!(!std::path::Path::new(&marker).exists(), "nothing ran");
}

#[test]
fn without_a_runtime_dir_the_default_store_is_in_tmp_for_this_user() {
    // SAFETY: geteuid(2) has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let output = cachelock()
        .env_remove("CACHELOCK_DIR")
        .args(["status", "--json", "cachelock-cli-test-no-runtime-dir"])
        .output()
        .unwrap();
    assert_eq!(code(&output), 1, "free: {}", stderr(&output));
    let dir = std::path::PathBuf::from(format!("/tmp/cachelock-{uid}"));
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::symlink_metadata(&dir).expect("the directory exists");
    assert!(meta.is_dir());
    assert_eq!(meta.uid(), uid);
    assert_eq!(meta.mode() & 0o022, 0, "nobody else may write to it");
}

#[test]
fn the_help_explains_the_default_store() {
    // `run --help` says where its lock lives and points to the one description...
    let help = stdout(&cachelock().args(["run", "--help"]).output().unwrap());
    assert!(help.contains("this user's lock directory"), "{help}");
    assert!(help.contains("--store <URL>"), "{help}");
    assert!(help.contains("CACHELOCK_STORE"), "{help}");
    assert!(help.contains("see cachelock --help"), "{help}");
    // ...which is in `cachelock --help`.
    let help = stdout(&cachelock().arg("--help").output().unwrap());
    assert!(help.contains("/tmp/cachelock-<uid>"), "{help}");
    assert!(help.contains("$CACHELOCK_DIR"), "{help}");
    assert!(help.contains("CACHELOCK_STORE"), "{help}");
    assert!(help.contains("memory://"), "{help}");
}

#[test]
fn serve_processes_on_one_default_store_share_their_locks() {
    let runtime = TempDir::new();
    let one = Server::default_store(runtime.path(), &[]);
    let two = Server::default_store(runtime.path(), &[]);
    let token = one.lock("/printers/floor-2?id=job-1");
    let refused = two.refused("/printers");
    assert_eq!(refused["lockedPath"], "/printers/floor-2", "{refused}");
    one.unlock("/printers/floor-2", &token);
    two.lock("/printers");
    assert_eq!(one.stop(), 0);
    assert_eq!(two.stop(), 0);
}
