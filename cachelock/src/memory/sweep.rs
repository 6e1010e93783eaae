//! Dropping free slots: how the in-memory cache's memory follows the live locks.
//!
//! A release only empties its key's slot (under the slot's mutex, no moka compute), so the
//! next claim of that key is one moka read. Free slots are removed in two steps:
//!
//! - A **scan** walks the stored slots and lists those that have stayed free since the scan
//!   before it (a generation count: a key released and taken again in between keeps its
//!   slot; a slot whose value expired counts as freed when a scan first sees it). It runs
//!   once `max(SWEEP_MIN, live slots at the last scan)` new keys have been inserted since the
//!   last one, on a background thread (`cachelock-sweep`, one per cache, started by the
//!   first scan, gone once the cache is dropped). A scan only reads: it changes nothing a
//!   claim could see.
//! - **Removal** is done by the callers that insert new keys: each insertion (already a moka
//!   compute) removes up to `REMOVE_PER_INSERT` listed slots, each with a per-key compute that
//!   checks again, under the slot's mutex, that the slot is still free. So the removal work
//!   stays on the threads that create the work, a few microseconds per new key at most. A
//!   cache whose keys are reused (the common case: a job's lock) inserts nothing, so it
//!   neither scans nor removes.
//! - If twice the scan threshold of new keys arrive before a scan starts (the thread starved
//!   or busy), the inserting caller scans itself (or waits for the running scan): memory
//!   stays bounded however fast new keys come, at the price of that one caller's pause
//!   (a walk over the stored slots, about 0.1 µs each).
//! - **Idle pass**: when no new key has come for `IDLE_PASS` (5 s) but at least `SWEEP_MIN`
//!   slots were freed since the last scan or left free by it (many locks held at once, then
//!   released), the background thread scans and removes every slot free at that moment
//!   itself.
//!   [`MemoryCache::entry_count`](super::MemoryCache::entry_count) scans and removes every
//!   free slot at once, so it counts live keys.
//!
//! So a cache holds its live keys plus at most a few times `max(SWEEP_MIN, live keys at the
//! last scan)` free slots (each a key string and about 150 bytes) while new keys come, and
//! drops them within about 10 s once they stop (if it ever inserted `SWEEP_MIN` keys: the
//! thread starts then; a smaller cache keeps at most about that many free slots).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, PoisonError, Weak};
use std::time::{Duration, Instant};

use moka::ops::compute::Op;

use super::slot::{Moka, Slot, State};
use super::sync::{self, AtomicU64, AtomicUsize, Mutex};

/// New keys inserted between two scans, at least.
pub(super) const SWEEP_MIN: usize = 1024;

/// How long the background thread waits for new keys before an idle pass.
const IDLE_PASS: Duration = Duration::from_secs(5);

/// Listed free slots each insertion removes, at most: more than one, so the list drains
/// faster than a stream of new keys fills it.
const REMOVE_PER_INSERT: usize = 2;

/// A slot a scan found free, waiting for removal.
struct Stale {
    key: Arc<String>,
    slot: Arc<Slot>,
    /// The scan's generation: the slot goes only if it is still free since before it.
    generation: u64,
}

/// The sweep bookkeeping of one cache.
pub(super) struct Sweeper {
    /// Bumped by every sweep; a slot records the generation it became free in.
    generation: AtomicU64,
    /// New keys inserted since the last sweep.
    inserted: AtomicUsize,
    /// Slots freed (released or deleted) since the last sweep.
    freed: AtomicUsize,
    /// How many insertions start the next sweep.
    threshold: AtomicUsize,
    /// Serializes sweeps (the background one and `entry_count`'s).
    running: Mutex<()>,
    /// Wakes the background thread.
    signal: Arc<Signal>,
    /// What the last scan found free, removed a few per insertion.
    stale: Mutex<Vec<Stale>>,
}

/// What the sweep thread keeps a weak reference to: the cache's moka map and its sweeper.
pub(super) trait Swept: Send + Sync + 'static {
    fn moka(&self) -> &Moka;
    fn sweeper(&self) -> &Sweeper;
}

