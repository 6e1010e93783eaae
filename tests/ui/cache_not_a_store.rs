use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::{once, Cache, CacheResult};

// A get/set/delete cache is not a lock store by itself: it goes in a `CacheStore`
// (`cache = CacheStore::new(..)`).
#[derive(Clone, Default)]
struct MyCache(Arc<Mutex<HashMap<String, String>>>);

impl Cache for MyCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

#[once(key = "job", cache = cache)]
fn job(cache: &MyCache) {
    let _ = cache;
}

fn main() {
    job(&MyCache::default());
}
