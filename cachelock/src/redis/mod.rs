//! The Redis and Redis Cluster backends (cargo feature `redis`; TLS with `redis-tls`).
//!
//! [`RedisCache`] serves one server, [`RedisClusterCache`] a Redis Cluster; each serves sync
//! and async code alike, and is a [`LockStore`](crate::LockStore) (with
//! [`LockAdmin`](crate::LockAdmin) and [`TreeStore`](crate::tree::TreeStore)) to hand to
//! [`Lock::cache`](crate::Lock::cache) or [`set_default_cache`](crate::set_default_cache).
//!
//! ```no_run
//! use cachelock::redis::RedisCache;
//! use cachelock::{set_default_cache, Lock};
//!
//! set_default_cache(RedisCache::from_url("redis://127.0.0.1:6379")?)?;
//! // Every Lock (and `#[once]`) now coordinates through Redis, across processes and hosts.
//! let guard = Lock::new("nightly-report").try_acquire()?;
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Connecting
//!
//! Redis 6.2 or newer (the fenced claim reads and writes its counter with `SET … GET`), or a
//! server that speaks its protocol at that level (Valkey, KeyDB, ElastiCache, MemoryDB).
//!
//! | URL | |
//! |---|---|
//! | `redis://host:6379/0` | TCP, database 0 |
//! | `redis://:password@host` | `AUTH password` (the `default` user) |
//! | `redis://user:password@host` | ACL user (`AUTH user password`, Redis 6+) |
//! | `rediss://host:6380` | TLS through rustls, platform root certificates (feature `redis-tls`) |
//! | `redis+unix:///run/redis.sock?db=1&user=u&pass=p` | a Unix socket |
//!
//! Or hand over a [`redis::Client`] / [`redis::cluster::ClusterClient`] built your way
//! (`from_client`). Passwords never appear in `Debug` output, error messages or logs: URLs
//! are shown as `redis://user:***@host`.
//!
//! # Cost: two round trips per lock
//!
//! | operation | command |
//! |---|---|
//! | claim | `EVALSHA` of a claim script (`SET key token NX PX ttl`; if it stored it, `TIME` and the fence counter's `GET` and `SET`; a refusal returns at once) |
//! | claim without a fence ([`Lock::fencing(false)`](crate::Lock::fencing), `#[once]` without `fence`) | `SET key token NX PX ttl`; sent again after a lost reply: `EVALSHA` of a script that also wins on its own value (see "Faults") |
//! | release | `EVALSHA` of a compare-and-delete script (`GET`, then `DEL` and `PUBLISH cachelock:released <key>` if it holds the token) |
//! | extend | `EVALSHA` of a compare-and-`PEXPIRE` script |
//! | holder lookup ([`Lock::holder`](crate::Lock::holder)) | `EVALSHA` of a script that answers the value and its `PTTL` |
//! | force-release | `DEL` |
//! | listing ([`held_locks`](crate::held_locks)) | `SCAN` with `MATCH <prefix>*` (on every primary of a cluster) |
//! | tree lock claim / release / extend / holder | one `EVALSHA` each (see [`crate::tree`]; the keys of a lock space share the hash tag `{cachelock-tree}`; a release that deletes also `PUBLISH`es the path and the space on `cachelock:tree-released`) |
//!
//! An uncontended acquire + release is two commands, one round trip each: the minimum for a
//! lock with an owner check. A refused attempt is one (an unfenced one on Redis Cluster: two,
//! see "Faults"), and none when the key is held through the same handle (see below). The scripts are loaded on first use
//! (`NOSCRIPT` → `SCRIPT LOAD`, once per server). Release and extend touch only their one
//! key; claim touches the lock key and the fence counter of its slot, so all of them run on
//! Redis Cluster.
//!
//! # Claims inside one process: the handle answers for its own holders
//!
//! A [`RedisCache`] or [`RedisClusterCache`] (and every clone of it) remembers the keys held
//! through it and the claims it has in flight, so it answers what the server would answer
//! without asking:
//!
//! - a claim of a key held through this handle (won, not yet released, its lease not run
//!   out: counted from before the claim was sent, less the lost margin, as the guard counts
//!   it) is refused at once, with no command sent;
//! - a claim of a key the handle is claiming right now waits for that claim's reply (at most
//!   its own reply timeout) and is refused with it: won or refused, the key is then held, by
//!   the sibling or by someone else. A claim that failed lets the waiting ones ask the server
//!   themselves. A sync claim on a tokio runtime's thread does not wait (the claim in flight
//!   might need that thread): it asks the server.
//!
//! A key held in another process (another handle) is still asked for on the server: the
//! server alone grants a key. What it changes is contention inside one process: 16 workers on
//! one key send about one claim and one release per hand-over instead of a refused script
//! per attempt, and hand the key over faster than a raw client that sends every attempt (W2
//! in `BENCHMARKS.md`). A refusal from the handle yields once (the thread, or the task to its
//! runtime), so a worker retrying in a loop does not starve the holder. A claim sent again
//! with its own token (the [`LockStore::claim`](crate::LockStore::claim) contract) goes to
//! the server as it is.
//!
//! Decision: the handle trusts its holders. If the server loses a held key (a restart
//! without persistence, a fail-over that dropped the write, a `DEL` by hand, `cachelock
//! release --force` from another process), the handle's other claims stay refused until the
//! holder releases, its renewal finds the key gone (within a third of the TTL; the guard
//! then reports the lock lost), or its lease runs out: a second worker of the same process is
//! not handed a job the first still believes it runs. Another process can take the key at
//! once, as before. A force-release through the handle itself
//! ([`LockAdmin::force_release`](crate::LockAdmin::force_release)) forgets the holder here
//! first.
//!
//! # Waiting
//!
//! A waiter in [`acquire_timeout`](crate::Lock::acquire_timeout) (or its async twin) on a
//! [`RedisCache`] wakes when the holder releases: the release script publishes the key on
//! the channel `cachelock:released`, and the first wait of a `RedisCache` starts one
//! background thread with one extra connection subscribed to it. Polling with backoff
//! remains the fallback (a message lost, the subscription down, an expiry: the backoff
//! pause bounds the wait). `cargo run --release --features redis --example wake_latency`
//! measures it: release → acquired in about 0.2–0.5 ms instead of 1–40 ms of polling. On
//! [`RedisClusterCache`] the same: Redis Cluster relays a `PUBLISH` to every node, so the
//! cache subscribes on one of the nodes it was given (not with `from_client`, whose waiters
//! poll).
//!
//! Tree lock waiters ([`TreeLock::acquire_timeout`](crate::tree::TreeLock::acquire_timeout))
//! use the same subscriber: the tree release script publishes `<path>\n<space owner hash
//! key>` (`<prefix><space>{cachelock-tree}:own`) on `cachelock:tree-released`, which wakes the
//! space's waiters; one retries its claim only if the released path could have blocked it.
//!
//! # Fencing tokens
//!
//! The claim script returns the lock's fencing token ([`Guard::fence`](crate::Guard::fence)):
//! `max(counter + 1, server time in µs)`, stored back into the counter, in the same script
//! as the `SET NX`. Scripts run one at a time and every key maps to one counter, so the
//! fences of a key strictly increase, across expiry and across every client. The counters
//! are few and bounded, never one per lock: standalone Redis has one key,
//! `<prefix>cachelock-fence`; Redis Cluster one per hash slot ever used (at most 16,384),
//! `<prefix>cachelock-fence:{<tag>}`, with `<tag>` chosen to hash to the lock key's slot
//! (whatever hash tag the lock key carries; with a prefix that contains `{`, the counter
//! drops the prefix). Counters have no TTL. Should one vanish anyway (`FLUSHALL`, eviction
//! under an `allkeys-*` policy, a failover that lost the last writes), the server-time floor
//! still keeps new fences above old ones, unless the server clock went back. Allow the
//! counter keys in ACL key patterns (`~cachelock-fence*` or your prefix).
//!
//! The script costs server time: a won claim ≈11 µs against ≈2.6 µs for a plain `SET NX PX`,
//! a refused one ≈3 µs (it returns before touching the counter); measured with `INFO
//! commandstats` on redis-server 7.0, see `BENCHMARKS.md`. Counted rather than timed
//! (`benches/redis_script_instructions.sh`), a won claim is 49,300 server instructions, a
//! bare `SET NX PX` 11,200: being a script at all costs ≈18,500 of the difference, the clock
//! read (`TIME`) and the counter's `SET … GET` most of the rest (the three calls alone,
//! 45,800, are the floor of any claim that reads the server's clock and a counter). On a
//! loopback where an acquire + release (two round trips) takes ~50 µs, that is most of the
//! distance between the fenced `Lock` and the two-command floor (the bench prints it as the
//! ratio of the raw client sending cachelock's own scripts to that floor); over a real
//! network it fades. A lock whose holders never use the fence can skip it with
//! [`Lock::fencing(false)`](crate::Lock::fencing): the claim is then a plain
//! `SET key token NX PX ttl`, the counter is not touched, and the guard's fence is 0.
//!
//! # Faults
//!
//! | what happens | what you get |
//! |---|---|
//! | server down or unreachable | [`Error::Backend`](crate::Error::Backend), after at most the connect timeout (sync) or connect + response timeouts (async) |
//! | server slow or paused | [`Error::Backend`](crate::Error::Backend) with [`is_timeout`](crate::Error::is_timeout) true, after the response timeout (never more than the TTL for claim and extend) |
//! | server restarted | nothing: a dead connection is replaced and the command sent once more |
//! | connection cut after the server ran a claim (its reply lost) | the claim sent again finds the key holding its own value and wins, instead of reporting the key held (by nobody) for a whole TTL. A claim that is not sent again (its connection was new, or the reply timed out) returns `Error::Backend`, and `Lock`/`TreeLock` give it back with an owner-checked release in the background, in case it landed. The tree claim script checks this itself; the plain claims' first sends stay the cheap ones (the fenced script that returns at once on a refusal, or a plain `SET NX PX`), and only their resend is a script that checks. The cluster client resends by itself without telling, so on [`RedisClusterCache`] a refused claim is asked again in that form: one more round trip, on refusals only |
//! | server gone while a lock is held | `release` returns [`Error::Backend`](crate::Error::Backend); a guard's `Drop` logs it and never hangs; the key expires with its TTL (a fresh server has no key anyway) |
//! | another value or type at the key | claim is refused ([`Error::Locked`](crate::Error::Locked)); release and extend touch nothing ([`Error::LockLost`](crate::Error::LockLost)) |
//!
//! Nothing here panics on a failure. A cache value survives every fault: no need to rebuild
//! it after an outage.

