//! Hierarchical locks (`cachelock::tree`) on the in-memory cache: the rule, both options in
//! both directions, the root, invalid paths, owner tokens, expiry, holders, contention,
//! `hold_at_least` and the listing of held paths.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::testing::{tree_conformance, tree_conformance_async};
use cachelock::tree::{self, conflicts, TreeLock, TreeScope};
use cachelock::{Cache, CacheResult, CacheStore, Error, LockStore, MemoryCache, NoopCache};
use cachelock_testkit::eventually;

#[path = "common/tree_cases.rs"]
mod tree_cases;
use tree_cases::{BOTH, NEITHER, NO_CHILDREN, NO_PARENTS, TABLE};

fn lock(cache: &MemoryCache, path: &str, scope: TreeScope) -> TreeLock<MemoryCache> {
    TreeLock::new(path)
        .cache(cache.clone())
        .lock_parents(scope.lock_parents)
        .lock_children(scope.lock_children)
}

/// Holds `held` (with `held_scope`) and reports whether `path` (with `scope`) is refused.
fn refused(held: &str, held_scope: TreeScope, path: &str, scope: TreeScope) -> bool {
    let cache = MemoryCache::new();
    let _first = lock(&cache, held, held_scope)
        .try_acquire()
        .expect("a fresh cache is free");
    match lock(&cache, path, scope).try_acquire() {
        Ok(_second) => false,
        Err(error) if error.is_locked() => true,
        Err(error) => panic!("{path}: {error}"),
    }
}

#[test]
fn every_ancestor_descendant_and_sibling_case_of_the_table() {
    for &(held, held_scope, path, scope, want) in TABLE {
        assert_eq!(
            refused(held, held_scope, path, scope),
            want,
            "{path} {scope:?} while {held} {held_scope:?} is held"
        );
        assert_eq!(
            conflicts(path, scope, held, held_scope),
            want,
            "conflicts({path}, {held})"
        );
    }
}

#[test]
fn memory_cache_passes_the_tree_conformance_suite() {
    tree_conformance(MemoryCache::new()).expect("MemoryCache conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_passes_the_async_tree_conformance_suite() {
    tree_conformance_async(MemoryCache::new())
        .await
        .expect("MemoryCache conforms (async)");
}

#[test]
fn invalid_paths_are_invalid_key_errors_never_panics() {
    let cache = MemoryCache::new();
    let long = format!("/{}", "a".repeat(1024));
    for (path, reason) in [
        ("", "start with `/`"),
        ("foo", "start with `/`"),
        ("/foo/", "end with `/`"),
        ("//", "end with `/`"),
        ("/a//b", "empty segment"),
        ("/a/.", "`.` or `..`"),
        ("/../etc", "`.` or `..`"),
        ("/a\tb", "control characters"),
        (long.as_str(), "MAX_KEY_LEN"),
    ] {
        let lock = lock(&cache, path, BOTH);
        for error in [
            lock.try_acquire().map(drop).unwrap_err(),
            lock.acquire_timeout(Duration::from_millis(10))
                .map(drop)
                .unwrap_err(),
            lock.holder().map(drop).unwrap_err(),
            lock.release_token("abc").map(drop).unwrap_err(),
            lock.extend_token("abc", Duration::from_secs(1))
                .map(drop)
                .unwrap_err(),
        ] {
            match &error {
                Error::InvalidKey { reason: why, .. } => {
                    assert!(why.contains(reason), "{path:?}: {why}")
                }
                other => panic!("{path:?}: expected InvalidKey, got {other:?}"),
            }
        }
    }
    for fine in ["/", "/a", "/a b/ü/...", "/a.b/c..d"] {
        assert!(lock(&cache, fine, BOTH).try_acquire().is_ok(), "{fine}");
    }
}

#[test]
fn a_bad_ttl_is_an_invalid_setting() {
    let cache = MemoryCache::new();
    let error = lock(&cache, "/a", BOTH)
        .ttl(Duration::ZERO)
        .try_acquire()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidSetting { .. }), "{error:?}");
}

