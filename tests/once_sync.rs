//! `#[once]` on sync functions: every shape, both return policies, early returns, panics,
//! recursion and the `cache`/`wait`/`ttl` options.
//!
//! Each test uses its own keys: tests run in parallel on one process-wide default cache.

mod common;

use std::cell::Cell;
use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use cachelock::{once, Error, MemoryCache};
use common::{is_held, is_held_in, RecordingCache};

// ---------------------------------------------------------------------------------------
// Free functions and the three return policies of a skipped call.

#[once(key = "sync-unit-<tag>")]
fn unit_job(tag: &str, probe: &dyn Fn()) {
    probe();
}

#[test]
fn unit_function_runs_and_is_skipped_while_held() {
    let ran = Cell::new(0);
    unit_job("a", &|| {
        assert!(is_held("sync-unit-a"), "the body runs under the lock");
        ran.set(ran.get() + 1);
    });
    assert_eq!(ran.get(), 1);
    assert!(!is_held("sync-unit-a"), "released after the body");

    let _held = cachelock::Lock::new("sync-unit-a").try_acquire().unwrap();
    unit_job("a", &|| ran.set(ran.get() + 1));
    assert_eq!(ran.get(), 1, "a held key skips the body");
    unit_job("b", &|| ran.set(ran.get() + 1));
    assert_eq!(ran.get(), 2, "another key is independent");
}

#[once(key = "sync-option-<n>")]
fn option_job(n: u32) -> Option<u32> {
    Some(n * 2)
}

#[test]
fn option_function_returns_none_when_skipped() {
    assert_eq!(option_job(1), Some(2));
    let _held = cachelock::Lock::new("sync-option-1").try_acquire().unwrap();
    assert_eq!(option_job(1), None);
    assert_eq!(option_job(2), Some(4));
}

#[derive(Debug, PartialEq)]
enum JobError {
    Cache(String),
    Parse,
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Cache(error.to_string())
    }
}

#[once(key = "sync-result-unit-<n>")]
fn result_unit_job(n: u32) -> Result<(), JobError> {
    if n == 0 {
        return Err(JobError::Parse);
    }
    Ok(())
}

#[once(key = "sync-result-option-<input>")]
fn result_option_job(input: &str) -> Result<Option<u32>, JobError> {
    let n: u32 = input.parse().map_err(|_| JobError::Parse)?;
    Ok(Some(n))
}

#[test]
fn result_function_returns_ok_of_skipped_value_when_skipped() {
    assert_eq!(result_unit_job(1), Ok(()));
    assert_eq!(result_unit_job(0), Err(JobError::Parse));
    assert_eq!(result_option_job("7"), Ok(Some(7)));
    assert_eq!(
        result_option_job("x"),
        Err(JobError::Parse),
        "`?` still works"
    );

    let _a = cachelock::Lock::new("sync-result-unit-1")
        .try_acquire()
        .unwrap();
    let _b = cachelock::Lock::new("sync-result-option-7")
        .try_acquire()
        .unwrap();
    assert_eq!(result_unit_job(1), Ok(()));
    assert_eq!(result_option_job("7"), Ok(None));
}

#[once(key = "sync-raise-<n>", raise_if_locked = true)]
fn raising_job(n: u32) -> Result<u32, Error> {
    Ok(n + 1)
}

#[once(key = "sync-raise-own-<n>", raise_if_locked = true)]
fn raising_own_error(n: u32) -> Result<u32, JobError> {
    Ok(n)
}

#[test]
fn raise_if_locked_returns_locked_error() {
    assert_eq!(raising_job(1).unwrap(), 2);
    let _held = cachelock::Lock::new("sync-raise-1").try_acquire().unwrap();
    let error = raising_job(1).unwrap_err();
    assert!(error.is_locked());
    assert_eq!(error.key(), Some("cachelock:sync-raise-1"));

    let _held = cachelock::Lock::new("sync-raise-own-3")
        .try_acquire()
        .unwrap();
    assert_eq!(
        raising_own_error(3),
        Err(JobError::Cache(
            "lock `cachelock:sync-raise-own-3` is held by another owner".into()
        ))
    );
}

