//! One run: worker processes on one store under one fault, then the checker.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::checker::Report;
use super::clock::{mono_ns, Rng};
use super::log::{has_open_hold, read_holds};
use super::worker::{self, Behaviour, TTL_MS};

/// Run length in seconds; the default keeps `./test.sh` short.
pub const SECS_ENV: &str = "CACHELOCK_HISTORY_SECS";
const DEFAULT_SECS: u64 = 6;
const WORKERS: usize = 3;
/// The window ends this much before the TTL (millisecond rounding of expiry times).
pub const MARGIN_NS: u64 = 5_000_000;
pub const TTL_NS: u64 = TTL_MS * 1_000_000;

pub fn secs() -> u64 {
    std::env::var(SECS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS)
}

/// The fault injected during a run.
pub enum Fault<'a> {
    /// None (the control run).
    None,
    /// Holders SIGKILLed inside the critical section, replaced by new workers.
    Kill,
    /// Holders SIGSTOPped inside the critical section past their TTL, then resumed.
    Pause,
    /// Something done to the server every second or so (by this closure, which may take
    /// longer): named, e.g. `restart`, `failover`.
    Server(&'static str, &'a mut dyn FnMut()),
}

impl Fault<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Server(name, _) => name,
        }
    }
}

/// A temp dir removed on `Drop` (kept when the test fails, to look at the logs).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "cachelock-history-{what}-{}-{}",
            std::process::id(),
            mono_ns()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn spawn_worker(dir: &Path, url: &str, id: usize, end_ns: u64, tolerate: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "--exact",
            "worker_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(worker::DIR_ENV, dir)
        .env(worker::URL_ENV, url)
        .env(worker::ID_ENV, id.to_string())
        .env(worker::END_ENV, end_ns.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join(format!("w{id}.stderr"))).expect("stderr file"));
    if tolerate {
        command.env(worker::TOLERATE_ENV, "1");
    }
    command.spawn().expect("spawn worker")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child we have not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({}, {signal})", child.id());
}

/// Runs worker processes on the store at `url` for `secs` seconds under `fault`; checks
/// the holds and prints the summary line.
pub fn run_processes(store: &str, url: &str, secs: u64, mut fault: Fault<'_>) -> Report {
    let dir = TempDir::new(store);
    let dir_path = dir.0.as_path();
    // Store errors are retried and counted, never hidden: a restarting server refuses
    // connections, a paused worker's requests time out, and on a loaded machine a claim can
    // come back after its TTL (the store then gives it back and reports an error).
    let tolerate = true;
    let start_ns = mono_ns();
    let end_ns = start_ns + secs * 1_000_000_000;
    // No faults in the last stretch: a killed holder's key must come free and be taken again.
    let last_fault_ns = end_ns.saturating_sub(3 * TTL_NS);
    let mut workers: Vec<(usize, Child)> = (0..WORKERS)
        .map(|id| (id, spawn_worker(dir_path, url, id, end_ns, tolerate)))
        .collect();
    let mut next_id = WORKERS;
    let mut faults = 0;
    let mut rng = Rng::seeded(7);
    while !matches!(fault, Fault::None) && mono_ns() < last_fault_ns {
        std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
        let slot = rng.below(workers.len() as u64) as usize;
        let id = workers[slot].0;
        if matches!(fault, Fault::Kill | Fault::Pause) {
            // Wait (boundedly) until this worker is inside a critical section.
            for _ in 0..200 {
                if has_open_hold(dir_path, id) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        match &mut fault {
            Fault::None => {}
            Fault::Kill => {
                let child = &mut workers[slot].1;
                child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
                child.wait().expect("reap");
                workers[slot] = (
                    next_id,
                    spawn_worker(dir_path, url, next_id, end_ns, tolerate),
                );
                next_id += 1;
            }
            Fault::Pause => {
                let child = &workers[slot].1;
                signal(child, libc::SIGSTOP);
                std::thread::sleep(Duration::from_millis(TTL_MS + 200 + rng.below(500)));
                signal(child, libc::SIGCONT);
            }
            Fault::Server(_, act) => act(),
        }
        faults += 1;
    }
    for (id, mut child) in workers {
        let status = child.wait().expect("worker exit");
        let stderr =
            std::fs::read_to_string(dir_path.join(format!("w{id}.stderr"))).unwrap_or_default();
        assert!(status.success(), "worker {id} failed: {status}\n{stderr}");
    }
    let errors = tolerated_errors(dir_path);
    let holds = read_holds(dir_path);
    let report = Report::check(&holds, TTL_NS, MARGIN_NS);
    report.print(
        store,
        fault.name(),
        &format!(
            ", {faults} faults injected, {} store errors retried, {secs} s",
            errors.len()
        ),
    );
    if let Some(first) = errors.first() {
        println!("  first store error retried: {first}");
    }
    assert!(report.holds > 0, "no holds recorded");
    if !matches!(fault, Fault::None) {
        assert!(faults > 0, "the run was too short to inject a fault");
    }
    report
}

/// The errors the workers retried (see `Behaviour::tolerate_errors`).
fn tolerated_errors(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    for entry in std::fs::read_dir(dir).expect("log dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "stderr") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            errors.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("tolerated error: "))
                    .map(str::to_owned),
            );
        }
    }
    errors
}

/// The memory store: worker threads in this process, on one `MemoryCache`.
pub fn run_threads(fault: &str, secs: u64, behaviour: Behaviour) -> Report {
    let dir = TempDir::new("memory");
    let store: Arc<dyn cachelock::LockStore> =
        cachelock::store_from_url("memory://").expect("memory://");
    let end_ns = mono_ns() + secs * 1_000_000_000;
    let threads = 2 * worker::THREADS;
    worker::run_threads(&dir.0, 0, &store, end_ns, threads, behaviour);
    let holds = read_holds(&dir.0);
    let report = Report::check(&holds, TTL_NS, MARGIN_NS);
    report.print("memory", fault, &format!(", {secs} s"));
    assert!(report.holds > 0, "no holds recorded");
    report
}
