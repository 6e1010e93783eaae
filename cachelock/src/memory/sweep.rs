//! Dropping free slots: how the in-memory cache's memory follows the live locks.
//!
//! A release only empties its key's slot (under the slot's mutex, no moka compute), so the
//! next claim of that key is one moka read. Free slots are removed in sweeps:
//!
//! - A sweep runs once `max(SWEEP_MIN, live slots at the last sweep)` new keys have been
//!   inserted since the last one, on a background thread (`cachelock-sweep`, one per
//!   cache, started by the first sweep, gone once the cache is dropped), so callers do not
//!   pay for it. A cache whose keys are reused (the common case: a job's lock) never
//!   inserts, so it never sweeps. If twice that many new keys arrive before a sweep starts
//!   (the thread starved or still busy), the inserting caller sweeps or waits for the
//!   running sweep: memory stays bounded however fast new keys come.
//! - A sweep removes the slots that have stayed free since the sweep before it (a
//!   generation count): a key released and taken again in between keeps its slot. Slots
//!   whose value expired count as freed when a sweep first sees them.
//! - [`MemoryCache::entry_count`](super::MemoryCache::entry_count) runs a full sweep first
//!   (every free slot goes), so it counts live keys.
//!
//! So a cache holds its live keys plus at most about `4 * max(SWEEP_MIN, live keys)` free
//! slots (each a key string and about 150 bytes); one that stops inserting keeps them until
//! new keys come or `entry_count` is called.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Instant;

use moka::ops::compute::Op;

use super::slot::State;
use super::{Moka, Shared};

/// New keys inserted between two sweeps, at least.
pub(super) const SWEEP_MIN: usize = 4096;

/// The sweep bookkeeping of one cache.
pub(super) struct Sweeper {
    /// Bumped by every sweep; a slot records the generation it became free in.
    generation: AtomicU64,
    /// New keys inserted since the last sweep.
    inserted: AtomicUsize,
    /// How many insertions start the next sweep.
    threshold: AtomicUsize,
    /// Serializes sweeps (the background one and `entry_count`'s).
    running: Mutex<()>,
    /// Wakes the background thread.
    signal: Arc<Signal>,
}

/// Shared by a cache and its sweep thread; the thread holds only this and a `Weak`, so the
/// cache can be dropped.
struct Signal {
    state: Mutex<SignalState>,
    condvar: Condvar,
}

#[derive(Default)]
struct SignalState {
    spawned: bool,
    pending: bool,
    stop: bool,
}

