//! Waking waiters when a key is released: per key stripe, a generation counter with a
//! condvar (sync waiters) and a `Notify` (async waiters); and a count of the waiters, so a
//! release with nobody waiting (the common case) costs a fence and one atomic read.

use std::hash::BuildHasher;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

const STRIPES: usize = 64;

/// One stripe of keys.
struct Stripe {
    generation: Mutex<u64>,
    condvar: Condvar,
    notify: Notify,
}

/// Where waiters wait for a release.
pub(crate) struct Board {
    hasher: std::collections::hash_map::RandomState,
    stripes: Vec<Stripe>,
    /// Sync and async waiters registered right now, on any stripe.
    waiters: AtomicUsize,
}

/// Counts a waiter from registration until it stops waiting (also when its future is dropped).
struct Registered<'a>(&'a AtomicUsize);

impl<'a> Registered<'a> {
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `released`: either the releaser sees this waiter, or the
        // waiter's `still_held` check (after this) sees the release.
        fence(Ordering::SeqCst);
        Registered(waiters)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Board {
    pub(crate) fn new() -> Self {
        Board {
            hasher: std::collections::hash_map::RandomState::new(),
            stripes: (0..STRIPES)
                .map(|_| Stripe {
                    generation: Mutex::new(0),
                    condvar: Condvar::new(),
                    notify: Notify::new(),
                })
                .collect(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// Waiters registered right now (for tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.load(Ordering::SeqCst)
    }

    fn stripe(&self, key: &str) -> &Stripe {
        &self.stripes[(self.hasher.hash_one(key) % STRIPES as u64) as usize]
    }

    /// A key was released (the caller has already made the release visible): wake every
    /// waiter of its stripe (they try again; a waiter of another key of the stripe just
    /// retries early). Nothing to do, and no lock taken, when nobody waits.
    pub(crate) fn released(&self, key: &str) {
        // Pairs with the fence in `Registered::new` (see there).
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        let stripe = self.stripe(key);
        *stripe.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        stripe.condvar.notify_all();
        stripe.notify.notify_waiters();
    }

    /// Waits until `key` is released or `pause` has passed. `still_held` is checked after
    /// the waiter is registered: a release just before is seen by it, one after wakes the
    /// wait.
    pub(crate) fn wait(&self, key: &str, pause: Duration, still_held: impl FnOnce() -> bool) {
        let stripe = self.stripe(key);
        let seen = stripe.generation.lock().unwrap_or_else(|p| p.into_inner());
        let _registered = Registered::new(&self.waiters);
        if !still_held() {
            return;
        }
        let start = *seen;
        let _woken = stripe
            .condvar
            .wait_timeout_while(seen, pause, |g| *g == start)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Async twin of [`Board::wait`].
    pub(crate) async fn wait_async(
        &self,
        key: &str,
        pause: Duration,
        still_held: impl FnOnce() -> bool,
    ) {
        let stripe = self.stripe(key);
        let mut notified = std::pin::pin!(stripe.notify.notified());
        notified.as_mut().enable();
        let _registered = Registered::new(&self.waiters);
        if !still_held() {
            return;
        }
        let _ = tokio::time::timeout(pause, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// Long enough that a waiter that was not woken cannot pass for one that was.
    const LONG: Duration = Duration::from_secs(30);

    fn until_registered(board: &Board, n: usize) {
        while board.waiters.load(Ordering::SeqCst) < n {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_release_wakes_a_registered_sync_waiter_and_the_count_returns_to_zero() {
        let board = Board::new();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let started = Instant::now();
                board.wait("k", LONG, || true);
                started.elapsed()
            });
            until_registered(&board, 1);
            board.released("k");
            assert!(waiter.join().unwrap() < LONG, "woken, not timed out");
        });
        assert_eq!(board.waiters.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_wakes_a_registered_async_waiter_and_the_count_returns_to_zero() {
        let board = std::sync::Arc::new(Board::new());
        let waiter = {
            let board = board.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                board.wait_async("k", LONG, || true).await;
                started.elapsed()
            })
        };
        until_registered(&board, 1);
        board.released("k");
        assert!(waiter.await.unwrap() < LONG, "woken, not timed out");
        assert_eq!(board.waiters.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_waiter_that_finds_the_key_free_returns_at_once() {
        let board = Board::new();
        let started = Instant::now();
        board.wait("k", LONG, || false);
        assert!(started.elapsed() < LONG);
        assert_eq!(board.waiters.load(Ordering::SeqCst), 0);
    }
}