#[test]
fn release_and_extend_by_token_check_the_owner() {
    let cache = MemoryCache::new();
    let job = lock(&cache, "/ci/job", BOTH);
    let claim = job.try_acquire().unwrap().into_claim();
    assert_eq!(claim.path, "/ci/job");
    assert_eq!(claim.token.len(), 32);
    let other = job.clone().cache(cache.clone());
    assert!(!other
        .release_token("0123456789abcdef0123456789abcdef")
        .unwrap());
    assert!(!other.extend_token("wrong", Duration::from_secs(5)).unwrap());
    assert!(job.try_acquire().unwrap_err().is_locked(), "still held");
    assert!(job
        .extend_token(&claim.token, Duration::from_secs(5))
        .unwrap());
    assert!(job.release_token(&claim.token).unwrap());
    assert!(!job.release_token(&claim.token).unwrap(), "only once");
    assert!(job.try_acquire().is_ok());
}

#[test]
fn into_claim_keeps_the_lock_held_after_the_guard_is_gone() {
    let cache = MemoryCache::new();
    let claim = lock(&cache, "/kept", BOTH)
        .ttl(Duration::from_secs(30))
        .try_acquire()
        .unwrap()
        .into_claim();
    assert_eq!(claim.ttl, Duration::from_secs(30));
    assert!(format!("{claim:?}").len() < 80 && !format!("{claim:?}").contains(&claim.token));
    assert!(lock(&cache, "/kept/child", BOTH)
        .try_acquire()
        .unwrap_err()
        .is_locked());
    assert!(lock(&cache, "/kept", BOTH)
        .release_token(&claim.token)
        .unwrap());
    assert!(lock(&cache, "/kept/child", BOTH).try_acquire().is_ok());
}

#[test]
fn holder_names_the_held_path_and_its_label() {
    let cache = MemoryCache::new();
    assert_eq!(lock(&cache, "/foo", BOTH).holder().unwrap(), None);
    let _guard = lock(&cache, "/foo/bar", BOTH)
        .label("timmy")
        .try_acquire()
        .unwrap();
    let holder = lock(&cache, "/foo", BOTH).holder().unwrap().expect("held");
    assert_eq!(holder.key, "/foo/bar");
    assert_eq!(holder.label.as_deref(), Some("timmy"));
    assert_eq!(holder.pid, Some(std::process::id()));
    // What would not conflict is not reported.
    assert_eq!(lock(&cache, "/foo", NO_CHILDREN).holder().unwrap(), None);
    assert_eq!(lock(&cache, "/foo/zip", BOTH).holder().unwrap(), None);
}

#[test]
fn guards_report_their_path_token_and_error_keys_name_the_space() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "/a/b", BOTH)
        .prefix("space:")
        .try_acquire()
        .unwrap();
    assert_eq!(guard.path(), "/a/b");
    assert_eq!(guard.key(), "space:/a/b");
    assert_eq!(guard.token().len(), 32);
    assert!(guard.fence() > 0);
    let error = lock(&cache, "/a", BOTH)
        .prefix("space:")
        .try_acquire()
        .unwrap_err();
    assert_eq!(error.key(), Some("space:/a"));
    // Another space is another tree.
    assert!(lock(&cache, "/a", BOTH)
        .prefix("other:")
        .try_acquire()
        .is_ok());
    guard.release().unwrap();
}

