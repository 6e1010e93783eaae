//! Plug in a cache you already have: implement get / set / delete, and run the conformance
//! suite on it.
//!
//! ```text
//! cargo run --example custom_cache
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::{testing, Cache, CacheResult, Lock};

/// Stands for the cache client your application already uses.
#[derive(Clone, Default)]
struct AppCache {
    entries: Arc<Mutex<HashMap<String, String>>>,
}

impl Cache for AppCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        Ok(self
            .entries
            .lock()
            .map_err(|_| "cache poisoned")?
            .get(key)
            .cloned())
    }

    fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        let mut entries = self.entries.lock().map_err(|_| "cache poisoned")?;
        entries.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> CacheResult<()> {
        self.entries
            .lock()
            .map_err(|_| "cache poisoned")?
            .remove(key);
        Ok(())
    }

    // `claim`, `release` and `extend` come from the trait's defaults: atomic within this
    // process, not across processes. A store with its own compare-and-set (Redis, a
    // database row) should override them; see the `Cache` docs.
}

fn main() -> Result<(), cachelock::BoxError> {
    let cache = AppCache::default();

    let guard = Lock::new("import").cache(cache.clone()).try_acquire()?;
    println!("locked `{}`", guard.key());
    let refused = Lock::new("import").cache(cache.clone()).try_acquire();
    println!("second attempt: {}", refused.unwrap_err());
    guard.release()?;
    println!(
        "released; the stored value is gone: {:?}",
        cache.get("cachelock:import")?
    );

    println!("running the conformance suite on AppCache (takes a few seconds)...");
    testing::conformance(cache.clone())?;
    println!("AppCache passes every conformance check");
    Ok(())
}
