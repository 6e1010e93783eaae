//! `cachelock run --kill-on-lost` cut off from Redis by a network partition (issue #17, the
//! original report): the holder's command must get SIGTERM before an outside
//! `cachelock run --wait` on the same key starts its command, by at least the lost margin.
//!
//! Like `tests/partition.rs` at the workspace root (the library's variant), it creates a
//! network namespace joined to the host by a veth pair on a private /30
//! (`cachelock_testkit::NetNs`, deleted on `Drop` even on panic) and a `redis-server` bound
//! to loopback and the veth's host end. Per run:
//!
//! 1. The holder, `ip netns exec NS cachelock --redis redis://10.213.X.Y:P run -k K --ttl 3s
//!    --kill-on-lost -- CMD`, where CMD is this test binary again ([`command_entry_point`])
//!    recording when it got SIGTERM (`CLOCK_MONOTONIC`, one clock for every process on the
//!    host, namespaces or not).
//! 2. The outsider, `cachelock --redis redis://127.0.0.1:P run -k K --ttl 3s --wait 20s --
//!    CMD` on the host, whose CMD records when it started: when the outsider was granted
//!    the key (as far as its work can tell).
//! 3. Part-way between two renewals the link is cut (the namespace's end goes down).
//! 4. Once both are recorded the link is healed and the holder's command exits: its
//!    `cachelock` releases late, which must delete nothing (it warns that the lock had
//!    been lost; the key still names the outsider, which then exits cleanly).
//!
//! Each run prints
//! `partition run=i cut->lost=Xms cut->granted=Yms told_first_by=Zms margin=Mms via=SIGTERM`;
//! the test asserts in every run that SIGTERM came before the grant by at least the margin
//! less 5 ms (the same allowance as the library's variant: timer wake-up and Redis's
//! millisecond clock).
//!
//! It needs root and iproute2. Without them it prints `SKIPPED: <reason>` to stderr and
//! returns, which the harness shows as a pass (hence `_or_skipped` in its name);
//! `CACHELOCK_PARTITION_REQUIRE=1` turns a skip into a failure, `CACHELOCK_PARTITION_RUNS=N`
//! sets the number of runs (3 by default).
//!
//! ```text
//! cargo test -p cachelock-cli --test partition -- --nocapture
//! ```

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cachelock::redis::RedisCache;
use cachelock::Lock;
use cachelock_testkit::{event, mono_ns, record, wait_for, NetNs, RedisServer};
use common::{with_signals, TempDir};

/// Set (to the run's directory) in the command processes.
const COMMAND_ENV: &str = "CACHELOCK_PARTITION_CMD_DIR";
/// `holder` or `outsider`: which command this is.
const ROLE_ENV: &str = "CACHELOCK_PARTITION_ROLE";
const RUNS_ENV: &str = "CACHELOCK_PARTITION_RUNS";
const DEFAULT_RUNS: usize = 3;
const REQUIRE_ENV: &str = "CACHELOCK_PARTITION_REQUIRE";

const TTL: Duration = Duration::from_secs(3);
/// See `ALLOWANCE_MS` in the workspace's `tests/partition.rs`.
const ALLOWANCE_MS: f64 = 5.0;

/// The default lost margin for [`TTL`] (1 % of the TTL + 20 ms, at most a quarter of it);
/// `cachelock run` sets none, so this is what it uses.
fn default_margin(ttl: Duration) -> Duration {
    (ttl / 100 + Duration::from_millis(20)).min(ttl / 4)
}

fn ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

// ---------------------------------------------------------------------------------------
// CMD: this binary again, run by `cachelock run`.
// ---------------------------------------------------------------------------------------

/// When SIGTERM arrived (0: not yet); written by the handler.
static SIGTERM_AT: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigterm(_: libc::c_int) {
    // clock_gettime is async-signal-safe, and so is an atomic store.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let _ = SIGTERM_AT.compare_exchange(0, ns, Ordering::AcqRel, Ordering::Acquire);
}