impl Signal {
    fn locked(&self) -> std::sync::MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sweeper {
    pub(super) fn new() -> Self {
        Sweeper {
            generation: AtomicU64::new(0),
            inserted: AtomicUsize::new(0),
            threshold: AtomicUsize::new(SWEEP_MIN),
            running: Mutex::new(()),
            signal: Arc::new(Signal {
                state: Mutex::new(SignalState::default()),
                condvar: Condvar::new(),
            }),
        }
    }

    /// The generation a slot freed now belongs to.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Counts a new key; starts a background sweep when enough have come in. When twice that
    /// many have come in and no sweep has started (the thread is starved, or busy with a
    /// long sweep), the caller sweeps (or waits for the running sweep): memory stays bounded
    /// however fast new keys arrive.
    pub(super) fn inserted(&self, shared: &Arc<Shared>) {
        let inserted = self.inserted.fetch_add(1, Ordering::Relaxed) + 1;
        let threshold = self.threshold.load(Ordering::Relaxed);
        if inserted < threshold {
            return;
        }
        if inserted >= threshold.saturating_mul(2) {
            self.sweep(&shared.moka, Sweep::IfBehind(threshold.saturating_mul(2)));
            return;
        }
        let mut state = self.signal.locked();
        if state.pending {
            return;
        }
        state.pending = true;
        if state.spawned {
            self.signal.condvar.notify_one();
            return;
        }
        let signal = Arc::clone(&self.signal);
        let weak = Arc::downgrade(shared);
        let spawned = std::thread::Builder::new()
            .name("cachelock-sweep".into())
            .spawn(move || background(&signal, &weak));
        match spawned {
            Ok(_) => state.spawned = true,
            Err(error) => {
                // No thread: sweep here rather than let memory grow.
                state.pending = false;
                drop(state);
                tracing::warn!(%error, "cannot start the cachelock-sweep thread; sweeping inline");
                self.sweep(&shared.moka, Sweep::Generation);
            }
        }
    }

    /// Tells the background thread (if any) to stop; called when the cache is dropped.
    pub(super) fn stop(&self) {
        self.signal.locked().stop = true;
        self.signal.condvar.notify_one();
    }

    /// Removes free slots, as `how` says.
    pub(super) fn sweep(&self, moka: &Moka, how: Sweep) {
        let _running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Sweep::IfBehind(behind) = how {
            if self.inserted.load(Ordering::Relaxed) < behind {
                // A sweep ran while this caller waited for `running`.
                return;
            }
        }
        let full = matches!(how, Sweep::Full);
        self.inserted.store(0, Ordering::Relaxed);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        // Taken once, before any slot is looked at: a value stored after this instant has a
        // later deadline, so it looks live here (an early `now` only keeps more slots).
        let now = Instant::now();
        let mut live = 0usize;
        for (key, slot) in moka.iter() {
            {
                let mut state = slot.lock();
                if state.live(now).is_some() {
                    live += 1;
                }
                if !stale(&mut state, generation, full, now) {
                    continue;
                }
            }
            moka.entry_by_ref(key.as_str())
                .and_compute_with(|current| match current {
                    Some(entry) if Arc::ptr_eq(entry.value(), &slot) => {
                        let mut state = slot.lock();
                        // Checked again: a claim may have filled the slot since.
                        if stale(&mut state, generation, full, now) {
                            state.dead = true;
                            Op::Remove
                        } else {
                            Op::Nop
                        }
                    }
                    _ => Op::Nop,
                });
        }
        // The next sweep walks the live slots again: waiting for at least as many new keys
        // keeps a sweep's cost per new key constant.
        self.threshold.store(live.max(SWEEP_MIN), Ordering::Relaxed);
    }
}

/// What a sweep removes.
#[derive(Clone, Copy)]
pub(super) enum Sweep {
    /// Every free slot.
    Full,
    /// The slots free since before the previous sweep.
    Generation,
    /// As `Generation`, unless fewer than this many keys came in since the last sweep.
    IfBehind(usize),
}

/// Whether a slot may go: not live, and (unless `full`) free since before `generation`.
/// A slot whose value expired is freed now (it goes at the next sweep).
fn stale(state: &mut State, generation: u64, full: bool, now: Instant) -> bool {
    if state.dead || state.live(now).is_some() {
        return false;
    }
    if state.value.is_some() {
        state.free(generation);
    }
    full || state.freed_in < generation
}

/// The sweep thread: waits for a signal, sweeps, until the cache is gone.
fn background(signal: &Signal, cache: &Weak<Shared>) {
    loop {
        {
            let mut state = signal.locked();
            while !state.pending && !state.stop {
                state = signal
                    .condvar
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
        }
        let Some(shared) = cache.upgrade() else {
            return;
        };
        shared.sweeper.sweep(&shared.moka, Sweep::Generation);
        signal.locked().pending = false;
        // Dropped here, outside the signal's mutex: if this was the last reference, the
        // cache's drop calls `stop`, which takes that mutex.
        drop(shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_slot_goes_only_after_a_whole_generation_and_a_live_one_never() {
        let now = Instant::now();
        let mut state = State {
            value: None,
            deadline: None,
            dead: false,
            freed_in: 0,
        };
        state.store("v", Some(now + std::time::Duration::from_secs(60)));
        assert!(!stale(&mut state, 5, true, now), "live is never stale");
        state.free(5);
        assert!(
            !stale(&mut state, 5, false, now),
            "freed in this generation"
        );
        assert!(
            stale(&mut state, 6, false, now),
            "free for a whole generation"
        );
        assert!(
            stale(&mut state, 5, true, now),
            "a full sweep takes every free slot"
        );
        // An expired value counts as freed when first seen.
        state.store("v", Some(now));
        assert!(!stale(&mut state, 7, false, now));
        assert!(state.value.is_none());
        assert!(stale(&mut state, 8, false, now));
    }
}
