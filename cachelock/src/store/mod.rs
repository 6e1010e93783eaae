//! [`LockStore`]: the contract of a store with atomic lock operations, and the capabilities
//! a store may add ([`LockAdmin`], [`TreeStore`](crate::tree::TreeStore)).

mod admin;
mod forward;

pub use admin::LockAdmin;

use std::time::Duration;

use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::tree::TreeStore;

/// A store that holds locks with atomic operations: what [`Lock`](crate::Lock),
/// `#[once]` and [`TreeLock`](crate::tree::TreeLock) run on.
///
/// The built-in stores implement it: [`MemoryCache`](crate::MemoryCache) (the default),
/// [`NoopCache`](crate::NoopCache), the Redis stores (`cachelock::redis`), and
/// [`CacheStore`](crate::CacheStore), which builds it from a get/set/delete
/// [`Cache`](crate::Cache). Implement it for a store that can do better than get/set/delete
/// (a compare-and-set of its own, a database row), and check the implementation with
/// [`testing::conformance`](crate::testing::conformance).
///
/// # The three operations, each atomic
///
/// - [`claim`](LockStore::claim): store the claim's owner under `key` with its TTL, only if
///   the key holds no live lock; among concurrent claims of one key, exactly one wins. The
///   winner gets a **fencing token** (unless the claim asks for none: then 0), strictly
///   greater than every fence the store handed out before for `key`, also across expiry,
///   release and (for a shared store) processes, so that a store downstream can refuse a
///   paused holder's late writes ([`Guard::fence`](crate::Guard::fence)).
/// - [`release`](LockStore::release): delete `key` only if it still holds `token` (and has
///   not expired): a compare-and-delete in **one** operation, never a read then a delete.
/// - [`extend`](LockStore::extend): reset the TTL of `key` to `ttl` only if it still holds
///   `token`: a compare-and-expire.
///
/// Each has an async twin, which must never block a runtime thread on I/O. A store whose
/// operations never wait (in process memory) answers the async twins inline; a network
/// store uses its async client.
///
/// # Handles
///
/// A store may return a [`Handle`] with a won claim ([`Claimed::with_handle`]); the guard
/// keeps it and passes it back to `release` and `extend` with the key and token, so that an
/// in-process store reaches the key's state without a lookup. Returning one promises:
///
/// - `release` and `extend` with that handle never wait on I/O (an
///   [`AsyncGuard`](crate::AsyncGuard) calls the sync ones on the runtime's thread, and its
///   `Drop` releases inline);
/// - the grant's TTL starts inside `claim`, when the key is stored, so a lock skips the check
///   it makes on other stores (a grant that came back after the whole TTL is given back):
///   the guard's own estimate of the expiry counts from before the call, so it is never late.
///
/// A network store returns no handle, and receives `None`.
///
/// # Waiting, capabilities
///
/// [`wait_for_release`](LockStore::wait_for_release) (and its async twin) lets a waiter
/// wake on a release; the default sleeps the backoff pause (polling). A store that can look
/// up and list its holders returns a [`LockAdmin`] from [`admin`](LockStore::admin); one
/// with hierarchical locks a [`TreeStore`] from [`trees`](LockStore::trees). Without them,
/// the calls that need them fail with [`Error::Backend`](crate::Error::Backend) and a
/// message saying what the store lacks.
///
/// # Keys and values
///
/// Keys are the lock's stored key (prefix included). TTLs are at least 1 ms and at most
/// [`MAX_TTL`](crate::MAX_TTL); a store that counts in milliseconds rounds **up**, so a
/// fractional TTL never becomes "no TTL".
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a lock store (`cachelock::LockStore`)",
    label = "not a `LockStore`",
    note = "a get/set/delete `cachelock::Cache` goes in the adapter: `CacheStore::new(my_cache)`",
    note = "the built-in stores are `MemoryCache`, `NoopCache`, `RedisCache`, `RedisClusterCache`; a store with atomic operations of its own implements `LockStore`"
)]
pub trait LockStore: Send + Sync {
    /// Stores `claim`'s owner under `key` with `claim.ttl()` if the key holds no live lock.
    ///
    /// `Some` if this call stored it (the caller now owns the key), with the fence (0 when
    /// `claim.fencing()` is off) and the store's handle if it keeps one; `None` if the key
    /// is held. A network store that sends a claim again after its connection died must
    /// count the key holding exactly this claim's token as this claim's win (tokens are
    /// fresh and random, so no other claim matches), or the claim reports its own grant as
    /// someone else's and the key stays blocked, by nobody, for a whole TTL.
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>>;

    /// Async twin of [`claim`](LockStore::claim).
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>>;

    /// Deletes `key` if it is live and still holds `token`; `true` if it deleted it, `false`
    /// (touching nothing) if the key was absent, expired or held by another token. `handle`
    /// is the one this store returned with the claim, if any.
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool>;

    /// Async twin of [`release`](LockStore::release).
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>>;

    /// Sets the TTL of `key` to `ttl` if it is live and still holds `token`; `true` if it
    /// did.
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool>;

    /// Async twin of [`extend`](LockStore::extend).
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>>;

    /// Waits until `key` may have been released, or `pause` has passed, whichever comes
    /// first. [`Lock::acquire_timeout`](crate::Lock::acquire_timeout) calls it between two
    /// attempts on a held key, with the backoff pause as `pause`; it tries again either way.
    ///
    /// The default sleeps `pause` (polling with backoff). [`MemoryCache`](crate::MemoryCache)
    /// and the Redis stores wake their waiters the moment a key is released.
    fn wait_for_release(&self, key: &str, pause: Duration) {
        let _ = key;
        std::thread::sleep(pause);
    }

    /// Async twin of [`wait_for_release`](LockStore::wait_for_release); the default sleeps
    /// with tokio's timer.
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(tokio::time::sleep(pause))
    }

    /// The shortest TTL this store keeps as asked. A shorter TTL is kept this long (a store
    /// rounds TTLs **up** to what it can keep, never down), and a key may be freed up to about
    /// this long after its TTL ran out.
    ///
    /// The default, 1 ms, is for the stores that keep millisecond TTLs and free a key when its
    /// TTL runs out. A store whose TTLs count whole seconds or have a server-side floor says so
    /// (etcd: its minimum lease TTL, 2 s by default). A [`Guard`](crate::Guard) counts the TTL
    /// it asked for, so it never believes it holds a lock the store let go; the conformance
    /// suites use this for their short TTLs.
    fn min_ttl(&self) -> Duration {
        Duration::from_millis(1)
    }

    /// Holder lookup, listing and force-release, if this store can do them. The default:
    /// none.
    fn admin(&self) -> Option<&dyn LockAdmin> {
        None
    }

    /// Hierarchical locks ([`crate::tree`]), if this store has them. The default: none.
    fn trees(&self) -> Option<&dyn TreeStore> {
        None
    }
}

/// The error of a store without admin operations.
pub(crate) fn no_admin() -> crate::error::BoxError {
    "this store cannot look up, list or force-release its locks (it has no LockAdmin)".into()
}
