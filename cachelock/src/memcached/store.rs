//! [`MemcachedCache`]: the public store, its builder, the executor of every operation (sync
//! on the pool, async on the runtime's pool, one resend after a dead connection) and the
//! store traits.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::{ConfigError, Settings, Target};
use super::conn::{is_dead, now, AsyncConn, SyncConn};
use super::keys::memcached_key;
use super::ops::{execute, Grant, Known, Op, Outcome};
use super::pool::{AsyncPools, SyncPool};
use crate::claim::{Claim, Claimed, Handle};
use crate::error::BoxError;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};

/// Entries of the known-CAS table beyond which expired ones are dropped, and beyond which
/// (all live) the table is emptied: the operations then read before they compare.
const KNOWN_PRUNE: usize = 1_024;
const KNOWN_MAX: usize = 16_384;

/// A [`LockStore`] on one memcached server (1.6.13 or later), for sync and async code alike.
///
/// ```no_run
/// use cachelock::memcached::MemcachedCache;
/// use cachelock::Lock;
///
/// let cache = MemcachedCache::from_url("memcache://127.0.0.1:11211")?;
/// let guard = Lock::new("nightly-report").cache(cache.clone()).try_acquire()?;
/// // ... the work; any process using the same memcached is refused meanwhile ...
/// guard.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Connecting
///
/// [`from_url`](MemcachedCache::from_url) or [`builder`](MemcachedCache::builder) with
/// `memcache://[user:password@]host[:port]` (or `memcached://`; port 11211 by default). A
/// user and password are sent with memcached's ASCII authentication (a server started with
/// `-Y authfile`); the password never appears in `Debug` output, errors or logs. One server
/// per store: keys are not sharded over several. Nothing is connected until the first
/// operation, so building never fails on a server that is down.
///
/// # Sync and async
///
/// - Sync methods take an idle connection from a pool (or open one), so threads never queue
///   behind each other; up to
///   [`max_idle_connections`](MemcachedCacheBuilder::max_idle_connections) are kept. They
///   block their thread only; called on a tokio runtime thread they work, without panicking.
/// - Async methods use tokio sockets, from a pool per tokio runtime; no runtime thread ever
///   blocks. The runtime must have its I/O driver and timer enabled (`enable_all`, or
///   `#[tokio::main]`).
///
/// Clones are cheap and share the pools.
///
/// # Faults
///
/// Every operation is bounded: opening a connection (TCP, authentication, handshake) by the
/// connect timeout, each reply by the response timeout, and `claim`/`extend` never by more
/// than the lock's TTL. A timeout is an error for which
/// [`Error::is_timeout`](crate::Error::is_timeout) is true. A pooled connection found dead
/// (the server restarted) is replaced and the operation sent once more, so the first
/// operation after a restart succeeds on the same store value. See the
/// [module docs](crate::memcached) for the rest.
#[derive(Clone)]
pub struct MemcachedCache {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    settings: Settings,
    /// The key of the run marker, with the store's key prefix.
    marker: String,
    pool: SyncPool,
    async_pools: AsyncPools,
    /// What this store stored at the keys it holds (CAS, value, server run), so that release
    /// and extend compare the CAS in one exchange.
    known: Mutex<HashMap<String, Held>>,
}

struct Held {
    token: String,
    known: Known,
    /// After this the item has expired: the entry is useless.
    until: Instant,
}

/// An operation that failed: which, on which server (password hidden), and the I/O error.
#[derive(Debug)]
struct MemcachedError {
    op: &'static str,
    target: String,
    source: io::Error,
}

impl std::fmt::Display for MemcachedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memcached {} on {} failed: {}",
            self.op, self.target, self.source
        )
    }
}

impl std::error::Error for MemcachedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn unexpected_outcome(op: &'static str) -> BoxError {
    format!("internal error: memcached {op} returned another operation's outcome").into()
}

impl Inner {
    fn error(&self, op: &Op<'_>, source: io::Error) -> BoxError {
        Box::new(MemcachedError {
            op: op.name(),
            target: self.target.display(),
            source,
        })
    }

