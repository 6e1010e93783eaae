//! [`TreeStore`]: the tree lock operations a store may offer, and [`TreeEntry`].

use std::time::Duration;

use super::path::TreeScope;
use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};

/// A held tree lock as a store reports it from [`TreeStore::holder`] and
/// [`TreeStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The held path (without the lock space).
    pub path: String,
    /// The stored owner value (`<token>|<pid>|<host>|<label>`).
    pub value: String,
    /// How long it has left, if the store can tell.
    pub ttl: Option<Duration>,
}

/// Hierarchical locks ([`crate::tree`]) in a store: reached through
/// [`LockStore::trees`](crate::LockStore::trees).
///
/// A lock space `space` (a [`TreeLock`](super::TreeLock)'s prefix) holds paths (`/a/b`).
/// Every operation must be **atomic within its space**: a claim checks the path, its
/// ancestors and its descendants against the [conflict rule](super::conflicts) and stores
/// the lock in one step. Expired locks count as free. Tokens are compared as
/// [`LockStore::release`](crate::LockStore::release) compares them (the owner value's part
/// before the first `|`). Check an implementation with
/// [`testing::tree_conformance`](crate::testing::tree_conformance).
///
/// [`MemoryCache`](crate::MemoryCache), [`NoopCache`](crate::NoopCache) and the file, Redis,
/// PostgreSQL, MariaDB/MySQL and etcd stores implement it; Memcached cannot (it has no
/// atomic operation over several keys). A get/set/delete [`CacheStore`](crate::CacheStore) cannot (checking a
/// subtree atomically cannot be built from get/set/delete): its tree locks fail with
/// [`Error::Backend`](crate::Error::Backend).
pub trait TreeStore: Send + Sync {
    /// Stores `claim`'s owner for `path` in `space` with `scope`, if no live lock of the
    /// space conflicts with it. `Some` if it stored it, with the fence (tree locks are always
    /// fenced: the fence strictly increases within the space) and, for an in-process store,
    /// a [`Handle`] (with the same promises as
    /// [`LockStore::claim`](crate::LockStore::claim)'s); `None` on a conflict.
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>>;

    /// Async twin of [`claim`](TreeStore::claim).
    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>>;

    /// Deletes the lock on `path` in `space` if it is live and held by `token`; `handle` is
    /// the one this store returned with the claim, if any.
    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        handle: Option<&Handle>,
    ) -> CacheResult<bool>;

    /// Async twin of [`release`](TreeStore::release).
    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>>;

    /// Resets the TTL of the lock on `path` in `space` to `ttl` if it is live and held by
    /// `token` (`handle` as for [`release`](TreeStore::release)).
    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool>;

    /// Async twin of [`extend`](TreeStore::extend).
    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>>;

    /// A live lock of `space` that conflicts with a lock on `path` with `scope` (the one a
    /// claim would hit), or `None`.
    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>>;

    /// Async twin of [`holder`](TreeStore::holder).
    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>>;

    /// Every live lock of `space`, in any order.
    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>>;

    /// Async twin of [`list`](TreeStore::list).
    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>>;

    /// Waits until a lock of `space` that may have blocked `path` with `scope` is released,
    /// or `pause` has passed. The default sleeps `pause` (polling with backoff).
    fn wait_for_release(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        let _ = (space, path, scope);
        std::thread::sleep(pause);
    }

    /// Async twin of [`wait_for_release`](TreeStore::wait_for_release); the default sleeps
    /// with tokio's timer.
    fn wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        let _ = (space, path, scope);
        Box::pin(tokio::time::sleep(pause))
    }
}

/// The error of a store without tree locks.
pub(crate) fn unsupported() -> crate::error::BoxError {
    "this store does not support tree locks (MemoryCache and the file, Redis, Redis Cluster, PostgreSQL, MariaDB/MySQL and etcd stores do)"
        .into()
}
