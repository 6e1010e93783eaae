//! Redis Cluster: the conformance suite, and locks on keys spread over every node.
#![cfg(feature = "redis")]

use std::time::Duration;

use cachelock::redis::RedisClusterCache;
use cachelock::testing::{conformance, conformance_async};
use cachelock::{held_locks, held_locks_async, once, Claim, Lock, LockStore};
use cachelock_testkit::RedisCluster;

fn cache(cluster: &RedisCluster) -> RedisClusterCache {
    RedisClusterCache::from_urls(cluster.urls()).expect("valid urls")
}

/// Every key of each node, read with `SCAN`.
fn keys_by_node(cluster: &RedisCluster) -> Vec<Vec<String>> {
    cluster
        .urls()
        .iter()
        .map(|url| {
            let mut con = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .expect("connect to a node");
            let mut keys = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut con)
                    .expect("SCAN");
                keys.extend(batch);
                if next == 0 {
                    break keys;
                }
                cursor = next;
            }
        })
        .collect()
}

/// How many lock keys each node holds (fence counters left out).
/// An error with its sources, as a log line shows it.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn keys_per_node(cluster: &RedisCluster) -> Vec<i64> {
    keys_by_node(cluster)
        .iter()
        .map(|keys| {
            keys.iter()
                .filter(|k| !k.starts_with("cachelock-fence"))
                .count() as i64
        })
        .collect()
}

/// How many fence counters the cluster holds (at most one per slot ever used).
fn fence_counters(cluster: &RedisCluster) -> usize {
    keys_by_node(cluster)
        .iter()
        .flatten()
        .filter(|k| k.starts_with("cachelock-fence"))
        .count()
}

#[test]
fn sync_cluster_passes_the_conformance_suite() {
    let cluster = RedisCluster::start();
    conformance(cache(&cluster)).expect("sync cluster conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_cluster_passes_the_conformance_suite() {
    let cluster = RedisCluster::start();
    conformance_async(cache(&cluster))
        .await
        .expect("async cluster conforms");
}

#[test]
fn locks_on_many_slots_spread_over_every_node() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    let locks: Vec<_> = (0..300)
        .map(|i| {
            Lock::new(format!("slot-spread-{i}"))
                .cache(cache.clone())
                .ttl(Duration::from_secs(30))
        })
        .collect();
    let guards: Vec<_> = locks
        .iter()
        .map(|lock| lock.try_acquire().expect("every key is free"))
        .collect();
    for lock in &locks {
        assert!(lock.try_acquire().expect_err("held").is_locked());
    }
    let spread = keys_per_node(&cluster);
    assert_eq!(
        spread.iter().sum::<i64>(),
        300,
        "one key per lock: {spread:?}"
    );
    assert!(
        spread.iter().all(|&n| n > 0),
        "every node holds some of the locks: {spread:?}"
    );
    for guard in guards {
        guard.release().expect("owner releases");
    }
    assert_eq!(keys_per_node(&cluster), vec![0, 0, 0]);
    let counters = fence_counters(&cluster);
    assert!(
        (1..=300).contains(&counters),
        "one fence counter per slot used, never per lock: {counters}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_locks_on_many_slots() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    let mut guards = Vec::new();
    for i in 0..100 {
        let lock = Lock::new(format!("async-slot-{i}")).cache(cache.clone());
        guards.push(lock.try_acquire_async().await.expect("free"));
        assert!(lock
            .try_acquire_async()
            .await
            .expect_err("held")
            .is_locked());
    }
    for guard in &guards {
        guard.extend().await.expect("owner extends");
    }
    for guard in guards {
        guard.release().await.expect("owner releases");
    }
    // The store's own operations on a key outside any lock prefix, sync after async: a
    // claim, the holder lookup, a force-release.
    let claim = Claim::new(Duration::from_secs(30));
    assert!(cache.claim("plain", &claim).expect("claim").is_some());
    let admin = cache.admin().expect("Redis Cluster has admin operations");
    let (value, ttl) = admin.holder("plain").expect("holder").expect("held");
    assert_eq!(value, claim.owner_value().as_str());
    assert!(
        ttl.is_some_and(|ttl| ttl <= Duration::from_secs(30)),
        "{ttl:?}"
    );
    admin.force_release("plain").expect("force-release");
    assert_eq!(admin.holder("plain").expect("holder"), None);
}

#[once(key = "cluster-job-<id>", cache = cache, ttl = "30s")]
fn cluster_job(cache: &RedisClusterCache, id: u32, inside: &dyn Fn()) -> Option<u32> {
    inside();
    Some(id)
}

#[once(key = "cluster-async-job-<id>", cache = cache, ttl = "30s", raise_if_locked = true)]
async fn cluster_async_job(cache: &RedisClusterCache, id: u32) -> Result<u32, cachelock::Error> {
    Ok(id)
}

#[test]
fn once_runs_on_a_cluster_and_skips_a_held_key() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    for id in 0..50 {
        // While the body runs, a nested call on the same key is skipped; other keys run.
        let ran = cluster_job(&cache, id, &|| {
            assert_eq!(cluster_job(&cache, id, &|| {}), None, "key {id} held");
            assert_eq!(cluster_job(&cache, id + 1000, &|| {}), Some(id + 1000));
        });
        assert_eq!(ran, Some(id));
    }
    assert_eq!(
        keys_per_node(&cluster).iter().sum::<i64>(),
        0,
        "every lock released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_once_runs_on_a_cluster_and_raises_on_a_held_key() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    assert_eq!(cluster_async_job(&cache, 7).await.unwrap(), 7);
    let held = Lock::new("cluster-async-job-7")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    let err = cluster_async_job(&cache, 7).await.unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    held.release().await.unwrap();
    assert_eq!(cluster_async_job(&cache, 7).await.unwrap(), 7);
}

/// `INFO commandstats` of each node.
fn commandstats(cluster: &RedisCluster) -> Vec<std::collections::BTreeMap<String, u64>> {
    cluster
        .urls()
        .iter()
        .map(|url| {
            let mut con = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .expect("connect to a node");
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut con)
                .expect("INFO");
            cachelock_testkit::parse_commandstats(&info)
        })
        .collect()
}

