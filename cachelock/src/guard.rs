//! [`Guard`] and [`AsyncGuard`]: proof of holding a lock, released on drop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::error::{check_ttl, BoxError, Error};
use crate::lease::Lease;

/// Starts looking after `lease` (renewal, lost detection) and returns it shared.
pub(crate) fn watched<C: Cache + 'static>(lease: Lease<C>) -> Arc<Lease<C>> {
    let lease = Arc::new(lease);
    let first_due = lease.first_due();
    crate::renew::watch(lease.clone(), first_due);
    lease
}

impl<C: Cache> Lease<C> {
    fn released(&self, outcome: Result<bool, BoxError>) -> Result<(), Error> {
        match outcome {
            Ok(true) => {
                tracing::debug!(key = %self.key, held_for = ?self.acquired_at.elapsed(), "lock released");
                Ok(())
            }
            Ok(false) => {
                tracing::warn!(key = %self.key, held_for = ?self.acquired_at.elapsed(), "lock was lost before release");
                Err(Error::LockLost {
                    key: self.key.clone(),
                })
            }
            Err(source) => Err(Error::backend(self.key.clone(), source)),
        }
    }

    fn extend_outcome(
        &self,
        started: Instant,
        ttl: Duration,
        outcome: Result<bool, BoxError>,
    ) -> Result<(), Error> {
        match outcome {
            Ok(true) => {
                self.extended(started, ttl);
                Ok(())
            }
            Ok(false) => {
                self.mark_lost("extend found the key expired or held by another owner");
                Err(Error::LockLost {
                    key: self.key.clone(),
                })
            }
            Err(source) => Err(Error::backend(self.key.clone(), source)),
        }
    }

    /// Lets go of the lock (sync): deletes the key, or keeps it for `hold_at_least`.
    fn let_go(&self) -> Result<(), Error> {
        self.finish();
        let outcome = match self.keep_for() {
            Some(keep) => self.extend_now(keep),
            None => self.release_now(),
        };
        self.released(outcome)
    }

    /// Lets go of the lock (async twin of `let_go`).
    async fn let_go_async(&self) -> Result<(), Error> {
        self.finish();
        let outcome = match self.keep_for() {
            Some(keep) => self.extend_now_async(keep).await,
            None => self.release_now_async().await,
        };
        self.released(outcome)
    }
}

/// Logs a failed release that nobody can be told about (a `Drop`, a closure form).
fn log_release_failure(result: Result<(), Error>) {
    if let Err(error) = result {
        // A lost lock was already logged at warn level.
        if !error.is_lost() {
            tracing::error!(key = error.key().unwrap_or_default(), %error, "releasing lock failed; it stays until its TTL runs out");
        }
    }
}

