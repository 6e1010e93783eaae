//! [`MemoryCache`]: the in-process default, on moka.

mod slot;
mod sweep;
mod value;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;

use crate::cache::{BoxFuture, Cache, CacheResult};
use crate::claimed::{Claimed, Handle};
use crate::wake::Board;

use self::slot::{Slot, State};
use self::sweep::{Sweep, Sweeper};

/// The moka cache under a `MemoryCache`: one slot per key.
type Moka = moka::sync::Cache<String, Arc<Slot>>;

pub(super) fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    // `MAX_TTL` keeps real TTLs far from overflow; saturate anyway rather than panic.
    now.checked_add(ttl).unwrap_or_else(|| now + crate::MAX_TTL)
}

/// The fencing tokens of every `MemoryCache` of the process: one counter, so a fence never
/// needs an entry of its own (memory still follows the live locks alone).
static FENCE: AtomicU64 = AtomicU64::new(0);

/// The in-memory cache: exclusion among the threads and tasks of one process.
///
/// This is the process default until [`set_default_cache`](crate::set_default_cache) says
/// otherwise. Cloning it is cheap and the clones share one store.
///
/// - **Atomic, and cheap**: each key has one slot inside a moka value, guarded by its own
///   mutex; `claim`, `release` and `extend` are a moka read and a compare-and-set in that
///   slot (a new key is inserted with moka's per-key compute), so concurrent claims of one
///   key have exactly one winner. A [`Lock`](crate::Lock)'s guard keeps the slot it claimed
///   (the [`Handle`] of [`Cache::claim_for_lock`]) and releases and renews through it: one
///   moka read per acquire-and-release. Why a held lock can never be evicted, replaced or handed
///   out twice is written out in `cachelock/src/memory/slot.rs`; the short form: a slot
///   leaves moka only through a per-key compute that first checks, under the slot's mutex,
///   that it holds no live value.
/// - **Unbounded**: a capacity bound would let moka evict a held lock, silently releasing
///   it, so there is none, and no moka expiry either. Memory follows the live locks instead:
///   a released key keeps its (empty) slot, so taking it again costs no allocation, until a
///   background sweep drops the slots that stayed free (see [`entry_count`](Self::entry_count)
///   and [`stored_slots`](Self::stored_slots)).
/// - **Fencing tokens**: every successful claim takes the next value of one process-wide
///   counter, so fences strictly increase across claims, releases and expiry, for every key.
/// - **Prompt wake-up**: a waiter in [`acquire_timeout`](crate::Lock::acquire_timeout) (or
///   its async twin) is woken the moment the holder releases, instead of at its next
///   backoff poll (`cargo run --release --example wake_latency`: tens of microseconds
///   instead of milliseconds). An expiry wakes nobody; the backoff pause bounds that wait.
/// - **TTL per entry**: every value carries its own deadline, checked on each operation, so
///   an expired lock is free the moment its TTL runs out.
///
/// ```
/// use cachelock::{Lock, MemoryCache};
///
/// let cache = MemoryCache::new();
/// let guard = Lock::new("nightly-report").cache(cache.clone()).try_acquire()?;
/// assert_eq!(cache.entry_count(), 1);
/// guard.release()?;
/// assert_eq!(cache.entry_count(), 0);
/// # Ok::<(), cachelock::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryCache {
    /// One shared allocation: a clone (every guard takes one) is one reference count.
    shared: Arc<Shared>,
}

/// What the clones of one `MemoryCache` share.
struct Shared {
    moka: Moka,
    sweeper: Sweeper,
    board: Board,
    /// Tree locks (`cachelock::tree`), apart from the key/value store.
    trees: crate::tree::MemoryTrees,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.sweeper.stop();
    }
}

impl MemoryCache {
    /// Creates an empty cache.
    pub fn new() -> Self {
        MemoryCache {
            shared: Arc::new(Shared {
                // No capacity, no expiry, no time-to-idle: moka never drops an entry on its
                // own (slot.rs, point 1).
                moka: Moka::builder().build(),
                sweeper: Sweeper::new(),
                board: Board::new(),
                trees: crate::tree::MemoryTrees::default(),
            }),
        }
    }

    /// The number of keys holding a live value (locks held, plain values set and not
    /// expired): 0 once every lock is released or expired.
    ///
    /// It first drops every free slot (a full sweep: it walks every stored key, so it costs
    /// time in proportion to [`stored_slots`](Self::stored_slots)); use it for tests and
    /// diagnostics, not on a hot path.
    pub fn entry_count(&self) -> u64 {
        self.shared.sweeper.sweep(&self.shared.moka, Sweep::Full);
        self.shared.moka.run_pending_tasks();
        self.shared.moka.entry_count()
    }

