//! Two extends of one guard in flight at once, run by the store in one order and answered in
//! the other (on a connection pool each takes its own connection): the guard must not
//! believe the lock held past the TTL the store kept.
//!
//! The store here is `MemoryCache` (a real store) behind a wrapper that only orders the two
//! extends: the long one runs first and answers last, the short one runs second and answers
//! first. The store keeps the short TTL.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::{BoxFuture, CacheResult, Claim, Claimed, Handle, Lock, LockStore, MemoryCache};

const TTL: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(300);

/// `MemoryCache`, with the extend for [`LONG`] answering only once the one for [`SHORT`] has,
/// and the one for [`SHORT`] running only once the one for [`LONG`] has run.
#[derive(Clone)]
struct Crossing {
    inner: MemoryCache,
    long_ran: Signal,
    short_answered: Signal,
}

/// A one-way signal between two threads.
#[derive(Clone)]
struct Signal(Sender<()>, Arc<Mutex<Receiver<()>>>);

impl Signal {
    fn new() -> Self {
        let (sender, receiver) = channel();
        Signal(sender, Arc::new(Mutex::new(receiver)))
    }

    fn send(&self) {
        self.0.send(()).unwrap();
    }

    fn wait(&self) {
        self.1.lock().unwrap().recv().unwrap();
    }
}

impl Crossing {
    fn new() -> Self {
        Crossing {
            inner: MemoryCache::new(),
            long_ran: Signal::new(),
            short_answered: Signal::new(),
        }
    }
}

impl LockStore for Crossing {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.inner.claim(key, claim)
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.inner.claim_async(key, claim)
    }

    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.inner.release(key, token, handle)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.release_async(key, token, handle)
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        if ttl == SHORT {
            self.long_ran.wait();
        }
        let answer = self.inner.extend(key, token, ttl, handle);
        if ttl == LONG {
            self.long_ran.send();
            self.short_answered.wait();
        }
        answer
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move { self.extend(key, token, ttl, handle) })
    }
}

#[test]
fn crossing_extends_leave_the_guard_no_later_than_the_store() {
    let store = Crossing::new();
    let lock = Lock::new("crossing")
        .cache(store.clone())
        .ttl(TTL)
        .renew(false);
    let guard = lock.try_acquire().expect("free");
    std::thread::scope(|s| {
        let long = s.spawn(|| guard.extend_for(LONG));
        let short = s.spawn(|| guard.extend_for(SHORT));
        short.join().unwrap().expect("the short extend");
        store.short_answered.send();
        long.join().unwrap().expect("the long extend");
    });
    std::thread::sleep(SHORT + Duration::from_millis(200));
    // The store kept the short TTL (it ran last): the key is free...
    let other = lock
        .try_acquire()
        .expect("the store let the key go after the short TTL");
    // ...so the guard, whose long extend answered last, must know it lost the lock.
    assert!(
        guard.is_lost(),
        "the store let another holder in while the first guard still believed it held the lock"
    );
    drop(other);
}