#[test]
fn held_locks_lists_the_locks_of_every_node_with_scan() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    let guards: Vec<_> = (0..120)
        .map(|i| {
            Lock::new(format!("listed-{i}"))
                .cache(cache.clone())
                .label(format!("worker {i}"))
                .try_acquire()
                .expect("free")
        })
        .collect();
    let _elsewhere = Lock::new("elsewhere").cache(cache.clone()).try_acquire();
    assert!(
        keys_per_node(&cluster).iter().all(|&n| n > 0),
        "the locks are spread over every node"
    );

    let mut listed = held_locks(&cache, "cachelock:listed-").expect("listing a cluster");
    listed.sort_by_key(|h| h.key.clone());
    let mut expected: Vec<String> = (0..120).map(|i| format!("cachelock:listed-{i}")).collect();
    expected.sort();
    let keys: Vec<String> = listed.iter().map(|h| h.key.clone()).collect();
    assert_eq!(keys, expected, "every lock, each once, none from elsewhere");
    for holder in &listed {
        let i = holder.key.trim_start_matches("cachelock:listed-");
        assert_eq!(
            holder.label.as_deref(),
            Some(format!("worker {i}").as_str())
        );
        assert!(holder.ttl.is_some());
    }

    let stats = commandstats(&cluster);
    for node in &stats {
        assert!(
            node.get("scan").copied().unwrap_or(0) > 0,
            "SCAN on every node: {node:?}"
        );
        assert_eq!(node.get("keys"), None, "never KEYS: {node:?}");
    }

    // A standalone cache pointed at one node would list that node's keys alone: refused.
    let one_node = cachelock::redis::RedisCache::builder(&cluster.urls()[0])
        .build()
        .expect("valid url");
    let refused = held_locks(&one_node, "cachelock:listed-").unwrap_err();
    assert!(
        chain(&refused).contains("this server is a Redis Cluster node"),
        "{}",
        chain(&refused)
    );

    for guard in guards {
        guard.release().expect("owner releases");
    }
    assert!(held_locks(&cache, "cachelock:listed-").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_locks_async_lists_the_locks_of_every_node() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    let mut guards = Vec::new();
    for i in 0..60 {
        let lock = Lock::new(format!("async-listed-{i}")).cache(cache.clone());
        guards.push(lock.try_acquire_async().await.expect("free"));
    }
    assert!(keys_per_node(&cluster).iter().all(|&n| n > 0));
    let listed = held_locks_async(&cache, "cachelock:async-listed-")
        .await
        .expect("listing a cluster");
    assert_eq!(listed.len(), 60, "{listed:?}");
    let one_node = cachelock::redis::RedisCache::builder(&cluster.urls()[1])
        .build()
        .expect("valid url");
    let refused = held_locks_async(&one_node, "cachelock:async-listed-")
        .await
        .unwrap_err();
    assert!(
        chain(&refused).contains("this server is a Redis Cluster node"),
        "{}",
        chain(&refused)
    );
    let holder = Lock::new("async-listed-7")
        .cache(cache.clone())
        .holder_async()
        .await
        .unwrap()
        .expect("held");
    assert_eq!(holder.pid, Some(std::process::id()));
    Lock::new("async-listed-7")
        .cache(cache.clone())
        .force_release_async()
        .await
        .unwrap();
    assert_eq!(
        held_locks_async(&cache, "cachelock:async-listed-")
            .await
            .unwrap()
            .len(),
        59
    );
    for guard in guards {
        let _ = guard.release().await;
    }
    assert!(held_locks_async(&cache, "cachelock:async-listed-")
        .await
        .unwrap()
        .is_empty());
}