// ---------------------------------------------------------------------------------------
// Early returns, `?` and panics release the lock.

#[once(key = "sync-early-<n>")]
fn early(n: u32) -> Result<Option<u32>, JobError> {
    assert!(is_held(&format!("sync-early-{n}")));
    if n == 1 {
        return Ok(Some(1));
    }
    let parsed: u32 = "not a number".parse().map_err(|_| JobError::Parse)?;
    Ok(Some(parsed))
}

#[test]
fn early_return_and_question_mark_release_the_lock() {
    assert_eq!(early(1), Ok(Some(1)));
    assert!(!is_held("sync-early-1"));
    assert_eq!(early(2), Err(JobError::Parse));
    assert!(!is_held("sync-early-2"));
}

#[once(key = "sync-panic")]
fn panicking() {
    assert!(is_held("sync-panic"));
    panic!("boom");
}

#[test]
fn panic_propagates_and_releases_the_lock() {
    let outcome = std::panic::catch_unwind(panicking);
    let payload = outcome.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert!(!is_held("sync-panic"));
}

// ---------------------------------------------------------------------------------------
// Recursion: the inner call sees the key held.

static RECURSION_RUNS: AtomicUsize = AtomicUsize::new(0);

#[once(key = "sync-recursive")]
fn recursive(depth: u32) -> Option<Option<u32>> {
    RECURSION_RUNS.fetch_add(1, Ordering::SeqCst);
    if depth == 0 {
        return Some(None);
    }
    Some(recursive(depth - 1).map(|_| depth))
}

#[once(key = "sync-recursive-raise", raise_if_locked = true, wait = "20ms")]
fn recursive_raise(depth: u32) -> Result<Option<Error>, Error> {
    if depth == 0 {
        return Ok(None);
    }
    Ok(recursive_raise(depth - 1).err())
}

#[test]
fn recursive_call_sees_the_key_held_and_never_deadlocks() {
    // The inner call is skipped (returns None), so the outer returns Some(None).
    assert_eq!(recursive(3), Some(None));
    assert_eq!(
        RECURSION_RUNS.load(Ordering::SeqCst),
        1,
        "only the outer body ran"
    );
    // With `wait`, the inner call waits, gives up, and reports the key held.
    let inner = recursive_raise(1)
        .unwrap()
        .expect("the inner call is refused");
    assert!(inner.is_locked());
    assert!(!is_held("sync-recursive"));
    assert!(!is_held("sync-recursive-raise"));
}

// ---------------------------------------------------------------------------------------
// Function shapes.

#[once(key = "sync-generic-<item>")]
fn generic<T: Display + Clone>(item: &T) -> Option<T> {
    Some(item.clone())
}

#[once(key = "sync-where-<item>")]
fn generic_where<T>(item: T) -> Option<T>
where
    T: Display,
{
    Some(item)
}

#[once(key = "sync-lifetimes-<a>-<b>")]
fn longest<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    Some(if a.len() >= b.len() { a } else { b })
}

#[once(key = "sync-elided-<text>")]
fn first_word(text: &str) -> Option<&str> {
    text.split(' ').next()
}

#[once(key = "sync-impl-<shown>")]
fn impl_trait(shown: impl Display, extra: impl Into<String>) -> Option<String> {
    Some(format!("{shown}{}", extra.into()))
}

#[test]
fn generic_lifetime_and_impl_trait_functions() {
    assert_eq!(generic(&5u8), Some(5));
    assert_eq!(generic(&"x"), Some("x"));
    assert_eq!(generic_where(String::from("w")), Some("w".to_owned()));
    assert_eq!(longest("ab", "c"), Some("ab"));
    assert_eq!(first_word("hello world"), Some("hello"));
    assert_eq!(impl_trait(1.5, "!"), Some("1.5!".to_owned()));

    let _held = cachelock::Lock::new("sync-generic-5")
        .try_acquire()
        .unwrap();
    assert_eq!(generic(&5u8), None);
    let _held = cachelock::Lock::new("sync-lifetimes-ab-c")
        .try_acquire()
        .unwrap();
    assert_eq!(longest("ab", "c"), None);
    let _held = cachelock::Lock::new("sync-impl-1.5").try_acquire().unwrap();
    assert_eq!(impl_trait(1.5, "!"), None);
}

