//! `#[once]` on a scheduled job: several workers fire the same job at the same moment (as
//! cron on several machines would), and only one of them runs it per key.
//!
//! ```text
//! cargo run --example once
//! ```
//!
//! In memory here, so the "machines" are threads; with a shared cache (Redis) they would be
//! processes on different machines, and the code would not change.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use cachelock::once;

const WORKERS: usize = 4;
const DAYS: [&str; 2] = ["2026-11-24", "2026-11-25"];

static REPORTS_BUILT: AtomicUsize = AtomicUsize::new(0);

/// The nightly report of `day`: must not be built twice at the same time.
///
/// A worker that finds the key held is skipped and gets `None`. The lock lives at most 10
/// minutes if a worker crashes while building.
#[once(key = "nightly-report-<day>", ttl = "10m")]
fn nightly_report(day: &str, worker: usize) -> Option<String> {
    println!("worker {worker}: building the report of {day}");
    // The work: long enough for the other workers, started at the same moment, to find the
    // key held.
    std::thread::sleep(Duration::from_millis(300));
    REPORTS_BUILT.fetch_add(1, Ordering::SeqCst);
    Some(format!("report of {day}, built by worker {worker}"))
}

fn main() {
    let tick = Barrier::new(WORKERS);
    std::thread::scope(|s| {
        for worker in 0..WORKERS {
            let tick = &tick;
            s.spawn(move || {
                // The scheduler fires every worker at the same moment, for each day.
                tick.wait();
                let handles: Vec<_> = DAYS
                    .iter()
                    .map(|day| std::thread::spawn(move || (day, nightly_report(day, worker))))
                    .collect();
                for handle in handles {
                    match handle.join().expect("the job thread panicked") {
                        (_, Some(report)) => println!("worker {worker}: done: {report}"),
                        (day, None) => {
                            println!("worker {worker}: skipped {day}: another worker is on it");
                        }
                    }
                }
            });
        }
    });
    println!(
        "{} reports built for {} days by {WORKERS} workers",
        REPORTS_BUILT.load(Ordering::SeqCst),
        DAYS.len()
    );
}
