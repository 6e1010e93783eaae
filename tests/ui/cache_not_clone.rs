use std::time::Duration;

use cachelock::{once, Cache, CacheResult, MemoryCache};

// A cache, but not a cheap-to-clone handle: `cache = ..` needs `Clone` (wrap it in an `Arc`).
struct Unshared(MemoryCache);

impl Cache for Unshared {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.0.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.0.delete(key)
    }
}

#[once(key = "job", cache = cache)]
fn job(cache: &Unshared) {
    let _ = cache;
}

fn main() {}
