//! A store with atomic operations of its own: implement `LockStore`, and run the conformance
//! suite on it.
//!
//! ```text
//! cargo run --example custom_store
//! ```
//!
//! The store here keeps its locks in one `Mutex<HashMap>` (so every operation is atomic),
//! standing for a store that has a compare-and-set: a database row updated with
//! `... WHERE token = $1`, an etcd transaction. Its async twins answer inline because it
//! never waits on I/O; a network store would use its async client there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachelock::{testing, BoxFuture, CacheResult, Claim, Claimed, Handle, Lock, LockStore};

/// One lock: the owner's token, when it runs out.
struct Held {
    token: String,
    until: Instant,
}

/// Locks in a map, under one mutex; fences from one counter.
#[derive(Clone, Default)]
struct MapStore {
    state: Arc<Mutex<(HashMap<String, Held>, u64)>>,
}

impl MapStore {
    /// Runs `f` on the live lock of `key` held by `token`, if there is one.
    fn owned(&self, key: &str, token: &str, f: impl FnOnce(&mut HashMap<String, Held>)) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (locks, _) = &mut *state;
        let owned = locks
            .get(key)
            .is_some_and(|held| held.token == token && held.until > Instant::now());
        if owned {
            f(locks);
        }
        owned
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl LockStore for MapStore {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let mut state = self.state.lock().map_err(|_| "store poisoned")?;
        let (locks, fence) = &mut *state;
        let now = Instant::now();
        if locks.get(key).is_some_and(|held| held.until > now) {
            return Ok(None); // held by someone else
        }
        *fence += 1;
        let held = Held {
            token: claim.token().to_owned(),
            until: now + claim.ttl(),
        };
        locks.insert(key.to_owned(), held);
        Ok(Some(Claimed::new(if claim.fencing() { *fence } else { 0 })))
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        ready(self.claim(key, claim))
    }

    fn release(&self, key: &str, token: &str, _: Option<&Handle>) -> CacheResult<bool> {
        Ok(self.owned(key, token, |locks| {
            locks.remove(key);
        }))
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        ready(self.release(key, token, handle))
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self.owned(key, token, |locks| {
            if let Some(held) = locks.get_mut(key) {
                held.until = Instant::now() + ttl;
            }
        }))
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        ready(self.extend(key, token, ttl, handle))
    }
}

fn main() -> Result<(), cachelock::BoxError> {
    let store = MapStore::default();

    let guard = Lock::new("import").cache(store.clone()).try_acquire()?;
    println!("locked `{}` with fence {}", guard.key(), guard.fence());
    let refused = Lock::new("import").cache(store.clone()).try_acquire();
    println!("second attempt: {}", refused.unwrap_err());
    guard.release()?;

    println!("running the conformance suite on MapStore (takes a few seconds)...");
    testing::conformance(store)?;
    println!("MapStore passes every conformance check");
    Ok(())
}
