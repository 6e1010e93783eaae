//! [`Lock`]: the builder that names a key and takes it.

use std::future::Future;

use crate::acquire::{self, acquire, acquire_async};
use crate::default_cache::DefaultCache;
use crate::error::Error;
use crate::guard::{AsyncGuard, Guard};
use crate::owner::{parse, Holder};
use crate::settings::{settings_setters, Settings};
use crate::store::{no_admin, LockAdmin, LockStore};
use crate::target::KeyTarget;
use crate::MAX_KEY_LEN;

/// A lock on one key: build it, then take it.
///
/// ```
/// use std::time::Duration;
/// use cachelock::Lock;
///
/// let lock = Lock::new("invoice-42").ttl(Duration::from_secs(30));
/// let guard = lock.try_acquire()?;          // held: until dropped or released
/// assert!(lock.try_acquire().unwrap_err().is_locked());
/// guard.release()?;                          // or just let it drop
/// assert!(lock.try_acquire().is_ok());
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// # Settings and defaults
///
/// | setting | default | |
/// |---|---|---|
/// | [`cache`](Lock::cache) | the process default ([`set_default_cache`](crate::set_default_cache)), a [`MemoryCache`](crate::MemoryCache) unless set | any [`LockStore`] |
/// | [`ttl`](Lock::ttl) | [`DEFAULT_TTL`](crate::DEFAULT_TTL) (60 s) | how long a holder that crashed keeps the key |
/// | [`prefix`](Lock::prefix) | the process prefix ([`set_key_prefix`](crate::set_key_prefix)), `"cachelock:"` unless set | put in front of the key in the cache |
/// | [`wait`](Lock::wait) | zero | how long [`run`](Lock::run) and [`run_async`](Lock::run_async) wait for a held key |
/// | [`renew`](Lock::renew) | yes | renewed by the shared renewer while a guard holds it |
/// | [`max_hold`](Lock::max_hold) | none | renewal never keeps it longer |
/// | [`hold_at_least`](Lock::hold_at_least) | none | a release sooner keeps the key held until then |
/// | [`label`](Lock::label) | none | stored with the holder's host and pid |
/// | [`fencing`](Lock::fencing) | `true` | whether each claim yields a fencing token ([`Guard::fence`]) |
///
/// The TTL is the longest a lock can outlive its holder: pick it longer than the work takes,
/// or the lock may run out while the work goes on (a release then reports
/// [`Error::LockLost`]).
///
/// # Keys
///
/// A key is any non-empty string of at most [`MAX_KEY_LEN`] bytes; it is stored under
/// `prefix + key`. Every error names the stored key.
#[must_use = "a Lock does nothing until it is acquired"]
#[derive(Clone)]
pub struct Lock<C = DefaultCache> {
    key: String,
    settings: Settings,
    cache: C,
}

impl Lock {
    /// A lock on `key`, with the default store, TTL and prefix.
    pub fn new(key: impl Into<String>) -> Self {
        Lock {
            key: key.into(),
            settings: Settings::default(),
            cache: DefaultCache,
        }
    }
}

impl<C> Lock<C> {
    /// Uses `cache` instead of the process default: any [`LockStore`].
    ///
    /// A [`MemoryCache`](crate::MemoryCache) (its clones share one store), a Redis store, a
    /// [`CacheStore`](crate::CacheStore) around a get/set/delete cache of your own, an
    /// `Arc<dyn LockStore>`, a reference to a `'static` store. Acquiring hands each guard its
    /// own copy of the handle, so it must be `Clone` (the built-in stores are, cheaply).
    pub fn cache<D: LockStore>(self, cache: D) -> Lock<D> {
        Lock {
            key: self.key,
            settings: self.settings,
            cache,
        }
    }

    settings_setters!();

