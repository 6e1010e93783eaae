//! [`RedisCache`]: one Redis server (or a primary behind a proxy), sync and async.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;

use super::config::{describe, redact_url, settings_setters, ConfigError, Settings};
use super::core::{Backend, Core};
use crate::claim::{Claim, Claimed, Handle};
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::TreeStore;

pub(crate) struct Standalone {
    client: redis::Client,
}

impl Backend for Standalone {
    type Sync = redis::Connection;
    type Async = ConnectionManager;
    const CLUSTER: bool = false;
    /// Neither the sync connection nor the `ConnectionManager` sends a command again: only
    /// the core does, once, in the operation's resent form.
    const RESENDS_BY_ITSELF: bool = false;

    fn connect(&self, settings: &Settings) -> RedisResult<redis::Connection> {
        self.client
            .get_connection_with_timeout(settings.connect_timeout)
    }

    fn subscriber(&self, settings: &Settings) -> Option<RedisResult<redis::Connection>> {
        Some(
            self.client
                .get_connection_with_timeout(settings.connect_timeout),
        )
    }

    fn subscribes(&self) -> bool {
        true
    }

    fn connect_async(&self, settings: &Settings) -> RedisResult<ConnectionManager> {
        // One reconnect attempt per failure, quickly: the operation's own timeout bounds the
        // wait, and a lock attempt is better refused fast than late.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        ConnectionManager::new_lazy_with_config(self.client.clone(), config)
    }

    fn scan(con: &mut redis::Connection, pattern: &str) -> RedisResult<Vec<String>> {
        super::listing::scan(con, pattern)
    }

    fn scan_async<'a>(
        con: &'a mut ConnectionManager,
        pattern: &'a str,
    ) -> BoxFuture<'a, RedisResult<Vec<String>>> {
        super::listing::scan_async(con, pattern)
    }
}

/// A [`LockStore`] on one Redis server, for sync and async code alike.
///
/// ```no_run
/// use cachelock::redis::RedisCache;
/// use cachelock::Lock;
///
/// let cache = RedisCache::from_url("redis://127.0.0.1:6379/0")?;
/// let guard = Lock::new("nightly-report").cache(cache.clone()).try_acquire()?;
/// // ... the work; any process using the same Redis is refused meanwhile ...
/// guard.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Connecting
///
/// From a URL ([`from_url`](RedisCache::from_url), [`builder`](RedisCache::builder)):
/// `redis://[user[:password]@]host[:port][/db]`, `rediss://...` for TLS (cargo feature
/// `redis-tls`), `redis+unix:///path/to/socket[?db=N&user=U&pass=P]`. Or from a
/// [`redis::Client`] you already have ([`from_client`](RedisCache::from_client)). Nothing
/// is connected until the first operation, so building never fails on a server that is down.
///
/// # Sync and async
///
/// - Sync methods use a pool: each thread takes an idle connection (or opens one), so
///   threads never queue behind each other; up to
///   [`max_idle_connections`](RedisCacheBuilder::max_idle_connections) are kept.
/// - Async methods use the redis crate's `ConnectionManager`, one per tokio runtime: a
///   multiplexed connection that reconnects by itself after the server went away (a bare
///   multiplexed connection never recovers, redis-rs issue 1190). No runtime thread ever
///   blocks. The runtime must have its timer enabled (`enable_all`, or `#[tokio::main]`).
/// - An [`AsyncGuard`](crate::AsyncGuard) dropped without `release().await` releases in the
///   background: spawned on the current runtime, or on a short-lived thread outside one.
///
/// Clones are cheap and share the pool and connections.
///
/// # Faults
///
/// Every operation is bounded: opening a connection by the connect timeout, a reply by the
/// response timeout, and `claim`/`extend` never by more than the lock's TTL. A timeout is
/// an error for which [`Error::is_timeout`](crate::Error::is_timeout) is true. A connection
/// found dead (the server restarted) is replaced and the command sent once more, so the
/// first operation after a restart succeeds on the same cache value. See the
/// [module docs](crate::redis) for the rest.
#[derive(Clone)]
pub struct RedisCache {
    core: Core<Standalone>,
}

