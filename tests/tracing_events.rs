//! The lock's `tracing` events: attempt, acquired, contended, renewed, lost, released; each
//! names the key, the ones after acquiring say how long the lock was held, and none carries
//! the owner token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::{Claim, Lock, LockStore, MemoryCache};
use cachelock_testkit::eventually;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One recorded event: its message and every field as text.
#[derive(Debug, Clone)]
struct Recorded {
    message: String,
    fields: Vec<(String, String)>,
}

impl Recorded {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Recorder(Arc<Mutex<Vec<Recorded>>>);

struct Fields(Recorded);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.push((field.name().to_owned(), text));
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Recorded {
            message: String::new(),
            fields: Vec::new(),
        });
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The owner token of the lock held under `key` in `cache`.
fn held_token(cache: &MemoryCache, key: &str) -> String {
    let (value, _) = cache
        .admin()
        .expect("memory has admin")
        .holder(key)
        .unwrap()
        .expect("held");
    value.split('|').next().expect("a token").to_owned()
}

fn seen(events: &Mutex<Vec<Recorded>>, message: &str) -> bool {
    events.lock().unwrap().iter().any(|e| e.message == message)
}

/// The only test of this binary: it installs the global subscriber (the renewer thread logs
/// through it too).
#[test]
fn every_lock_event_names_the_key_and_never_the_token() {
    let events = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::set_global_default(Recorder(events.clone())).expect("first subscriber");
    let cache = MemoryCache::new();
    let mut tokens = Vec::new();
    let lock = Lock::new("traced")
        .cache(cache.clone())
        .ttl(Duration::from_millis(300));
    let guard = lock.try_acquire().expect("free");
    tokens.push(held_token(&cache, "cachelock:traced"));
    assert!(lock.try_acquire().unwrap_err().is_locked());
    eventually("a renewal", || seen(&events, "lock renewed"));
    guard.release().expect("released");

    let lost = lock.try_acquire().expect("free");
    tokens.push(held_token(&cache, "cachelock:traced"));
    // Another owner takes the key: a force-release, then its own claim.
    cache
        .admin()
        .expect("memory has admin")
        .force_release("cachelock:traced")
        .unwrap();
    let intruder = Claim::new(Duration::from_secs(60));
    assert!(cache
        .claim("cachelock:traced", &intruder)
        .unwrap()
        .is_some());
    tokens.push(intruder.token().to_owned());
    eventually("the loss", || lost.is_lost() && seen(&events, "lock lost"));
    assert!(lost.release().unwrap_err().is_lost());

    let events = events.lock().unwrap().clone();
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    for expected in [
        "lock attempt",
        "lock acquired",
        "lock contended",
        "lock released",
        "lock was lost before release",
        "lock renewed",
        "lock lost",
    ] {
        assert!(
            messages.contains(&expected),
            "no `{expected}` event in {messages:?}"
        );
    }
    for event in &events {
        assert_eq!(event.field("key"), Some("cachelock:traced"), "{event:?}");
        for token in &tokens {
            let shown = format!("{event:?}");
            assert!(!shown.contains(token.as_str()), "token in {event:?}");
        }
        if event.message.contains("released")
            || event.message.contains("lost")
            || event.message.contains("renewed")
        {
            assert!(event.field("held_for").is_some(), "{event:?}");
        }
        if event.message == "lock acquired" {
            assert!(event.field("fence").is_some(), "{event:?}");
        }
    }
}
