//! Waking waiters when a key is released: per key stripe, a generation counter with a
//! condvar (sync waiters) and a `Notify` (async waiters).

use std::hash::BuildHasher;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

const STRIPES: usize = 64;

/// Where waiters wait for a release.
pub(crate) struct Board {
    hasher: std::collections::hash_map::RandomState,
    stripes: Vec<(Mutex<u64>, Condvar, Notify)>,
}

impl Board {
    pub(crate) fn new() -> Self {
        Board {
            hasher: std::collections::hash_map::RandomState::new(),
            stripes: (0..STRIPES)
                .map(|_| (Mutex::new(0), Condvar::new(), Notify::new()))
                .collect(),
        }
    }

    fn stripe(&self, key: &str) -> &(Mutex<u64>, Condvar, Notify) {
        &self.stripes[(self.hasher.hash_one(key) % STRIPES as u64) as usize]
    }

    /// A key was released: wake every waiter of its stripe (they try again; a waiter of
    /// another key of the stripe just retries early).
    pub(crate) fn released(&self, key: &str) {
        let (generation, condvar, notify) = self.stripe(key);
        *generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        condvar.notify_all();
        notify.notify_waiters();
    }

    /// Waits until `key` is released or `pause` has passed. `still_held` is checked after
    /// the waiter is registered: a release just before is seen by it, one after wakes the
    /// wait.
    pub(crate) fn wait(&self, key: &str, pause: Duration, still_held: impl FnOnce() -> bool) {
        let (generation, condvar, _) = self.stripe(key);
        let seen = generation.lock().unwrap_or_else(|p| p.into_inner());
        if !still_held() {
            return;
        }
        let start = *seen;
        let _woken = condvar
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
        let (_, _, notify) = self.stripe(key);
        let mut notified = std::pin::pin!(notify.notified());
        notified.as_mut().enable();
        if !still_held() {
            return;
        }
        let _ = tokio::time::timeout(pause, notified).await;
    }
}