    /// The key as sent to memcached: the store's prefix, then mapped (see `keys.rs`).
    fn key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        if self.settings.key_prefix.is_empty() {
            memcached_key(key)
        } else {
            Cow::Owned(memcached_key(&format!("{}{key}", self.settings.key_prefix)).into_owned())
        }
    }

    fn connect(&self) -> io::Result<SyncConn> {
        SyncConn::open(&self.target, &self.marker, self.settings.connect_timeout)
    }

    async fn connect_async(&self) -> io::Result<AsyncConn> {
        AsyncConn::open(&self.target, &self.marker, self.settings.connect_timeout).await
    }

    /// Runs `op` on a pooled connection; if the connection turns out dead, once more on a
    /// fresh one, as a resend (the first send may have run, its reply lost).
    fn run(&self, op: &Op<'_>) -> CacheResult<Outcome> {
        let timeout = self.settings.reply_timeout(op.lock_ttl());
        let outcome = match self.pool.take() {
            Some(mut con) => match now(execute(&mut con, op, false, timeout)) {
                Ok(outcome) => {
                    self.pool.put(con);
                    Ok(outcome)
                }
                Err(error) if is_dead(&error) => {
                    tracing::debug!(%error, "pooled memcached connection is dead; retrying on a new one");
                    drop(con);
                    // The other idle connections went to the same server: likely dead too.
                    self.pool.clear();
                    self.run_fresh(op, timeout, true)
                }
                Err(error) => Err(error),
            },
            None => self.run_fresh(op, timeout, false),
        };
        outcome.map_err(|e| self.error(op, e))
    }

    fn run_fresh(&self, op: &Op<'_>, timeout: Duration, resent: bool) -> io::Result<Outcome> {
        let mut con = self.connect()?;
        let outcome = now(execute(&mut con, op, resent, timeout))?;
        self.pool.put(con);
        Ok(outcome)
    }

    /// Async twin of [`run`](Inner::run), on the current runtime's pool, with the same
    /// resend, and never longer than the lock's TTL for claim and extend.
    async fn run_async(&self, op: &Op<'_>) -> CacheResult<Outcome> {
        let settings = &self.settings;
        let timeout = settings.reply_timeout(op.lock_ttl());
        let attempt = async {
            let runtime = AsyncPools::runtime()?;
            match self.async_pools.take(runtime) {
                Some(mut con) => match execute(&mut con, op, false, timeout).await {
                    Ok(outcome) => {
                        self.async_pools.put(runtime, con);
                        Ok(outcome)
                    }
                    Err(error) if is_dead(&error) => {
                        tracing::debug!(%error, "pooled memcached connection is dead; retrying on a new one");
                        drop(con);
                        self.async_pools.clear(runtime);
                        self.run_fresh_async(runtime, op, timeout, true).await
                    }
                    Err(error) => Err(error),
                },
                None => self.run_fresh_async(runtime, op, timeout, false).await,
            }
        };
        let outcome = match settings.operation_limit(op.lock_ttl()) {
            None => attempt.await,
            Some(limit) => match tokio::time::timeout(limit, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("memcached {} timed out after {limit:?}", op.name()),
                )),
            },
        };
        outcome.map_err(|e| self.error(op, e))
    }

    async fn run_fresh_async(
        &self,
        runtime: tokio::runtime::Id,
        op: &Op<'_>,
        timeout: Duration,
        resent: bool,
    ) -> io::Result<Outcome> {
        let mut con = self.connect_async().await?;
        let outcome = execute(&mut con, op, resent, timeout).await?;
        self.async_pools.put(runtime, con);
        Ok(outcome)
    }

    fn known(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What this store stored at `key` for `token`, if it remembers.
    fn known_for(&self, key: &str, token: &str) -> Option<Known> {
        self.known()
            .get(key)
            .filter(|held| held.token == token)
            .map(|held| held.known.clone())
    }

    fn remember(&self, key: &str, token: &str, value: &str, ttl: Duration, grant: Grant) {
        let until = Instant::now() + ttl + Duration::from_secs(2);
        let mut known = self.known();
        if known.len() >= KNOWN_PRUNE && !known.contains_key(key) {
            let now = Instant::now();
            known.retain(|_, held| held.until > now);
            if known.len() >= KNOWN_MAX {
                known.clear();
            }
        }
        known.insert(
            key.to_owned(),
            Held {
                token: token.to_owned(),
                known: Known {
                    cas: grant.cas,
                    run: grant.session.run,
                    value: value.to_owned(),
                },
                until,
            },
        );
    }

    /// After an extend by `token`: the item's new CAS and run.
    fn extended(&self, key: &str, token: &str, ttl: Duration, grant: Grant) {
        if let Some(held) = self.known().get_mut(key).filter(|h| h.token == token) {
            held.known.cas = grant.cas;
            held.known.run = grant.session.run;
            held.until = Instant::now() + ttl + Duration::from_secs(2);
        }
    }

    /// Forgets `key` (held by `token`, or by anyone).
    fn forget(&self, key: &str, token: Option<&str>) {
        let mut known = self.known();
        if known
            .get(key)
            .is_some_and(|held| token.is_none_or(|t| held.token == t))
        {
            known.remove(key);
        }
    }

    fn claimed(
        &self,
        key: &str,
        claim: &Claim<'_>,
        value: &str,
        outcome: Outcome,
    ) -> CacheResult<Option<Claimed>> {
        match outcome {
            Outcome::Claimed(Some(grant)) => {
                self.remember(key, claim.token(), value, claim.ttl(), grant);
                let fence = if claim.fencing() { grant.fence() } else { 0 };
                Ok(Some(Claimed::new(fence)))
            }
            Outcome::Claimed(None) => Ok(None),
            _ => Err(unexpected_outcome("claim")),
        }
    }

    fn released(&self, key: &str, token: &str, outcome: Outcome) -> CacheResult<bool> {
        match outcome {
            Outcome::Released(released) => {
                self.forget(key, Some(token));
                Ok(released)
            }
            _ => Err(unexpected_outcome("release")),
        }
    }

    fn extend_done(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        outcome: Outcome,
    ) -> CacheResult<bool> {
        match outcome {
            Outcome::Extended(Some(grant)) => {
                self.extended(key, token, ttl, grant);
                Ok(true)
            }
            Outcome::Extended(None) => {
                self.forget(key, Some(token));
                Ok(false)
            }
            _ => Err(unexpected_outcome("extend")),
        }
    }
}