struct User {
    id: u32,
    team: Team,
}

struct Team {
    name: &'static str,
}

#[once(key = "sync-fields-<user.id>-<user.team.name>-<pair.1>")]
fn field_paths(user: &User, pair: (u8, &str)) -> Option<String> {
    Some(format!("{}:{}", user.team.name, pair.1))
}

#[test]
fn field_paths_format_nested_fields() {
    let user = User {
        id: 7,
        team: Team { name: "ops" },
    };
    assert_eq!(field_paths(&user, (1, "z")), Some("ops:z".to_owned()));
    let _held = cachelock::Lock::new("sync-fields-7-ops-z")
        .try_acquire()
        .unwrap();
    assert_eq!(field_paths(&user, (1, "z")), None);
}

struct Worker {
    id: u32,
    runs: u32,
    cache: MemoryCache,
}

impl Worker {
    #[once(key = "sync-method-ref-<self.id>", cache = self.cache)]
    fn by_ref(&self) -> Option<u32> {
        assert!(is_held_in(
            &self.cache,
            &format!("sync-method-ref-{}", self.id)
        ));
        Some(self.runs)
    }

    #[once(key = "sync-method-mut-<self.id>")]
    fn by_mut(&mut self) -> Option<u32> {
        self.runs += 1;
        Some(self.runs)
    }

    #[once(key = "sync-method-owned-<self.id>")]
    fn by_value(self) -> Option<u32> {
        Some(self.runs)
    }

    #[once(key = "sync-method-assoc-<id>")]
    fn associated(id: u32) -> Option<Self> {
        Some(Worker {
            id,
            runs: 0,
            cache: MemoryCache::new(),
        })
    }

    #[once(key = "sync-method-arg-<self.id>-<n>", raise_if_locked = true)]
    pub(crate) fn with_arg(&self, n: u32) -> Result<u32, Error> {
        Ok(self.id + n)
    }
}

#[test]
fn methods_and_associated_functions() {
    let mut worker = Worker::associated(1).unwrap();
    assert_eq!(worker.by_ref(), Some(0));
    assert_eq!(worker.by_mut(), Some(1));
    assert_eq!(worker.with_arg(2).unwrap(), 3);

    // `cache = self.cache`: the lock lives in the worker's own cache.
    {
        let _held = cachelock::Lock::new("sync-method-ref-1")
            .cache(worker.cache.clone())
            .try_acquire()
            .unwrap();
        assert_eq!(worker.by_ref(), None);
        assert!(!is_held("sync-method-ref-1"), "not in the default cache");
    }

    let _held = cachelock::Lock::new("sync-method-mut-1")
        .try_acquire()
        .unwrap();
    assert_eq!(worker.by_mut(), None);
    assert_eq!(worker.runs, 1, "the skipped body did not run");

    let _held = cachelock::Lock::new("sync-method-arg-1-2")
        .try_acquire()
        .unwrap();
    assert!(worker.with_arg(2).unwrap_err().is_locked());

    assert_eq!(worker.by_value(), Some(1));
    let _held = cachelock::Lock::new("sync-method-assoc-9")
        .try_acquire()
        .unwrap();
    assert!(Worker::associated(9).is_none());
}

// Parameters named like the macro's own locals would be in a naive expansion.
#[once(key = "sync-names-<key>-<cache>-<guard>-<lock>-<result>")]
fn names(key: u32, cache: u32, guard: u32, lock: u32, result: u32) -> Option<u32> {
    Some(key + cache + guard + lock + result)
}

#[once(key = "sync-cache-param-<key>", cache = cache)]
fn cache_param(key: &str, cache: &MemoryCache) -> Option<String> {
    Some(key.to_owned())
}

