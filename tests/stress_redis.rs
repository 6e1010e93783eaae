//! Mutual exclusion under stress, across processes, with holders killed by SIGKILL.
//!
//! The test starts a `redis-server` and several worker processes (this test binary run
//! again, selecting only [`worker_entry_point`] and told what to do through environment
//! variables). Each worker runs several threads (one of them async) that try to take one of a
//! few keys, hold it for a few milliseconds, and let it go. Every critical section is written
//! to an append-only file per thread: when the claim was sent, when the holder got in, and
//! when it left, all read from `CLOCK_MONOTONIC`, one clock for every process on the host.
//!
//! Meanwhile the test SIGKILLs workers, choosing ones that are inside a critical section (an
//! entry without an exit in their files), and starts replacements. A killed holder never
//! releases: its lock must come free by its TTL alone, and the run goes on.
//!
//! The checker then proves that no two holders of one key were inside at the same time while
//! the earlier one's TTL still ran. A holder's protected window is `[enter, end)` with
//! `end = min(exit, claim_sent + TTL - margin)`: the server starts the TTL after the claim
//! was sent, so until `claim_sent + TTL` the lock is certainly still alive (the margin covers
//! Redis's millisecond rounding). A killed holder has no exit; its window runs to the TTL.
//! The checker is tested on its own below (it reports overlapping intervals).
//!
//! ```text
//! cargo test --features redis --test stress_redis                          # ~15 s
//! CACHELOCK_STRESS_SECS=600 cargo test --release --features redis --test stress_redis -- --nocapture
//! ```
//!
//! Nothing here asserts a duration: the run length only bounds the loops.
#![cfg(feature = "redis")]

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cachelock::redis::RedisCache;
use cachelock::{Lock, LockStore, NoopCache};
use cachelock_testkit::RedisServer;

/// Set (to the log directory) in a worker process.
const WORKER_ENV: &str = "CACHELOCK_STRESS_WORKER_DIR";
/// Run length in seconds; the default keeps the normal suite under a minute.
const SECS_ENV: &str = "CACHELOCK_STRESS_SECS";
const DEFAULT_SECS: u64 = 12;
/// Given instead of a Redis URL: the workers use `NoopCache`, which excludes nobody.
const NO_LOCK: &str = "noop";

const WORKERS: usize = 4;
const THREADS: usize = 4;
const KEYS: usize = 3;
const TTL_MS: u64 = 1_000;
/// Redis rounds expiry times to milliseconds: the window ends this much before the TTL.
const MARGIN_NS: u64 = 5_000_000;

