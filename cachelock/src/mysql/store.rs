//! [`MysqlStore`]: the public type, its builder, and the store traits on the core.

use std::time::Duration;

use super::config::{check_table, describe, describe_async, parse_url, ConfigError, Settings};
use super::core::{AsyncSide, Core, SyncPool, SyncSide};
use super::ops::{Op, Reply};
use super::sql::{create_table, MAX_OWNER, MAX_STORED_KEY, TREE_TAG};
use crate::claim::{Claim, Claimed, Handle};
use crate::error::BoxError;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::{TreeEntry, TreeScope, TreeStore};

/// A [`LockStore`] in a MariaDB or MySQL table, for sync and async code alike (with
/// [`LockAdmin`] and [`TreeStore`]). See the [module docs](crate::mysql) for the table, the
/// statements and what each guarantees.
///
/// ```no_run
/// use cachelock::mysql::MysqlStore;
/// use cachelock::Lock;
///
/// let store = MysqlStore::from_url("mysql://app:secret@db.example:3306/app")?;
/// let guard = Lock::new("nightly-report").cache(store.clone()).try_acquire()?;
/// // ... the work; any process using the same table is refused meanwhile ...
/// guard.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Connecting
///
/// From a URL ([`from_url`](MysqlStore::from_url), [`builder`](MysqlStore::builder)):
/// `mysql://[user[:password]@]host[:port]/database[?table=name&...]` (or `mariadb://`),
/// with the `mysql` crate's URL parameters; or from the app's own `mysql::Pool`
/// ([`from_pool`](MysqlStore::from_pool)) or pools
/// ([`from_pools`](MysqlStore::from_pools)). Nothing is connected until the first
/// operation, so building never fails on a server that is down.
///
/// # Sync and async
///
/// - Sync methods run on the caller's thread with the `mysql` crate: a pool of idle
///   connections, each thread on its own; never a runtime (so they also work, blocking, on
///   a tokio thread: a sync guard dropped in async code).
/// - Async methods use `mysql_async`, one pool per tokio runtime, and never block a runtime
///   thread; a store made [`from_pool`](MysqlStore::from_pool) alone runs them on tokio's
///   blocking pool instead.
///
/// Clones are cheap and share the pools.
#[derive(Clone)]
pub struct MysqlStore {
    core: Core,
}

impl MysqlStore {
    /// A store on the server and database at `url`, with the default settings.
    ///
    /// Fails only if the URL does not parse; the error shows it with its password hidden.
    pub fn from_url(url: &str) -> Result<MysqlStore, ConfigError> {
        MysqlStore::builder(url).build()
    }

    /// A builder for a store on the server and database at `url`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cachelock::mysql::MysqlStore;
    ///
    /// let store = MysqlStore::builder("mysql://app:secret@db.example/app")
    ///     .table("app_locks")
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .response_timeout(Duration::from_secs(1))
    ///     .build()?;
    /// # Ok::<(), cachelock::mysql::ConfigError>(())
    /// ```
    pub fn builder(url: &str) -> MysqlStoreBuilder {
        let mut settings = Settings::default();
        let source = parse_url(url).and_then(|parsed| {
            if let Some(table) = parsed.table {
                settings.table = table;
            }
            let opts =
                mysql::Opts::from_url(&parsed.driver_url).map_err(|e| ConfigError::url(url, &e))?;
            let async_opts = mysql_async::Opts::from_url(&parsed.driver_url).map_err(|_| {
                ConfigError::new(format!(
                    "invalid MariaDB/MySQL URL `{}` for the async driver",
                    crate::redact_url(url)
                ))
            })?;
            let prefer_socket = parsed.driver_url.contains("prefer_socket=");
            Ok(Source::Url {
                opts,
                async_opts,
                prefer_socket,
            })
        });
        MysqlStoreBuilder {
            target: crate::redact_url(url),
            source,
            settings,
        }
    }

    /// A store on the app's own sync pool, with the default settings (see
    /// [`builder_from_pool`](MysqlStore::builder_from_pool)).
    pub fn from_pool(pool: mysql::Pool) -> MysqlStore {
        MysqlStore::builder_from_pool(pool)
            .build()
            .expect("the default settings are valid")
    }

