//! [`TreeTarget`]: a path in a lock space of a store's [`TreeStore`], as the one
//! [`Target`] the lease, the guards and the renewer look after.

use std::time::Duration;

use super::path::TreeScope;
use super::store::{unsupported, TreeStore};
use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::store::LockStore;
use crate::target::{Kind, Target};

/// A store, a lock space, a path and a scope: what every operation on one tree lock needs.
#[derive(Clone)]
pub(crate) struct TreeTarget<S> {
    pub(crate) store: S,
    /// The lock space followed by the path, as errors and logs name it.
    pub(crate) key: String,
    /// Where the path starts in `key`.
    pub(crate) space_len: usize,
    pub(crate) scope: TreeScope,
}

impl<S: LockStore> TreeTarget<S> {
    pub(crate) fn space(&self) -> &str {
        &self.key[..self.space_len]
    }

    pub(crate) fn path(&self) -> &str {
        &self.key[self.space_len..]
    }

    fn trees(&self) -> CacheResult<&dyn TreeStore> {
        self.store.trees().ok_or_else(unsupported)
    }
}

fn failed<'a, T: Send + 'a>(error: crate::error::BoxError) -> BoxFuture<'a, CacheResult<T>> {
    Box::pin(std::future::ready(Err(error)))
}

impl<S: LockStore + Clone + 'static> Target for TreeTarget<S> {
    const KIND: Kind = Kind::Tree;

    fn key(&self) -> &str {
        &self.key
    }

    fn claim(&self, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.trees()?
            .claim(self.space(), self.path(), self.scope, claim)
    }

    fn claim_async<'a>(
        &'a self,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        match self.trees() {
            Ok(trees) => trees.claim_async(self.space(), self.path(), self.scope, claim),
            Err(error) => failed(error),
        }
    }

    fn release(&self, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.trees()?
            .release(self.space(), self.path(), token, handle)
    }

    fn release_async<'a>(
        &'a self,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        match self.trees() {
            Ok(trees) => trees.release_async(self.space(), self.path(), token, handle),
            Err(error) => failed(error),
        }
    }

    fn extend(&self, token: &str, ttl: Duration, handle: Option<&Handle>) -> CacheResult<bool> {
        self.trees()?
            .extend(self.space(), self.path(), token, ttl, handle)
    }

    fn extend_async<'a>(
        &'a self,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        match self.trees() {
            Ok(trees) => trees.extend_async(self.space(), self.path(), token, ttl, handle),
            Err(error) => failed(error),
        }
    }

    fn wait(&self, pause: Duration) {
        match self.trees() {
            Ok(trees) => trees.wait_for_release(self.space(), self.path(), self.scope, pause),
            Err(_) => std::thread::sleep(pause),
        }
    }

    fn wait_async(&self, pause: Duration) -> BoxFuture<'_, ()> {
        match self.trees() {
            Ok(trees) => trees.wait_for_release_async(self.space(), self.path(), self.scope, pause),
            Err(_) => Box::pin(tokio::time::sleep(pause)),
        }
    }
}