/// `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every process on this host
/// (`std::time::Instant` is opaque, so it cannot be written to a file and compared across
/// processes).
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A small xorshift generator, seeded per thread (no dependency needed).
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        Rng((mono_ns()
            ^ (u64::from(std::process::id()) << 32)
            ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// ---------------------------------------------------------------------------------------
// The checker.
// ---------------------------------------------------------------------------------------

/// One critical section as recorded by a holder.
#[derive(Debug, Clone, PartialEq)]
struct Interval {
    key: String,
    /// Who: `file:seq`.
    who: String,
    /// When the claim was sent (the TTL started at or after this).
    claim_ns: u64,
    /// When the holder got in (the claim had succeeded).
    enter_ns: u64,
    /// When it left, before sending the release; `None` if it was killed inside.
    exit_ns: Option<u64>,
}

impl Interval {
    /// The end of the window in which nobody else may be inside.
    fn protected_end(&self, ttl_ns: u64, margin_ns: u64) -> u64 {
        let expiry = (self.claim_ns + ttl_ns).saturating_sub(margin_ns);
        self.exit_ns.map_or(expiry, |exit| exit.min(expiry))
    }
}

/// Pairs of holders of one key whose protected windows overlap.
fn violations(intervals: &[Interval], ttl_ns: u64, margin_ns: u64) -> Vec<(Interval, Interval)> {
    let mut by_key: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
    for interval in intervals {
        by_key.entry(&interval.key).or_default().push(interval);
    }
    let mut found = Vec::new();
    for list in by_key.values_mut() {
        list.sort_by_key(|i| i.enter_ns);
        for (n, a) in list.iter().enumerate() {
            let a_end = a.protected_end(ttl_ns, margin_ns);
            // Sorted by entry: only later entries before `a_end` can overlap `a`.
            for b in list[n + 1..].iter().take_while(|b| b.enter_ns < a_end) {
                if b.enter_ns < b.protected_end(ttl_ns, margin_ns) {
                    found.push(((*a).clone(), (*b).clone()));
                }
            }
        }
    }
    found
}

/// The lines of a record file that were written whole (a killed writer may leave the last
/// one torn, without its newline).
fn whole_lines(text: &str) -> impl Iterator<Item = &str> {
    let whole = match text.rfind('\n') {
        Some(at) => &text[..at],
        None => "",
    };
    whole.lines()
}

/// Reads every record file in `dir`: `E <seq> <key> <claim_ns> <enter_ns>` on entry,
/// `X <seq> <exit_ns> <outcome>` on exit. A torn last line (the writer was killed) is
/// skipped.
fn read_intervals(dir: &Path) -> Vec<Interval> {
    let mut intervals = Vec::new();
    for entry in std::fs::read_dir(dir).expect("log dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("record file");
        let mut open: BTreeMap<String, Interval> = BTreeMap::new();
        for line in whole_lines(&text) {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["E", seq, key, claim, enter] => {
                    let (Ok(claim_ns), Ok(enter_ns)) = (claim.parse(), enter.parse()) else {
                        continue;
                    };
                    open.insert(
                        (*seq).to_owned(),
                        Interval {
                            key: (*key).to_owned(),
                            who: format!("{file}:{seq}"),
                            claim_ns,
                            enter_ns,
                            exit_ns: None,
                        },
                    );
                }
                ["X", seq, exit, _outcome] => {
                    if let (Some(mut interval), Ok(exit_ns)) = (open.remove(*seq), exit.parse()) {
                        interval.exit_ns = Some(exit_ns);
                        intervals.push(interval);
                    }
                }
                _ => {}
            }
        }
        intervals.extend(open.into_values());
    }
    intervals
}

/// Whether a worker's files show a holder inside right now.
fn has_open_interval(dir: &Path, worker: usize) -> bool {
    let prefix = format!("w{worker}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) {
            return false;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut open = HashSet::new();
        for line in whole_lines(&text) {
            let mut f = line.split(' ');
            match (f.next(), f.next()) {
                (Some("E"), Some(seq)) => {
                    open.insert(seq.to_owned());
                }
                (Some("X"), Some(seq)) => {
                    open.remove(seq);
                }
                _ => {}
            }
        }
        !open.is_empty()
    })
}

// ---------------------------------------------------------------------------------------
// The worker process.
// ---------------------------------------------------------------------------------------

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

/// Appends one whole line with a single `write` (the file is opened with O_APPEND).
fn record(file: &mut File, line: &str) {
    file.write_all(line.as_bytes()).expect("record");
}

fn worker_thread<C: LockStore + Clone + 'static>(
    dir: &Path,
    worker: u64,
    thread: usize,
    cache: &C,
    end_ns: u64,
) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("w{worker}-t{thread}-{}.log", std::process::id())))
        .expect("record file");
    let mut rng = Rng::seeded(worker * 100 + thread as u64);
    // Thread 0 takes its locks through the async API, on its own runtime.
    let rt = (thread == 0).then(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    });
    let ttl = Duration::from_millis(TTL_MS);
    let mut seq = 0u64;
    // Bounded: stops at the end of the run.
    while mono_ns() < end_ns {
        let key = format!("stress-{}", rng.below(KEYS as u64));
        let lock = Lock::new(key.clone()).cache(cache.clone()).ttl(ttl);
        let hold = Duration::from_millis(5 + rng.below(35));
        let claim_ns = mono_ns();
        let outcome = match &rt {
            None => lock.try_acquire().map(|guard| {
                let enter_ns = mono_ns();
                record(&mut file, &format!("E {seq} {key} {claim_ns} {enter_ns}\n"));
                std::thread::sleep(hold);
                record(&mut file, &format!("X {seq} {} released\n", mono_ns()));
                guard.release()
            }),
            Some(rt) => rt.block_on(async {
                match lock.try_acquire_async().await {
                    Ok(guard) => {
                        let enter_ns = mono_ns();
                        record(&mut file, &format!("E {seq} {key} {claim_ns} {enter_ns}\n"));
                        tokio::time::sleep(hold).await;
                        record(&mut file, &format!("X {seq} {} released\n", mono_ns()));
                        Ok(guard.release().await)
                    }
                    Err(e) => Err(e),
                }
            }),
        };
        match outcome {
            // Released, or lost because this thread stalled past the TTL (the checker only
            // protects the window up to the TTL, so that is no violation).
            Ok(Ok(())) => seq += 1,
            Ok(Err(e)) if e.is_lost() => seq += 1,
            Ok(Err(e)) => panic!("release failed: {e}"),
            Err(e) if e.is_locked() => {
                std::thread::sleep(Duration::from_millis(1 + rng.below(3)));
            }
            Err(e) => panic!("acquire failed: {e}"),
        }
    }
}

