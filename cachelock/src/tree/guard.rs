//! [`TreeGuard`], [`AsyncTreeGuard`] and [`TreeClaim`]: holding a tree lock.
//!
//! A tree guard is an ordinary [`Guard`] / [`AsyncGuard`] on the tree operations of the
//! cache (see `target.rs`): renewal, the lost signal and `max_hold` are the same code.

use std::time::Duration;

use super::target::TreeTarget;
use crate::cache::Cache;
use crate::error::Error;
use crate::guard::{AsyncGuard, Guard};

/// A tree lock given up by its guard but still held in the cache: what a lock service
/// hands to its client (Locker's `canhaz` answer), to release later with
/// [`TreeLock::release_token`](super::TreeLock::release_token).
///
/// Nothing renews it: it runs out after `ttl` unless extended with
/// [`TreeLock::extend_token`](super::TreeLock::extend_token). `Debug` shows only the
/// first characters of the token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeClaim {
    /// The locked path.
    pub path: String,
    /// The owner token: whoever has it can release or extend the lock. Keep it secret.
    pub token: String,
    /// The TTL the lock was taken (or last renewed) with.
    pub ttl: Duration,
}

impl std::fmt::Debug for TreeClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: String = self.token.chars().take(6).collect();
        f.debug_struct("TreeClaim")
            .field("path", &self.path)
            .field("token", &format_args!("{shown}.."))
            .field("ttl", &self.ttl)
            .finish()
    }
}

macro_rules! tree_guard_common {
    () => {
        /// The locked path.
        pub fn path(&self) -> &str {
            let key = self.inner.key();
            key.get(self.space_len..).unwrap_or(key)
        }

        /// The path with its lock space in front, as errors and logs name it.
        pub fn key(&self) -> &str {
            self.inner.key()
        }

        /// The owner token of this hold: whoever has it can release or extend the lock
        /// ([`TreeLock::release_token`](super::TreeLock::release_token)). Keep it secret.
        pub fn token(&self) -> &str {
            self.inner.token()
        }

        /// The TTL the lock was taken with (and is renewed by).
        pub fn ttl(&self) -> Duration {
            self.inner.ttl()
        }

        /// The fencing token of this hold: strictly greater than every fence handed out
        /// before in this lock space (see [`Guard::fence`]).
        pub fn fence(&self) -> u64 {
            self.inner.fence()
        }

        /// How long this guard has held the lock.
        pub fn held_for(&self) -> Duration {
            self.inner.held_for()
        }

        /// `true` once the lock is no longer ours (see [`Guard::is_lost`]).
        pub fn is_lost(&self) -> bool {
            self.inner.is_lost()
        }

        /// Completes when the lock is lost; never, if it stays held.
        pub async fn lost(&self) {
            self.inner.lost().await
        }

        fn claim_of(&self) -> TreeClaim {
            TreeClaim {
                path: self.path().to_owned(),
                token: self.token().to_owned(),
                ttl: self.ttl(),
            }
        }
    };
}

/// Holds a tree lock; releases it when dropped (sync code). Renewed in the background like
/// a [`Guard`] unless the lock was built with [`renew(false)`](super::TreeLock::renew).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct TreeGuard<C: Cache> {
    inner: Guard<TreeTarget<C>>,
    space_len: usize,
}

impl<C: Cache> TreeGuard<C> {
    pub(crate) fn new(inner: Guard<TreeTarget<C>>, space_len: usize) -> Self {
        TreeGuard { inner, space_len }
    }

    tree_guard_common!();

    /// Releases the lock now: `Ok(())`, or [`Error::LockLost`] if it had expired or was
    /// taken over (nothing is touched then), or [`Error::Backend`].
    pub fn release(self) -> Result<(), Error> {
        self.inner.release()
    }

    /// Resets the lock's TTL to its full length (owner-checked); [`Error::LockLost`] if the
    /// lock is no longer ours.
    pub fn extend(&self) -> Result<(), Error> {
        self.inner.extend()
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        self.inner.extend_for(ttl)
    }

    /// Gives the lock up without releasing it: renewal stops, and the lock stays held until
    /// its TTL runs out or its token releases it. Returns the path, token and TTL.
    pub fn into_claim(self) -> TreeClaim {
        let claim = self.claim_of();
        let _kept = self.inner.into_kept();
        claim
    }

    pub(crate) fn release_logged(self) {
        self.inner.release_logged()
    }
}

impl<C: Cache> std::fmt::Debug for TreeGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeGuard")
            .field("key", &self.key())
            .field("ttl", &self.ttl())
            .finish_non_exhaustive()
    }
}

/// Holds a tree lock in async code; release it with
/// [`release`](AsyncTreeGuard::release)`.await`. Its `Drop` never blocks (see
/// [`AsyncGuard`]).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct AsyncTreeGuard<C: Cache> {
    inner: AsyncGuard<TreeTarget<C>>,
    space_len: usize,
}

impl<C: Cache> AsyncTreeGuard<C> {
    pub(crate) fn new(inner: AsyncGuard<TreeTarget<C>>, space_len: usize) -> Self {
        AsyncTreeGuard { inner, space_len }
    }

    tree_guard_common!();

    /// Releases the lock now (see [`TreeGuard::release`]).
    pub async fn release(self) -> Result<(), Error> {
        self.inner.release().await
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    pub async fn extend(&self) -> Result<(), Error> {
        self.inner.extend().await
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub async fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        self.inner.extend_for(ttl).await
    }

    /// Gives the lock up without releasing it (see [`TreeGuard::into_claim`]).
    pub fn into_claim(self) -> TreeClaim {
        let claim = self.claim_of();
        let _kept = self.inner.into_kept();
        claim
    }

    pub(crate) async fn release_logged(self) {
        self.inner.release_logged().await
    }
}

impl<C: Cache> std::fmt::Debug for AsyncTreeGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTreeGuard")
            .field("key", &self.key())
            .field("ttl", &self.ttl())
            .finish_non_exhaustive()
    }
}