fn holder_of(outcome: Outcome) -> CacheResult<Option<(String, Option<Duration>)>> {
    match outcome {
        Outcome::Holder(holder) => Ok(holder),
        _ => Err(unexpected_outcome("holder lookup")),
    }
}

/// The listing's error: memcached has no way to list keys.
fn no_listing() -> BoxError {
    "memcached cannot list its keys: the memcached store has no listing (held_locks); look a key up with Lock::holder".into()
}

impl LockStore for MemcachedCache {
    /// `ms <key> <len> T<exp> ME c`: stored only if the key is absent; the CAS it answers
    /// makes the fence.
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let inner = &*self.inner;
        let key = inner.key(key);
        let value = claim.owner_value();
        let op = Op::Claim {
            key: &key,
            value: &value,
            token: claim.token(),
            ttl: claim.ttl(),
        };
        let outcome = inner.run(&op)?;
        inner.claimed(&key, claim, &value, outcome)
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let key = inner.key(key);
            let value = claim.owner_value();
            let op = Op::Claim {
                key: &key,
                value: &value,
                token: claim.token(),
                ttl: claim.ttl(),
            };
            let outcome = inner.run_async(&op).await?;
            inner.claimed(&key, claim, &value, outcome)
        })
    }

    /// `md <key> C<cas>` with the claim's CAS; else `mg` + `md C<cas>`.
    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        let inner = &*self.inner;
        let key = inner.key(key);
        let op = Op::Release {
            key: &key,
            token,
            known: inner.known_for(&key, token),
        };
        let outcome = inner.run(&op)?;
        inner.released(&key, token, outcome)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let key = inner.key(key);
            let op = Op::Release {
                key: &key,
                token,
                known: inner.known_for(&key, token),
            };
            let outcome = inner.run_async(&op).await?;
            inner.released(&key, token, outcome)
        })
    }

    /// `ms <key> <len> T<exp> C<cas> c` with the claim's value and CAS; else `mg` + `ms C<cas>`.
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let inner = &*self.inner;
        let key = inner.key(key);
        let op = Op::Extend {
            key: &key,
            token,
            ttl,
            known: inner.known_for(&key, token),
        };
        let outcome = inner.run(&op)?;
        inner.extend_done(&key, token, ttl, outcome)
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let key = inner.key(key);
            let op = Op::Extend {
                key: &key,
                token,
                ttl,
                known: inner.known_for(&key, token),
            };
            let outcome = inner.run_async(&op).await?;
            inner.extend_done(&key, token, ttl, outcome)
        })
    }

    /// 2 s: memcached counts TTLs in whole seconds on a clock that ticks once a second, so a
    /// TTL is rounded up and one second added, and a lock lives up to 2 s past its TTL (never
    /// less than its TTL).
    fn min_ttl(&self) -> Duration {
        Duration::from_secs(2)
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }
}

impl LockAdmin for MemcachedCache {
    /// `mg <key> v t`: the owner value and the seconds left (whole seconds).
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let inner = &*self.inner;
        let key = inner.key(key);
        holder_of(inner.run(&Op::Holder { key: &key })?)
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let key = inner.key(key);
            holder_of(inner.run_async(&Op::Holder { key: &key }).await?)
        })
    }

    /// Always an error: memcached cannot list its keys.
    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let _ = prefix;
        Err(no_listing())
    }

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        let _ = prefix;
        Box::pin(async { Err(no_listing()) })
    }

    /// `md <key>`.
    fn force_release(&self, key: &str) -> CacheResult<()> {
        let inner = &*self.inner;
        let key = inner.key(key);
        inner.run(&Op::Delete { key: &key })?;
        inner.forget(&key, None);
        Ok(())
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let key = inner.key(key);
            inner.run_async(&Op::Delete { key: &key }).await?;
            inner.forget(&key, None);
            Ok(())
        })
    }
}

