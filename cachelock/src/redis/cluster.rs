//! [`RedisClusterCache`]: Redis Cluster, sync and async.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConfig};
use redis::{IntoConnectionInfo, RedisResult};

use super::config::{redact_url, settings_setters, ConfigError, Settings};
use super::core::{Backend, Core};
use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::TreeStore;

/// How many times the cluster client retries a command that hit a moved slot or a node
/// that is failing over, before the error reaches the caller.
const CLUSTER_RETRIES: u32 = 3;

pub(crate) struct Cluster {
    client: ClusterClient,
    /// The nodes it was given, for the release subscription (none with `from_client`: the
    /// client does not tell them).
    nodes: Vec<redis::ConnectionInfo>,
    /// The node the next subscription tries: after a failure, the next one.
    next_subscriber: AtomicUsize,
}

impl Cluster {
    fn new(client: ClusterClient, nodes: Vec<redis::ConnectionInfo>) -> Self {
        Cluster {
            client,
            nodes,
            next_subscriber: AtomicUsize::new(0),
        }
    }
}

impl Backend for Cluster {
    type Sync = redis::cluster::ClusterConnection;
    type Async = redis::cluster_async::ClusterConnection;
    const CLUSTER: bool = true;
    /// Both cluster clients send a command again after a dropped connection (up to
    /// [`CLUSTER_RETRIES`] times), without telling.
    const RESENDS_BY_ITSELF: bool = true;

    fn connect(&self, _settings: &Settings) -> RedisResult<Self::Sync> {
        // The client carries the timeouts (see `build`).
        self.client.get_connection()
    }

    /// `PUBLISH` on Redis Cluster reaches every node, so waiters subscribe on any one of
    /// the nodes the cache was given (the next one after a failure).
    fn subscriber(&self, settings: &Settings) -> Option<RedisResult<redis::Connection>> {
        if self.nodes.is_empty() {
            return None;
        }
        let at = self.next_subscriber.fetch_add(1, Ordering::Relaxed) % self.nodes.len();
        Some(
            redis::Client::open(self.nodes[at].clone())
                .and_then(|client| client.get_connection_with_timeout(settings.connect_timeout)),
        )
    }

    fn subscribes(&self) -> bool {
        !self.nodes.is_empty()
    }

    fn connect_async(&self, settings: &Settings) -> RedisResult<Self::Async> {
        let config = ClusterConfig::new()
            .set_connection_timeout(settings.connect_timeout)
            .set_response_timeout(settings.response_timeout);
        Ok(self.client.get_pending_async_connection_with_config(config))
    }

    fn scan(con: &mut Self::Sync, pattern: &str) -> RedisResult<Vec<String>> {
        super::listing::scan_cluster(con, pattern)
    }

    fn scan_async<'a>(
        con: &'a mut Self::Async,
        pattern: &'a str,
    ) -> BoxFuture<'a, RedisResult<Vec<String>>> {
        super::listing::scan_cluster_async(con, pattern)
    }
}

/// A [`LockStore`] on a Redis Cluster, for sync and async code alike.
///
/// Every lock operation touches exactly one key (`SET NX PX`, and scripts given only
/// `KEYS[1]`), so it runs on whichever node owns the key's slot; locks on many keys spread
/// over the whole cluster. Slot moves and fail-overs are followed by the redis crate's
/// cluster client (`MOVED`/`ASK` redirections, topology refresh).
///
/// ```no_run
/// use cachelock::redis::RedisClusterCache;
/// use cachelock::Lock;
///
/// let cache = RedisClusterCache::from_urls([
///     "redis://redis-a.example:7000",
///     "redis://redis-b.example:7000",
///     "redis://redis-c.example:7000",
/// ])?;
/// let guard = Lock::new("nightly-report").cache(cache.clone()).try_acquire()?;
/// guard.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The settings, timeouts and fault behaviour are those of
/// [`RedisCache`](super::RedisCache); the sync side pools whole cluster connections (one
/// socket per node each), the async side keeps one cluster connection per tokio runtime.
///
/// Waiters ([`acquire_timeout`](crate::Lock::acquire_timeout)) wake on a release: the
/// release script's `PUBLISH` reaches every node of a cluster, and the cache subscribes on
/// one of the nodes it was given (one background thread and connection, on the first wait;
/// the next node after a failure). Polling with backoff stays the fallback, and is all a
/// cache made [`from_client`](RedisClusterCache::from_client) does (the client does not
/// tell its nodes).
///
/// A lock on Redis Cluster is as strong as the node that holds its slot: with asynchronous
/// replication, a primary that fails right after granting a lock may hand over to a replica
/// that never saw it. Size TTLs and fail-over times with that in mind.
#[derive(Clone)]
pub struct RedisClusterCache {
    core: Core<Cluster>,
}

