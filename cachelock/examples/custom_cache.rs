//! Plug in a cache you already have: implement get / set / delete, wrap it in a
//! `CacheStore`, and run the conformance suite on it.
//!
//! ```text
//! cargo run --example custom_cache
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cachelock::{testing, Cache, CacheResult, CacheStore, Lock};

/// Stands for the cache client your application already uses.
#[derive(Default)]
struct AppCache {
    entries: Mutex<HashMap<String, String>>,
}

impl Cache for AppCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let entries = self.entries.lock().map_err(|_| "cache poisoned")?;
        Ok(entries.get(key).cloned())
    }

    fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        let mut entries = self.entries.lock().map_err(|_| "cache poisoned")?;
        entries.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> CacheResult<()> {
        let mut entries = self.entries.lock().map_err(|_| "cache poisoned")?;
        entries.remove(key);
        Ok(())
    }
}

fn main() -> Result<(), cachelock::BoxError> {
    // `CacheStore` builds claim / release / extend from get / set / delete: atomic within
    // this process, not across processes (see its docs). Clones share the cache.
    let store = CacheStore::new(AppCache::default());

    let guard = Lock::new("import").cache(store.clone()).try_acquire()?;
    println!("locked `{}` (fence {})", guard.key(), guard.fence());
    let refused = Lock::new("import").cache(store.clone()).try_acquire();
    println!("second attempt: {}", refused.unwrap_err());
    guard.release()?;
    // The store dereferences to your cache, which is still yours to use.
    println!(
        "released; the stored value is gone: {:?}",
        store.get("cachelock:import")?
    );

    println!("running the conformance suite on AppCache (takes a few seconds)...");
    testing::cache_conformance(AppCache::default())?;
    println!("AppCache passes every conformance check");
    Ok(())
}