/// Subscribers on `cachelock:released` across the cluster (`PUBSUB NUMSUB` of each node).
fn release_subscribers(cluster: &RedisCluster) -> i64 {
    cluster
        .urls()
        .iter()
        .map(|url| {
            let mut con = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .expect("connect to a node");
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("cachelock:released")
                .query(&mut con)
                .expect("PUBSUB NUMSUB");
            counts[0].1
        })
        .sum()
}

#[test]
fn a_release_on_any_node_is_published_to_every_node() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    let mut subscribers: Vec<redis::Connection> = cluster
        .urls()
        .iter()
        .map(|url| {
            let con = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .expect("connect to a node");
            con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            con
        })
        .collect();
    let mut pubsubs: Vec<_> = subscribers.iter_mut().map(|con| con.as_pubsub()).collect();
    for pubsub in &mut pubsubs {
        pubsub.subscribe("cachelock:released").unwrap();
    }
    // Keys on several slots, so the releasing node varies.
    for i in 0..6 {
        let key = format!("published-{i}");
        Lock::new(key.as_str())
            .cache(cache.clone())
            .try_acquire()
            .unwrap()
            .release()
            .unwrap();
        for pubsub in &mut pubsubs {
            let message = pubsub.get_message().expect("every node relays the release");
            assert_eq!(
                message.get_payload::<String>().unwrap(),
                format!("cachelock:{key}")
            );
        }
    }
}

#[test]
fn a_waiter_on_a_cluster_acquires_after_the_release() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    for i in 0..3 {
        let key = format!("cluster-wake-{i}");
        let guard = Lock::new(key.as_str())
            .cache(cache.clone())
            .try_acquire()
            .unwrap();
        let waiter = {
            let (cache, key) = (cache.clone(), key.clone());
            std::thread::spawn(move || {
                let guard = Lock::new(key)
                    .cache(cache)
                    .acquire_timeout(Duration::from_secs(30))
                    .expect("acquired after the release");
                let acquired = std::time::Instant::now();
                guard.release().unwrap();
                acquired
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        let released = std::time::Instant::now();
        guard.release().unwrap();
        assert!(waiter.join().unwrap() >= released, "not before the release");
    }
    assert!(
        release_subscribers(&cluster) >= 1,
        "the waiters subscribed on a node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_waiter_on_a_cluster_acquires_after_the_release() {
    let cluster = RedisCluster::start();
    let cache = cache(&cluster);
    let guard = Lock::new("cluster-wake-async")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            Lock::new("cluster-wake-async")
                .cache(cache)
                .acquire_timeout_async(Duration::from_secs(30))
                .await
                .expect("acquired after the release")
                .release()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap();
    assert!(release_subscribers(&cluster) >= 1);
}
