//! A user's cache with only get/set/delete plugs in through `CacheStore`, and the adapter
//! stays honest: owner-checked release and extend, increasing fences, locks that expire in a
//! cache that ignores TTLs, foreign values left alone, and async claims that never run the
//! cache on a runtime thread.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use cachelock::{testing, Cache, CacheResult, CacheStore, Claim, Lock, LockStore, NoopCache};

/// Only the three methods of the contract, and it ignores TTLs entirely.
#[derive(Default, Clone)]
struct DictCache(Arc<Mutex<HashMap<String, String>>>);

impl Cache for DictCache {
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

const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_get_set_delete_cache_passes_the_conformance_suite() {
    testing::cache_conformance(DictCache::default()).unwrap();
}

#[tokio::test]
async fn a_get_set_delete_cache_passes_the_async_conformance_suite() {
    testing::cache_conformance_async(DictCache::default())
        .await
        .unwrap();
}

/// What the trait's old default `claim` / `release` / `extend` did, now the adapter's
/// `LockStore` operations: one holder, owner-checked release and extend, increasing fences,
/// fence 0 without fencing, the holder's metadata kept across an extend.
#[test]
fn the_adapter_claims_releases_and_extends_owner_checked() {
    let store = CacheStore::new(DictCache::default());
    let key = "cachelock:adapter";
    let a = Claim::new(LONG).with_label("nightly");
    let b = Claim::new(LONG);

    let first = store.claim(key, &a).unwrap().expect("free");
    assert!(first.fence > 0, "fenced by default");
    assert!(
        first.handle.is_none(),
        "a get/set/delete cache keeps no handle"
    );
    assert!(store.claim(key, &b).unwrap().is_none(), "held");
    // The cache holds the owner value (and its deadline).
    let raw = store.get(key).unwrap().expect("stored in the user's cache");
    assert!(raw.starts_with(a.owner_value().as_str()), "{raw:?}");

    assert!(!store.release(key, b.token(), None).unwrap(), "not b's");
    assert!(
        !store.extend(key, b.token(), LONG, None).unwrap(),
        "not b's"
    );
    assert!(
        !store.release(key, &a.token()[..31], None).unwrap(),
        "a prefix"
    );
    assert!(store.claim(key, &b).unwrap().is_none(), "still held by a");

    assert!(store
        .extend(key, a.token(), Duration::from_secs(90), None)
        .unwrap());
    let admin = store.admin().expect("the adapter looks up holders");
    let (value, left) = admin.holder(key).unwrap().expect("held");
    assert_eq!(value, a.owner_value().as_str(), "extend keeps the metadata");
    assert!(left.expect("a TTL") > LONG, "extended: {left:?}");

    assert!(store.release(key, a.token(), None).unwrap());
    assert!(
        !store.release(key, a.token(), None).unwrap(),
        "released once"
    );
    assert_eq!(store.get(key).unwrap(), None, "release deletes the key");
    assert_eq!(admin.holder(key).unwrap(), None);

    let second = store.claim(key, &b).unwrap().expect("free after release");
    assert!(
        second.fence > first.fence,
        "{} after {}",
        second.fence,
        first.fence
    );
    assert!(store.release(key, b.token(), None).unwrap());

    let unfenced = Claim::new(LONG).with_fencing(false);
    let won = store.claim(key, &unfenced).unwrap().expect("free");
    assert_eq!(won.fence, 0, "no fence asked, none given");
    assert!(
        store.claim(key, &a).unwrap().is_none(),
        "unfenced excludes too"
    );
    assert!(store.release(key, unfenced.token(), None).unwrap());
}

/// The same operations through the async twins (inside a runtime: the blocking pool).
#[tokio::test]
async fn the_adapter_async_operations_are_owner_checked() {
    let store = CacheStore::new(DictCache::default());
    let key = "cachelock:adapter-async";
    let (a, b) = (Claim::new(LONG), Claim::new(LONG));
    let first = store.claim_async(key, &a).await.unwrap().expect("free");
    assert!(store.claim_async(key, &b).await.unwrap().is_none());
    assert!(!store.release_async(key, b.token(), None).await.unwrap());
    assert!(!store
        .extend_async(key, b.token(), LONG, None)
        .await
        .unwrap());
    assert!(store
        .extend_async(key, a.token(), LONG, None)
        .await
        .unwrap());
    assert!(store.release_async(key, a.token(), None).await.unwrap());
    let second = store.claim_async(key, &b).await.unwrap().expect("free");
    assert!(second.fence > first.fence);
    let admin = store.admin().expect("admin");
    let (value, _) = admin.holder_async(key).await.unwrap().expect("held");
    assert_eq!(value, b.owner_value().as_str());
    admin.force_release_async(key).await.unwrap();
    assert_eq!(admin.holder_async(key).await.unwrap(), None);
    assert!(!store.release_async(key, b.token(), None).await.unwrap());
}

/// Through `Lock`: exclusion, owner-checked extend and release, holder lookup,
/// force-release, and no listing (a get/set/delete cache cannot list its keys).
#[test]
fn a_lock_on_the_adapter_is_exclusive_and_owner_checked() {
    let store = CacheStore::new(DictCache::default());
    let lock = Lock::new("job")
        .cache(store.clone())
        .ttl(LONG)
        .label("export");
    let guard = lock.try_acquire().unwrap();
    assert!(guard.fence() > 0);
    assert!(lock.try_acquire().unwrap_err().is_locked());
    // A dyn store sees the same lock.
    let shared: Arc<dyn LockStore> = Arc::new(store.clone());
    assert!(Lock::new("job")
        .cache(shared.clone())
        .try_acquire()
        .unwrap_err()
        .is_locked());
    let holder = lock.holder().unwrap().expect("held");
    assert_eq!(holder.label.as_deref(), Some("export"));
    assert_eq!(holder.pid, Some(std::process::id()));
    assert!(cachelock::held_locks(&store, "cachelock:")
        .unwrap_err()
        .is_backend());
    guard.extend().unwrap();
    let fence = guard.fence();
    guard.release().unwrap();
    assert_eq!(lock.holder().unwrap(), None);

    let next = Lock::new("job").cache(shared).try_acquire().unwrap();
    assert!(next.fence() > fence);
    lock.force_release().unwrap();
    assert!(next.release().unwrap_err().is_lost(), "force-released");
}

#[test]
fn locks_expire_even_when_the_cache_ignores_ttls() {
    let cache = CacheStore::new(DictCache::default());
    let stale = Lock::new("job")
        .cache(cache.clone())
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let fresh = Lock::new("job").cache(cache.clone()).try_acquire();
    assert!(
        fresh.is_ok(),
        "a crashed holder must not block the key past its TTL"
    );
    assert!(stale.release().unwrap_err().is_lost());
}

#[test]
fn a_foreign_value_in_the_key_is_never_overwritten_or_deleted() {
    let cache = CacheStore::new(DictCache::default());
    cache
        .set("cachelock:job", "written by someone else", None)
        .unwrap();
    assert!(Lock::new("job")
        .cache(cache.clone())
        .try_acquire()
        .unwrap_err()
        .is_locked());
    assert_eq!(
        cache.get("cachelock:job").unwrap().as_deref(),
        Some("written by someone else")
    );
}

/// A cache whose first `get` blocks until the runtime thread has run a task, and that
/// records the thread of every call. On the runtime thread of a current-thread runtime that
/// `get` could never return (the task could not run): it gives up after a while with an
/// error, so the test fails instead of hanging.
struct GatedCache {
    inner: DictCache,
    gate: Mutex<Option<mpsc::Receiver<()>>>,
    threads: Mutex<Vec<(ThreadId, Option<String>)>>,
}

impl GatedCache {
    fn new(gate: mpsc::Receiver<()>) -> Self {
        GatedCache {
            inner: DictCache::default(),
            gate: Mutex::new(Some(gate)),
            threads: Mutex::new(Vec::new()),
        }
    }

