//! [`TreeTarget`]: a tree lock seen as a one-key cache, so that the ordinary lease, guards
//! and shared renewer look after tree locks unchanged.
//!
//! The lease of a tree lock stores the key `space + path`; this adapter turns the lease's
//! `claim`/`release`/`extend` on that key into the cache's `tree_*` operations on `path`
//! in `space`.

use std::sync::Arc;
use std::time::Duration;

use super::path::TreeScope;
use crate::cache::{BoxFuture, Cache, CacheResult};

/// A cache, a lock space and a scope: what every operation on one tree lock needs.
#[derive(Clone)]
pub(crate) struct TreeTarget<C> {
    pub(crate) cache: C,
    pub(crate) space: Arc<str>,
    pub(crate) scope: TreeScope,
}

impl<C> TreeTarget<C> {
    /// The path of a lease key (`space + path`).
    pub(crate) fn path<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(&*self.space).unwrap_or(key)
    }
}

impl<C: Cache> Cache for TreeTarget<C> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.cache.get(key)
    }

    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.cache.set(key, value, ttl)
    }

    fn delete(&self, key: &str) -> CacheResult<()> {
        self.cache.delete(key)
    }

    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        self.cache
            .tree_claim(&self.space, self.path(key), token, ttl, self.scope)
    }

    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        self.cache.tree_release(&self.space, self.path(key), token)
    }

    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        self.cache
            .tree_extend(&self.space, self.path(key), token, ttl)
    }

    fn release_detached(&self, key: &str, token: &str, keep_for: Option<Duration>) {
        match keep_for {
            // `hold_at_least`: the path stays held for the rest of the window.
            Some(keep) => self
                .cache
                .tree_extend_detached(&self.space, self.path(key), token, keep),
            None => self
                .cache
                .tree_release_detached(&self.space, self.path(key), token),
        }
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
        self.cache
            .tree_claim_async(&self.space, self.path(key), token, ttl, self.scope)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.cache
            .tree_release_async(&self.space, self.path(key), token)
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.cache
            .tree_extend_async(&self.space, self.path(key), token, ttl)
    }
}