    /// The number of slots stored right now, without a sweep: live keys plus the free slots
    /// that a sweep will drop (a few times `max(1024, live keys)` at most; see `memory/sweep.rs`).
    pub fn stored_slots(&self) -> u64 {
        self.shared.moka.run_pending_tasks();
        self.shared.moka.entry_count()
    }

    /// Runs `f` on `key`'s slot, under its mutex. Without `create`, a key with no slot gives
    /// `None` and `f` is not called; with it, a slot is inserted first.
    fn with_slot<R>(
        &self,
        key: &str,
        create: bool,
        f: impl FnOnce(&Arc<Slot>, &mut State) -> R,
    ) -> Option<R> {
        let moka = &self.shared.moka;
        // Hot path: the key has a slot (a moka read, then the slot's mutex).
        let mut f = Some(f);
        if let Some(slot) = moka.get(key) {
            let mut state = slot.lock();
            if !state.dead {
                return f.take().map(|f| f(&slot, &mut state));
            }
            // Removed by a sweep after `get` found it (slot.rs, point 3): go to the map.
        } else if !create {
            return None;
        }
        // Slow path: moka's per-key compute, serialized with the sweep's removal.
        let mut out = None;
        let mut inserted = false;
        moka.entry_by_ref(key).and_compute_with(|current| {
            if let Some(entry) = current {
                let slot = entry.into_value();
                let mut state = slot.lock();
                if !state.dead {
                    out = f.take().map(|f| f(&slot, &mut state));
                    return Op::Nop;
                }
                // A dead slot is never in the map (the sweep removes what it marks in the
                // same compute); were it there, it would be replaced like a missing one.
            }
            if !create {
                return Op::Nop;
            }
            let slot = Arc::new(Slot::new());
            out = f.take().map(|f| f(&slot, &mut slot.lock()));
            inserted = true;
            Op::Put(slot)
        });
        if inserted {
            self.shared.sweeper.inserted(&self.shared);
        }
        out
    }

    /// Claims `key` if it holds no live value, the TTL starting now (read under the slot's
    /// mutex); `won` makes the answer from the fence and the slot.
    fn claim_with<R>(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        won: impl FnOnce(u64, &Arc<Slot>) -> R,
    ) -> Option<R> {
        self.with_slot(key, true, |slot, state| {
            // Taken under the slot's mutex: claims of one key are serialized, so the fences
            // of one key's holders increase in the order they held it.
            state
                .claim(value, Instant::now(), ttl)
                .then(|| won(FENCE.fetch_add(1, Ordering::Relaxed) + 1, slot))
        })
        .flatten()
    }

    /// What a release does besides freeing the slot: counts it for the sweep, wakes waiters.
    fn after_release(&self, key: &str, released: bool) {
        if released {
            self.shared.sweeper.freed();
            self.shared.board.released(key);
        }
    }

    fn is_live(&self, key: &str) -> bool {
        let now = Instant::now();
        self.with_slot(key, false, |_, state| state.live(now).is_some())
            .unwrap_or(false)
    }
}
// moka recovers from a panic inside a compute closure (it cleans up and resumes the panic),
// and the closures here never panic, so a `MemoryCache` seen after a caught panic is intact.
impl std::panic::UnwindSafe for MemoryCache {}
impl std::panic::RefUnwindSafe for MemoryCache {}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("stored_slots", &self.shared.moka.entry_count())
            .finish()
    }
}