#[test]
fn parameters_named_like_internals_work() {
    assert_eq!(names(1, 2, 3, 4, 5), Some(15));
    let _held = cachelock::Lock::new("sync-names-1-2-3-4-5")
        .try_acquire()
        .unwrap();
    assert_eq!(names(1, 2, 3, 4, 5), None);

    let cache = MemoryCache::new();
    assert_eq!(cache_param("k", &cache), Some("k".to_owned()));
    let _held = cachelock::Lock::new("sync-cache-param-k")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    assert_eq!(cache_param("k", &cache), None);
}

// ---------------------------------------------------------------------------------------
// The `cache` option: a static, a function call.

static STATIC_CACHE: LazyLock<MemoryCache> = LazyLock::new(MemoryCache::new);

fn make_cache() -> RecordingCache {
    RecordingCache::new()
}

#[once(key = "sync-static-cache", cache = *STATIC_CACHE)]
fn static_cache() -> Option<()> {
    assert!(is_held_in(&*STATIC_CACHE, "sync-static-cache"));
    assert!(!is_held("sync-static-cache"));
    Some(())
}

#[once(key = "sync-call-cache-<n>", cache = make_cache())]
fn call_cache(n: u32) -> Option<u32> {
    Some(n)
}

#[test]
fn cache_option_takes_a_static_or_a_call() {
    assert_eq!(static_cache(), Some(()));
    let _held = cachelock::Lock::new("sync-static-cache")
        .cache(&*STATIC_CACHE)
        .try_acquire()
        .unwrap();
    assert_eq!(static_cache(), None);
    // A fresh cache per call: never contended.
    let _held = cachelock::Lock::new("sync-call-cache-1")
        .try_acquire()
        .unwrap();
    assert_eq!(call_cache(1), Some(1));
}

// ---------------------------------------------------------------------------------------
// `ttl` and `wait`.

#[once(key = "sync-ttl", ttl = "250ms", cache = cache)]
fn short_ttl(cache: &RecordingCache) -> Option<std::time::Duration> {
    let _ = cache;
    Some(std::time::Duration::from_millis(250))
}

const CUSTOM_TTL: std::time::Duration = std::time::Duration::from_secs(90);

#[once(key = "sync-ttl-expr", ttl = CUSTOM_TTL, wait = std::time::Duration::ZERO)]
fn expr_ttl() -> Option<()> {
    Some(())
}