/// The entry point of a worker process; does nothing when run by the test harness itself.
#[test]
fn worker_entry_point() {
    let Ok(dir) = std::env::var(WORKER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let url = std::env::var("CACHELOCK_STRESS_URL").expect("CACHELOCK_STRESS_URL");
    let worker = env_u64("CACHELOCK_STRESS_WORKER_ID");
    let end_ns = env_u64("CACHELOCK_STRESS_END_NS");
    let run = |cache: &(dyn Fn(usize) + Sync)| {
        std::thread::scope(|s| {
            for thread in 0..THREADS {
                s.spawn(move || cache(thread));
            }
        });
    };
    if url == NO_LOCK {
        // The checker's own test: a cache that grants every claim, so holders overlap.
        run(&|thread| worker_thread(&dir, worker, thread, &NoopCache, end_ns));
    } else {
        let cache = RedisCache::from_url(&url).expect("url");
        run(&|thread| worker_thread(&dir, worker, thread, &cache, end_ns));
    }
}

// ---------------------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------------------

fn spawn_worker(dir: &Path, url: &str, id: usize, end_ns: u64) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "worker_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER_ENV, dir)
        .env("CACHELOCK_STRESS_URL", url)
        .env("CACHELOCK_STRESS_WORKER_ID", id.to_string())
        .env("CACHELOCK_STRESS_END_NS", end_ns.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join(format!("w{id}.stderr"))).expect("stderr file"))
        .spawn()
        .expect("spawn worker")
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn no_two_holders_overlap_across_processes_with_holders_killed() {
    let secs: u64 = std::env::var(SECS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let server = RedisServer::start();
    let url = server.url();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "cachelock-stress-{}-{}",
        std::process::id(),
        mono_ns()
    )));
    std::fs::create_dir_all(&dir.0).expect("log dir");
    let dir_path = dir.0.as_path();

    let start_ns = mono_ns();
    let end_ns = start_ns + secs * 1_000_000_000;
    // No kills in the last stretch: a killed holder's key must come free (after its TTL) and
    // be taken again before the run ends.
    let last_kill_ns = end_ns.saturating_sub(3 * TTL_MS * 1_000_000);
    let mut workers: Vec<(usize, Child)> = (0..WORKERS)
        .map(|id| (id, spawn_worker(dir_path, &url, id, end_ns)))
        .collect();
    let mut next_id = WORKERS;
    let mut killed = Vec::new();
    let mut rng = Rng::seeded(7);

    while mono_ns() < last_kill_ns {
        std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
        let slot = rng.below(workers.len() as u64) as usize;
        let id = workers[slot].0;
        // Wait (boundedly) until this worker is inside a critical section, then kill it.
        for _ in 0..200 {
            if has_open_interval(dir_path, id) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let child = &mut workers[slot].1;
        child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
        child.wait().expect("reap");
        killed.push(id);
        workers[slot] = (next_id, spawn_worker(dir_path, &url, next_id, end_ns));
        next_id += 1;
    }
    for (id, mut child) in workers {
        let status = child.wait().expect("worker exit");
        let stderr =
            std::fs::read_to_string(dir_path.join(format!("w{id}.stderr"))).unwrap_or_default();
        assert!(status.success(), "worker {id} failed: {status}\n{stderr}");
    }
    drop(server);

    let intervals = read_intervals(dir_path);
    let ttl_ns = TTL_MS * 1_000_000;
    let found = violations(&intervals, ttl_ns, MARGIN_NS);
    let killed_inside: Vec<&Interval> = intervals.iter().filter(|i| i.exit_ns.is_none()).collect();
    let freed_again = killed_inside
        .iter()
        .filter(|k| {
            intervals
                .iter()
                .any(|i| i.key == k.key && i.enter_ns > k.enter_ns)
        })
        .count();
    let per_key: BTreeMap<&str, usize> = intervals.iter().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i.key.as_str()).or_default() += 1;
        m
    });
    println!(
        "stress: {secs} s, {} critical sections {per_key:?}, {} workers killed with SIGKILL, {} holders killed inside a critical section, {freed_again} of their keys taken again after the TTL, {} violations",
        intervals.len(),
        killed.len(),
        killed_inside.len(),
        found.len()
    );
    assert!(
        found.is_empty(),
        "{} overlapping holders, first: {:#?}",
        found.len(),
        found.first()
    );
    assert!(!killed.is_empty(), "the run was too short to kill anyone");
    assert!(
        !killed_inside.is_empty(),
        "no worker was killed inside a critical section ({} kills)",
        killed.len()
    );
    assert_eq!(
        freed_again,
        killed_inside.len(),
        "a lock whose holder was killed was never taken again"
    );
}

