//! [`Lock`]: the builder that names a key and takes it.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::backoff::Backoff;
use crate::cache::Cache;
use crate::claimed::Claimed;
use crate::config::key_prefix;
use crate::default_cache::DefaultCache;
use crate::error::{check_ttl, Error};
use crate::guard::{watched, AsyncGuard, Guard};
use crate::in_flight::InFlight;
use crate::lease::{Lease, Policy};
use crate::token::Token;
use crate::{DEFAULT_TTL, MAX_KEY_LEN};

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
/// | [`cache`](Lock::cache) | the process default ([`set_default_cache`](crate::set_default_cache)), a [`MemoryCache`](crate::MemoryCache) unless set | |
/// | [`ttl`](Lock::ttl) | [`DEFAULT_TTL`] (60 s) | how long a holder that crashed keeps the key |
/// | [`prefix`](Lock::prefix) | the process prefix ([`set_key_prefix`](crate::set_key_prefix)), `"cachelock:"` unless set | put in front of the key in the cache |
/// | [`wait`](Lock::wait) | zero | how long [`run`](Lock::run) and [`run_async`](Lock::run_async) wait for a held key |
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
    prefix: Option<Cow<'static, str>>,
    ttl: Duration,
    wait: Duration,
    policy: Policy,
    label: Option<String>,
    fencing: bool,
    cache: C,
}

impl Lock {
    /// A lock on `key`, with the default cache, TTL and prefix.
    pub fn new(key: impl Into<String>) -> Self {
        Lock {
            key: key.into(),
            prefix: None,
            ttl: DEFAULT_TTL,
            wait: Duration::ZERO,
            policy: Policy {
                renew: true,
                max_hold: None,
                hold_at_least: None,
            },
            label: None,
            fencing: true,
            cache: DefaultCache,
        }
    }
}

impl<C: Cache> Lock<C> {
    /// Uses `cache` instead of the process default.
    ///
    /// Anything that implements [`Cache`] will do: a [`MemoryCache`](crate::MemoryCache) (its
    /// clones share one store), a reference `&my_cache`, an `Arc<dyn Cache>`, a `Box`.
    ///
    /// Acquiring hands each guard its own copy of the handle, so it must be `Clone`: pass a
    /// cache of your own by reference (`.cache(&my_cache)`) or in an `Arc`.
    pub fn cache<D: Cache>(self, cache: D) -> Lock<D> {
        Lock {
            key: self.key,
            prefix: self.prefix,
            ttl: self.ttl,
            wait: self.wait,
            policy: self.policy,
            label: self.label,
            fencing: self.fencing,
            cache,
        }
    }

    /// How long the lock lives if its holder never releases it (default [`DEFAULT_TTL`]).
    ///
    /// Must be greater than zero and at most [`MAX_TTL`](crate::MAX_TTL); acquiring reports
    /// [`Error::InvalidSetting`] otherwise.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`run`](Lock::run) and [`run_async`](Lock::run_async) wait for a held key
    /// before giving up with [`Error::Locked`] (default: zero, one attempt).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Whether to renew the lock in the background while a guard holds it (default: yes).
    ///
    /// With renewal, a holder keeps its lock however long the work takes, and a holder that
    /// dies frees it within one TTL. Renewal is an owner-checked extend at every third of the
    /// TTL, done by one shared background thread for the whole process. If a renewal is
    /// refused (the key expired or is held by another owner) the guard reports the lock lost
    /// ([`Guard::is_lost`], [`Guard::lost`]). Without renewal, the lock simply expires after
    /// its TTL, and the guard reports it lost from then on.
    pub fn renew(mut self, renew: bool) -> Self {
        self.policy.renew = renew;
        self
    }

    /// Bounds how long renewal may keep the lock: never past `max_hold` after acquiring.
    ///
    /// The last renewal shortens the TTL so that the lock runs out exactly then; the guard
    /// reports it lost from that moment. A bound on a runaway holder (a job stuck in a loop
    /// keeps its renewing lock forever otherwise). Default: no bound.
    pub fn max_hold(mut self, max_hold: Duration) -> Self {
        self.policy.max_hold = Some(max_hold);
        self
    }

