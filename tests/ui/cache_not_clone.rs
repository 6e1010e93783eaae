use std::time::Duration;

use cachelock::{once, BoxFuture, CacheResult, Claim, Claimed, Handle, LockStore, MemoryCache};

// A store, but not a cheap-to-clone handle: `cache = ..` needs `Clone` (wrap it in an `Arc`).
struct Unshared(MemoryCache);

impl LockStore for Unshared {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.0.claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.0.claim_async(key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.0.release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.0.release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        self.0.extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.0.extend_async(key, token, ttl, handle)
    }
}

#[once(key = "job", cache = cache)]
fn job(cache: &Unshared) {
    let _ = cache;
}

fn main() {}