#[test]
fn acquire_timeout_waits_for_a_conflicting_holder() {
    let cache = MemoryCache::new();
    let child = lock(&cache, "/w/child", BOTH).try_acquire().unwrap();
    let parent = lock(&cache, "/w", BOTH);
    assert!(parent
        .acquire_timeout(Duration::from_millis(30))
        .unwrap_err()
        .is_locked());
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        child.release().unwrap();
    });
    let guard = parent
        .acquire_timeout(Duration::from_secs(30))
        .expect("granted once the child is released");
    releaser.join().unwrap();
    guard.release().unwrap();
    assert_eq!(parent.run(|| 7).unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_guards_and_run_async() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "/async/a", BOTH)
        .try_acquire_async()
        .await
        .unwrap();
    assert!(lock(&cache, "/async", BOTH)
        .try_acquire_async()
        .await
        .unwrap_err()
        .is_locked());
    guard.extend().await.unwrap();
    let claim = guard.into_claim();
    let parent = lock(&cache, "/async", BOTH).wait(Duration::from_secs(30));
    let releaser = {
        let cache = cache.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let child = lock(&cache, "/async/a", BOTH);
            assert!(child.release_token_async(&claim.token).await.unwrap());
        })
    };
    assert_eq!(parent.run_async(async { 5 }).await.unwrap(), 5);
    releaser.await.unwrap();
    // Dropping an async guard releases it without blocking.
    drop(
        lock(&cache, "/async/b", BOTH)
            .try_acquire_async()
            .await
            .unwrap(),
    );
    assert!(lock(&cache, "/async", BOTH)
        .try_acquire_async()
        .await
        .is_ok());
}

/// A cache with only get/set/delete (a `LockStore` through `CacheStore`).
#[derive(Clone, Default)]
struct PlainCache(Arc<Mutex<HashMap<String, String>>>);

impl Cache for PlainCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        self.0.lock().unwrap().insert(key.into(), value.into());
        Ok(())
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

#[test]
fn a_cache_without_tree_support_says_so() {
    let lock = TreeLock::new("/a").cache(CacheStore::new(PlainCache::default()));
    for error in [
        lock.try_acquire().map(drop).unwrap_err(),
        lock.holder().map(drop).unwrap_err(),
        lock.release_token("t").map(drop).unwrap_err(),
    ] {
        assert!(error.is_backend(), "{error:?}");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains("does not support tree locks"), "{source}");
    }
}

#[test]
fn noop_cache_grants_every_tree_lock() {
    let a = TreeLock::new("/a").cache(NoopCache).try_acquire().unwrap();
    let b = TreeLock::new("/a/b")
        .cache(NoopCache)
        .try_acquire()
        .unwrap();
    assert_eq!(TreeLock::new("/a").cache(NoopCache).holder().unwrap(), None);
    a.release().unwrap();
    b.release().unwrap();
}

#[test]
fn the_default_cache_and_arc_dyn_cache_carry_tree_locks() {
    let guard = TreeLock::new("/default/a").try_acquire().unwrap();
    assert!(TreeLock::new("/default")
        .try_acquire()
        .unwrap_err()
        .is_locked());
    guard.release().unwrap();
    let shared: Arc<dyn LockStore> = Arc::new(MemoryCache::new());
    let guard = TreeLock::new("/x")
        .cache(shared.clone())
        .try_acquire()
        .unwrap();
    assert!(TreeLock::new("/x/y")
        .cache(shared)
        .try_acquire()
        .unwrap_err()
        .is_locked());
    guard.release().unwrap();
}

#[test]
fn eight_threads_on_a_small_tree_never_hold_conflicting_paths() {
    const TREE: [&str; 9] = [
        "/", "/a", "/a/b", "/a/c", "/a/b/d", "/b", "/b/e", "/ab", "/b/e/f",
    ];
    let cache = MemoryCache::new();
    let inside: Mutex<Vec<(usize, &str, TreeScope)>> = Mutex::new(Vec::new());
    let granted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for id in 0..8 {
            let (cache, inside, granted) = (&cache, &inside, &granted);
            s.spawn(move || {
                use tree_cases::Pick;
                let mut pick = Pick::new(id as u64);
                for _ in 0..2000 {
                    let path = TREE[pick.next(TREE.len())];
                    let scope = [BOTH, NO_PARENTS, NO_CHILDREN, NEITHER][pick.next(4)];
                    let lock = lock(cache, path, scope);
                    let guard = match pick.next(4) {
                        0 => lock.acquire_timeout(Duration::from_millis(2)),
                        _ => lock.try_acquire(),
                    };
                    let Ok(guard) = guard else { continue };
                    {
                        let mut now = inside.lock().unwrap();
                        for &(other, q, q_scope) in now.iter() {
                            assert!(
                                !conflicts(path, scope, q, q_scope),
                                "thread {id} holds {path} {scope:?} while thread {other} holds {q} {q_scope:?}"
                            );
                        }
                        now.push((id, path, scope));
                    }
                    granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    std::thread::yield_now();
                    inside.lock().unwrap().retain(|(who, _, _)| *who != id);
                    guard.release().unwrap();
                }
            });
        }
    });
    assert!(granted.into_inner() > 100, "the threads did get locks");
}