/// Every operation is the shared Redis core's (`redis/store.rs`).
impl LockStore for RedisClusterCache {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        LockStore::claim(&self.core, key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        LockStore::claim_async(&self.core, key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        LockStore::release(&self.core, key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        LockStore::release_async(&self.core, key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        LockStore::extend(&self.core, key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        LockStore::extend_async(&self.core, key, token, ttl, handle)
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        LockStore::wait_for_release(&self.core, key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        LockStore::wait_for_release_async(&self.core, key, pause)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(&self.core)
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(&self.core)
    }
}

impl RedisClusterCache {
    /// A cache on the cluster reachable through `urls` (any subset of its nodes), with the
    /// default settings.
    pub fn from_urls<I, S>(urls: I) -> Result<RedisClusterCache, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisClusterCache::builder(urls).build()
    }

    /// A builder for a cache on the cluster reachable through `urls`.
    pub fn builder<I, S>(urls: I) -> RedisClusterCacheBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        super::prepare_tls();
        let mut targets = Vec::new();
        let mut nodes = Ok(Vec::new());
        for url in urls {
            let url = url.as_ref();
            targets.push(redact_url(url));
            match (url.into_connection_info(), &mut nodes) {
                (Ok(info), Ok(nodes)) => nodes.push(info),
                (Err(error), Ok(_)) => nodes = Err(ConfigError::url(url, &error)),
                (_, Err(_)) => {}
            }
        }
        if matches!(&nodes, Ok(nodes) if nodes.is_empty()) {
            nodes = Err(ConfigError::new(
                "a Redis Cluster needs at least one node URL",
            ));
        }
        RedisClusterCacheBuilder {
            nodes,
            target: targets.join(", "),
            settings: Settings::default(),
        }
    }

    /// A cache on a [`ClusterClient`] you already have, with its own timeouts for the sync
    /// side; the async side and the per-operation bounds use the default settings.
    pub fn from_client(client: ClusterClient) -> RedisClusterCache {
        super::prepare_tls();
        RedisClusterCache {
            core: Core::new(
                Cluster::new(client, Vec::new()),
                Settings::default(),
                "redis cluster (from a ClusterClient)".to_owned(),
            ),
        }
    }

    /// How many idle sync cluster connections the pool holds right now.
    pub fn idle_connections(&self) -> usize {
        self.core.idle_connections()
    }
}

impl std::fmt::Debug for RedisClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = self.core.settings();
        f.debug_struct("RedisClusterCache")
            .field("nodes", &self.core.target())
            .field("connect_timeout", &settings.connect_timeout)
            .field("response_timeout", &settings.response_timeout)
            .field("key_prefix", &settings.key_prefix)
            .field("idle_connections", &self.core.idle_connections())
            .finish()
    }
}

/// Settings for a [`RedisClusterCache`]; made by [`RedisClusterCache::builder`].
///
/// The same settings and defaults as [`RedisCacheBuilder`](super::RedisCacheBuilder).
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisClusterCacheBuilder {
    nodes: Result<Vec<redis::ConnectionInfo>, ConfigError>,
    target: String,
    settings: Settings,
}

settings_setters!(RedisClusterCacheBuilder);

impl RedisClusterCacheBuilder {
    /// Builds the cache. Connects nothing yet: the first operation does.
    pub fn build(self) -> Result<RedisClusterCache, ConfigError> {
        self.settings.check()?;
        let nodes = self.nodes?;
        let client = ClusterClient::builder(nodes.clone())
            .connection_timeout(self.settings.connect_timeout)
            .response_timeout(self.settings.response_timeout)
            .retries(CLUSTER_RETRIES)
            .build()
            .map_err(|e| ConfigError::cluster(&self.target, &e))?;
        Ok(RedisClusterCache {
            core: Core::new(Cluster::new(client, nodes), self.settings, self.target),
        })
    }
}
