//! Hierarchical locks (`cachelock::tree`) on a real redis-server (and a Redis Cluster): the
//! conformance suite, the hand-written rule table, clients contending like separate
//! processes, the keys a lock space leaves, faults, `hold_at_least` and the listing of held
//! paths.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use cachelock::redis::{RedisCache, RedisClusterCache};
use cachelock::testing::{tree_conformance, tree_conformance_async};
use cachelock::tree::{conflicts, TreeLock, TreeScope};
use cachelock::Error;
use cachelock_testkit::{RedisCluster, RedisServer};

#[path = "common/commands.rs"]
mod commands;
use commands::{command_calls, delta};

#[path = "common/tree_cases.rs"]
mod tree_cases;
use cachelock_testkit::eventually;
use tree_cases::{Pick, BOTH, NEITHER, NO_CHILDREN, NO_PARENTS, TABLE};

fn cache(server: &RedisServer) -> RedisCache {
    RedisCache::from_url(&server.url()).expect("valid url")
}

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("connect")
}

fn lock(cache: &RedisCache, path: &str, scope: TreeScope) -> TreeLock<RedisCache> {
    TreeLock::new(path)
        .cache(cache.clone())
        .lock_parents(scope.lock_parents)
        .lock_children(scope.lock_children)
}

#[test]
fn redis_passes_the_tree_conformance_suite() {
    let server = RedisServer::start();
    tree_conformance(cache(&server)).expect("RedisCache conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_async_tree_conformance_suite() {
    let server = RedisServer::start();
    tree_conformance_async(cache(&server))
        .await
        .expect("RedisCache conforms (async)");
}

#[test]
fn every_case_of_the_table_on_redis() {
    let server = RedisServer::start();
    let cache = cache(&server);
    for &(held, held_scope, path, scope, want) in TABLE {
        let first = lock(&cache, held, held_scope).try_acquire().expect("free");
        let refused = match lock(&cache, path, scope).try_acquire() {
            Ok(second) => {
                second.release().unwrap();
                false
            }
            Err(error) if error.is_locked() => true,
            Err(error) => panic!("{path}: {error}"),
        };
        assert_eq!(
            refused, want,
            "{path} {scope:?} while {held} {held_scope:?} is held"
        );
        first.release().unwrap();
    }
}

/// Eight threads, each with its own `RedisCache` (its own connections, like separate
/// processes), on random paths of a small tree with random scopes.
#[test]
fn eight_clients_on_a_small_tree_never_hold_conflicting_paths() {
    const TREE: [&str; 9] = [
        "/", "/a", "/a/b", "/a/c", "/a/b/d", "/b", "/b/e", "/ab", "/b/e/f",
    ];
    let server = RedisServer::start();
    let inside = std::sync::Mutex::new(Vec::<(usize, &str, TreeScope)>::new());
    let granted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for id in 0..8 {
            let (inside, granted, server) = (&inside, &granted, &server);
            s.spawn(move || {
                let cache = cache(server);
                let mut pick = Pick::new(id as u64 + 100);
                for _ in 0..250 {
                    let path = TREE[pick.next(TREE.len())];
                    let scope = [BOTH, NO_PARENTS, NO_CHILDREN, NEITHER][pick.next(4)];
                    let lock = lock(&cache, path, scope);
                    let guard = match pick.next(4) {
                        0 => lock.acquire_timeout(Duration::from_millis(5)),
                        _ => lock.try_acquire(),
                    };
                    let guard = match guard {
                        Ok(guard) => guard,
                        Err(error) if error.is_locked() => continue,
                        Err(error) => panic!("{error}"),
                    };
                    {
                        let mut now = inside.lock().unwrap();
                        for &(other, q, q_scope) in now.iter() {
                            assert!(
                                !conflicts(path, scope, q, q_scope),
                                "client {id} holds {path} {scope:?} while client {other} holds {q} {q_scope:?}"
                            );
                        }
                        now.push((id, path, scope));
                    }
                    granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                    inside.lock().unwrap().retain(|(who, _, _)| *who != id);
                    guard.release().unwrap();
                }
            });
        }
    });
    assert!(granted.into_inner() > 100, "the clients did get locks");
}

