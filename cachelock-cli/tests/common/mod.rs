//! Helpers for the end-to-end tests: the real `cachelock` binary, temp dirs, polling.
#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen "soon" before it fails. Generous:
/// the machine is shared; nothing asserts how fast anything is.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `cachelock` with a clean environment: no CACHELOCK_* variables nor RUST_LOG from the
/// caller, a fresh `CACHELOCK_DIR` of its own (so that its default store, `$CACHELOCK_DIR`,
/// is shared with no other test: set it again to share one), and SIGINT, SIGTERM and SIGHUP
/// at their defaults (a test runner started in the background by a shell without job
/// control may have SIGINT ignored, which cachelock and its command would rightly keep).
pub fn cachelock() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cachelock"));
    command
        .env("CACHELOCK_DIR", fresh_runtime_dir().join("cachelock"))
        .env_remove("CACHELOCK_STORE")
        .env_remove("CACHELOCK_REDIS_URL")
        .env_remove("CACHELOCK_REDIS_CLUSTER_URLS")
        .env_remove("CACHELOCK_PREFIX")
        .env_remove("CACHELOCK_SPACE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    with_signals(
        &mut command,
        libc::SIG_DFL,
        &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP],
    );
    command
}

/// A new directory under cargo's temp dir for tests (`target/tmp`), never shared, for one
/// `cachelock` process's `CACHELOCK_DIR` (its `cachelock` subdirectory). Left behind (a few bytes each; `cargo clean`
/// removes them): the process may outlive the command's builder.
pub fn fresh_runtime_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-runtime-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a runtime dir");
    dir
}

/// Sets `signals` to `disposition` (SIG_DFL or SIG_IGN) in the child before it execs.
pub fn with_signals(command: &mut Command, disposition: libc::sighandler_t, signals: &[i32]) {
    use std::os::unix::process::CommandExt;
    let signals = signals.to_vec();
    // SAFETY: runs between fork and exec; signal(2) is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            for &signal in &signals {
                libc::signal(signal, disposition);
            }
            Ok(())
        });
    }
}

/// `cachelock --redis URL ARGS..`, run to completion.
pub fn with_redis(url: &str, args: &[&str]) -> Output {
    cachelock()
        .arg("--redis")
        .arg(url)
        .args(args)
        .output()
        .expect("run cachelock")
}

/// Starts `cachelock --redis URL ARGS..` in the background, stdout and stderr piped.
pub fn spawn_with_redis(url: &str, args: &[&str]) -> Child {
    cachelock()
        .arg("--redis")
        .arg(url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cachelock")
}

/// `cachelock --redis-cluster NODE,NODE.. ARGS..`, run to completion.
pub fn with_cluster(nodes: &[String], args: &[&str]) -> Output {
    cachelock()
        .arg("--redis-cluster")
        .arg(nodes.join(","))
        .args(args)
        .output()
        .expect("run cachelock")
}

/// Starts `cachelock --redis-cluster NODE,NODE.. ARGS..` in the background, stdout and
/// stderr piped.
pub fn spawn_with_cluster(nodes: &[String], args: &[&str]) -> Child {
    cachelock()
        .arg("--redis-cluster")
        .arg(nodes.join(","))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cachelock")
}

/// The exit code, panicking with the output if the process was killed.
pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or_else(|| {
        panic!(
            "cachelock was killed ({:?}); stderr: {}",
            output.status,
            stderr(output)
        )
    })
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `done` every 20 ms until it is true; panics with `what` after [`PATIENCE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child to exit (at most [`PATIENCE`], then kills it and panics).
/// Of two runs started on one key, waits for the first to exit (the loser, which gives up
/// at once) and returns its output with the other one, still running.
pub fn first_to_exit(first: Child, second: Child) -> (Output, Child) {
    let (mut first, mut second) = (Some(first), Some(second));
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            Instant::now() < deadline,
            "neither run exited within {PATIENCE:?}"
        );
        if let Some(Some(_)) = first.as_mut().map(|c| c.try_wait().unwrap()) {
            let loser = wait_exit(first.take().unwrap(), "the first run");
            return (loser, second.take().unwrap());
        }
        if let Some(Some(_)) = second.as_mut().map(|c| c.try_wait().unwrap()) {
            let loser = wait_exit(second.take().unwrap(), "the second run");
            return (loser, first.take().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wait_exit(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "{what} did not exit within {PATIENCE:?}; stderr: {}",
                stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Whether process `pid` is alive (a zombie counts as dead).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S ...`: the state follows the last `)`.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cachelock-cli-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `dir/name` as a string, for shell commands.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shell command that records its pid in `dir/NAME.pid`, then waits until `dir/stop`
/// exists, then exits with `code`.
pub fn hold_until_stop(dir: &TempDir, name: &str, code: i32) -> String {
    format!(
        "echo $$ > {pid}.tmp && mv {pid}.tmp {pid}; while [ ! -e {stop} ]; do sleep 0.02; done; exit {code}",
        pid = dir.file(&format!("{name}.pid")),
        stop = dir.file("stop"),
    )
}

/// Reads the pid a [`hold_until_stop`] command recorded, once it has.
pub fn recorded_pid(dir: &TempDir, name: &str) -> u32 {
    let path = dir.path().join(format!("{name}.pid"));
    wait_until(&format!("{name} to start"), || path.exists());
    std::fs::read_to_string(&path)
        .expect("read pid")
        .trim()
        .parse()
        .expect("a pid")
}