/// Every operation is the shared Redis core's (`redis/store.rs`).
impl LockStore for RedisCache {
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

impl RedisCache {
    /// A cache on the server at `url`, with the default settings.
    ///
    /// Fails only if the URL does not parse (or names a scheme whose feature is off); the
    /// error shows the URL with its password redacted.
    pub fn from_url(url: &str) -> Result<RedisCache, ConfigError> {
        RedisCache::builder(url).build()
    }

    /// A builder for a cache on the server at `url`, to change the settings.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cachelock::redis::RedisCache;
    ///
    /// let cache = RedisCache::builder("redis://:secret@redis.example:6379/2")
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .response_timeout(Duration::from_millis(250))
    ///     .build()?;
    /// # Ok::<(), cachelock::redis::ConfigError>(())
    /// ```
    pub fn builder(url: &str) -> RedisCacheBuilder {
        super::prepare_tls();
        let client = redis::Client::open(url).map_err(|e| ConfigError::url(url, &e));
        RedisCacheBuilder {
            target: redact_url(url),
            client,
            settings: Settings::default(),
        }
    }

    /// A cache on a [`redis::Client`] you already have, with the default settings.
    pub fn from_client(client: redis::Client) -> RedisCache {
        super::prepare_tls();
        let target = describe(client.get_connection_info());
        RedisCache {
            core: Core::new(Standalone { client }, Settings::default(), target),
        }
    }

    /// A builder for a cache on a [`redis::Client`] you already have.
    pub fn builder_from_client(client: redis::Client) -> RedisCacheBuilder {
        super::prepare_tls();
        RedisCacheBuilder {
            target: describe(client.get_connection_info()),
            client: Ok(client),
            settings: Settings::default(),
        }
    }

    /// How many idle sync connections the pool holds right now.
    pub fn idle_connections(&self) -> usize {
        self.core.idle_connections()
    }
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = self.core.settings();
        f.debug_struct("RedisCache")
            .field("target", &self.core.target())
            .field("connect_timeout", &settings.connect_timeout)
            .field("response_timeout", &settings.response_timeout)
            .field("key_prefix", &settings.key_prefix)
            .field("idle_connections", &self.core.idle_connections())
            .finish()
    }
}

/// Settings for a [`RedisCache`]; made by [`RedisCache::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`connect_timeout`](RedisCacheBuilder::connect_timeout) | [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) (2 s) |
/// | [`response_timeout`](RedisCacheBuilder::response_timeout) | [`DEFAULT_RESPONSE_TIMEOUT`](super::DEFAULT_RESPONSE_TIMEOUT) (2 s), and never more than a lock's TTL |
/// | [`max_idle_connections`](RedisCacheBuilder::max_idle_connections) | [`DEFAULT_MAX_IDLE_CONNECTIONS`](super::DEFAULT_MAX_IDLE_CONNECTIONS) (16) |
/// | [`key_prefix`](RedisCacheBuilder::key_prefix) | none (a [`Lock`](crate::Lock) already puts `cachelock:` in front) |
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisCacheBuilder {
    client: Result<redis::Client, ConfigError>,
    target: String,
    settings: Settings,
}

settings_setters!(RedisCacheBuilder);

impl RedisCacheBuilder {
    /// Builds the cache. Connects nothing yet: the first operation does.
    ///
    /// Fails if the URL did not parse or a timeout is zero.
    pub fn build(self) -> Result<RedisCache, ConfigError> {
        self.settings.check()?;
        let client = self.client?;
        Ok(RedisCache {
            core: Core::new(Standalone { client }, self.settings, self.target),
        })
    }
}