impl Cache for MemoryCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let now = Instant::now();
        Ok(self
            .with_slot(key, false, |_, state| {
                state.live(now).map(|value| value.to_string_lossless())
            })
            .flatten())
    }

    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        let now = Instant::now();
        self.with_slot(key, true, |_, state| {
            state.store(value, ttl.map(|ttl| deadline_after(now, ttl)));
        });
        Ok(())
    }

    fn delete(&self, key: &str) -> CacheResult<()> {
        let generation = self.shared.sweeper.generation();
        self.with_slot(key, false, |_, state| state.free(generation));
        self.shared.sweeper.freed();
        self.shared.board.released(key);
        Ok(())
    }

    fn get_with_ttl(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let now = Instant::now();
        Ok(self
            .with_slot(key, false, |_, state| {
                let ttl = state.deadline.map(|d| d.saturating_duration_since(now));
                state
                    .live(now)
                    .map(|value| (value.to_string_lossless(), ttl))
            })
            .flatten())
    }

    fn keys_with_prefix(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let now = Instant::now();
        Ok(self
            .shared
            .moka
            .iter()
            .filter(|(key, slot)| {
                key.starts_with(prefix) && {
                    let state = slot.lock();
                    !state.dead && state.live(now).is_some()
                }
            })
            .map(|(key, _)| String::clone(&key))
            .collect())
    }

    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        Ok(self.claim_with(key, token, ttl, |fence, _| fence))
    }

    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        let generation = self.shared.sweeper.generation();
        let released = self
            .with_slot(key, false, |_, state| {
                state.release(token, Instant::now(), generation)
            })
            .unwrap_or(false);
        self.after_release(key, released);
        Ok(released)
    }

    /// Claims as `claim` does (the TTL starts under the slot's mutex) and returns the key's
    /// slot as the [`Handle`]: the guard's release and extend then lock the slot directly,
    /// without a moka read (a slot that a sweep removed meanwhile is `dead`, and they find it
    /// lost, as a lookup would; slot.rs, point 3).
    fn claim_for_lock(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        fencing: bool,
    ) -> CacheResult<Option<Claimed>> {
        Ok(self.claim_with(key, value, ttl, |fence, slot| {
            let handle: Handle = slot.clone();
            // Without fencing the guard's fence is 0, "no fence" (`Lock::fencing`).
            Claimed::with_handle(if fencing { fence } else { 0 }, handle)
        }))
    }

    /// The sync claim, inline: memory never waits on I/O.
    fn claim_for_lock_async<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
        fencing: bool,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(std::future::ready(
            self.claim_for_lock(key, value, ttl, fencing),
        ))
    }

    fn release_claimed(&self, key: &str, token: &str, handle: &Handle) -> CacheResult<bool> {
        let Some(slot) = handle.downcast_ref::<Slot>() else {
            return self.release(key, token);
        };
        let generation = self.shared.sweeper.generation();
        let released = {
            let mut state = slot.lock();
            !state.dead && state.release(token, Instant::now(), generation)
        };
        self.after_release(key, released);
        Ok(released)
    }

    fn extend_claimed(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: &Handle,
    ) -> CacheResult<bool> {
        let Some(slot) = handle.downcast_ref::<Slot>() else {
            return self.extend(key, token, ttl);
        };
        let mut state = slot.lock();
        Ok(!state.dead && state.extend(token, Instant::now(), ttl))
    }

    /// Wakes the moment `key` is released (or deleted) in this cache; otherwise after
    /// `pause` (an expiry wakes nobody: the pause bounds that wait).
    fn wait_for_release(&self, key: &str, pause: Duration) {
        // `is_live` is checked with the waiter registered: a release between the failed
        // claim and here is seen now, one after it wakes this wait.
        self.shared.board.wait(key, pause, || self.is_live(key));
    }

    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        Box::pin(
            self.shared
                .board
                .wait_async(key, pause, || self.is_live(key)),
        )
    }

    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        Ok(self
            .with_slot(key, false, |_, state| {
                state.extend(token, Instant::now(), ttl)
            })
            .unwrap_or(false))
    }

    fn tree_claim(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<u64>> {
        Ok(self.shared.trees.claim(space, path, value, ttl, scope))
    }

    fn tree_release(&self, space: &str, path: &str, token: &str) -> CacheResult<bool> {
        Ok(self.shared.trees.release(space, path, token))
    }

    fn tree_extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
    ) -> CacheResult<bool> {
        Ok(self.shared.trees.extend(space, path, token, ttl))
    }

    fn tree_holder(
        &self,
        space: &str,
        path: &str,
        scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<crate::tree::TreeEntry>> {
        Ok(self.shared.trees.holder(space, path, scope))
    }

    fn tree_list(&self, space: &str) -> CacheResult<Vec<crate::tree::TreeEntry>> {
        Ok(self.shared.trees.list(space))
    }

    /// Wakes on any release in `space` (or after `pause`), like `wait_for_release`.
    fn tree_wait_for_release(
        &self,
        space: &str,
        path: &str,
        scope: crate::tree::TreeScope,
        pause: Duration,
    ) {
        self.shared.trees.wait(space, path, scope, pause);
    }

    fn tree_wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: crate::tree::TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.shared.trees.wait_async(space, path, scope, pause))
    }
}