    /// A builder for a store on the app's own `mysql::Pool` (its credentials, TLS, limits
    /// and timeouts). Its async methods run the sync ones on tokio's blocking pool.
    ///
    /// Why a sync pool: it serves both paths, whereas a `mysql_async::Pool` belongs to the
    /// runtime that opened its connections and cannot serve a sync call without blocking a
    /// runtime thread. An app with both hands both to [`from_pools`](MysqlStore::from_pools).
    /// For one round trip per operation, build the pool with `check_health=false` (its
    /// default pings every connection it hands out); the store turns off the reset on
    /// return for its own checkouts (its statements leave no session state behind).
    pub fn builder_from_pool(pool: mysql::Pool) -> MysqlStoreBuilder {
        MysqlStoreBuilder {
            target: "mysql://(the application's pool)".to_owned(),
            source: Ok(Source::Pool(pool, None)),
            settings: Settings::default(),
        }
    }

    /// A store on the app's own pools: sync operations on `pool`, async ones on
    /// `async_pool` (which, as `mysql_async` requires, must be used from one tokio runtime).
    pub fn from_pools(pool: mysql::Pool, async_pool: mysql_async::Pool) -> MysqlStore {
        MysqlStore::builder_from_pools(pool, async_pool)
            .build()
            .expect("the default settings are valid")
    }

    /// A builder for a store on the app's own pools (see [`from_pools`](MysqlStore::from_pools)).
    pub fn builder_from_pools(
        pool: mysql::Pool,
        async_pool: mysql_async::Pool,
    ) -> MysqlStoreBuilder {
        MysqlStoreBuilder {
            target: "mysql://(the application's pools)".to_owned(),
            source: Ok(Source::Pool(pool, Some(async_pool))),
            settings: Settings::default(),
        }
    }

    /// The `CREATE TABLE IF NOT EXISTS` statement of a lock table named `table`
    /// (`name` or `database.name`), for those who manage their schema with migrations (and
    /// build the store with [`create_table(false)`](MysqlStoreBuilder::create_table)).
    ///
    /// ```
    /// let ddl = cachelock::mysql::MysqlStore::create_table_statement("app_locks")?;
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS `app_locks`"));
    /// # Ok::<(), cachelock::mysql::ConfigError>(())
    /// ```
    pub fn create_table_statement(table: &str) -> Result<String, ConfigError> {
        check_table(table)?;
        Ok(create_table(table))
    }

    /// The table this store keeps its locks in.
    pub fn table(&self) -> &str {
        &self.core.inner.settings.table
    }

    /// How many idle sync connections the store's own pool holds right now (0 on an app's
    /// pool).
    pub fn idle_connections(&self) -> usize {
        self.core.idle_connections()
    }
}

impl std::fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.core.inner;
        f.debug_struct("MysqlStore")
            .field("target", &inner.target)
            .field("table", &inner.settings.table)
            .field("connect_timeout", &inner.settings.connect_timeout)
            .field("response_timeout", &inner.settings.response_timeout)
            .field("idle_connections", &self.core.idle_connections())
            .finish()
    }
}

enum Source {
    Url {
        opts: mysql::Opts,
        async_opts: mysql_async::Opts,
        /// Whether the URL says `prefer_socket` itself (else it is turned off: a TCP URL
        /// stays on TCP).
        prefer_socket: bool,
    },
    Pool(mysql::Pool, Option<mysql_async::Pool>),
}