macro_rules! guard_common {
    () => {
        /// The key as stored in the cache (prefix included).
        pub fn key(&self) -> &str {
            &self.lease().key
        }

        /// The TTL the lock was taken with (and is renewed and extended by).
        pub fn ttl(&self) -> Duration {
            self.lease().ttl
        }

        /// The fencing token of this hold: strictly greater than the fence of every earlier
        /// hold of this key (across expiry, and across processes on a shared store; see
        /// [`Cache::claim`] for what each backend guarantees).
        ///
        /// A lock alone cannot stop a holder that was paused (a GC pause, a stopped VM)
        /// past its TTL from writing after another holder took over. Send the fence with
        /// every write, and let the store refuse any fence lower than the highest it has
        /// seen:
        ///
        /// ```
        /// use std::sync::Mutex;
        /// use cachelock::{Lock, MemoryCache};
        ///
        /// /// The downstream store: remembers the highest fence it accepted.
        /// struct Store { highest: Mutex<u64>, value: Mutex<String> }
        ///
        /// impl Store {
        ///     /// In SQL: `UPDATE t SET value = $1, fence = $2 WHERE id = $3 AND fence < $2`.
        ///     fn write(&self, fence: u64, value: &str) -> Result<(), String> {
        ///         let mut highest = self.highest.lock().unwrap();
        ///         if fence <= *highest {
        ///             return Err(format!("stale fence {fence}: {} already wrote", *highest));
        ///         }
        ///         *highest = fence;
        ///         *self.value.lock().unwrap() = value.to_owned();
        ///         Ok(())
        ///     }
        /// }
        ///
        /// let store = Store { highest: Mutex::new(0), value: Mutex::new(String::new()) };
        /// let cache = MemoryCache::new();
        /// let lock = Lock::new("report").cache(cache.clone());
        ///
        /// let paused = lock.try_acquire()?;        // holder A, then A pauses...
        /// let stale = paused.fence();
        /// # cachelock::Cache::delete(&cache, "cachelock:report").unwrap(); // (A's TTL runs out)
        /// let fresh = lock.try_acquire()?;         // ...its TTL runs out; B takes over
        /// store.write(fresh.fence(), "B's report").unwrap();
        /// // A wakes up and writes: the store refuses it.
        /// assert!(store.write(stale, "A's stale report").is_err());
        /// # drop((paused, fresh));
        /// # Ok::<(), cachelock::Error>(())
        /// ```
        ///
        /// # 0: no fence
        ///
        /// A lock taken with [`fencing(false)`](crate::Lock::fencing) has no fence, and this
        /// returns **0**: "no fence: this lock was taken with `fencing(false)`". Every real
        /// fence is at least 1, so a store that refuses fences not greater than the last one
        /// it accepted (like the one above, which starts at 0) refuses a write carrying 0:
        /// passing the fence of an unfenced lock downstream fails safe, it never lets a stale
        /// write through.
        ///
        /// Why a `u64` and not an `Option<u64>`: the fence is the value a downstream store
        /// compares, and 0 is already below every fence it can accept, so it needs no special
        /// case there; an `Option` would break every caller of this method for a case that
        /// only arises when the lock was built to opt out of fencing.
        pub fn fence(&self) -> u64 {
            self.lease().fence
        }

        /// How long this guard has held the lock.
        pub fn held_for(&self) -> Duration {
            self.lease().acquired_at.elapsed()
        }

        /// `true` once the lock is no longer ours: a renewal or an extend found the key
        /// expired or held by another owner, or the TTL ran out without renewal
        /// (`renew(false)`, `max_hold` reached, or the cache unreachable for a whole TTL).
        ///
        /// Work that must not run twice should check it before each irreversible step
        /// (or use a fencing token downstream): after a loss, another holder may be inside.
        pub fn is_lost(&self) -> bool {
            self.lease().is_lost()
        }

        /// Completes when the lock is lost (see [`is_lost`](Self::is_lost)); never, if it
        /// stays held. Use it in `tokio::select!` to stop work the moment the lock goes.
        pub async fn lost(&self) {
            self.lease().lost().await
        }

        fn lease(&self) -> &Lease<C> {
            // `lease` is only `None` after `release` consumed the guard, so never here.
            match &self.lease {
                Some(lease) => lease,
                None => unreachable!("a guard is only emptied by consuming it"),
            }
        }
    };
}

/// Holds a lock; releases it when dropped (sync code).
///
/// While the guard lives, the lock is renewed in the background before its TTL lapses
/// (unless the lock was built with [`renew(false)`](crate::Lock::renew)), so work that takes
/// longer than the TTL keeps its lock. [`is_lost`](Guard::is_lost) tells whether the lock is
/// still ours.
///
/// Release compares the owner token: it deletes the key only if it still holds this guard's
/// token. If the TTL ran out and someone else took the key, nothing is deleted and
/// [`release`](Guard::release) returns [`Error::LockLost`]. `Drop` does the same and reports
/// the outcome through `tracing`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<C: Cache> {
    lease: Option<Arc<Lease<C>>>,
}

impl<C: Cache> Guard<C> {
    pub(crate) fn new(lease: Arc<Lease<C>>) -> Self {
        Guard { lease: Some(lease) }
    }

    guard_common!();

