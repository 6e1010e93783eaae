//! [`Guard`] and [`AsyncGuard`]: proof of holding a lock, released on drop; and
//! [`Holding`], what every guard (tree guards too) is made of.

use std::sync::Arc;
use std::time::Duration;

use crate::detached::{self, Job};
use crate::error::{check_ttl, BoxError, Error};
use crate::lease::Lease;
use crate::store::LockStore;
use crate::target::{KeyTarget, Target};

/// A held lease and what a guard does with it: release, extend, the accessors, and the
/// release on drop (inline for a sync guard; for an async guard, inline only if the store
/// is in-process, else in the background).
pub(crate) struct Holding<T: Target> {
    /// `None` only after a release consumed the guard.
    lease: Option<Arc<Lease<T>>>,
    /// Whether a drop must not block: an async guard's.
    async_drop: bool,
}

impl<T: Target> Holding<T> {
    /// The holding of a sync guard: its drop releases inline.
    pub(crate) fn sync(lease: Arc<Lease<T>>) -> Self {
        Holding {
            lease: Some(lease),
            async_drop: false,
        }
    }

    /// The holding of an async guard: its drop never blocks.
    pub(crate) fn detached(lease: Arc<Lease<T>>) -> Self {
        Holding {
            lease: Some(lease),
            async_drop: true,
        }
    }

    pub(crate) fn lease(&self) -> &Lease<T> {
        // `lease` is only `None` after `release` consumed the guard, so never here.
        match &self.lease {
            Some(lease) => lease,
            None => unreachable!("a guard is only emptied by consuming it"),
        }
    }

    /// Releases now (sync), reporting what happened.
    pub(crate) fn release(mut self) -> Result<(), Error> {
        match self.lease.take() {
            Some(lease) => lease.let_go(),
            None => Ok(()),
        }
    }

    /// Releases now (async), reporting what happened.
    pub(crate) async fn release_async(mut self) -> Result<(), Error> {
        match self.lease.take() {
            Some(lease) => lease.let_go_async().await,
            None => Ok(()),
        }
    }

    /// Releases, and reports a lost lock or a failure through `tracing` only.
    pub(crate) fn release_logged(self) {
        log_release_failure(self.release());
    }

    /// Async twin of [`Holding::release_logged`].
    pub(crate) async fn release_logged_async(self) {
        log_release_failure(self.release_async().await);
    }

    /// Sets the remaining TTL to `ttl` (owner-checked, sync).
    pub(crate) fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        let lease = self.lease();
        check_ttl(lease.key(), "ttl", ttl)?;
        let outcome = lease.renew(ttl);
        lease.extend_outcome(outcome)
    }

    /// Sets the remaining TTL to `ttl` (owner-checked, async).
    pub(crate) async fn extend_for_async(&self, ttl: Duration) -> Result<(), Error> {
        let lease = self.lease();
        check_ttl(lease.key(), "ttl", ttl)?;
        let outcome = lease.renew_async(ttl).await;
        lease.extend_outcome(outcome)
    }

    /// Gives the lock up without releasing it: renewal stops, the drop does nothing, and the
    /// key stays held until its TTL runs out (or its owner token releases it).
    pub(crate) fn into_kept(mut self) -> Option<Arc<Lease<T>>> {
        let lease = self.lease.take()?;
        lease.finish();
        Some(lease)
    }
}

impl<T: Target> Drop for Holding<T> {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        if !self.async_drop || lease.handle.is_some() {
            // Sync code, or an in-process store (it gave a handle): released inline.
            log_release_failure(lease.let_go());
            return;
        }
        lease.finish();
        let job = match lease.keep_for() {
            Some(keep) => Job::Keep(keep),
            None => Job::Release,
        };
        detached::let_go(
            lease.target.clone(),
            lease.token,
            job,
            lease.acquired_at.elapsed(),
        );
    }
}

impl<T: Target> Lease<T> {
    fn released(&self, outcome: Result<bool, BoxError>) -> Result<(), Error> {
        match outcome {
            Ok(true) => {
                tracing::debug!(key = %self.key(), held_for = ?self.acquired_at.elapsed(), "lock released");
                Ok(())
            }
            Ok(false) => {
                tracing::warn!(key = %self.key(), held_for = ?self.acquired_at.elapsed(), "lock was lost before release");
                Err(Error::LockLost {
                    key: self.key().to_owned(),
                })
            }
            Err(source) => Err(Error::backend(self.key(), source)),
        }
    }