mod cluster;
mod command;
mod config;
mod core;
mod exec;
mod fence;
mod listing;
mod ops;
mod pool;
mod runtime;
mod scripts;
mod standalone;
mod store;
mod subscriber;
mod tree;
mod tree_wake;

pub use cluster::{RedisClusterCache, RedisClusterCacheBuilder};
pub use config::{
    redact_url, ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IDLE_CONNECTIONS,
    DEFAULT_RESPONSE_TIMEOUT,
};
pub use standalone::{RedisCache, RedisCacheBuilder};

/// The text of the claim and release scripts, for the benchmarks that send them without
/// cachelock around them (to tell the scripts' server time from the client's overhead).
/// Not a stable API.
#[doc(hidden)]
pub mod script_text {
    /// The claim script: `KEYS[1]` the lock, `KEYS[2]` the fence counter, `ARGV[1]` the
    /// owner value, `ARGV[2]` the TTL in ms.
    pub const CLAIM: &str = super::scripts::CLAIM;
    /// The release script: `KEYS[1]` the lock, `ARGV[1]` the owner token, `ARGV[2]` (may be
    /// left out) the owner's whole stored value, compared first.
    pub const RELEASE: &str = super::scripts::RELEASE;
}

/// Makes sure rustls has a crypto provider (ring) before a TLS connection needs one.
///
/// rustls refuses to pick one by itself when none or several are compiled in; installing
/// ours is a no-op when the application already installed its own.
fn prepare_tls() {
    #[cfg(feature = "redis-tls")]
    {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Opens a `redis://`, `rediss://` or `redis+unix://` URL (see
/// [`store_from_url`](crate::store_from_url)).
pub(crate) fn open_url(url: &str) -> Result<std::sync::Arc<dyn crate::LockStore>, crate::BoxError> {
    Ok(std::sync::Arc::new(RedisCache::from_url(url)?))
}

/// Opens a `redis-cluster://[user:pass@]host1:port1,host2:port2[/...]` URL (or
/// `rediss-cluster://`): one `redis://` node URL per host, with the same credentials.
pub(crate) fn open_cluster_url(
    url: &str,
) -> Result<std::sync::Arc<dyn crate::LockStore>, crate::BoxError> {
    Ok(std::sync::Arc::new(RedisClusterCache::from_urls(
        cluster_nodes(url)?,
    )?))
}

/// The node URLs of a `redis-cluster://` URL.
fn cluster_nodes(url: &str) -> Result<Vec<String>, crate::BoxError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("a Redis Cluster URL looks like redis-cluster://host1:7000,host2:7000")?;
    let node_scheme = if scheme.eq_ignore_ascii_case("rediss-cluster") {
        "rediss"
    } else {
        "redis"
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|host| !host.is_empty())
        .map(|host| format!("{node_scheme}://{userinfo}{host}{tail}"))
        .collect();
    if nodes.is_empty() {
        return Err(
            "a Redis Cluster URL names at least one node: redis-cluster://host1:7000,host2:7000"
                .into(),
        );
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::cluster_nodes;

    #[test]
    fn a_cluster_url_gives_one_node_url_per_host_with_the_credentials() {
        assert_eq!(
            cluster_nodes("redis-cluster://u:p@a:7000,b:7001").unwrap(),
            ["redis://u:p@a:7000", "redis://u:p@b:7001"]
        );
        assert_eq!(
            cluster_nodes("rediss-cluster://a:1/?protocol=resp3").unwrap(),
            ["rediss://a:1/?protocol=resp3"]
        );
        assert!(cluster_nodes("redis-cluster://").is_err());
    }
}
