//! The workers: threads that take one of a few keys, hold it a few milliseconds, log the
//! hold and let it go. A worker process is the test binary run again with
//! `--exact worker_entry_point` and the environment below; the memory store's workers are
//! threads of the test process itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cachelock::{store_from_url, Lock, LockStore};

use super::clock::{mono_ns, Rng};
use super::log::HoldLog;

pub const DIR_ENV: &str = "CACHELOCK_HISTORY_WORKER_DIR";
pub const URL_ENV: &str = "CACHELOCK_HISTORY_URL";
pub const ID_ENV: &str = "CACHELOCK_HISTORY_WORKER_ID";
pub const END_ENV: &str = "CACHELOCK_HISTORY_END_NS";
pub const TOLERATE_ENV: &str = "CACHELOCK_HISTORY_TOLERATE_ERRORS";

pub const THREADS: usize = 4;
pub const KEYS: u64 = 3;
pub const TTL_MS: u64 = 1_000;

/// What a worker thread does besides holding and releasing.
#[derive(Clone, Copy, Default)]
pub struct Behaviour {
    /// Store errors (a server restarting; a request timed out in a process paused with
    /// SIGSTOP) are logged to stderr and retried instead of failing the worker.
    pub tolerate_errors: bool,
    /// One hold in this many forgets its guard inside (never releases: the in-process
    /// analogue of a holder killed inside). 0: never.
    pub abandon_one_in: u64,
    /// One hold in this many stays inside past its TTL (a stalled holder). 0: never.
    pub stall_one_in: u64,
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

/// The body of a worker process; returns at once when not run as one.
pub fn entry_point() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let url = std::env::var(URL_ENV).expect(URL_ENV);
    let store = store_from_url(&url).expect("store url");
    let behaviour = Behaviour {
        tolerate_errors: std::env::var_os(TOLERATE_ENV).is_some(),
        ..Behaviour::default()
    };
    run_threads(
        &PathBuf::from(dir),
        env_u64(ID_ENV),
        &store,
        env_u64(END_ENV),
        THREADS,
        behaviour,
    );
}

/// Runs `threads` worker threads on `store` until `end_ns`.
pub fn run_threads(
    dir: &Path,
    worker: u64,
    store: &Arc<dyn LockStore>,
    end_ns: u64,
    threads: usize,
    behaviour: Behaviour,
) {
    std::thread::scope(|s| {
        for thread in 0..threads {
            s.spawn(move || worker_thread(dir, worker, thread, store, end_ns, behaviour));
        }
    });
}

/// A release's result does not matter to the checker (the window ends at the exit or at the
/// TTL, whichever is first), but one that fails for another reason than a lost lock (a
/// holder stalled past its TTL) is a bug unless the server is being restarted.
fn released(result: Result<(), cachelock::Error>, behaviour: Behaviour) {
    match result {
        Err(e) if e.is_lost() => {}
        Err(e) if behaviour.tolerate_errors => eprintln!("tolerated error: {}", chain(&e)),
        Err(e) => panic!("release failed: {}", chain(&e)),
        Ok(()) => {}
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What became of one attempt.
enum Attempt {
    Held,
    Refused,
    Failed(cachelock::Error),
}

fn worker_thread(
    dir: &Path,
    worker: u64,
    thread: usize,
    store: &Arc<dyn LockStore>,
    end_ns: u64,
    behaviour: Behaviour,
) {
    let name = format!("w{worker}-t{thread}-{}.log", std::process::id());
    let mut log = HoldLog::create(&dir.join(name));
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
        let key = format!("history-{}", rng.below(KEYS));
        let lock = Lock::new(key.clone())
            .cache(store.clone())
            .ttl(ttl)
            .renew(false);
        let abandon = behaviour.abandon_one_in > 0 && rng.below(behaviour.abandon_one_in) == 0;
        let stall = behaviour.stall_one_in > 0 && rng.below(behaviour.stall_one_in) == 0;
        let hold = if stall {
            ttl + Duration::from_millis(100 + rng.below(300))
        } else {
            Duration::from_millis(5 + rng.below(35))
        };
        let claim_ns = mono_ns();
        let attempt = match &rt {
            None => match lock.try_acquire() {
                Ok(guard) => {
                    log.enter(seq, &key, guard.fence(), claim_ns, mono_ns());
                    std::thread::sleep(hold);
                    if abandon {
                        std::mem::forget(guard);
                    } else {
                        log.exit(seq, mono_ns());
                        released(guard.release(), behaviour);
                    }
                    Attempt::Held
                }
                Err(e) if e.is_locked() => Attempt::Refused,
                Err(e) => Attempt::Failed(e),
            },
            Some(rt) => rt.block_on(async {
                match lock.try_acquire_async().await {
                    Ok(guard) => {
                        log.enter(seq, &key, guard.fence(), claim_ns, mono_ns());
                        tokio::time::sleep(hold).await;
                        if abandon {
                            std::mem::forget(guard);
                        } else {
                            log.exit(seq, mono_ns());
                            released(guard.release().await, behaviour);
                        }
                        Attempt::Held
                    }
                    Err(e) if e.is_locked() => Attempt::Refused,
                    Err(e) => Attempt::Failed(e),
                }
            }),
        };
        match attempt {
            Attempt::Held => seq += 1,
            Attempt::Refused => std::thread::sleep(Duration::from_millis(1 + rng.below(3))),
            Attempt::Failed(e) if behaviour.tolerate_errors => {
                eprintln!("tolerated error: {}", chain(&e));
                std::thread::sleep(Duration::from_millis(20 + rng.below(30)));
            }
            Attempt::Failed(e) => panic!("acquire failed: {}", chain(&e)),
        }
    }
}