// ---------------------------------------------------------------------------------------
// The checker can fail.
// ---------------------------------------------------------------------------------------

const MS: u64 = 1_000_000;

fn iv(key: &str, who: &str, claim: u64, enter: u64, exit: Option<u64>) -> Interval {
    Interval {
        key: key.to_owned(),
        who: who.to_owned(),
        claim_ns: claim * MS,
        enter_ns: enter * MS,
        exit_ns: exit.map(|e| e * MS),
    }
}

#[test]
fn checker_reports_two_holders_inside_at_once() {
    let intervals = [
        iv("k", "a", 0, 1, Some(50)),
        iv("k", "b", 20, 30, Some(60)), // entered while a was inside
    ];
    let found = violations(&intervals, 1_000 * MS, MARGIN_NS);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0.who.as_str(), found[0].1.who.as_str()),
        ("a", "b")
    );
}

#[test]
fn checker_reports_entry_into_a_killed_holders_lock_before_its_ttl() {
    let intervals = [
        iv("k", "killed", 0, 1, None),
        iv("k", "early", 400, 500, Some(520)), // TTL 1000 ms had not run out
    ];
    assert_eq!(violations(&intervals, 1_000 * MS, MARGIN_NS).len(), 1);
}

#[test]
fn checker_accepts_one_after_another_and_entry_after_a_killed_holders_ttl() {
    let intervals = [
        iv("k", "a", 0, 1, Some(50)),
        iv("k", "b", 49, 51, Some(90)),
        iv("k", "killed", 95, 100, None),
        iv("k", "after-ttl", 1_096, 1_097, Some(1_100)),
        iv("other", "c", 0, 10, Some(2_000)), // another key: no conflict
    ];
    assert!(violations(&intervals, 1_000 * MS, MARGIN_NS).is_empty());
}

/// The whole pipeline (worker processes, records, reader, checker) on a cache that grants
/// every claim: it must report overlaps, so a green stress run means something.
#[test]
fn the_stress_run_catches_a_lock_that_excludes_nobody() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "cachelock-stress-noop-{}-{}",
        std::process::id(),
        mono_ns()
    )));
    std::fs::create_dir_all(&dir.0).expect("log dir");
    let end_ns = mono_ns() + 2_000_000_000;
    let workers: Vec<Child> = (0..2)
        .map(|id| spawn_worker(&dir.0, NO_LOCK, id, end_ns))
        .collect();
    for mut child in workers {
        assert!(child.wait().expect("worker exit").success());
    }
    let intervals = read_intervals(&dir.0);
    assert!(!intervals.is_empty(), "the workers recorded nothing");
    let found = violations(&intervals, TTL_MS * 1_000_000, MARGIN_NS);
    assert!(
        !found.is_empty(),
        "{} critical sections under NoopCache and no overlap reported",
        intervals.len()
    );
}

#[test]
fn checker_reads_records_and_skips_a_torn_line() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "cachelock-stress-reader-{}-{}",
        std::process::id(),
        mono_ns()
    )));
    std::fs::create_dir_all(&dir.0).expect("dir");
    std::fs::write(
        dir.0.join("w0-t0-1.log"),
        "E 0 k 10 20\nX 0 30 released\nE 1 k 40 50\nX 1 6",
    )
    .expect("write");
    std::fs::write(dir.0.join("w1-t0-2.log"), "E 0 k 25 26\nX 0 29 released\n").expect("write");
    let mut intervals = read_intervals(&dir.0);
    intervals.sort_by_key(|i| i.enter_ns);
    assert_eq!(intervals.len(), 3);
    assert_eq!(intervals[1].exit_ns, Some(29));
    assert_eq!(intervals[2].exit_ns, None, "the torn exit line is skipped");
    assert!(has_open_interval(&dir.0, 0));
    assert!(!has_open_interval(&dir.0, 1));
    // w1's holder entered at 26 while w0's was inside until 30.
    assert_eq!(violations(&intervals, 1_000, 0).len(), 1);
}