#[path = "common/tree_wake.rs"]
mod tree_wake;

#[test]
fn a_tree_waiter_gets_the_lock_on_the_release_not_after_a_pause() {
    tree_wake::a_waiter_gets_the_lock_on_the_release(MemoryCache::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_tree_waiter_gets_the_lock_on_the_release_not_after_a_pause() {
    tree_wake::an_async_waiter_gets_the_lock_on_the_release(MemoryCache::new()).await;
}

#[test]
fn only_a_tree_release_that_could_have_blocked_a_memory_waiter_ends_its_wait() {
    tree_wake::only_a_release_that_could_have_blocked_it_ends_a_wait(MemoryCache::new());
}

// ----- hold_at_least -----

#[test]
fn hold_at_least_keeps_a_path_released_early_then_frees_it() {
    let cache = MemoryCache::new();
    let hold = Duration::from_secs(3);
    // The default TTL (60 s) is far longer than the polling bound (30 s): a path freed
    // within the bound was freed by the hold window, not by the TTL.
    let job = lock(&cache, "/reports/daily", BOTH).hold_at_least(hold);
    assert_eq!(job.run(|| 7).unwrap(), 7);
    // Kept, with its scope: the path, a parent and a child are all refused.
    for path in ["/reports/daily", "/reports", "/reports/daily/part"] {
        let error = lock(&cache, path, BOTH).try_acquire().unwrap_err();
        assert!(error.is_locked(), "{path}: {error:?}");
    }
    assert!(
        job.run(|| ()).unwrap_err().is_locked(),
        "not run again at once"
    );
    let kept = lock(&cache, "/reports", BOTH)
        .holder()
        .unwrap()
        .expect("kept");
    assert_eq!(kept.key, "/reports/daily");
    assert!(kept.ttl.is_some_and(|t| t <= hold), "{:?}", kept.ttl);
    // A sibling was never in the way.
    assert!(lock(&cache, "/reports/weekly", BOTH).try_acquire().is_ok());
    eventually("the hold window ends", || {
        lock(&cache, "/reports", BOTH).try_acquire().is_ok()
    });
}

#[test]
fn a_release_after_the_hold_window_frees_the_path_at_once() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "/late", BOTH)
        .hold_at_least(Duration::from_millis(50))
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    guard.release().unwrap();
    assert!(lock(&cache, "/", BOTH).try_acquire().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_at_least_keeps_a_released_or_dropped_async_guard() {
    let cache = MemoryCache::new();
    let job = lock(&cache, "/async/job", BOTH).hold_at_least(Duration::from_secs(3));
    let parent = lock(&cache, "/async", BOTH);
    job.try_acquire_async()
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    assert!(parent.try_acquire_async().await.unwrap_err().is_locked());
    let start = std::time::Instant::now();
    let retake = || async {
        loop {
            match lock(&cache, "/async/job", BOTH).try_acquire_async().await {
                Ok(guard) => return guard.release().await.unwrap(),
                Err(e) if e.is_locked() && start.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    retake().await;
    // Dropped instead of released: kept as well.
    drop(job.try_acquire_async().await.unwrap());
    assert!(parent.try_acquire_async().await.unwrap_err().is_locked());
    let start = std::time::Instant::now();
    loop {
        match parent.try_acquire_async().await {
            Ok(guard) => break guard.release().await.unwrap(),
            Err(e) if e.is_locked() && start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_bad_hold_at_least_is_an_invalid_setting() {
    let cache = MemoryCache::new();
    for hold in [Duration::ZERO, cachelock::MAX_TTL + Duration::from_secs(1)] {
        let job = lock(&cache, "/a", BOTH).hold_at_least(hold);
        for error in [
            job.try_acquire().map(drop).unwrap_err(),
            job.run(|| ()).unwrap_err(),
        ] {
            match &error {
                Error::InvalidSetting { .. } => {
                    assert!(error.to_string().contains("hold_at_least"), "{error}")
                }
                other => panic!("{hold:?}: expected InvalidSetting, got {other:?}"),
            }
        }
    }
    assert!(lock(&cache, "/a", BOTH)
        .hold_at_least(cachelock::MAX_TTL)
        .try_acquire()
        .is_ok());
}

// ----- listing: tree::held_locks -----

#[test]
fn held_locks_lists_each_held_path_with_its_holder_never_its_token() {
    let cache = MemoryCache::new();
    let space = |path: &str| lock(&cache, path, BOTH).prefix("printers:");
    let a = space("/floor-2/a")
        .label("ci-job-17")
        .try_acquire()
        .unwrap();
    let b = space("/floor-1").try_acquire().unwrap();
    let gone = space("/floor-3").try_acquire().unwrap();
    gone.release().unwrap();
    let short = space("/floor-4")
        .ttl(Duration::from_secs(1))
        .renew(false)
        .try_acquire()
        .unwrap()
        .into_claim();
    // Another space, and a plain lock, are not listed.
    let _other = lock(&cache, "/floor-2/a", BOTH).try_acquire().unwrap();
    let _plain = cachelock::Lock::new("printers:/floor-5")
        .cache(cache.clone())
        .prefix("")
        .try_acquire()
        .unwrap();

    let held = tree::held_locks(&cache, "printers:").unwrap();
    let paths: Vec<&str> = held.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        paths,
        ["/floor-1", "/floor-2/a", "/floor-4"],
        "sorted by path"
    );
    let first = &held[1];
    assert_eq!(first.label.as_deref(), Some("ci-job-17"));
    assert_eq!(first.pid, Some(std::process::id()));
    assert!(!first.host.is_empty() || std::fs::read_to_string("/etc/hostname").is_err());
    assert!(first.ttl.is_some_and(|t| t <= cachelock::DEFAULT_TTL));
    assert_eq!(held[0].label, None);
    let shown = format!("{held:?}");
    for token in [a.token(), b.token(), short.token.as_str()] {
        assert!(!shown.contains(token), "a token is listed: {shown}");
    }

    // Released and expired locks drop out.
    std::thread::sleep(Duration::from_millis(1300));
    a.release().unwrap();
    let held = tree::held_locks(&cache, "printers:").unwrap();
    assert_eq!(
        held.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(),
        ["/floor-1"]
    );
    b.release().unwrap();
    assert!(tree::held_locks(&cache, "printers:").unwrap().is_empty());
    assert!(tree::held_locks(&cache, "never-used:").unwrap().is_empty());
    // The default space is the process prefix.
    let default = tree::held_locks(&cache, cachelock::key_prefix()).unwrap();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0].key, "/floor-2/a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_locks_async_lists_a_kept_path_with_its_shortened_ttl() {
    let cache = MemoryCache::new();
    let hold = Duration::from_secs(3);
    lock(&cache, "/kept", BOTH)
        .hold_at_least(hold)
        .label("nightly")
        .run_async(async {})
        .await
        .unwrap();
    let held = tree::held_locks_async(&cache, cachelock::key_prefix())
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].key, "/kept");
    assert_eq!(held[0].label.as_deref(), Some("nightly"));
    assert!(held[0].ttl.is_some_and(|t| t <= hold), "{:?}", held[0].ttl);
}

#[test]
fn held_locks_on_a_cache_without_tree_support_is_a_backend_error() {
    let error =
        tree::held_locks(&CacheStore::new(PlainCache::default()), "cachelock:").unwrap_err();
    assert!(error.is_backend(), "{error:?}");
    assert_eq!(error.key(), Some("cachelock:"));
}