#[test]
fn ttl_option_sets_the_lock_ttl() {
    #[derive(Clone)]
    struct TtlCache(
        MemoryCache,
        std::sync::Arc<std::sync::Mutex<Vec<std::time::Duration>>>,
    );
    // A memory store that records the TTL of every claim.
    impl cachelock::LockStore for TtlCache {
        fn claim(
            &self,
            key: &str,
            claim: &cachelock::Claim<'_>,
        ) -> cachelock::CacheResult<Option<cachelock::Claimed>> {
            self.1.lock().unwrap().push(claim.ttl());
            self.0.claim(key, claim)
        }
        fn claim_async<'a>(
            &'a self,
            key: &'a str,
            claim: &'a cachelock::Claim<'a>,
        ) -> cachelock::BoxFuture<'a, cachelock::CacheResult<Option<cachelock::Claimed>>> {
            self.1.lock().unwrap().push(claim.ttl());
            self.0.claim_async(key, claim)
        }
        fn release(
            &self,
            key: &str,
            token: &str,
            handle: Option<&cachelock::Handle>,
        ) -> cachelock::CacheResult<bool> {
            self.0.release(key, token, handle)
        }
        fn release_async<'a>(
            &'a self,
            key: &'a str,
            token: &'a str,
            handle: Option<&'a cachelock::Handle>,
        ) -> cachelock::BoxFuture<'a, cachelock::CacheResult<bool>> {
            self.0.release_async(key, token, handle)
        }
        fn extend(
            &self,
            key: &str,
            token: &str,
            ttl: std::time::Duration,
            handle: Option<&cachelock::Handle>,
        ) -> cachelock::CacheResult<bool> {
            self.0.extend(key, token, ttl, handle)
        }
        fn extend_async<'a>(
            &'a self,
            key: &'a str,
            token: &'a str,
            ttl: std::time::Duration,
            handle: Option<&'a cachelock::Handle>,
        ) -> cachelock::BoxFuture<'a, cachelock::CacheResult<bool>> {
            self.0.extend_async(key, token, ttl, handle)
        }
        fn wait_for_release(&self, key: &str, pause: std::time::Duration) {
            self.0.wait_for_release(key, pause)
        }
        fn wait_for_release_async<'a>(
            &'a self,
            key: &'a str,
            pause: std::time::Duration,
        ) -> cachelock::BoxFuture<'a, ()> {
            self.0.wait_for_release_async(key, pause)
        }
        fn admin(&self) -> Option<&dyn cachelock::LockAdmin> {
            self.0.admin()
        }
        fn trees(&self) -> Option<&dyn cachelock::tree::TreeStore> {
            self.0.trees()
        }
    }
    #[once(key = "sync-ttl-check", ttl = "1.5s", cache = cache)]
    fn checked(cache: &TtlCache) -> Option<()> {
        let _ = cache;
        Some(())
    }
    #[once(key = "sync-ttl-default", cache = cache)]
    fn default_ttl(cache: &TtlCache) -> Option<()> {
        let _ = cache;
        Some(())
    }
    let cache = TtlCache(MemoryCache::new(), std::sync::Arc::default());
    checked(&cache).unwrap();
    default_ttl(&cache).unwrap();
    assert_eq!(
        *cache.1.lock().unwrap(),
        [
            std::time::Duration::from_millis(1500),
            cachelock::DEFAULT_TTL
        ]
    );
    assert!(short_ttl(&RecordingCache::new()).is_some());
    assert!(expr_ttl().is_some());
}

#[once(key = "sync-wait", wait = "10s", cache = cache)]
fn waiting(order: &std::sync::Mutex<Vec<&'static str>>, cache: &RecordingCache) -> Option<()> {
    order.lock().unwrap().push("waiter ran");
    Some(())
}

#[test]
fn wait_option_waits_for_the_holder() {
    let order = std::sync::Mutex::new(Vec::new());
    let cache = RecordingCache::new();
    let guard = cachelock::Lock::new("sync-wait")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| waiting(&order, &cache));
        // The holder's claim, then at least one refused claim of the waiter.
        while cache.count() < 2 {
            std::thread::yield_now();
        }
        order.lock().unwrap().push("holder released");
        guard.release().unwrap();
        assert_eq!(waiter.join().unwrap(), Some(()), "the waiter got the lock");
    });
    assert_eq!(*order.lock().unwrap(), ["holder released", "waiter ran"]);
}

// ---------------------------------------------------------------------------------------
// Next to other attributes.

#[tracing::instrument]
#[once(key = "sync-instrument-inner-<n>")]
fn instrumented_outside(n: u32) -> Option<u32> {
    Some(n)
}

#[once(key = "sync-instrument-outer-<n>")]
#[tracing::instrument(skip_all, fields(n))]
fn instrumented_inside(n: u32) -> Option<u32> {
    Some(n)
}

#[test]
fn works_next_to_tracing_instrument() {
    assert_eq!(instrumented_outside(1), Some(1));
    assert_eq!(instrumented_inside(2), Some(2));
    let _a = cachelock::Lock::new("sync-instrument-inner-1")
        .try_acquire()
        .unwrap();
    let _b = cachelock::Lock::new("sync-instrument-outer-2")
        .try_acquire()
        .unwrap();
    assert_eq!(instrumented_outside(1), None);
    assert_eq!(instrumented_inside(2), None);
}

/// Doc comments and other attributes stay on the function.
#[once(key = "sync-attrs")]
#[must_use]
#[inline]
fn with_attributes() -> Option<u8> {
    #![allow(clippy::unnecessary_wraps)]
    Some(1)
}

#[test]
fn attributes_and_inner_attributes_are_kept() {
    assert_eq!(with_attributes(), Some(1));
}