/// Settings for a [`MysqlStore`]; made by [`MysqlStore::builder`] (and the `builder_from_*`
/// functions).
///
/// | setting | default |
/// |---|---|
/// | [`table`](MysqlStoreBuilder::table) | [`DEFAULT_TABLE`](super::DEFAULT_TABLE) (`cachelock_locks`), or the URL's `?table=` |
/// | [`create_table`](MysqlStoreBuilder::create_table) | `true`: created on first need |
/// | [`connect_timeout`](MysqlStoreBuilder::connect_timeout) | [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) (2 s) |
/// | [`response_timeout`](MysqlStoreBuilder::response_timeout) | [`DEFAULT_RESPONSE_TIMEOUT`](super::DEFAULT_RESPONSE_TIMEOUT) (2 s) |
/// | [`max_connections`](MysqlStoreBuilder::max_connections) | [`DEFAULT_MAX_CONNECTIONS`](super::DEFAULT_MAX_CONNECTIONS) (16) |
///
/// On an app's pool, the timeouts bound only the async operations (the pool's own
/// connection options bound the sync ones) and `max_connections` does nothing.
#[must_use = "a builder does nothing until `build` is called"]
pub struct MysqlStoreBuilder {
    target: String,
    source: Result<Source, ConfigError>,
    settings: Settings,
}

impl std::fmt::Debug for MysqlStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlStoreBuilder")
            .field("target", &self.target)
            .field("table", &self.settings.table)
            .field("create_table", &self.settings.create_table)
            .field("connect_timeout", &self.settings.connect_timeout)
            .field("response_timeout", &self.settings.response_timeout)
            .field("max_connections", &self.settings.max_connections)
            .finish()
    }
}

impl MysqlStoreBuilder {
    /// The table to keep the locks in: `name` or `database.name` (letters, digits, `_`,
    /// `$`). Several applications can share a database with a table each.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.settings.table = table.into();
        self
    }

    /// Whether to create the table (`CREATE TABLE IF NOT EXISTS`) the first time an
    /// operation finds it missing. Turn it off when the schema is managed elsewhere (the
    /// statement is [`MysqlStore::create_table_statement`]); an operation on a missing
    /// table then fails with the server's error.
    pub fn create_table(mut self, create: bool) -> Self {
        self.settings.create_table = create;
        self
    }

    /// How long opening a connection may take (TCP connect and handshake).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long one statement may wait for its reply (sync: every socket read and write;
    /// async: the whole operation may take the connect timeout plus this).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.settings.response_timeout = timeout;
        self
    }

    /// How many idle connections the sync pool keeps, and how many connections each
    /// runtime's async pool may open.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.settings.max_connections = max;
        self
    }

    /// Builds the store. Connects nothing yet: the first operation does.
    ///
    /// Fails if the URL did not parse, a timeout or the connection limit is zero, or the
    /// table name is invalid.
    pub fn build(self) -> Result<MysqlStore, ConfigError> {
        self.settings.check()?;
        let settings = self.settings;
        let (target, secret, sync, async_side) = match self.source? {
            Source::Url {
                opts,
                async_opts,
                prefer_socket,
            } => {
                let secret = opts.get_pass().map(str::to_owned);
                let target = describe(&opts);
                let mut builder = mysql::OptsBuilder::from_opts(opts)
                    .tcp_connect_timeout(Some(settings.connect_timeout))
                    .read_timeout(Some(settings.response_timeout))
                    .write_timeout(Some(settings.response_timeout))
                    .tcp_nodelay(true);
                let mut async_builder = mysql_async::OptsBuilder::from_opts(async_opts)
                    .tcp_nodelay(true)
                    .pool_opts(
                        mysql_async::PoolOpts::default()
                            .with_reset_connection(false)
                            // Idle connections are closed after a minute unused (the pool's
                            // lower bound is 0, so its default, 0 s, would close them all at
                            // every check).
                            .with_inactive_connection_ttl(Duration::from_secs(60))
                            .with_constraints(
                                mysql_async::PoolConstraints::new(0, settings.max_connections)
                                    .ok_or_else(|| ConfigError::new("invalid connection limit"))?,
                            ),
                    );
                if !prefer_socket {
                    builder = builder.prefer_socket(false);
                    async_builder = async_builder.prefer_socket(false);
                }
                let async_opts = mysql_async::Opts::from(async_builder);
                debug_assert_eq!(describe_async(&async_opts), target);
                (
                    target,
                    secret,
                    SyncSide::Own(SyncPool::new(
                        mysql::Opts::from(builder),
                        settings.max_connections,
                    )),
                    AsyncSide::Own {
                        opts: async_opts,
                        pools: std::sync::Mutex::new(Vec::new()),
                    },
                )
            }
            Source::Pool(pool, async_pool) => (
                self.target,
                None,
                SyncSide::App(pool),
                match async_pool {
                    Some(pool) => AsyncSide::App(pool),
                    None => AsyncSide::Blocking,
                },
            ),
        };
        Ok(MysqlStore {
            core: Core::new(settings, target, secret, sync, async_side),
        })
    }
}