    /// Whether each claim yields a fencing token (default: yes).
    ///
    /// With fencing (the default), every hold gets a [fence](Guard::fence) strictly greater
    /// than the fence of every earlier hold of the key, and a store downstream can refuse the
    /// writes of a holder that was paused past its TTL. On Redis that costs a Lua script that
    /// bumps a counter in the same call as the claim (one round trip, but several times the
    /// server time of a plain `SET`).
    ///
    /// `fencing(false)` is for locks whose holders never pass a fence downstream: the claim
    /// is then an unfenced claim ([`Claim::with_fencing`](crate::Claim::with_fencing)), on Redis a plain `SET key value NX PX ttl` (one
    /// command, no script, the fence counter is never touched), so an uncontended
    /// acquire-and-release costs exactly `SET` + `EVALSHA` (compare-and-delete). Exclusion,
    /// owner-checked release and extend, renewal, `hold_at_least` and the lost-lock signal
    /// are unchanged. [`MemoryCache`](crate::MemoryCache) keeps its in-process claim (and
    /// counter: one atomic add) either way. On Redis, a claim whose reply was lost with its
    /// connection is sent again as a script that recognises its own value, so it wins
    /// instead of blocking the key for a TTL (the first send stays the plain `SET`); a claim
    /// that fails instead (`Error::Backend`) is given back at once, owner-checked.
    ///
    /// The guard's [`fence`](Guard::fence) is then **0**, meaning "no fence: this lock was
    /// taken with `fencing(false)`". Every real fence is at least 1, so a store that refuses
    /// fences not greater than the last one it accepted refuses writes carrying 0: forgetting
    /// that a lock is unfenced fails safe.
    ///
    /// ```
    /// use cachelock::{Lock, MemoryCache};
    ///
    /// let cache = MemoryCache::new();
    /// let guard = Lock::new("cleanup").cache(cache.clone()).fencing(false).try_acquire()?;
    /// assert_eq!(guard.fence(), 0); // no fence
    /// assert!(Lock::new("cleanup").cache(cache.clone()).try_acquire().unwrap_err().is_locked());
    /// guard.release()?;
    /// let fenced = Lock::new("cleanup").cache(cache).try_acquire()?;
    /// assert!(fenced.fence() >= 1);
    /// # Ok::<(), cachelock::Error>(())
    /// ```
    pub fn fencing(mut self, fencing: bool) -> Self {
        self.settings.fencing = fencing;
        self
    }

    /// The key as stored: prefix + key.
    pub fn full_key(&self) -> String {
        let prefix = self.settings.prefix();
        let mut full = String::with_capacity(prefix.len() + self.key.len());
        full.push_str(prefix);
        full.push_str(&self.key);
        full
    }

    /// The configured TTL.
    pub fn ttl_value(&self) -> std::time::Duration {
        self.settings.ttl
    }

    /// Checks the key and the settings; returns the stored key.
    fn checked_key(&self) -> Result<String, Error> {
        if self.key.is_empty() {
            return Err(Error::InvalidKey {
                key: String::new(),
                reason: "the key is empty",
            });
        }
        if self.key.len() > MAX_KEY_LEN {
            let shown: String = self.key.chars().take(64).collect();
            return Err(Error::InvalidKey {
                key: shown,
                reason: "the key is longer than MAX_KEY_LEN (1024 bytes)",
            });
        }
        let full = self.full_key();
        if is_reserved_key(&full) {
            return Err(Error::InvalidKey {
                key: full,
                reason: "the key is reserved for cachelock's own bookkeeping (a fence counter or a tree lock space)",
            });
        }
        self.settings.check(&full)?;
        Ok(full)
    }
}

/// The admin calls: who holds the key, and deleting it whoever does.
impl<C: LockStore> Lock<C> {
    fn admin(&self, key: &str) -> Result<&dyn LockAdmin, Error> {
        self.cache
            .admin()
            .ok_or_else(|| Error::backend(key, no_admin()))
    }

    /// Who holds this lock now, and for how much longer; `None` if nobody does.
    ///
    /// ```
    /// use cachelock::{Lock, MemoryCache};
    ///
    /// let lock = Lock::new("report").cache(MemoryCache::new()).label("nightly");
    /// let guard = lock.try_acquire()?;
    /// let holder = lock.holder()?.expect("held");
    /// assert_eq!(holder.label.as_deref(), Some("nightly"));
    /// assert_eq!(holder.pid, Some(std::process::id()));
    /// guard.release()?;
    /// assert!(lock.holder()?.is_none());
    /// # Ok::<(), cachelock::Error>(())
    /// ```
    pub fn holder(&self) -> Result<Option<Holder>, Error> {
        let key = self.checked_key()?;
        let found = self.admin(&key)?.holder(&key);
        holder_of(key, found)
    }

    /// Async twin of [`holder`](Lock::holder).
    pub async fn holder_async(&self) -> Result<Option<Holder>, Error> {
        let key = self.checked_key()?;
        let found = self.admin(&key)?.holder_async(&key).await;
        holder_of(key, found)
    }

    /// Deletes the key whoever holds it: an admin override for a lock stuck on a holder
    /// that is known to be gone. **The holder is not told**: its next renewal or release
    /// finds the lock lost, and until then it may still be working, beside whoever takes
    /// the key next. Logged at warn level through `tracing`, with the holder's metadata.
    pub fn force_release(&self) -> Result<(), Error> {
        let key = self.checked_key()?;
        let holder = self.holder()?;
        log_force_release(&key, holder.as_ref());
        self.admin(&key)?
            .force_release(&key)
            .map_err(|source| Error::backend(key, source))
    }

    /// Async twin of [`force_release`](Lock::force_release).
    pub async fn force_release_async(&self) -> Result<(), Error> {
        let key = self.checked_key()?;
        let holder = self.holder_async().await?;
        log_force_release(&key, holder.as_ref());
        self.admin(&key)?
            .force_release_async(&key)
            .await
            .map_err(|source| Error::backend(key, source))
    }
}

