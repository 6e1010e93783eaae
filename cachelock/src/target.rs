//! [`Target`]: the one thing a lease holds (a key in a store, or a path in a store's tree
//! locks), so that acquisition, the lease, the renewer and the guards are written once for
//! [`Lock`](crate::Lock) and [`TreeLock`](crate::tree::TreeLock).

use std::time::Duration;

use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::store::LockStore;

/// What kind of lock a target is, for the events it logs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// A plain key ([`KeyTarget`]).
    Key,
    /// A path of a lock space (`tree::TreeTarget`).
    Tree,
}

/// A lockable thing: claim, owner-checked release and extend, and a wait for a release,
/// sync and async. Cheap to clone (a store handle and a key).
pub(crate) trait Target: Clone + Send + Sync + 'static {
    /// Plain key or tree path.
    const KIND: Kind;

    /// The key as errors and logs name it (prefix or lock space included).
    fn key(&self) -> &str;

    fn claim(&self, claim: &Claim<'_>) -> CacheResult<Option<Claimed>>;

    fn claim_async<'a>(
        &'a self,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>>;

    fn release(&self, token: &str, handle: Option<&Handle>) -> CacheResult<bool>;

    fn release_async<'a>(
        &'a self,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>>;

    fn extend(&self, token: &str, ttl: Duration, handle: Option<&Handle>) -> CacheResult<bool>;

    fn extend_async<'a>(
        &'a self,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>>;

    /// Waits until the target may have been released, or `pause` has passed.
    fn wait(&self, pause: Duration);

    /// Async twin of [`Target::wait`].
    fn wait_async(&self, pause: Duration) -> BoxFuture<'_, ()>;
}

/// A key in a store: what a [`Lock`](crate::Lock) holds.
#[derive(Clone)]
pub(crate) struct KeyTarget<S> {
    pub(crate) store: S,
    /// The stored key (prefix included).
    pub(crate) key: String,
}

impl<S: LockStore + Clone + 'static> Target for KeyTarget<S> {
    const KIND: Kind = Kind::Key;

    fn key(&self) -> &str {
        &self.key
    }

    fn claim(&self, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.store.claim(&self.key, claim)
    }

    fn claim_async<'a>(
        &'a self,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.store.claim_async(&self.key, claim)
    }

    fn release(&self, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.store.release(&self.key, token, handle)
    }

    fn release_async<'a>(
        &'a self,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.store.release_async(&self.key, token, handle)
    }

    fn extend(&self, token: &str, ttl: Duration, handle: Option<&Handle>) -> CacheResult<bool> {
        self.store.extend(&self.key, token, ttl, handle)
    }

    fn extend_async<'a>(
        &'a self,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.store.extend_async(&self.key, token, ttl, handle)
    }

    fn wait(&self, pause: Duration) {
        self.store.wait_for_release(&self.key, pause);
    }

    fn wait_async(&self, pause: Duration) -> BoxFuture<'_, ()> {
        self.store.wait_for_release_async(&self.key, pause)
    }
}