    /// Releases the lock now, reporting what happened.
    ///
    /// `Ok(())`: the key was ours and is deleted (or, with
    /// [`hold_at_least`](crate::Lock::hold_at_least), kept until that time has passed).
    /// [`Error::LockLost`]: the lock had expired or was taken over; nothing was touched.
    /// [`Error::Backend`]: the cache failed; the key stays until its TTL runs out.
    pub fn release(mut self) -> Result<(), Error> {
        match self.lease.take() {
            Some(lease) => lease.let_go(),
            None => Ok(()),
        }
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    ///
    /// [`Error::LockLost`] if the lock is no longer ours (nothing is changed then).
    pub fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl())
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        let lease = self.lease();
        check_ttl(&lease.key, "ttl", ttl)?;
        let started = Instant::now();
        let outcome = lease.extend_now(ttl);
        lease.extend_outcome(started, ttl, outcome)
    }

    /// Releases, and reports a lost lock or a failure through `tracing` only.
    pub(crate) fn release_logged(mut self) {
        if let Some(lease) = self.lease.take() {
            log_release_failure(lease.let_go());
        }
    }
}

impl<C: Cache> Drop for Guard<C> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            log_release_failure(lease.let_go());
        }
    }
}

impl<C: Cache> std::fmt::Debug for Guard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Guard");
        if let Some(lease) = &self.lease {
            d.field("key", &lease.key)
                .field("ttl", &lease.ttl)
                .field("fence", &lease.fence);
        }
        d.finish_non_exhaustive()
    }
}

/// Holds a lock in async code; release it with [`release`](AsyncGuard::release)`.await`.
///
/// Renewed in the background like a [`Guard`]. If it is dropped instead of released (an
/// early return, a panic, a cancelled future), `Drop` hands the release to the cache's
/// [`release_detached_held`](Cache::release_detached_held), which never blocks the runtime thread: in
/// memory it releases at once, a network backend releases in the background. Prefer the
/// explicit `release().await`: it reports a lost lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct AsyncGuard<C: Cache> {
    lease: Option<Arc<Lease<C>>>,
}

impl<C: Cache> AsyncGuard<C> {
    pub(crate) fn new(lease: Arc<Lease<C>>) -> Self {
        AsyncGuard { lease: Some(lease) }
    }

    guard_common!();

    /// Releases the lock now, reporting what happened (see [`Guard::release`]).
    pub async fn release(mut self) -> Result<(), Error> {
        match self.lease.take() {
            Some(lease) => lease.let_go_async().await,
            None => Ok(()),
        }
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    pub async fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl()).await
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub async fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        let lease = self.lease();
        check_ttl(&lease.key, "ttl", ttl)?;
        let started = Instant::now();
        let outcome = lease.extend_now_async(ttl).await;
        lease.extend_outcome(started, ttl, outcome)
    }

    /// Releases, and reports a lost lock or a failure through `tracing` only.
    pub(crate) async fn release_logged(mut self) {
        if let Some(lease) = self.lease.take() {
            log_release_failure(lease.let_go_async().await);
        }
    }
}

impl<C: Cache> Drop for AsyncGuard<C> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            if lease.handle.is_some() {
                // An in-process cache (it gave a handle): released inline, never blocking.
                log_release_failure(lease.let_go());
                return;
            }
            lease.finish();
            lease.cache.release_detached_held(
                &lease.key,
                lease.token.as_str(),
                lease.keep_for(),
                lease.acquired_at.elapsed(),
            );
        }
    }
}

impl<C: Cache> std::fmt::Debug for AsyncGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("AsyncGuard");
        if let Some(lease) = &self.lease {
            d.field("key", &lease.key)
                .field("ttl", &lease.ttl)
                .field("fence", &lease.fence);
        }
        d.finish_non_exhaustive()
    }
}

/// What tree guards (`crate::tree`) need beyond the public API of the guards they wrap.
macro_rules! guard_internals {
    ($guard:ident) => {
        impl<C: Cache> $guard<C> {
            /// The owner token of this hold.
            pub(crate) fn token(&self) -> &str {
                self.lease().token.as_str()
            }

            /// Gives the lock up without releasing it: renewal stops, `Drop` does nothing,
            /// and the key stays held until its TTL runs out (or its owner token releases it).
            pub(crate) fn into_kept(mut self) -> Option<Arc<Lease<C>>> {
                let lease = self.lease.take()?;
                lease.finish();
                Some(lease)
            }
        }
    };
}

guard_internals!(Guard);
guard_internals!(AsyncGuard);
