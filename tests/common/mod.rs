//! Helpers shared by the `#[once]` behaviour tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::{Cache, CacheResult, Lock, MemoryCache};

/// Whether `key` (as given to `Lock::new`, prefix not included) is held in the default cache.
pub fn is_held(key: &str) -> bool {
    match Lock::new(key).try_acquire() {
        Ok(_guard) => false,
        Err(error) if error.is_locked() => true,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

/// Whether `key` is held in `cache`.
pub fn is_held_in<C: Cache + Clone + 'static>(cache: &C, key: &str) -> bool {
    match Lock::new(key).cache(cache.clone()).try_acquire() {
        Ok(_guard) => false,
        Err(error) if error.is_locked() => true,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

/// A memory cache that records the key of every claim (clones share the store and record).
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

impl Cache for RecordingCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.inner.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.inner.delete(key)
    }
    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        self.claimed.lock().unwrap().push(key.to_owned());
        self.inner.claim(key, token, ttl)
    }
    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        self.inner.release(key, token)
    }
    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        self.inner.extend(key, token, ttl)
    }
}

/// A cache whose every operation fails, like a Redis server that is down.
#[derive(Clone, Copy)]
pub struct DownCache;

impl Cache for DownCache {
    fn get(&self, _key: &str) -> CacheResult<Option<String>> {
        Err("connection refused".into())
    }
    fn set(&self, _key: &str, _value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        Err("connection refused".into())
    }
    fn delete(&self, _key: &str) -> CacheResult<()> {
        Err("connection refused".into())
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