#[test]
fn a_space_is_four_keys_with_one_hash_tag_that_expire_with_their_last_lock() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url())
        .key_prefix("app:")
        .build()
        .unwrap();
    let ttl = Duration::from_secs(20);
    let a = TreeLock::new("/a/b")
        .cache(cache.clone())
        .prefix("jobs:")
        .ttl(ttl)
        .try_acquire()
        .unwrap();
    let b = TreeLock::new("/c")
        .cache(cache.clone())
        .prefix("jobs:")
        .ttl(ttl)
        .lock_parents(false)
        .try_acquire()
        .unwrap();
    let mut con = raw(&server);
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "app:jobs:{cachelock-tree}:exp",
            "app:jobs:{cachelock-tree}:fence",
            "app:jobs:{cachelock-tree}:own",
            "app:jobs:{cachelock-tree}:up",
        ]
    );
    // Only `/a/b` locks its parents.
    let up: Vec<String> = redis::cmd("ZRANGE")
        .arg("app:jobs:{cachelock-tree}:up")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(up, ["/a/b"]);
    for key in ["own", "exp", "up"] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(format!("app:jobs:{{cachelock-tree}}:{key}"))
            .query(&mut con)
            .unwrap();
        assert!(
            pttl > 0 && pttl <= ttl.as_millis() as i64,
            "{key}: PTTL {pttl}"
        );
    }
    a.release().unwrap();
    b.release().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        ["app:jobs:{cachelock-tree}:fence"],
        "only the fence counter stays"
    );
}

#[test]
fn an_expired_entry_is_purged_by_the_next_claim() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let claim = lock(&cache, "/short", BOTH)
        .ttl(Duration::from_millis(100))
        .try_acquire()
        .unwrap()
        .into_claim();
    std::thread::sleep(Duration::from_millis(400));
    let guard = lock(&cache, "/", BOTH)
        .try_acquire()
        .expect("the child expired");
    let mut con = raw(&server);
    let held: Vec<String> = redis::cmd("HKEYS")
        .arg("cachelock:{cachelock-tree}:own")
        .query(&mut con)
        .unwrap();
    assert_eq!(held, ["/"], "the expired entry is gone");
    assert!(!lock(&cache, "/short", BOTH)
        .release_token(&claim.token)
        .unwrap());
    guard.release().unwrap();
}

#[test]
fn garbage_in_a_space_key_is_a_backend_error_not_a_panic() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let mut con = raw(&server);
    redis::cmd("SET")
        .arg("broken:{cachelock-tree}:own")
        .arg("not a hash")
        .query::<()>(&mut con)
        .unwrap();
    let lock = TreeLock::new("/x").cache(cache.clone()).prefix("broken:");
    assert!(lock.try_acquire().unwrap_err().is_backend());
    assert!(lock.holder().unwrap_err().is_backend());
    assert!(lock.release_token("t").unwrap_err().is_backend());
    let empty_tag = TreeLock::new("/x").cache(cache).prefix("bad{}:");
    let error = empty_tag.try_acquire().unwrap_err();
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.contains("empty hash tag"), "{source}");
}

#[test]
fn a_server_that_is_down_is_a_backend_error() {
    let mut server = RedisServer::start();
    let cache = cache(&server);
    server.stop();
    let error = lock(&cache, "/a", BOTH).try_acquire().unwrap_err();
    assert!(error.is_backend(), "{error:?}");
    assert!(matches!(error, Error::Backend { .. }));
}