    /// Keeps the key at least this long after acquiring, even if released sooner
    /// (ShedLock's `lockAtLeastFor`).
    ///
    /// A release before then does not delete the key: it sets the key's TTL to the time left
    /// (owner-checked), so nobody else acquires it until `hold_at_least` has passed. A job that
    /// takes 2 s with `hold_at_least(5 min)` runs at most once per 5 minutes across every node
    /// that shares the cache, even when the nodes' clocks or schedules drift by seconds.
    /// Default: none.
    pub fn hold_at_least(mut self, hold_at_least: Duration) -> Self {
        self.policy.hold_at_least = Some(hold_at_least);
        self
    }

    /// Whether each claim yields a fencing token (default: yes).
    ///
    /// With fencing (the default), every hold gets a [fence](Guard::fence) strictly greater
    /// than the fence of every earlier hold of the key, and a store downstream can refuse the
    /// writes of a holder that was paused past its TTL. On Redis that costs a Lua script that
    /// bumps a counter in the same call as the claim (one round trip, but several times the
    /// server time of a plain `SET`).
    ///
    /// `fencing(false)` is for locks whose holders never pass a fence downstream: the claim
    /// is then [`Cache::claim_unfenced`], on Redis a plain `SET key value NX PX ttl` (one
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
        self.fencing = fencing;
        self
    }

    /// A label stored with the lock beside this process's host name and pid, so that
    /// [`holder`](Lock::holder) and [`held_locks`](crate::held_locks) can tell who holds it
    /// (e.g. a job name or a request id). Not secret: anyone who can read the cache sees it.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
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
    pub fn holder(&self) -> Result<Option<crate::Holder>, Error> {
        let key = self.checked_key()?;
        let value = self.cache.get_with_ttl(&key);
        crate::holder::holder_of(key, value)
    }

    /// Deletes the key whoever holds it: an admin override for a lock stuck on a holder
    /// that is known to be gone. **The holder is not told**: its next renewal or release
    /// finds the lock lost, and until then it may still be working, beside whoever takes
    /// the key next. Logged at warn level through `tracing`, with the holder's metadata.
    pub fn force_release(&self) -> Result<(), Error> {
        let key = self.checked_key()?;
        let holder = self.holder()?;
        crate::holder::log_force_release(&key, holder.as_ref());
        self.cache
            .delete(&key)
            .map_err(|source| Error::backend(key, source))
    }

    /// Puts `prefix` in front of the key instead of the process prefix.
    pub fn prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The key as stored in the cache: prefix + key.
    pub fn full_key(&self) -> String {
        let prefix: &str = match &self.prefix {
            Some(prefix) => prefix,
            None => key_prefix(),
        };
        let mut full = String::with_capacity(prefix.len() + self.key.len());
        full.push_str(prefix);
        full.push_str(&self.key);
        full
    }

    /// The configured TTL.
    pub fn ttl_value(&self) -> Duration {
        self.ttl
    }

    /// The cache this lock uses (for the admin calls in `holder.rs`).
    pub(crate) fn cache_ref(&self) -> &C {
        &self.cache
    }

    /// Checks the key and TTL; returns the stored key.
    pub(crate) fn checked_key(&self) -> Result<String, Error> {
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
        if crate::holder::is_reserved_key(&full) {
            return Err(Error::InvalidKey {
                key: full,
                reason: "the key is reserved for cachelock's own bookkeeping (a fence counter or a tree lock space)",
            });
        }
        check_ttl(&full, "ttl", self.ttl)?;
        if let Some(max_hold) = self.policy.max_hold {
            check_ttl(&full, "max_hold", max_hold)?;
        }
        if let Some(hold_at_least) = self.policy.hold_at_least {
            check_ttl(&full, "hold_at_least", hold_at_least)?;
        }
        Ok(full)
    }
}

