//! The forwarding impls: a reference, an `Arc` or a `Box` of a store is that store. Every
//! method is forwarded, the provided ones too, so a wrapper never falls back to a default.

use std::sync::Arc;
use std::time::Duration;

use super::{LockAdmin, LockStore};
use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::tree::TreeStore;

impl<T: LockStore + ?Sized> LockStore for &T {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        (**self).claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        (**self).claim_async(key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        (**self).release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        (**self).release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        (**self).extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        (**self).extend_async(key, token, ttl, handle)
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        (**self).wait_for_release(key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        (**self).wait_for_release_async(key, pause)
    }
    fn min_ttl(&self) -> Duration {
        (**self).min_ttl()
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        (**self).admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        (**self).trees()
    }
}

impl<T: LockStore + ?Sized> LockStore for Arc<T> {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        (**self).claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        (**self).claim_async(key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        (**self).release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        (**self).release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        (**self).extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        (**self).extend_async(key, token, ttl, handle)
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        (**self).wait_for_release(key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        (**self).wait_for_release_async(key, pause)
    }
    fn min_ttl(&self) -> Duration {
        (**self).min_ttl()
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        (**self).admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        (**self).trees()
    }
}

impl<T: LockStore + ?Sized> LockStore for Box<T> {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        (**self).claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        (**self).claim_async(key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        (**self).release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        (**self).release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        (**self).extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        (**self).extend_async(key, token, ttl, handle)
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        (**self).wait_for_release(key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        (**self).wait_for_release_async(key, pause)
    }
    fn min_ttl(&self) -> Duration {
        (**self).min_ttl()
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        (**self).admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        (**self).trees()
    }
}