/// The command both `cachelock run`s start; does nothing when run by the harness itself.
///
/// The holder's records when it got SIGTERM, then waits for `release-now` (so that its
/// `cachelock` releases after the link is healed). The outsider's records when it started
/// (it was granted the key), then waits for `outsider-done`.
#[test]
fn command_entry_point() {
    let Ok(dir) = std::env::var(COMMAND_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let role = std::env::var(ROLE_ENV).expect(ROLE_ENV);
    if role == "outsider" {
        record(dir, &format!("granted {}", mono_ns()));
        wait_for(Duration::from_secs(60), || {
            dir.join("outsider-done").exists().then_some(())
        });
        return;
    }
    let handler: extern "C" fn(libc::c_int) = on_sigterm;
    // SAFETY: the handler only calls async-signal-safe functions.
    unsafe { libc::signal(libc::SIGTERM, handler as libc::sighandler_t) };
    record(dir, &format!("started {}", mono_ns()));
    // Bounded: the test cuts the link within seconds.
    let got = wait_for(Duration::from_secs(30), || {
        let at = SIGTERM_AT.load(Ordering::Acquire);
        (at != 0).then_some(at)
    });
    match got {
        Some(at) => record(dir, &format!("sigterm {at}")),
        None => record(dir, "sigterm never"),
    }
    wait_for(Duration::from_secs(60), || {
        dir.join("release-now").exists().then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------------------

/// `cachelock --redis URL run -k KEY --ttl 3s ARGS.. -- <this binary> command_entry_point`,
/// with a clean environment and SIGTERM at its default, optionally inside `ns`.
fn spawn_run(
    ns: Option<&NetNs>,
    dir: &Path,
    role: &str,
    url: &str,
    key: &str,
    args: &[&str],
) -> Child {
    let cli = env!("CARGO_BIN_EXE_cachelock");
    let mut command = match ns {
        Some(ns) => {
            let [ip, netns, exec, name] = ns.exec_prefix();
            let mut command = Command::new(ip);
            command.args([netns, exec, name]).arg(cli);
            command
        }
        None => Command::new(cli),
    };
    command
        .env("CACHELOCK_DIR", dir.join(format!("{role}-runtime")))
        .env_remove("CACHELOCK_STORE")
        .env_remove("CACHELOCK_REDIS_URL")
        .env_remove("CACHELOCK_REDIS_CLUSTER_URLS")
        .env_remove("CACHELOCK_PREFIX")
        .env_remove("CACHELOCK_SPACE")
        .env_remove("RUST_LOG")
        .env(COMMAND_ENV, dir)
        .env(ROLE_ENV, role)
        .args(["--redis", url, "run", "-k", key, "--ttl", "3s"])
        .args(args)
        .arg("--")
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "command_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{role}.stderr"))).expect("stderr file"));
    with_signals(
        &mut command,
        libc::SIG_DFL,
        &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP],
    );
    command.spawn().expect("spawn cachelock run")
}

/// Kills a `cachelock run` left running by a failed expectation.
struct Reaper(Child);