impl<C: Cache + Clone + 'static> Lock<C> {
    /// Takes the lock if it is free, or fails at once with [`Error::Locked`].
    ///
    /// The returned [`Guard`] releases the lock when dropped.
    pub fn try_acquire(&self) -> Result<Guard<C>, Error> {
        self.claim(self.checked_key()?).into_result()
    }

    /// Takes the lock, waiting up to `timeout` for the holder to let go.
    ///
    /// Retries with jittered exponential backoff (2 ms doubling to 100 ms), never past the
    /// deadline; then fails with [`Error::Locked`]. A backend error ends the wait at once.
    /// Between attempts it waits with [`Cache::wait_for_release`]: on a
    /// [`MemoryCache`](crate::MemoryCache) it wakes the moment the holder releases, elsewhere
    /// it sleeps the pause.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Guard<C>, Error> {
        let deadline = Instant::now() + timeout.min(crate::MAX_TTL);
        let mut backoff = Backoff::until(deadline);
        let mut key = self.checked_key()?;
        loop {
            match self.claim(key) {
                Attempt::Won(guard) => return Ok(guard),
                Attempt::Held(held) => match backoff.next_pause() {
                    Some(pause) => {
                        tracing::trace!(key = %held, ?pause, "lock held; waiting");
                        key = held;
                        self.cache.wait_for_release(&key, pause);
                    }
                    None => return Err(Error::Locked { key: held }),
                },
                Attempt::Failed(error) => return Err(error),
            }
        }
    }

    /// Async twin of [`try_acquire`](Lock::try_acquire).
    pub async fn try_acquire_async(&self) -> Result<AsyncGuard<C>, Error> {
        self.claim_async(self.checked_key()?).await.into_result()
    }

    /// Async twin of [`acquire_timeout`](Lock::acquire_timeout).
    ///
    /// Sleeps with tokio's timer, so it must be awaited inside a tokio runtime; the runtime
    /// thread is never blocked.
    pub async fn acquire_timeout_async(&self, timeout: Duration) -> Result<AsyncGuard<C>, Error> {
        let deadline = Instant::now() + timeout.min(crate::MAX_TTL);
        let mut backoff = Backoff::until(deadline);
        let mut key = self.checked_key()?;
        loop {
            match self.claim_async(key).await {
                Attempt::Won(guard) => return Ok(guard),
                Attempt::Held(held) => match backoff.next_pause() {
                    Some(pause) => {
                        tracing::trace!(key = %held, ?pause, "lock held; waiting");
                        key = held;
                        self.cache.wait_for_release_async(&key, pause).await;
                    }
                    None => return Err(Error::Locked { key: held }),
                },
                Attempt::Failed(error) => return Err(error),
            }
        }
    }

    /// Runs `f` while holding the lock, then releases it (also when `f` panics).
    ///
    /// Waits up to [`wait`](Lock::wait) for the key (default: not at all). Returns
    /// [`Error::Locked`] without calling `f` if the key stays held. If the release afterwards
    /// finds the lock lost (the TTL ran out during `f`) or the cache fails, `f`'s result is
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
        let guard = if self.wait.is_zero() {
            self.try_acquire()?
        } else {
            self.acquire_timeout(self.wait)?
        };
        let out = f();
        guard.release_logged();
        Ok(out)
    }

    /// Async twin of [`run`](Lock::run): awaits `fut` while holding the lock, then releases
    /// it, also when `fut` panics (the panic then continues). If the returned future is
    /// dropped mid-way, the guard's `Drop` releases the lock without blocking.
    pub async fn run_async<F: Future>(&self, fut: F) -> Result<F::Output, Error> {
        let guard = if self.wait.is_zero() {
            self.try_acquire_async().await?
        } else {
            self.acquire_timeout_async(self.wait).await?
        };
        let out = AssertUnwindSafe(fut).catch_unwind().await;
        guard.release_logged().await;
        match out {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// One claim attempt.
    fn claim(&self, key: String) -> Attempt<Guard<C>> {
        let token = Token::new();
        // The TTL starts when the cache stores the token, a little after this: counting from
        // here makes every local estimate of the expiry early, never late.
        let started = Instant::now();
        tracing::trace!(key = %key, "lock attempt");
        let value = crate::holder::owner_value(token.as_str(), self.label.as_deref());
        let claimed = self
            .cache
            .claim_for_lock(&key, value.as_str(), self.ttl, self.fencing);
        match claimed {
            Ok(Some(claimed)) if is_late(&claimed, started, self.ttl) => {
                // The grant came back after the whole TTL (retries, a reconnect, a stalled
                // server): the key may already have run out, so the hold cannot be trusted.
                // Give it back (owner-checked) rather than hand out a guard that is lost.
                let _ = self.cache.release(&key, token.as_str());
                Attempt::Failed(late_grant(key, self.ttl))
            }
            Ok(Some(claimed)) => {
                tracing::debug!(key = %key, fence = claimed.fence, "lock acquired");
                Attempt::Won(Guard::new(self.lease(key, token, claimed, started)))
            }
            Ok(None) => {
                tracing::debug!(key = %key, "lock contended");
                Attempt::Held(key)
            }
            Err(source) => {
                // The error may have come after the claim landed: give it back.
                crate::in_flight::give_back_failed(&self.cache, &key, token.as_str());
                Attempt::Failed(Error::backend(key, source))
            }
        }
    }

    async fn claim_async(&self, key: String) -> Attempt<AsyncGuard<C>> {
        let token = Token::new();
        let started = Instant::now();
        tracing::trace!(key = %key, "lock attempt");
        let value = crate::holder::owner_value(token.as_str(), self.label.as_deref());
        let in_flight = InFlight::new(&self.cache, &key, token.as_str());
        let claimed = self
            .cache
            .claim_for_lock_async(&key, value.as_str(), self.ttl, self.fencing)
            .await;
        in_flight.disarm();
        if claimed.is_err() {
            // The error may have come after the claim landed: give it back.
            crate::in_flight::give_back_failed(&self.cache, &key, token.as_str());
        }
        match claimed {
            Ok(Some(claimed)) if is_late(&claimed, started, self.ttl) => {
                // As in `claim`: a grant that came back after the whole TTL is given back.
                let _ = self.cache.release_async(&key, token.as_str()).await;
                Attempt::Failed(late_grant(key, self.ttl))
            }
            Ok(Some(claimed)) => {
                tracing::debug!(key = %key, fence = claimed.fence, "lock acquired");
                Attempt::Won(AsyncGuard::new(self.lease(key, token, claimed, started)))
            }
            Ok(None) => {
                tracing::debug!(key = %key, "lock contended");
                Attempt::Held(key)
            }
            Err(source) => Attempt::Failed(Error::backend(key, source)),
        }
    }

    fn lease(
        &self,
        key: String,
        token: Token,
        claimed: Claimed,
        started: Instant,
    ) -> std::sync::Arc<Lease<C>> {
        watched(Lease::new(
            self.cache.clone(),
            key,
            token,
            claimed,
            self.ttl,
            started,
            self.policy,
        ))
    }
}

/// Whether a grant came back only after the lock's whole TTL (counted from `started`).
/// A cache that gave a handle is in-process and started the TTL when it stored the key,
/// after `started` ([`Cache::claim_for_lock`]): the guard's estimate of the expiry is early,
/// never late, however long the call took, so no clock is read for it.
fn is_late(claimed: &Claimed, started: Instant, ttl: Duration) -> bool {
    claimed.handle.is_none() && started.elapsed() >= ttl
}

/// The error for a claim that the cache granted only after the lock's whole TTL had passed
/// on this side: a timeout ([`Error::is_timeout`]), like a claim that never answered.
fn late_grant(key: String, ttl: Duration) -> Error {
    tracing::warn!(key = %key, ?ttl, "lock granted only after its TTL; released again");
    let source = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the cache granted the lock only after its TTL ({ttl:?}) had passed; it was released again"
        ),
    );
    Error::backend(key, source)
}

/// The outcome of one claim attempt.
enum Attempt<G> {
    Won(G),
    /// Held by another owner; the stored key comes back for the next attempt.
    Held(String),
    Failed(Error),
}

impl<G> Attempt<G> {
    fn into_result(self) -> Result<G, Error> {
        match self {
            Attempt::Won(guard) => Ok(guard),
            Attempt::Held(key) => Err(Error::Locked { key }),
            Attempt::Failed(error) => Err(error),
        }
    }
}

impl<C> std::fmt::Debug for Lock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("wait", &self.wait)
            .field("fencing", &self.fencing)
            .finish_non_exhaustive()
    }
}
