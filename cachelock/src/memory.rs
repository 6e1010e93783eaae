//! [`MemoryCache`]: the in-process default, on moka.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache as Moka;
use moka::Expiry;

use crate::cache::{BoxFuture, Cache, CacheResult};
use crate::wake::Board;

/// Values up to this many bytes are stored inline, without an allocation per claim. A lock's
/// value (`<32-hex token>|<pid>|<host>|<label>`) is about 45 to 60 bytes with a short host
/// name and label.
const INLINE: usize = 62;

/// A stored string: inline when short, shared when long. moka clones values on reads, so
/// both forms are cheap to clone.
#[derive(Clone)]
enum Value {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Value {
    fn new(value: &str) -> Self {
        match u8::try_from(value.len()) {
            Ok(len) if value.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..value.len()].copy_from_slice(value.as_bytes());
                Value::Inline { len, bytes }
            }
            _ => Value::Shared(Arc::from(value)),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Value::Shared(shared) => shared.as_bytes(),
        }
    }

    /// Whether this owner value holds `token`: equal to it, or `token` then `|`.
    fn is_owned_by(&self, token: &str) -> bool {
        let bytes = self.as_bytes();
        let token = token.as_bytes();
        bytes.starts_with(token) && matches!(bytes.get(token.len()), None | Some(b'|'))
    }

    fn to_string_lossless(&self) -> String {
        // Both forms hold bytes copied from a `&str`, so they are valid UTF-8.
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

/// One stored value and the instant it stops being visible.
#[derive(Clone)]
struct Slot {
    value: Value,
    deadline: Option<Instant>,
}

impl Slot {
    fn new(value: &str, ttl: Option<Duration>) -> Self {
        Slot {
            value: Value::new(value),
            deadline: ttl.map(|ttl| deadline_after(Instant::now(), ttl)),
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.deadline.is_none_or(|deadline| now < deadline)
    }
}

fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    // `MAX_TTL` keeps real TTLs far from overflow; saturate anyway rather than panic.
    now.checked_add(ttl).unwrap_or_else(|| now + crate::MAX_TTL)
}

/// The fencing tokens of every `MemoryCache` of the process: one counter, so a fence never
/// needs an entry of its own (memory still follows the live locks alone).
static FENCE: AtomicU64 = AtomicU64::new(0);

/// Tells moka when to drop each entry: at the deadline stored in the slot.
struct SlotExpiry;

impl Expiry<String, Slot> for SlotExpiry {
    fn expire_after_create(&self, _key: &String, slot: &Slot, now: Instant) -> Option<Duration> {
        slot.deadline.map(|d| d.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        slot: &Slot,
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        slot.deadline.map(|d| d.saturating_duration_since(now))
    }
}

/// The in-memory cache: exclusion among the threads and tasks of one process.
///
/// This is the process default until [`set_default_cache`](crate::set_default_cache) says
/// otherwise. Cloning it is cheap and the clones share one store.
///
/// - **Atomic**: `claim`, `release` and `extend` go through moka's per-key compute
///   (`entry().and_compute_with`), so concurrent claims of one key have exactly one winner.
///   (moka's `or_insert` is not atomic, moka issue 545; it is not used.)
/// - **Unbounded**: a capacity bound would let moka evict a held lock, silently releasing
///   it, so there is none. Memory follows the live locks instead: a released lock's entry is
///   removed at once, an expired one at its deadline. [`MemoryCache::entry_count`] shows it.
/// - **Fencing tokens**: every successful claim takes the next value of one process-wide
///   counter, so fences strictly increase across claims, releases and expiry, for every key.
/// - **Prompt wake-up**: a waiter in [`acquire_timeout`](crate::Lock::acquire_timeout) (or
///   its async twin) is woken the moment the holder releases, instead of at its next
///   backoff poll (`cargo run --release --example wake_latency`: tens of microseconds
///   instead of milliseconds). An expiry wakes nobody; the backoff pause bounds that wait.
/// - **TTL per entry**: every value carries its own deadline, checked on each read and
///   compute (so an expired lock is free the moment its TTL runs out) and handed to moka's
///   `Expiry` so the entry is dropped then.
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
    moka: Moka<String, Slot>,
    board: Board,
    /// Tree locks (`cachelock::tree`), apart from the key/value store.
    trees: crate::tree::MemoryTrees,
}

impl MemoryCache {
    /// Creates an empty cache.
    pub fn new() -> Self {
        MemoryCache {
            shared: Arc::new(Shared {
                moka: Moka::builder().expire_after(SlotExpiry).build(),
                board: Board::new(),
                trees: crate::tree::MemoryTrees::default(),
            }),
        }
    }

    fn is_live(&self, key: &str) -> bool {
        let now = Instant::now();
        self.shared.moka.get(key).is_some_and(|slot| slot.live(now))
    }

    /// The number of keys stored, after moka has applied every pending removal and expiry.
    ///
    /// Counts locks held and plain values set; 0 once every lock is released or expired.
    pub fn entry_count(&self) -> u64 {
        self.shared.moka.run_pending_tasks();
        self.shared.moka.entry_count()
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
            .field("entries", &self.shared.moka.entry_count())
            .finish()
    }
}

impl Cache for MemoryCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let now = Instant::now();
        Ok(self
            .shared
            .moka
            .get(key)
            .filter(|slot| slot.live(now))
            .map(|slot| slot.value.to_string_lossless()))
    }

    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.shared
            .moka
            .insert(key.to_owned(), Slot::new(value, ttl));
        Ok(())
    }

    fn delete(&self, key: &str) -> CacheResult<()> {
        self.shared.moka.invalidate(key);
        self.shared.board.released(key);
        Ok(())
    }

    fn get_with_ttl(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let now = Instant::now();
        Ok(self
            .shared
            .moka
            .get(key)
            .filter(|slot| slot.live(now))
            .map(|slot| {
                let ttl = slot.deadline.map(|d| d.saturating_duration_since(now));
                (slot.value.to_string_lossless(), ttl)
            }))
    }

    fn keys_with_prefix(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let now = Instant::now();
        Ok(self
            .shared
            .moka
            .iter()
            .filter(|(key, slot)| key.starts_with(prefix) && slot.live(now))
            .map(|(key, _)| String::clone(&key))
            .collect())
    }

    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        let mut won = None;
        self.shared
            .moka
            .entry_by_ref(key)
            .and_compute_with(|current| {
                let now = Instant::now();
                match current {
                    Some(entry) if entry.value().live(now) => Op::Nop,
                    _ => {
                        // Taken inside the per-key compute: claims of one key are serialized, so
                        // the fences of one key's holders increase in the order they held it.
                        won = Some(FENCE.fetch_add(1, Ordering::Relaxed) + 1);
                        Op::Put(Slot {
                            value: Value::new(token),
                            deadline: Some(deadline_after(now, ttl)),
                        })
                    }
                }
            });
        Ok(won)
    }

    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        let mut released = false;
        self.shared
            .moka
            .entry_by_ref(key)
            .and_compute_with(|current| match current {
                Some(entry)
                    if entry.value().live(Instant::now())
                        && entry.value().value.is_owned_by(token) =>
                {
                    released = true;
                    Op::Remove
                }
                _ => Op::Nop,
            });
        if released {
            self.shared.board.released(key);
        }
        Ok(released)
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
        let mut extended = false;
        self.shared
            .moka
            .entry_by_ref(key)
            .and_compute_with(|current| {
                let now = Instant::now();
                match current {
                    Some(entry)
                        if entry.value().live(now) && entry.value().value.is_owned_by(token) =>
                    {
                        extended = true;
                        Op::Put(Slot {
                            value: entry.into_value().value,
                            deadline: Some(deadline_after(now, ttl)),
                        })
                    }
                    _ => Op::Nop,
                }
            });
        Ok(extended)
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
