//! `#[once]` under contention between threads: one body runs per key, the others are
//! skipped (or refused with `raise_if_locked = true`). Ordered with channels and barriers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Barrier, Mutex};

use cachelock::{once, Error};

const THREADS: usize = 8;

/// The body of the winner waits until every other caller of its key has returned.
#[once(key = "threads-job-<day>")]
fn nightly_job(day: u32, ran: &AtomicUsize, returned: &Mutex<Receiver<()>>) -> Option<u32> {
    ran.fetch_add(1, Ordering::SeqCst);
    let returned = returned.lock().unwrap();
    for _ in 1..THREADS {
        returned.recv().unwrap();
    }
    Some(day)
}

fn race(day: u32) -> (usize, Vec<Option<u32>>) {
    let ran = AtomicUsize::new(0);
    let (tx, rx): (Sender<()>, Receiver<()>) = channel();
    let rx = Mutex::new(rx);
    let start = Barrier::new(THREADS);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let tx = tx.clone();
                let (ran, rx, start) = (&ran, &rx, &start);
                s.spawn(move || {
                    start.wait();
                    let result = nightly_job(day, ran, rx);
                    if result.is_none() {
                        tx.send(()).unwrap();
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (ran.load(Ordering::SeqCst), results)
}

#[test]
fn only_one_thread_runs_per_key() {
    let (ran, results) = race(1);
    assert_eq!(ran, 1, "exactly one body ran");
    assert_eq!(results.iter().filter(|r| **r == Some(1)).count(), 1);
    assert_eq!(results.iter().filter(|r| r.is_none()).count(), THREADS - 1);
}

#[test]
fn keys_are_independent_across_threads() {
    // Two races on two keys at the same time: each has its own single winner.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| race(2));
        let b = s.spawn(|| race(3));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.0, 1);
    assert_eq!(b.0, 1);
}

#[once(key = "threads-raise", raise_if_locked = true)]
fn exclusive(inside: &Barrier, leave: &Barrier) -> Result<(), Error> {
    inside.wait();
    leave.wait();
    Ok(())
}

#[test]
fn raise_if_locked_refuses_other_threads() {
    let inside = Barrier::new(2);
    let leave = Barrier::new(2);
    std::thread::scope(|s| {
        let holder = s.spawn(|| exclusive(&inside, &leave));
        inside.wait();
        let refused = std::thread::scope(|s| s.spawn(|| exclusive(&inside, &leave)).join())
            .unwrap()
            .unwrap_err();
        assert!(refused.is_locked());
        assert_eq!(refused.key(), Some("cachelock:threads-raise"));
        leave.wait();
        holder.join().unwrap().unwrap();
    });
}

static SEQUENTIAL: AtomicUsize = AtomicUsize::new(0);

#[once(key = "threads-sequential")]
fn sequential() -> Option<()> {
    SEQUENTIAL.fetch_add(1, Ordering::SeqCst);
    Some(())
}

#[test]
fn calls_that_do_not_overlap_all_run() {
    for _ in 0..4 {
        std::thread::spawn(sequential).join().unwrap().unwrap();
    }
    assert_eq!(SEQUENTIAL.load(Ordering::SeqCst), 4);
}