// --- the checks made before a statement is sent -------------------------------------------

fn check_key(key: &str) -> CacheResult<()> {
    if key.len() > MAX_STORED_KEY {
        return Err(format!(
            "the key is {} bytes long; a MariaDB/MySQL lock key may be at most {MAX_STORED_KEY} bytes",
            key.len()
        )
        .into());
    }
    if key.contains(TREE_TAG) {
        return Err(format!(
            "a lock key must not contain `{TREE_TAG}` (reserved for tree lock spaces)"
        )
        .into());
    }
    Ok(())
}

fn check_owner(owner: &str) -> CacheResult<()> {
    if owner.len() > MAX_OWNER {
        return Err(format!(
            "the owner value (token, pid, host, label) is {} bytes; at most {MAX_OWNER} fit (use a shorter label)",
            owner.len()
        )
        .into());
    }
    Ok(())
}

fn check_space(space: &str, path: &str) -> CacheResult<()> {
    if space.contains(TREE_TAG) {
        return Err(format!("a tree lock space must not contain `{TREE_TAG}`: {space:?}").into());
    }
    let len = space.len() + TREE_TAG.len() + path.len();
    if len > MAX_STORED_KEY {
        return Err(format!(
            "the tree lock key (space + `{TREE_TAG}` + path) is {len} bytes; at most {MAX_STORED_KEY} fit"
        )
        .into());
    }
    Ok(())
}

/// A key too long to be stored holds no lock: releases and lookups find nothing.
fn storable(key: &str) -> bool {
    key.len() <= MAX_STORED_KEY
}

fn unexpected(op: &str, reply: Reply) -> BoxError {
    format!("unexpected reply to MariaDB/MySQL {op}: {reply:?}").into()
}

fn fence(reply: Reply) -> CacheResult<Option<u64>> {
    match reply {
        Reply::Fence(fence) => Ok(fence),
        other => Err(unexpected("claim", other)),
    }
}

fn flag(reply: Reply) -> CacheResult<bool> {
    match reply {
        Reply::Flag(flag) => Ok(flag),
        other => Err(unexpected("release or extend", other)),
    }
}

fn claimed(claim: &Claim<'_>, won: Option<u64>) -> Option<Claimed> {
    won.map(|fence| Claimed::new(if claim.fencing() { fence } else { 0 }))
}

impl LockStore for MysqlStore {
    /// One `INSERT … ON DUPLICATE KEY UPDATE` (see the module docs).
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        check_key(key)?;
        let owner = claim.owner_value();
        check_owner(&owner)?;
        let op = Op::Claim {
            key,
            token: claim.token(),
            owner: &owner,
            ttl: claim.ttl(),
        };
        Ok(claimed(claim, fence(self.core.run(op)?)?))
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            check_key(key)?;
            let owner = claim.owner_value();
            check_owner(&owner)?;
            let owner = owner.as_str().to_owned();
            let op = Op::Claim {
                key,
                token: claim.token(),
                owner: &owner,
                ttl: claim.ttl(),
            };
            Ok(claimed(claim, fence(self.core.run_async(op).await?)?))
        })
    }

    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        if !storable(key) {
            return Ok(false);
        }
        flag(self.core.run(Op::Release { key, token })?)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            if !storable(key) {
                return Ok(false);
            }
            flag(self.core.run_async(Op::Release { key, token }).await?)
        })
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        if !storable(key) {
            return Ok(false);
        }
        flag(self.core.run(Op::Extend { key, token, ttl })?)
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            if !storable(key) {
                return Ok(false);
            }
            flag(self.core.run_async(Op::Extend { key, token, ttl }).await?)
        })
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(self)
    }
}

