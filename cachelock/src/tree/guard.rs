//! [`TreeGuard`], [`AsyncTreeGuard`] and [`TreeClaim`]: holding a tree lock.
//!
//! A tree guard is made of the same [`Holding`] as a [`Guard`](crate::Guard): renewal, the
//! lost signal, `max_hold`, `hold_at_least` and the release on drop are the same code.

use std::sync::Arc;
use std::time::Duration;

use super::target::TreeTarget;
use crate::error::Error;
use crate::guard::{guard_accessors, Holding};
use crate::lease::Lease;
use crate::store::LockStore;

/// A tree lock given up by its guard but still held in the store: what a lock service
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

/// The accessors of both tree guards, on their `hold` field.
macro_rules! tree_accessors {
    () => {
        /// The locked path.
        pub fn path(&self) -> &str {
            self.hold.lease().target.path()
        }

        /// The path with its lock space in front, as errors and logs name it.
        pub fn key(&self) -> &str {
            self.hold.lease().key()
        }

        /// The owner token of this hold: whoever has it can release or extend the lock
        /// ([`TreeLock::release_token`](super::TreeLock::release_token)). Keep it secret.
        pub fn token(&self) -> &str {
            self.hold.lease().token.as_str()
        }

        /// The fencing token of this hold: strictly greater than every fence handed out
        /// before in this lock space (see [`Guard::fence`](crate::Guard::fence)).
        pub fn fence(&self) -> u64 {
            self.hold.lease().fence
        }

        guard_accessors!();

        /// Gives the lock up without releasing it: renewal stops, and the lock stays held
        /// until its TTL runs out or its token releases it. Returns the path, token and TTL.
        pub fn into_claim(self) -> TreeClaim {
            let claim = TreeClaim {
                path: self.path().to_owned(),
                token: self.token().to_owned(),
                ttl: self.ttl(),
            };
            let _kept = self.hold.into_kept();
            claim
        }
    };
}

/// Holds a tree lock; releases it when dropped (sync code). Renewed in the background like
/// a [`Guard`](crate::Guard) unless the lock was built with
/// [`renew(false)`](super::TreeLock::renew).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct TreeGuard<C: LockStore + Clone + 'static> {
    hold: Holding<TreeTarget<C>>,
}

impl<C: LockStore + Clone + 'static> TreeGuard<C> {
    pub(crate) fn new(lease: Arc<Lease<TreeTarget<C>>>) -> Self {
        TreeGuard {
            hold: Holding::sync(lease),
        }
    }

    tree_accessors!();

    /// Releases the lock now: `Ok(())`, or [`Error::LockLost`] if it had expired or was
    /// taken over (nothing is touched then), or [`Error::Backend`].
    pub fn release(self) -> Result<(), Error> {
        self.hold.release()
    }

    /// Resets the lock's TTL to its full length (owner-checked); [`Error::LockLost`] if the
    /// lock is no longer ours.
    pub fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl())
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        self.hold.extend_for(ttl)
    }
}

impl<C: LockStore + Clone + 'static> std::fmt::Debug for TreeGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeGuard")
            .field("key", &self.key())
            .field("ttl", &self.ttl())
            .finish_non_exhaustive()
    }
}

/// Holds a tree lock in async code; release it with
/// [`release`](AsyncTreeGuard::release)`.await`. Its `Drop` never blocks (see
/// [`AsyncGuard`](crate::AsyncGuard)).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct AsyncTreeGuard<C: LockStore + Clone + 'static> {
    hold: Holding<TreeTarget<C>>,
}

impl<C: LockStore + Clone + 'static> AsyncTreeGuard<C> {
    pub(crate) fn new(lease: Arc<Lease<TreeTarget<C>>>) -> Self {
        AsyncTreeGuard {
            hold: Holding::detached(lease),
        }
    }

    tree_accessors!();

    /// Releases the lock now (see [`TreeGuard::release`]).
    pub async fn release(self) -> Result<(), Error> {
        self.hold.release_async().await
    }

    /// Resets the lock's TTL to its full length (owner-checked).
    pub async fn extend(&self) -> Result<(), Error> {
        self.extend_for(self.ttl()).await
    }

    /// Sets the lock's remaining TTL to `ttl` (owner-checked).
    pub async fn extend_for(&self, ttl: Duration) -> Result<(), Error> {
        self.hold.extend_for_async(ttl).await
    }
}

impl<C: LockStore + Clone + 'static> std::fmt::Debug for AsyncTreeGuard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTreeGuard")
            .field("key", &self.key())
            .field("ttl", &self.ttl())
            .finish_non_exhaustive()
    }
}