/// Shared by a cache and its sweep thread; the thread holds only this and a `Weak`, so the
/// cache can be dropped.
struct Signal {
    /// std's, not the model's: the thread waits on it with a real timeout.
    state: std::sync::Mutex<SignalState>,
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
            freed: AtomicUsize::new(0),
            threshold: AtomicUsize::new(SWEEP_MIN),
            running: Mutex::new(()),
            signal: Arc::new(Signal {
                state: std::sync::Mutex::new(SignalState::default()),
                condvar: Condvar::new(),
            }),
            stale: Mutex::new(Vec::new()),
        }
    }

    /// The generation a slot freed now belongs to.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Counts a freed slot (for the idle pass).
    pub(super) fn freed(&self) {
        self.freed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a new key; starts a background sweep when enough have come in. When twice that
    /// many have come in and no sweep has started (the thread is starved, or busy with a
    /// long sweep), the caller sweeps (or waits for the running sweep): memory stays bounded
    /// however fast new keys arrive.
    pub(super) fn inserted<S: Swept>(&self, shared: &Arc<S>) {
        self.remove_listed(shared.moka());
        let inserted = self.inserted.fetch_add(1, Ordering::Relaxed) + 1;
        let threshold = self.threshold.load(Ordering::Relaxed);
        if inserted < threshold {
            return;
        }
        if inserted >= threshold.saturating_mul(2) {
            self.sweep(shared.moka(), Sweep::IfBehind(threshold.saturating_mul(2)));
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
                self.sweep(shared.moka(), Sweep::Generation);
            }
        }
    }

    /// Tells the background thread (if any) to stop; called when the cache is dropped.
    pub(super) fn stop(&self) {
        self.signal.locked().stop = true;
        self.signal.condvar.notify_one();
    }

    /// Removes up to `REMOVE_PER_INSERT` of the slots the last scan listed.
    fn remove_listed(&self, moka: &Moka) {
        let mut batch: [Option<Stale>; REMOVE_PER_INSERT] = Default::default();
        {
            // Blocking, and held for two pops only: a removal skipped here would never be
            // made up, and the list would stop draining.
            let mut stale = self.stale.lock().unwrap_or_else(PoisonError::into_inner);
            for item in &mut batch {
                *item = stale.pop();
            }
        }
        for item in batch.into_iter().flatten() {
            remove(moka, &item, false);
        }
    }

    /// Scans (and with `Sweep::Full` removes every free slot at once), as `how` says.
    pub(super) fn sweep(&self, moka: &Moka, how: Sweep) {
        let _running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Sweep::IfBehind(behind) = how {
            if self.inserted.load(Ordering::Relaxed) < behind {
                // A scan ran while this caller waited for `running`.
                return;
            }
        }
        let full = matches!(how, Sweep::Full);
        let idle = matches!(how, Sweep::Idle);
        self.inserted.store(0, Ordering::Relaxed);
        self.freed.store(0, Ordering::Relaxed);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        // Taken once, before any slot is looked at: a value stored after this instant has a
        // later deadline, so it looks live here (an early `now` only keeps more slots).
        let now = sync::now();
        let mut live = 0usize;
        let mut free = 0usize;
        let mut found = Vec::new();
        for (key, slot) in moka.iter() {
            let mut state = slot.lock();
            if state.live(now).is_some() {
                live += 1;
            } else if !state.dead {
                free += 1;
            }
            // An idle pass also takes the slots freed since the last scan (before this one).
            let since = if idle { generation + 1 } else { generation };
            if stale(&mut state, since, full, now) {
                drop(state);
                found.push(Stale {
                    key,
                    slot,
                    generation: since,
                });
            }
        }
        if full {
            for item in &found {
                remove(moka, item, true);
            }
            found.clear();
        }
        if idle {
            // Nobody inserts (that is why the pass runs), so nobody would remove: do it here.
            for item in &found {
                remove(moka, item, false);
            }
            found.clear();
        } else if !full {
            // The free slots this scan leaves (listed for the inserting callers, or freed too
            // recently to list) still count for the idle pass: should no new key come to
            // remove them, the pass does. (The counter was reset above; the slots released
            // before this scan would otherwise count for nothing.)
            self.freed.fetch_add(free, Ordering::Relaxed);
        }
        // The list is replaced: what the previous scan listed and is still free was found
        // again. The old list is dropped outside the lock.
        let old = std::mem::replace(
            &mut *self.stale.lock().unwrap_or_else(PoisonError::into_inner),
            found,
        );
        drop(old);
        // The next scan walks the live slots again: waiting for at least as many new keys
        // keeps a scan's cost per new key constant.
        self.threshold.store(live.max(SWEEP_MIN), Ordering::Relaxed);
    }
}