    fn extend_outcome(&self, outcome: Result<bool, BoxError>) -> Result<(), Error> {
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.mark_lost("extend found the key expired or held by another owner");
                Err(Error::LockLost {
                    key: self.key().to_owned(),
                })
            }
            Err(source) => Err(Error::backend(self.key(), source)),
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

/// The accessors every guard has, on its `hold` field.
macro_rules! guard_accessors {
    () => {
        /// The TTL the lock was taken with (and is renewed and extended by).
        pub fn ttl(&self) -> std::time::Duration {
            self.hold.lease().ttl
        }

        /// How long this guard has held the lock.
        pub fn held_for(&self) -> std::time::Duration {
            self.hold.lease().acquired_at.elapsed()
        }

        /// `true` once the lock is no longer ours: a renewal or an extend found it expired or
        /// held by another owner, or the TTL ran out without renewal (`renew(false)`,
        /// `max_hold` reached, or the store unreachable for a whole TTL).
        ///
        /// Work that must not run twice should check it before each irreversible step (or
        /// use the fencing token downstream): after a loss, another holder may be inside.
        pub fn is_lost(&self) -> bool {
            self.hold.lease().is_lost()
        }

        /// Completes when the lock is lost (see `is_lost`); never, if it stays held. Use it
        /// in `tokio::select!` to stop work the moment the lock goes.
        ///
        /// It completes the lost margin before the local deadline (see
        /// [`Lock::lost_margin`](crate::Lock::lost_margin)) even while a renewal waits for
        /// a store that does not answer: on a Tokio runtime (with its timer enabled) it arms
        /// its own timer. Polled outside Tokio, it completes when the renewer declares the
        /// loss, which a renewal stuck on an unreachable store can delay by up to the
        /// store's response timeout; `is_lost()` is exact everywhere.
        pub async fn lost(&self) {
            self.hold.lease().lost().await
        }
    };
}

pub(crate) use guard_accessors;

/// The fence accessor of [`Guard`] and [`AsyncGuard`], with its documentation.
macro_rules! fence_accessor {
    () => {
        /// The fencing token of this hold: strictly greater than the fence of every earlier
        /// hold of this key (across expiry, and across processes on a shared store; see
        /// [`LockStore::claim`] for what each store guarantees).
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
        /// # lock.force_release().unwrap(); // (A's TTL runs out)
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
            self.hold.lease().fence
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
pub struct Guard<C: LockStore + Clone + 'static> {
    hold: Holding<KeyTarget<C>>,
}

impl<C: LockStore + Clone + 'static> Guard<C> {
    pub(crate) fn new(lease: Arc<Lease<KeyTarget<C>>>) -> Self {
        Guard {
            hold: Holding::sync(lease),
        }
    }

    /// The key as stored (prefix included).
    pub fn key(&self) -> &str {
        self.hold.lease().key()
    }

    guard_accessors!();
    fence_accessor!();

    /// Releases the lock now, reporting what happened.
    ///
    /// `Ok(())`: the key was ours and is deleted (or, with
    /// [`hold_at_least`](crate::Lock::hold_at_least), kept until that time has passed).
    /// [`Error::LockLost`]: the lock had expired or was taken over; nothing was touched.
    /// [`Error::Backend`]: the store failed; the key stays until its TTL runs out.
    pub fn release(self) -> Result<(), Error> {
        self.hold.release()
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    ///
    /// [`Error::LockLost`] if the lock is no longer ours (nothing is changed then).
    pub fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl())
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    ///
    /// Called while another extend of this guard is in flight (the renewal, or another
    /// thread), the store may run the two in either order and keep either TTL: the guard
    /// then counts from the earlier of the two ends ([`is_lost`](Guard::is_lost) may turn
    /// true early, never late), until the next extend that runs alone.
    pub fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        self.hold.extend_for(ttl)
    }
}

impl<C: LockStore + Clone + 'static> std::fmt::Debug for Guard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lease = self.hold.lease();
        f.debug_struct("Guard")
            .field("key", &lease.key())
            .field("ttl", &lease.ttl)
            .field("fence", &lease.fence)
            .finish_non_exhaustive()
    }
}

/// Holds a lock in async code; release it with [`release`](AsyncGuard::release)`.await`.
///
/// Renewed in the background like a [`Guard`]. If it is dropped instead of released (an
/// early return, a panic, a cancelled future), `Drop` never blocks the runtime thread: an
/// in-process store ([`MemoryCache`](crate::MemoryCache)) releases at once; a network store
/// releases in the background (on a task of the current tokio runtime, or on a short-lived
/// thread outside one), owner-checked, logged. Prefer the explicit `release().await`: it
/// reports a lost lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct AsyncGuard<C: LockStore + Clone + 'static> {
    hold: Holding<KeyTarget<C>>,
}

impl<C: LockStore + Clone + 'static> AsyncGuard<C> {
    pub(crate) fn new(lease: Arc<Lease<KeyTarget<C>>>) -> Self {
        AsyncGuard {
            hold: Holding::detached(lease),
        }
    }

    /// The key as stored (prefix included).
    pub fn key(&self) -> &str {
        self.hold.lease().key()
    }

    guard_accessors!();
    fence_accessor!();

    /// Releases the lock now, reporting what happened (see [`Guard::release`]).
    pub async fn release(self) -> Result<(), Error> {
        self.hold.release_async().await
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    pub async fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl()).await
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked). Alongside another extend of
    /// this guard, the guard counts from the earlier end (as
    /// [`Guard::extend_for`](crate::Guard::extend_for)).
    pub async fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        self.hold.extend_for_async(ttl).await
    }
}

impl<C: LockStore + Clone + 'static> std::fmt::Debug for AsyncGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lease = self.hold.lease();
        f.debug_struct("AsyncGuard")
            .field("key", &lease.key())
            .field("ttl", &lease.ttl)
            .field("fence", &lease.fence)
            .finish_non_exhaustive()
    }
}