impl MemcachedCache {
    /// A store on the server at `url` (`memcache://[user:password@]host[:port]`), with the
    /// default settings.
    ///
    /// Fails only if the URL does not parse; the error shows it with its password hidden.
    pub fn from_url(url: &str) -> Result<MemcachedCache, ConfigError> {
        MemcachedCache::builder(url).build()
    }

    /// A builder for a store on the server at `url`, to change the settings.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cachelock::memcached::MemcachedCache;
    ///
    /// let cache = MemcachedCache::builder("memcache://locks:secret@cache.example:11211")
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .response_timeout(Duration::from_millis(250))
    ///     .key_prefix("app1:")
    ///     .build()?;
    /// # Ok::<(), cachelock::memcached::ConfigError>(())
    /// ```
    pub fn builder(url: &str) -> MemcachedCacheBuilder {
        MemcachedCacheBuilder {
            target: Target::parse(url),
            settings: Settings::default(),
        }
    }

    /// How many idle sync connections the pool holds right now.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }
}

impl std::fmt::Debug for MemcachedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("MemcachedCache")
            .field("target", &inner.target.display())
            .field("connect_timeout", &inner.settings.connect_timeout)
            .field("response_timeout", &inner.settings.response_timeout)
            .field("key_prefix", &inner.settings.key_prefix)
            .field("idle_connections", &inner.pool.idle_count())
            .finish()
    }
}

/// Settings for a [`MemcachedCache`]; made by [`MemcachedCache::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`connect_timeout`](MemcachedCacheBuilder::connect_timeout) | [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) (2 s) |
/// | [`response_timeout`](MemcachedCacheBuilder::response_timeout) | [`DEFAULT_RESPONSE_TIMEOUT`](super::DEFAULT_RESPONSE_TIMEOUT) (2 s), and never more than a lock's TTL |
/// | [`max_idle_connections`](MemcachedCacheBuilder::max_idle_connections) | [`DEFAULT_MAX_IDLE_CONNECTIONS`](super::DEFAULT_MAX_IDLE_CONNECTIONS) (16), sync and per runtime |
/// | [`key_prefix`](MemcachedCacheBuilder::key_prefix) | none (a [`Lock`](crate::Lock) already puts `cachelock:` in front) |
#[must_use = "a builder does nothing until `build` is called"]
pub struct MemcachedCacheBuilder {
    target: Result<Target, ConfigError>,
    settings: Settings,
}

impl MemcachedCacheBuilder {
    /// How long opening a connection may take: TCP connect, authentication and the
    /// handshake (`stats` and the run marker).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long one command may wait for its reply (`claim` and `extend` also never wait
    /// longer than the lock's TTL).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.settings.response_timeout = timeout;
        self
    }

    /// How many idle connections the sync pool, and each tokio runtime's pool, keeps
    /// between commands.
    pub fn max_idle_connections(mut self, max: usize) -> Self {
        self.settings.max_idle = max;
        self
    }

    /// Puts `prefix` in front of every key this store sends (before the key mapping), to
    /// share one server between applications. It comes before a [`Lock`](crate::Lock)'s own
    /// prefix, and also names the run marker (`<prefix>cachelock-run`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.key_prefix = prefix.into();
        self
    }

    /// Builds the store. Connects nothing yet: the first operation does.
    ///
    /// Fails if the URL did not parse or a timeout is zero.
    pub fn build(self) -> Result<MemcachedCache, ConfigError> {
        self.settings.check()?;
        let target = self.target?;
        let settings = self.settings;
        let marker = memcached_key(&format!("{}cachelock-run", settings.key_prefix)).into_owned();
        Ok(MemcachedCache {
            inner: Arc::new(Inner {
                pool: SyncPool::new(settings.max_idle),
                async_pools: AsyncPools::new(settings.max_idle),
                known: Mutex::new(HashMap::new()),
                target,
                settings,
                marker,
            }),
        })
    }
}

impl std::fmt::Debug for MemcachedCacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Ok(target) => target.display(),
            Err(error) => format!("invalid: {error}"),
        };
        f.debug_struct("MemcachedCacheBuilder")
            .field("target", &target)
            .field("connect_timeout", &self.settings.connect_timeout)
            .field("response_timeout", &self.settings.response_timeout)
            .field("max_idle_connections", &self.settings.max_idle)
            .field("key_prefix", &self.settings.key_prefix)
            .finish()
    }
}