#[test]
fn the_holder_is_reported_across_clients() {
    let server = RedisServer::start();
    let guard = lock(&cache(&server), "/printers/floor-2", BOTH)
        .label("timmy")
        .try_acquire()
        .unwrap();
    let holder = lock(&cache(&server), "/printers", BOTH)
        .holder()
        .unwrap()
        .expect("held");
    assert_eq!(holder.key, "/printers/floor-2");
    assert_eq!(holder.label.as_deref(), Some("timmy"));
    assert!(holder.ttl.is_some_and(|t| t <= Duration::from_secs(60)));
    guard.release().unwrap();
    assert_eq!(
        lock(&cache(&server), "/printers", BOTH).holder().unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_async_guard_is_released_in_the_background() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let guard = lock(&cache, "/bg/job", BOTH)
        .try_acquire_async()
        .await
        .unwrap();
    drop(guard);
    let parent = lock(&cache, "/bg", BOTH);
    let start = Instant::now();
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
fn renewal_keeps_a_tree_lock_for_several_ttls_on_redis() {
    let server = RedisServer::start();
    let ttl = Duration::from_millis(900);
    let guard = lock(&cache(&server), "/long", BOTH)
        .ttl(ttl)
        .try_acquire()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < ttl * 4 {
        assert!(lock(&cache(&server), "/long/x", BOTH)
            .try_acquire()
            .unwrap_err()
            .is_locked());
        assert!(!guard.is_lost());
        std::thread::sleep(ttl / 4);
    }
    guard.release().unwrap();
    eventually("the path is free after release", || {
        lock(&cache(&server), "/long/x", BOTH).try_acquire().is_ok()
    });
}

#[test]
fn cluster_passes_the_tree_conformance_suite_on_one_slot() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    tree_conformance(cache.clone()).expect("RedisClusterCache conforms");
    // The keys of a space live on one node.
    let guards: Vec<_> = ["/a/b", "/a/c", "/x", "/y/z"]
        .iter()
        .map(|p| {
            TreeLock::new(*p)
                .cache(cache.clone())
                .prefix("spread:")
                .try_acquire()
                .unwrap()
        })
        .collect();
    let per_node: Vec<usize> = cluster
        .urls()
        .iter()
        .map(|url| {
            let mut con = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg("spread:*").query(&mut con).unwrap();
            keys.len()
        })
        .collect();
    assert_eq!(
        per_node.iter().filter(|n| **n > 0).count(),
        1,
        "one node holds the space: {per_node:?}"
    );
    assert_eq!(per_node.iter().sum::<usize>(), 4, "{per_node:?}");
    for guard in guards {
        guard.release().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_passes_the_async_tree_conformance_suite() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    tree_conformance_async(cache)
        .await
        .expect("RedisClusterCache conforms (async)");
}

/// The commands the tree scripts run inside the server (not round trips).
const INSIDE_TREE_SCRIPTS: [&str; 16] = [
    "time",
    "publish",
    "zrangebyscore",
    "zremrangebyscore",
    "hdel",
    "zrem",
    "hexists",
    "hget",
    "zrangebylex",
    "get",
    "set",
    "hset",
    "zadd",
    "zrange",
    "pexpireat",
    "zscore",
];

/// How many commands of each kind the client sent while `f` ran.
fn sent_during(server: &RedisServer, f: impl FnOnce()) -> std::collections::BTreeMap<String, u64> {
    let mut admin = raw(server);
    let before = command_calls(&mut admin);
    f();
    let mut sent = delta(&before, &command_calls(&mut admin));
    sent.retain(|name, _| !INSIDE_TREE_SCRIPTS.contains(&name.as_str()));
    sent
}

#[test]
fn a_tree_lock_costs_one_round_trip_to_take_and_one_to_release() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let job = lock(&cache, "/count/job", BOTH).renew(false);
    // Load the scripts first (`SCRIPT LOAD` once per server).
    job.try_acquire().unwrap().release().unwrap();
    job.holder().unwrap();
    let evalsha = |n| std::collections::BTreeMap::from([("evalsha".to_owned(), n)]);
    assert_eq!(
        sent_during(&server, || job.try_acquire().unwrap().release().unwrap()),
        evalsha(2),
        "acquire + release"
    );
    let _held = job.try_acquire().unwrap();
    let parent = lock(&cache, "/count", BOTH);
    assert_eq!(
        sent_during(&server, || assert!(parent
            .try_acquire()
            .unwrap_err()
            .is_locked())),
        evalsha(1),
        "a refused attempt"
    );
    assert_eq!(
        sent_during(&server, || assert!(parent.holder().unwrap().is_some())),
        evalsha(1),
        "holder"
    );
}

#[test]
fn held_locks_lists_plain_locks_not_the_keys_of_a_tree_space_or_the_fence_counter() {
    let server = RedisServer::start();
    let cache = cache(&server);
    // A tree lock in the default space (the same `cachelock:` prefix plain locks use) and a
    // plain lock, which also creates the fencing counter.
    let tree = lock(&cache, "/reports/daily", BOTH)
        .try_acquire()
        .expect("tree lock");
    let plain = cachelock::Lock::new("nightly")
        .cache(cache.clone())
        .try_acquire()
        .expect("plain lock");
    for prefix in ["", "cachelock:"] {
        let listed: Vec<String> = cachelock::held_locks(&cache, prefix)
            .unwrap_or_else(|e| panic!("held_locks({prefix:?}) failed: {e}"))
            .into_iter()
            .map(|holder| holder.key)
            .collect();
        assert_eq!(listed, ["cachelock:nightly"], "prefix {prefix:?}");
    }
    drop(plain);
    drop(tree);
}

#[test]
fn a_tree_claim_resent_after_it_landed_is_its_own_grant_not_a_conflict() {
    use cachelock::{Claim, LockStore};
    let server = RedisServer::start();
    let cache = cache(&server);
    let trees = cache.trees().expect("RedisCache has tree locks");
    let ttl = Duration::from_secs(30);
    // The same claim (the same token) sent twice, as a client resends it after its
    // connection died with the first one's reply.
    let claim = Claim::new(ttl).with_label("ci");
    let first = trees
        .claim("space:", "/a/b", BOTH, &claim)
        .unwrap()
        .expect("free")
        .fence;
    let again = trees
        .claim("space:", "/a/b", BOTH, &claim)
        .unwrap()
        .map(|won| won.fence);
    assert!(again.is_some_and(|f| f >= first), "{again:?} after {first}");
    // Another claim (another token), on the path or an ancestor, is still refused.
    let other = Claim::new(ttl).with_label("ci");
    assert_ne!(other.token(), claim.token());
    assert!(trees
        .claim("space:", "/a/b", BOTH, &other)
        .unwrap()
        .is_none());
    assert!(trees.claim("space:", "/a", BOTH, &other).unwrap().is_none());
    assert!(trees
        .release("space:", "/a/b", claim.token(), None)
        .unwrap());
}

#[path = "common/tree_wake.rs"]
mod tree_wake;

#[test]
fn a_tree_waiter_gets_the_lock_on_the_published_release() {
    let server = RedisServer::start();
    tree_wake::a_waiter_gets_the_lock_on_the_release(cache(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_tree_waiter_gets_the_lock_on_the_published_release() {
    let server = RedisServer::start();
    tree_wake::an_async_waiter_gets_the_lock_on_the_release(cache(&server)).await;
}

#[test]
fn only_a_tree_release_that_could_have_blocked_a_redis_waiter_ends_its_wait() {
    let server = RedisServer::start();
    tree_wake::only_a_release_that_could_have_blocked_it_ends_a_wait(cache(&server));
}

/// The release script publishes the released path and the space's owner hash key, never a
/// token, on `cachelock:tree-released`.
#[test]
fn a_tree_release_is_published_with_its_path_and_space_key() {
    let server = RedisServer::start();
    let mut con = raw(&server);
    con.set_read_timeout(Some(tree_wake::LONG)).unwrap();
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe("cachelock:tree-released").unwrap();
    let cache = cache(&server);
    let guard = lock(&cache, "/published/x", BOTH).try_acquire().unwrap();
    guard.release().unwrap();
    let message = pubsub.get_message().expect("the release is published");
    assert_eq!(
        message.get_payload::<String>().unwrap(),
        "/published/x\ncachelock:{cachelock-tree}:own"
    );
    // A release that finds nothing to delete publishes nothing: the next message is the
    // next real release.
    assert!(!lock(&cache, "/published/x", BOTH)
        .release_token("not-the-owner")
        .unwrap());
    TreeLock::new("/published/y")
        .cache(cache.clone())
        .prefix("other:")
        .try_acquire()
        .unwrap()
        .release()
        .unwrap();
    let message = pubsub
        .get_message()
        .expect("the second release is published");
    assert_eq!(
        message.get_payload::<String>().unwrap(),
        "/published/y\nother:{cachelock-tree}:own"
    );
}

#[test]
fn a_tree_waiter_on_a_cluster_gets_the_lock_on_the_published_release() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    tree_wake::a_waiter_gets_the_lock_on_the_release(cache.clone());
    tree_wake::only_a_release_that_could_have_blocked_it_ends_a_wait(cache);
}

// ----- hold_at_least -----

/// The PTTL of the owner hash of `space` (the cache has no key prefix).
fn space_pttl(con: &mut redis::Connection, space: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(format!("{space}{{cachelock-tree}}:own"))
        .query(con)
        .unwrap()
}

#[test]
fn hold_at_least_keeps_a_path_released_early_across_clients_then_frees_it() {
    let server = RedisServer::start();
    let hold = Duration::from_secs(3);
    // The default TTL (60 s) is far longer than the polling bound (30 s).
    let job = lock(&cache(&server), "/reports/daily", BOTH).hold_at_least(hold);
    job.run(|| ()).unwrap();
    let other = cache(&server);
    assert!(lock(&other, "/reports", BOTH)
        .try_acquire()
        .unwrap_err()
        .is_locked());
    assert!(
        job.run(|| ()).unwrap_err().is_locked(),
        "not run again at once"
    );
    let mut con = raw(&server);
    let pttl = space_pttl(&mut con, "cachelock:");
    assert!(
        pttl > 0 && pttl <= hold.as_millis() as i64,
        "the TTL is cut to the rest of the window: {pttl}"
    );
    eventually("the hold window ends", || {
        lock(&other, "/reports", BOTH).try_acquire().is_ok()
    });
    // Released after its window: deleted at once.
    let late = lock(&cache(&server), "/late", BOTH)
        .hold_at_least(Duration::from_millis(50))
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    late.release().unwrap();
    let held: Vec<String> = redis::cmd("HKEYS")
        .arg("cachelock:{cachelock-tree}:own")
        .query(&mut con)
        .unwrap();
    assert!(held.is_empty(), "{held:?}");
    assert!(lock(&other, "/", BOTH).try_acquire().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_async_guard_with_hold_at_least_is_kept_in_the_background() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let hold = Duration::from_secs(3);
    let guard = lock(&cache, "/bg/job", BOTH)
        .hold_at_least(hold)
        .try_acquire_async()
        .await
        .unwrap();
    drop(guard);
    let parent = lock(&cache, "/bg", BOTH);
    assert!(parent.try_acquire_async().await.unwrap_err().is_locked());
    let start = Instant::now();
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

// ----- listing: tree::held_locks -----

#[test]
fn held_locks_lists_a_space_across_clients_and_skips_expired_entries_not_yet_purged() {
    let server = RedisServer::start();
    let app = |server: &RedisServer| {
        RedisCache::builder(&server.url())
            .key_prefix("app:")
            .build()
            .unwrap()
    };
    let jobs = |path: &str| TreeLock::new(path).cache(app(&server)).prefix("jobs:");
    let a = jobs("/b/a").label("ci-job-17").try_acquire().unwrap();
    let c = jobs("/a/c").lock_parents(false).try_acquire().unwrap();
    let short = jobs("/short")
        .ttl(Duration::from_secs(1))
        .renew(false)
        .try_acquire()
        .unwrap()
        .into_claim();
    let lister = app(&server);
    let held = cachelock::tree::held_locks(&lister, "jobs:").unwrap();
    let paths: Vec<&str> = held.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(paths, ["/a/c", "/b/a", "/short"]);
    assert_eq!(held[1].label.as_deref(), Some("ci-job-17"));
    assert_eq!(held[1].pid, Some(std::process::id()));
    assert!(held
        .iter()
        .all(|h| h.ttl.is_some_and(|t| t <= cachelock::DEFAULT_TTL)));
    let shown = format!("{held:?}");
    for token in [a.token(), c.token(), short.token.as_str()] {
        assert!(!shown.contains(token), "a token is listed: {shown}");
    }

    // Expired but not purged yet (no claim has run since): still in the hash, not listed.
    std::thread::sleep(Duration::from_millis(1300));
    let mut con = raw(&server);
    let mut stored: Vec<String> = redis::cmd("HKEYS")
        .arg("app:jobs:{cachelock-tree}:own")
        .query(&mut con)
        .unwrap();
    stored.sort();
    assert_eq!(stored, ["/a/c", "/b/a", "/short"]);
    let listed = |cache: &RedisCache| -> Vec<String> {
        cachelock::tree::held_locks(cache, "jobs:")
            .unwrap()
            .into_iter()
            .map(|h| h.key)
            .collect()
    };
    assert_eq!(listed(&lister), ["/a/c", "/b/a"]);
    a.release().unwrap();
    assert_eq!(listed(&lister), ["/a/c"]);
    c.release().unwrap();
    assert!(listed(&lister).is_empty());
    assert!(cachelock::tree::held_locks(&lister, "never-used:")
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_locks_async_lists_on_redis() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let guard = lock(&cache, "/x/y", BOTH)
        .label("async")
        .try_acquire_async()
        .await
        .unwrap();
    let held = cachelock::tree::held_locks_async(&cache, "cachelock:")
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].key.as_str(), held[0].label.as_deref()),
        ("/x/y", Some("async"))
    );
    guard.release().await.unwrap();
    assert!(cachelock::tree::held_locks_async(&cache, "cachelock:")
        .await
        .unwrap()
        .is_empty());
}

#[test]
fn listing_a_tree_space_is_one_round_trip_and_garbage_is_a_backend_error() {
    let server = RedisServer::start();
    let cache = cache(&server);
    let _held = lock(&cache, "/one", BOTH).try_acquire().unwrap();
    cachelock::tree::held_locks(&cache, "cachelock:").unwrap(); // loads the script
    assert_eq!(
        sent_during(&server, || {
            cachelock::tree::held_locks(&cache, "cachelock:").unwrap();
        }),
        std::collections::BTreeMap::from([("evalsha".to_owned(), 1)])
    );
    let mut con = raw(&server);
    redis::cmd("SET")
        .arg("broken:{cachelock-tree}:exp")
        .arg("not a sorted set")
        .query::<()>(&mut con)
        .unwrap();
    let error = cachelock::tree::held_locks(&cache, "broken:").unwrap_err();
    assert!(error.is_backend(), "{error:?}");
    assert_eq!(error.key(), Some("broken:"));
    let error = cachelock::tree::held_locks(&cache, "bad{}:").unwrap_err();
    assert!(error.is_backend(), "{error:?}");
}

#[test]
fn held_locks_lists_a_space_on_a_cluster() {
    let cluster = RedisCluster::start();
    let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
    let guards: Vec<_> = ["/a/b", "/a/c", "/x"]
        .iter()
        .map(|p| {
            TreeLock::new(*p)
                .cache(cache.clone())
                .prefix("listed:")
                .label("node")
                .try_acquire()
                .unwrap()
        })
        .collect();
    let held = cachelock::tree::held_locks(&cache, "listed:").unwrap();
    let paths: Vec<&str> = held.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(paths, ["/a/b", "/a/c", "/x"]);
    assert!(held.iter().all(|h| h.label.as_deref() == Some("node")));
    for guard in guards {
        guard.release().unwrap();
    }
    assert!(cachelock::tree::held_locks(&cache, "listed:")
        .unwrap()
        .is_empty());
}