impl<C: LockStore + Clone + 'static> Lock<C> {
    fn target(&self) -> Result<KeyTarget<C>, Error> {
        Ok(KeyTarget {
            key: self.checked_key()?,
            store: self.cache.clone(),
        })
    }

    /// Takes the lock if it is free, or fails at once with [`Error::Locked`].
    ///
    /// The returned [`Guard`] releases the lock when dropped.
    pub fn try_acquire(&self) -> Result<Guard<C>, Error> {
        acquire(self.target()?, &self.settings, None).map(Guard::new)
    }

    /// Takes the lock, waiting up to `timeout` for the holder to let go.
    ///
    /// Retries with jittered exponential backoff (2 ms doubling to 100 ms), never past the
    /// deadline; then fails with [`Error::Locked`]. A backend error ends the wait at once.
    /// Between attempts it waits with [`LockStore::wait_for_release`]: on a
    /// [`MemoryCache`](crate::MemoryCache) or a Redis store it wakes the moment the holder
    /// releases, elsewhere it sleeps the pause.
    pub fn acquire_timeout(&self, timeout: std::time::Duration) -> Result<Guard<C>, Error> {
        acquire(self.target()?, &self.settings, Some(timeout)).map(Guard::new)
    }

    /// Async twin of [`try_acquire`](Lock::try_acquire).
    pub async fn try_acquire_async(&self) -> Result<AsyncGuard<C>, Error> {
        acquire_async(self.target()?, &self.settings, None)
            .await
            .map(AsyncGuard::new)
    }

    /// Async twin of [`acquire_timeout`](Lock::acquire_timeout).
    ///
    /// Sleeps with tokio's timer, so it must be awaited inside a tokio runtime; the runtime
    /// thread is never blocked.
    pub async fn acquire_timeout_async(
        &self,
        timeout: std::time::Duration,
    ) -> Result<AsyncGuard<C>, Error> {
        acquire_async(self.target()?, &self.settings, Some(timeout))
            .await
            .map(AsyncGuard::new)
    }

    /// Runs `f` while holding the lock, then releases it (also when `f` panics).
    ///
    /// Waits up to [`wait`](Lock::wait) for the key (default: not at all). Returns
    /// [`Error::Locked`] without calling `f` if the key stays held. If the release afterwards
    /// finds the lock lost (the TTL ran out during `f`) or the store fails, `f`'s result is
    /// still returned: it has already happened, and throwing it away would hide it. That
    /// failure is reported through `tracing` at warn/error level; use a [`Guard`] directly to
    /// handle it yourself.
    ///
    /// ```
    /// let total = cachelock::Lock::new("sum").run(|| 1 + 1)?;
    /// assert_eq!(total, 2);
    /// # Ok::<(), cachelock::Error>(())
    /// ```
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Error> {
        acquire::run(self.target()?, &self.settings, f)
    }

    /// Async twin of [`run`](Lock::run): awaits `fut` while holding the lock, then releases
    /// it, also when `fut` panics (the panic then continues). If the returned future is
    /// dropped mid-way, the guard's `Drop` releases the lock without blocking.
    pub async fn run_async<F: Future>(&self, fut: F) -> Result<F::Output, Error> {
        acquire::run_async(self.target()?, &self.settings, fut).await
    }
}

/// Whether `key` (as a lock stores it) is one of the keys cachelock keeps for itself: the
/// Redis fencing counters (`cachelock-fence`, `cachelock-fence:{tag}`) and the keys of a tree
/// lock space (`<space>{cachelock-tree}:..`). [`Lock`] refuses such keys (a plain lock or
/// `force_release` on one would overwrite or delete the bookkeeping), and the admin listings
/// skip them.
pub(crate) fn is_reserved_key(key: &str) -> bool {
    key.starts_with("cachelock-fence")
        && (key.len() == "cachelock-fence".len() || key[15..].starts_with(":{"))
        || (key.as_bytes().contains(&b'{') && key.contains("{cachelock-tree}:"))
}

/// The holder of `key` from what the store's holder lookup answered.
fn holder_of(
    key: String,
    found: crate::result::CacheResult<Option<(String, Option<std::time::Duration>)>>,
) -> Result<Option<Holder>, Error> {
    match found {
        Ok(value) => Ok(value.map(|(value, ttl)| parse(&key, &value, ttl))),
        Err(source) => Err(Error::backend(key, source)),
    }
}

/// The warn-level event of a force-release, with the holder's metadata.
fn log_force_release(key: &str, holder: Option<&Holder>) {
    tracing::warn!(
        key = %key,
        holder_host = holder.map(|h| h.host.as_str()).unwrap_or_default(),
        holder_pid = holder.and_then(|h| h.pid),
        holder_label = holder.and_then(|h| h.label.as_deref()),
        "lock force-released"
    );
}

impl<C> std::fmt::Debug for Lock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .field("prefix", &self.settings.prefix)
            .field("ttl", &self.settings.ttl)
            .field("wait", &self.settings.wait)
            .field("fencing", &self.settings.fencing)
            .finish_non_exhaustive()
    }
}