impl Reaper {
    /// Waits (boundedly) for the exit.
    fn wait(&mut self) -> Option<std::process::ExitStatus> {
        wait_for(Duration::from_secs(30), || self.0.try_wait().ok().flatten())
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

struct Figures {
    cut_ns: u64,
    sigterm_ns: u64,
    granted_ns: u64,
}

fn one_run(run: usize, ns: &NetNs, server: &RedisServer) -> Figures {
    // Declared before the processes: they are reaped (dropped) before it is removed.
    let tmp = TempDir::new();
    let dir = tmp.path();
    let key = format!("partition-cli-{run}");
    let inside_url = format!("redis://{}:{}", ns.host_addr(), server.port());
    let read = |role: &str| {
        std::fs::read_to_string(dir.join(format!("{role}.stderr"))).unwrap_or_default()
    };

    let mut holder = Reaper(spawn_run(
        Some(ns),
        dir,
        "holder",
        &inside_url,
        &key,
        &["--kill-on-lost"],
    ));
    let started =
        wait_for(Duration::from_secs(20), || event(dir, "started")).unwrap_or_else(|| {
            panic!(
                "run {run}: the holder's command never started:\n{}",
                read("holder")
            )
        });
    let started_ns: u64 = started.parse().unwrap();
    let mut outsider = Reaper(spawn_run(
        None,
        dir,
        "outsider",
        &server.url(),
        &key,
        &["--wait", "20s"],
    ));

    // Cut somewhere between two renewals (at 1 s, 2 s, ... after the claim).
    let phase_ms = 1_100 + (run as u64 * 290) % 900;
    let cut_at = started_ns + phase_ms * 1_000_000;
    std::thread::sleep(Duration::from_nanos(cut_at.saturating_sub(mono_ns())));
    ns.cut();
    let cut_ns = mono_ns();

    let sigterm = wait_for(Duration::from_secs(15), || event(dir, "sigterm"))
        .unwrap_or_else(|| panic!("run {run}: no SIGTERM event:\n{}", read("holder")));
    assert_ne!(
        sigterm,
        "never",
        "run {run}: the holder's command never got SIGTERM:\n{}",
        read("holder")
    );
    let sigterm_ns: u64 = sigterm.parse().unwrap();
    let granted =
        wait_for(Duration::from_secs(25), || event(dir, "granted")).unwrap_or_else(|| {
            panic!(
                "run {run}: the outsider was never granted the key:\n{}",
                read("outsider")
            )
        });
    let granted_ns: u64 = granted.parse().unwrap();

    // Heal, then let the holder's command exit: its cachelock releases late.
    ns.heal();
    std::fs::write(dir.join("release-now"), b"").expect("release-now");
    let status = holder
        .wait()
        .unwrap_or_else(|| panic!("run {run}: the holder did not exit:\n{}", read("holder")));
    let holder_err = read("holder");
    assert!(
        holder_err.contains("had already been lost"),
        "run {run}: the holder's late release did not report the lock lost ({status}):\n{holder_err}"
    );
    let now = Lock::new(key)
        .cache(RedisCache::from_url(&server.url()).expect("url"))
        .holder()
        .expect("read the holder")
        .unwrap_or_else(|| panic!("run {run}: the key is gone after the holder's late release"));
    assert_eq!(
        now.pid,
        Some(outsider.0.id()),
        "run {run}: the key names {now:?}, not the outsider"
    );
    std::fs::write(dir.join("outsider-done"), b"").expect("outsider-done");
    let status = outsider
        .wait()
        .unwrap_or_else(|| panic!("run {run}: the outsider did not exit"));
    let outsider_err = read("outsider");
    assert!(
        status.success(),
        "run {run}: the outsider: {status}\n{outsider_err}"
    );
    assert!(
        !outsider_err.contains("lost"),
        "run {run}: the outsider's lock was lost:\n{outsider_err}"
    );

    Figures {
        cut_ns,
        sigterm_ns,
        granted_ns,
    }
}

#[test]
fn kill_on_lost_holder_cut_off_from_redis_gets_sigterm_before_waiter_is_granted_or_skipped() {
    if std::env::var_os(COMMAND_ENV).is_some() {
        return; // a command process runs only `command_entry_point`
    }
    // SAFETY: geteuid has no preconditions.
    let setup = if unsafe { libc::geteuid() } != 0 {
        Err("not root (network namespaces need CAP_NET_ADMIN)".to_owned())
    } else {
        NetNs::create()
    };
    let ns = match setup {
        Ok(ns) => ns,
        Err(reason) if std::env::var(REQUIRE_ENV).as_deref() != Ok("1") => {
            eprintln!("SKIPPED: {reason} (set {REQUIRE_ENV}=1 to fail instead)");
            return;
        }
        Err(reason) => panic!("{REQUIRE_ENV}=1 and the namespace cannot be set up: {reason}"),
    };
    let runs: usize = std::env::var(RUNS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    // Protected mode would refuse the holder (not loopback, no password); the only
    // non-loopback address is the private one of a veth into our own namespace.
    let server = RedisServer::start_with_args(&[
        "--bind",
        "127.0.0.1",
        ns.host_addr(),
        "--protected-mode",
        "no",
    ]);
    let margin_ms = ms(default_margin(TTL).as_nanos() as i128);
    let mut short = Vec::new();
    for run in 0..runs {
        let f = one_run(run, &ns, &server);
        let (cut, told, granted) = (
            i128::from(f.cut_ns),
            i128::from(f.sigterm_ns),
            i128::from(f.granted_ns),
        );
        let told_first_by = ms(granted - told);
        let line = format!(
            "partition run={run} cut->lost={:.3}ms cut->granted={:.3}ms \
             told_first_by={told_first_by:.3}ms margin={margin_ms:.3}ms via=SIGTERM",
            ms(told - cut),
            ms(granted - cut)
        );
        println!("{line}");
        if told_first_by < margin_ms - ALLOWANCE_MS {
            short.push(line);
        }
    }
    assert!(
        short.is_empty(),
        "the holder's command got SIGTERM less than the margin ({margin_ms:.3}ms) less \
         {ALLOWANCE_MS}ms before the outsider's command started in {} of {runs} runs:\n{}",
        short.len(),
        short.join("\n")
    );
}
