//! Helpers shared by the `#[once]` behaviour tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::tree::TreeStore;
use cachelock::{
    BoxFuture, CacheResult, Claim, Claimed, Handle, Lock, LockAdmin, LockStore, MemoryCache,
};

/// Whether `key` (as given to `Lock::new`, prefix not included) is held in the default cache.
pub fn is_held(key: &str) -> bool {
    match Lock::new(key).try_acquire() {
        Ok(_guard) => false,
        Err(error) if error.is_locked() => true,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

/// Whether `key` is held in `cache`.
pub fn is_held_in<C: LockStore + Clone + 'static>(cache: &C, key: &str) -> bool {
    match Lock::new(key).cache(cache.clone()).try_acquire() {
        Ok(_guard) => false,
        Err(error) if error.is_locked() => true,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

/// A memory store that records the key of every claim (clones share the store and record).
#[derive(Default, Clone)]
pub struct RecordingCache {
    inner: MemoryCache,
    claimed: Arc<Mutex<Vec<String>>>,
}

impl RecordingCache {
    pub fn new() -> Self {
        RecordingCache {
            inner: MemoryCache::new(),
            claimed: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// How many claims were made so far.
    pub fn count(&self) -> usize {
        self.claimed.lock().unwrap().len()
    }

    /// The keys claimed so far (prefix included), and forget them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.claimed.lock().unwrap())
    }
}

impl LockStore for RecordingCache {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.claimed.lock().unwrap().push(key.to_owned());
        self.inner.claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.claimed.lock().unwrap().push(key.to_owned());
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
        self.inner.extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.extend_async(key, token, ttl, handle)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        self.inner.admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        self.inner.trees()
    }
}

/// A store whose every operation fails, like a Redis server that is down.
#[derive(Clone, Copy)]
pub struct DownCache;

fn down<'a, T: Send + 'a>() -> BoxFuture<'a, CacheResult<T>> {
    Box::pin(std::future::ready(Err("connection refused".into())))
}

impl LockStore for DownCache {
    fn claim(&self, _key: &str, _claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        Err("connection refused".into())
    }
    fn claim_async<'a>(
        &'a self,
        _key: &'a str,
        _claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        down()
    }
    fn release(&self, _key: &str, _token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        Err("connection refused".into())
    }
    fn release_async<'a>(
        &'a self,
        _key: &'a str,
        _token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        down()
    }
    fn extend(
        &self,
        _key: &str,
        _token: &str,
        _ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Err("connection refused".into())
    }
    fn extend_async<'a>(
        &'a self,
        _key: &'a str,
        _token: &'a str,
        _ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        down()
    }
}

/// Error-level events, as `message field=value ...` lines.
#[derive(Clone, Default)]
pub struct ErrorEvents(Arc<Mutex<Vec<String>>>);

impl ErrorEvents {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Runs `f` with a subscriber that records error-level events into `self`.
    pub fn capture<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::subscriber::with_default(Capture(self.clone()), f)
    }
}

struct Capture(ErrorEvents);

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _metadata: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            let mut line = Line(String::new());
            event.record(&mut line);
            (self.0).0.lock().unwrap().push(line.0);
        }
    }
    fn enter(&self, _span: &tracing::span::Id) {}
    fn exit(&self, _span: &tracing::span::Id) {}
}
