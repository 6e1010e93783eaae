//! [`Guard`] and [`AsyncGuard`]: proof of holding a lock, released on drop.

use std::time::{Duration, Instant};

use crate::basic::release_logged;
use crate::cache::Cache;
use crate::error::{check_ttl, Error};
use crate::token::Token;

/// What a guard holds: the cache, the stored key and the owner token.
pub(crate) struct Held<C> {
    pub(crate) cache: C,
    pub(crate) key: String,
    pub(crate) token: Token,
    pub(crate) ttl: Duration,
    pub(crate) acquired_at: Instant,
}

impl<C: Cache> Held<C> {
    fn released(&self, outcome: Result<bool, crate::BoxError>) -> Result<(), Error> {
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

    fn extended(&self, outcome: Result<bool, crate::BoxError>) -> Result<(), Error> {
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::LockLost {
                key: self.key.clone(),
            }),
            Err(source) => Err(Error::backend(self.key.clone(), source)),
        }
    }
}

macro_rules! guard_accessors {
    () => {
        /// The key as stored in the cache (prefix included).
        pub fn key(&self) -> &str {
            &self.held().key
        }

        /// The TTL the lock was taken with (and is extended by).
        pub fn ttl(&self) -> Duration {
            self.held().ttl
        }

        /// How long this guard has held the lock.
        pub fn held_for(&self) -> Duration {
            self.held().acquired_at.elapsed()
        }

        fn held(&self) -> &Held<C> {
            // `held` is only `None` after `release` consumed the guard, so never here.
            match &self.held {
                Some(held) => held,
                None => unreachable!("a guard is only emptied by consuming it"),
            }
        }
    };
}

/// Holds a lock; releases it when dropped (sync code).
///
/// Release compares the owner token: it deletes the key only if it still holds this guard's
/// token. If the TTL ran out and someone else took the key, nothing is deleted and
/// [`release`](Guard::release) returns [`Error::LockLost`]. `Drop` does the same and reports
/// the outcome through `tracing`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard<C: Cache> {
    held: Option<Held<C>>,
}

impl<C: Cache> Guard<C> {
    pub(crate) fn new(held: Held<C>) -> Self {
        Guard { held: Some(held) }
    }

    guard_accessors!();

    /// Releases the lock now, reporting what happened.
    ///
    /// `Ok(())`: the key was ours and is deleted. [`Error::LockLost`]: the lock had expired
    /// or was taken over; nothing was deleted. [`Error::Backend`]: the cache failed; the key
    /// stays until its TTL runs out.
    pub fn release(mut self) -> Result<(), Error> {
        let held = self.held.take().expect("guard holds a lock until consumed");
        let outcome = held.cache.release(&held.key, held.token.as_str());
        held.released(outcome)
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    ///
    /// [`Error::LockLost`] if the lock is no longer ours (nothing is changed then).
    pub fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl())
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        let held = self.held();
        check_ttl(&held.key, "ttl", ttl)?;
        let outcome = held.cache.extend(&held.key, held.token.as_str(), ttl);
        held.extended(outcome)
    }

    /// Releases, and reports a lost lock or a failure through `tracing` only.
    pub(crate) fn release_logged(mut self) {
        if let Some(held) = self.held.take() {
            release_logged(&held.cache, &held.key, held.token.as_str());
        }
    }
}

impl<C: Cache> Drop for Guard<C> {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            release_logged(&held.cache, &held.key, held.token.as_str());
        }
    }
}

impl<C: Cache> std::fmt::Debug for Guard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Guard");
        if let Some(held) = &self.held {
            d.field("key", &held.key).field("ttl", &held.ttl);
        }
        d.finish_non_exhaustive()
    }
}

/// Holds a lock in async code; release it with [`release`](AsyncGuard::release)`.await`.
///
/// If it is dropped instead (an early return, a panic, a cancelled future), `Drop` hands the
/// release to the cache's [`release_detached`](Cache::release_detached), which never blocks
/// the runtime thread: in memory it releases at once, a network backend releases in the
/// background. Prefer the explicit `release().await`: it reports a lost lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct AsyncGuard<C: Cache> {
    held: Option<Held<C>>,
}

impl<C: Cache> AsyncGuard<C> {
    pub(crate) fn new(held: Held<C>) -> Self {
        AsyncGuard { held: Some(held) }
    }

    guard_accessors!();

    /// Releases the lock now, reporting what happened (see [`Guard::release`]).
    pub async fn release(mut self) -> Result<(), Error> {
        let held = self.held.take().expect("guard holds a lock until consumed");
        let outcome = held
            .cache
            .release_async(&held.key, held.token.as_str())
            .await;
        held.released(outcome)
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    pub async fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl()).await
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub async fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        let held = self.held();
        check_ttl(&held.key, "ttl", ttl)?;
        let outcome = held
            .cache
            .extend_async(&held.key, held.token.as_str(), ttl)
            .await;
        held.extended(outcome)
    }

    /// Releases, and reports a lost lock or a failure through `tracing` only.
    pub(crate) async fn release_logged(mut self) {
        if let Some(held) = self.held.take() {
            let outcome = held
                .cache
                .release_async(&held.key, held.token.as_str())
                .await;
            if let Err(error) = held.released(outcome) {
                if !error.is_lost() {
                    tracing::error!(key = %held.key, error = %error, "releasing lock failed; it stays until its TTL runs out");
                }
            }
        }
    }
}

impl<C: Cache> Drop for AsyncGuard<C> {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.cache.release_detached(&held.key, held.token.as_str());
        }
    }
}

impl<C: Cache> std::fmt::Debug for AsyncGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("AsyncGuard");
        if let Some(held) = &self.held {
            d.field("key", &held.key).field("ttl", &held.ttl);
        }
        d.finish_non_exhaustive()
    }
}