/// Removes a listed slot if it is still the key's slot and still free (checked under its
/// mutex, inside the key's compute): then it is marked dead and dropped from moka.
fn remove(moka: &Moka, item: &Stale, full: bool) {
    moka.entry_by_ref(item.key.as_str())
        .and_compute_with(|current| match current {
            Some(entry) if Arc::ptr_eq(entry.value(), &item.slot) => {
                let mut state = item.slot.lock();
                if stale(&mut state, item.generation, full, sync::now()) {
                    state.dead = true;
                    Op::Remove
                } else {
                    Op::Nop
                }
            }
            _ => Op::Nop,
        });
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
    /// The background thread's pass when no new key came for `IDLE_PASS` but many were
    /// released: every slot free before it goes, removed by the thread itself.
    Idle,
}

/// Whether a slot may go: not live, and (unless `full`) free since before `generation`.
/// A slot whose value expired is freed now (it goes at the next sweep).
fn stale(state: &mut State, generation: u64, full: bool, now: Instant) -> bool {
    if state.dead || state.live(now).is_some() {
        return false;
    }
    if state.owner.is_some() {
        state.free(generation);
    }
    full || state.freed_in < generation
}

/// The sweep thread: waits for a signal, sweeps, until the cache is gone.
fn background<S: Swept>(signal: &Signal, cache: &Weak<S>) {
    loop {
        let idle = {
            let mut state = signal.locked();
            let mut idle = false;
            while !state.pending && !state.stop && !idle {
                let (next, wait) = signal
                    .condvar
                    .wait_timeout(state, IDLE_PASS)
                    .unwrap_or_else(PoisonError::into_inner);
                state = next;
                idle = wait.timed_out();
            }
            if state.stop {
                return;
            }
            !state.pending
        };
        let Some(shared) = cache.upgrade() else {
            return;
        };
        let sweeper = shared.sweeper();
        if !idle {
            sweeper.sweep(shared.moka(), Sweep::Generation);
        } else if sweeper.freed.load(Ordering::Relaxed) >= SWEEP_MIN {
            sweeper.sweep(shared.moka(), Sweep::Idle);
        }
        signal.locked().pending = false;
        // Dropped here, outside the signal's mutex: if this was the last reference, the
        // cache's drop calls `stop`, which takes that mutex.
        drop(shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Token;
    use crate::{LockStore, MemoryCache};

    #[test]
    fn slots_released_before_a_scan_still_bring_the_idle_pass() {
        // Many keys held, then released, and only then a (background) scan: the scan must
        // not forget those free slots, or with no new key to remove them they would stay.
        let cache = MemoryCache::new();
        let ttl = std::time::Duration::from_secs(60);
        let keys: Vec<String> = (0..3 * SWEEP_MIN).map(|i| format!("k{i}")).collect();
        let claim = crate::Claim::new(ttl);
        for key in &keys {
            assert!(cache.claim(key, &claim).unwrap().is_some());
        }
        for key in &keys {
            assert!(cache.release(key, claim.token(), None).unwrap());
        }
        let shared = &cache.shared;
        shared.sweeper.sweep(&shared.moka, Sweep::Generation);
        assert!(
            shared.sweeper.freed.load(Ordering::Relaxed) >= SWEEP_MIN,
            "the idle pass would not run"
        );
        shared.sweeper.sweep(&shared.moka, Sweep::Idle);
        assert_eq!(cache.stored_slots(), 0);
    }

    #[test]
    fn a_free_slot_goes_only_after_a_whole_generation_and_a_live_one_never() {
        let now = Instant::now();
        let minute = std::time::Duration::from_secs(60);
        let mut state = State::free_since(0);
        assert!(state.claim(Token::new(), None, now, minute));
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
        let instant = std::time::Duration::from_nanos(1);
        assert!(state.claim(Token::new(), None, now, instant));
        let later = now + std::time::Duration::from_millis(1);
        assert!(!stale(&mut state, 7, false, later));
        assert!(state.owner.is_none());
        assert!(stale(&mut state, 8, false, later));
    }
}