fn holder_reply(reply: Reply) -> CacheResult<Option<(String, Option<Duration>)>> {
    match reply {
        Reply::Holder(found) => Ok(found),
        other => Err(unexpected("holder lookup", other)),
    }
}

fn keys_reply(reply: Reply) -> CacheResult<Vec<String>> {
    match reply {
        Reply::Keys(keys) => Ok(keys),
        other => Err(unexpected("listing", other)),
    }
}

impl LockAdmin for MysqlStore {
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        if !storable(key) {
            return Ok(None);
        }
        holder_reply(self.core.run(Op::Holder { key })?)
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(async move {
            if !storable(key) {
                return Ok(None);
            }
            holder_reply(self.core.run_async(Op::Holder { key }).await?)
        })
    }

    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        keys_reply(self.core.run(Op::Keys { prefix })?)
    }

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(async move { keys_reply(self.core.run_async(Op::Keys { prefix }).await?) })
    }

    fn force_release(&self, key: &str) -> CacheResult<()> {
        if !storable(key) {
            return Ok(());
        }
        self.core.run(Op::ForceRelease { key }).map(drop)
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(async move {
            if !storable(key) {
                return Ok(());
            }
            self.core
                .run_async(Op::ForceRelease { key })
                .await
                .map(drop)
        })
    }
}

fn entry_reply(reply: Reply) -> CacheResult<Option<TreeEntry>> {
    match reply {
        Reply::Entry(entry) => Ok(entry),
        other => Err(unexpected("tree lock holder lookup", other)),
    }
}

fn entries_reply(reply: Reply) -> CacheResult<Vec<TreeEntry>> {
    match reply {
        Reply::Entries(entries) => Ok(entries),
        other => Err(unexpected("tree lock listing", other)),
    }
}

/// Tree locks: one transaction per claim (see the module docs); release, extend, holder
/// lookup and listing one statement each.
impl TreeStore for MysqlStore {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        check_space(space, path)?;
        let owner = claim.owner_value();
        check_owner(&owner)?;
        let op = Op::TreeClaim {
            space,
            path,
            scope,
            token: claim.token(),
            owner: &owner,
            ttl: claim.ttl(),
        };
        Ok(fence(self.core.run(op)?)?.map(Claimed::new))
    }

    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            check_space(space, path)?;
            let owner = claim.owner_value();
            check_owner(&owner)?;
            let owner = owner.as_str().to_owned();
            let op = Op::TreeClaim {
                space,
                path,
                scope,
                token: claim.token(),
                owner: &owner,
                ttl: claim.ttl(),
            };
            Ok(fence(self.core.run_async(op).await?)?.map(Claimed::new))
        })
    }

    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        if check_space(space, path).is_err() {
            return Ok(false);
        }
        flag(self.core.run(Op::TreeRelease { space, path, token })?)
    }

    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            if check_space(space, path).is_err() {
                return Ok(false);
            }
            flag(
                self.core
                    .run_async(Op::TreeRelease { space, path, token })
                    .await?,
            )
        })
    }

    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        if check_space(space, path).is_err() {
            return Ok(false);
        }
        flag(self.core.run(Op::TreeExtend {
            space,
            path,
            token,
            ttl,
        })?)
    }

    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            if check_space(space, path).is_err() {
                return Ok(false);
            }
            flag(
                self.core
                    .run_async(Op::TreeExtend {
                        space,
                        path,
                        token,
                        ttl,
                    })
                    .await?,
            )
        })
    }

    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        check_space(space, path)?;
        entry_reply(self.core.run(Op::TreeHolder { space, path, scope })?)
    }

    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        Box::pin(async move {
            check_space(space, path)?;
            entry_reply(
                self.core
                    .run_async(Op::TreeHolder { space, path, scope })
                    .await?,
            )
        })
    }

    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        check_space(space, "/")?;
        entries_reply(self.core.run(Op::TreeList { space })?)
    }

    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        Box::pin(async move {
            check_space(space, "/")?;
            entries_reply(self.core.run_async(Op::TreeList { space }).await?)
        })
    }
}