    fn record(&self) {
        let current = std::thread::current();
        let name = current.name().map(str::to_owned);
        self.threads.lock().unwrap().push((current.id(), name));
    }

    fn threads(&self) -> Vec<(ThreadId, Option<String>)> {
        self.threads.lock().unwrap().clone()
    }
}

impl Cache for GatedCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.record();
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.recv_timeout(Duration::from_secs(10))
                .map_err(|_| "the runtime thread never ran while the cache was busy")?;
        }
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.record();
        self.inner.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.record();
        self.inner.delete(key)
    }
}

/// Every recorded call ran off `runtime`, the runtime's only thread.
fn assert_off(threads: &[(ThreadId, Option<String>)], runtime: ThreadId) {
    assert!(!threads.is_empty(), "the cache was never called");
    for (id, name) in threads {
        assert_ne!(
            *id, runtime,
            "the cache ran on the runtime thread ({name:?}): {threads:?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_claim_runs_the_cache_off_the_runtime_thread() {
    let runtime = std::thread::current().id();
    let (open, gate) = mpsc::channel();
    let store = CacheStore::new(GatedCache::new(gate));
    // Runs on the runtime thread, only once the claim below yields it.
    let opener = tokio::spawn(async move { open.send(()).unwrap() });
    let claim = Claim::new(LONG);
    let won = tokio::time::timeout(Duration::from_secs(30), store.claim_async("k", &claim))
        .await
        .expect("the claim completes")
        .expect("the claim does not fail");
    assert!(won.is_some(), "free");
    opener.await.unwrap();
    assert!(store.release_async("k", claim.token(), None).await.unwrap());
    assert_off(&store.threads(), runtime);
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_lock_on_the_adapter_runs_the_cache_off_the_runtime_thread() {
    let runtime = std::thread::current().id();
    let (open, gate) = mpsc::channel();
    let store = CacheStore::new(GatedCache::new(gate));
    let opener = tokio::spawn(async move { open.send(()).unwrap() });
    let lock = Lock::new("job").cache(store.clone()).ttl(LONG);
    let guard = tokio::time::timeout(Duration::from_secs(30), lock.try_acquire_async())
        .await
        .expect("the acquire completes")
        .expect("free");
    opener.await.unwrap();
    assert!(lock.try_acquire_async().await.unwrap_err().is_locked());
    guard.release().await.unwrap();
    assert_off(&store.threads(), runtime);
}

#[test]
fn the_noop_cache_grants_everything() {
    let a = Lock::new("job").cache(NoopCache).try_acquire().unwrap();
    let b = Lock::new("job").cache(NoopCache).try_acquire().unwrap();
    a.release().unwrap();
    b.release().unwrap();
    testing::conformance(NoopCache).unwrap_err();
    let tree = cachelock::tree::TreeLock::new("/jobs/a").cache(NoopCache);
    let _guard = tree.try_acquire().unwrap();
    assert!(
        cachelock::tree::held_locks(&NoopCache, "default")
            .unwrap()
            .is_empty(),
        "the noop cache stores nothing, so it lists nothing"
    );
}
