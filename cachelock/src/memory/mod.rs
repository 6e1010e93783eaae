//! [`MemoryCache`]: the in-process default, on moka.

#[cfg(all(test, loom))]
mod loom_map;
#[cfg(all(test, loom))]
mod loom_tests;
mod slot;
mod sweep;
mod sync;
mod trees;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::Op;

use crate::claim::{Claim, Claimed, Handle};
use crate::owner::owner_value;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::TreeStore;
use crate::wake::Board;

use self::slot::{Moka, Slot, State};
use self::sweep::{Sweep, Sweeper, Swept};
use self::trees::MemoryTrees;

/// The fencing tokens of every `MemoryCache` of the process: one counter, so a fence never
/// needs an entry of its own (memory still follows the live locks alone).
static FENCE: AtomicU64 = AtomicU64::new(0);

/// The in-memory store: exclusion among the threads and tasks of one process.
///
/// This is the process default until [`set_default_cache`](crate::set_default_cache) says
/// otherwise. Cloning it is cheap and the clones share one store.
///
/// - **Atomic, and cheap**: each key has one slot inside a moka value, guarded by its own
///   mutex; `claim`, `release` and `extend` are a moka read and a compare-and-set in that
///   slot (a new key is inserted with moka's per-key compute), so concurrent claims of one
///   key have exactly one winner. A [`Lock`](crate::Lock)'s guard keeps the slot it claimed
///   (the [`Handle`] of [`LockStore::claim`]) and releases and renews through it: one moka
///   read per acquire-and-release. The slot keeps the owner typed (token and label), so a
///   claim formats nothing; the owner value is formatted only for an admin call. Why a held
///   lock can never be evicted, replaced or handed out twice is written out in
///   `cachelock/src/memory/slot.rs`; the short form: a slot leaves moka only through a
///   per-key compute that first checks, under the slot's mutex, that it holds no live lock.
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
/// - **TTL per lock**: every lock carries its own deadline, checked on each operation, so
///   an expired lock is free the moment its TTL runs out.
/// - **Tree locks and admin calls**: it is a [`TreeStore`] and a [`LockAdmin`] too.
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
    /// Tree locks (`cachelock::tree`), apart from the plain locks.
    trees: MemoryTrees,
}

impl Swept for Shared {
    fn moka(&self) -> &Moka {
        &self.moka
    }

    fn sweeper(&self) -> &Sweeper {
        &self.sweeper
    }
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
                trees: MemoryTrees::default(),
            }),
        }
    }

    /// The number of keys holding a live lock: 0 once every lock is released or expired.
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

    /// What a release does besides freeing the slot: counts it for the sweep, wakes waiters.
    fn after_release(&self, key: &str, released: bool) {
        if released {
            self.shared.sweeper.freed();
            self.shared.board.released(key);
        }
    }

    /// Frees `key` if `token` holds it: through the slot `handle` when there is one (no moka
    /// read), else by lookup.
    fn release_now(&self, key: &str, token: &str, handle: Option<&Handle>) -> bool {
        let generation = self.shared.sweeper.generation();
        let released = match handle.and_then(|h| h.downcast_ref::<Slot>()) {
            Some(slot) => {
                let mut state = slot.lock();
                !state.dead && state.release(token, sync::now(), generation)
            }
            None => self
                .with_slot(key, false, |_, state| {
                    state.release(token, sync::now(), generation)
                })
                .unwrap_or(false),
        };
        self.after_release(key, released);
        released
    }

    /// Sets `key`'s TTL if `token` holds it (through the slot `handle` when there is one).
    fn extend_now(&self, key: &str, token: &str, ttl: Duration, handle: Option<&Handle>) -> bool {
        match handle.and_then(|h| h.downcast_ref::<Slot>()) {
            Some(slot) => {
                let mut state = slot.lock();
                !state.dead && state.extend(token, sync::now(), ttl)
            }
            None => self
                .with_slot(key, false, |_, state| state.extend(token, sync::now(), ttl))
                .unwrap_or(false),
        }
    }

    fn is_live(&self, key: &str) -> bool {
        let now = sync::now();
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

/// Every operation answers inline (memory never waits on I/O), so the async twins are the
/// sync ones.
impl LockStore for MemoryCache {
    /// Claims `key` if it holds no live lock, the TTL starting now (read under the slot's
    /// mutex), and returns the key's slot as the [`Handle`]: the guard's release and extend
    /// then lock the slot directly, without a moka read (a slot that a sweep removed
    /// meanwhile is `dead`, and they find it lost, as a lookup would; slot.rs, point 3).
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let token = claim.owner_token();
        Ok(self
            .with_slot(key, true, |slot, state| {
                // Taken under the slot's mutex: claims of one key are serialized, so the
                // fences of one key's holders increase in the order they held it.
                state
                    .claim(token, claim.label(), sync::now(), claim.ttl())
                    .then(|| {
                        let fence = FENCE.fetch_add(1, Ordering::Relaxed) + 1;
                        let handle: Handle = slot.clone();
                        // Without fencing the guard's fence is 0, "no fence" (`Lock::fencing`).
                        Claimed::with_handle(if claim.fencing() { fence } else { 0 }, handle)
                    })
            })
            .flatten())
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(std::future::ready(self.claim(key, claim)))
    }

    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        Ok(self.release_now(key, token, handle))
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(Ok(self.release_now(key, token, handle))))
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self.extend_now(key, token, ttl, handle))
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(Ok(
            self.extend_now(key, token, ttl, handle)
        )))
    }

    /// Wakes the moment `key` is released (or force-released) in this cache; otherwise
    /// after `pause` (an expiry wakes nobody: the pause bounds that wait).
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

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(&self.shared.trees)
    }
}

/// The admin calls read the slots; the owner value is formatted here, only when asked.
impl LockAdmin for MemoryCache {
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let now = sync::now();
        Ok(self
            .with_slot(key, false, |_, state| {
                let ttl = state.deadline.saturating_duration_since(now);
                state.live(now).map(|owner| {
                    let value = owner_value(owner.token.as_str(), owner.label.as_deref());
                    (value.as_str().to_owned(), Some(ttl))
                })
            })
            .flatten())
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(std::future::ready(self.holder(key)))
    }

    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let now = sync::now();
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

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(std::future::ready(self.keys(prefix)))
    }

    fn force_release(&self, key: &str) -> CacheResult<()> {
        let generation = self.shared.sweeper.generation();
        self.with_slot(key, false, |_, state| state.free(generation));
        self.shared.sweeper.freed();
        self.shared.board.released(key);
        Ok(())
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(std::future::ready(self.force_release(key)))
    }
}
