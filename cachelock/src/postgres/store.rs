//! [`PostgresStore`]: the public type, its builder, and the store traits on the core.

use std::time::Duration;

use super::config::{describe, ConfigError, Settings};
use super::core::Core;
use super::listener::tree_wake_key;
use super::ops::{Op, Reply};
use super::sql::like_prefix;
use crate::claim::{Claim, Claimed, Handle};
use crate::error::BoxError;
use crate::redact::redact_url;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::{TreeEntry, TreeScope, TreeStore};

/// A [`LockStore`] in a PostgreSQL table, for sync and async code alike, with
/// [`LockAdmin`] and [`TreeStore`]. See the [module docs](crate::postgres) for the table,
/// the statements, the guarantees and the faults.
///
/// ```no_run
/// use cachelock::postgres::PostgresStore;
/// use cachelock::Lock;
///
/// let store = PostgresStore::from_url("postgres://app:secret@db.example/app")?;
/// let guard = Lock::new("nightly-report").cache(store.clone()).try_acquire()?;
/// // ... the work; any process using the same database is refused meanwhile ...
/// guard.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Nothing connects until the first operation, so building never fails on a server that is
/// down; the first operation creates the tables if they are missing (unless
/// [`create_table(false)`](PostgresStoreBuilder::create_table)).
///
/// Clones are cheap and share the pools, the listener and the settings.
#[derive(Clone)]
pub struct PostgresStore {
    core: Core,
}

/// Settings for a [`PostgresStore`]; made by [`PostgresStore::builder`] or
/// [`PostgresStore::builder_from_config`].
///
/// | setting | default |
/// |---|---|
/// | [`connect_timeout`](PostgresStoreBuilder::connect_timeout) | [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) (2 s) |
/// | [`statement_timeout`](PostgresStoreBuilder::statement_timeout) | [`DEFAULT_STATEMENT_TIMEOUT`](super::DEFAULT_STATEMENT_TIMEOUT) (2 s), and never more than a lock's TTL |
/// | [`max_idle_connections`](PostgresStoreBuilder::max_idle_connections) | [`DEFAULT_MAX_IDLE_CONNECTIONS`](super::DEFAULT_MAX_IDLE_CONNECTIONS) (16) per pool |
/// | [`table`](PostgresStoreBuilder::table) | [`DEFAULT_TABLE`](super::DEFAULT_TABLE) (`cachelock_locks`) |
/// | [`schema`](PostgresStoreBuilder::schema) | none: the connection's `search_path` |
/// | [`create_table`](PostgresStoreBuilder::create_table) | `true`: created on first use if missing |
#[must_use = "a builder does nothing until `build` is called"]
pub struct PostgresStoreBuilder {
    config: Result<tokio_postgres::Config, ConfigError>,
    target: String,
    settings: Settings,
}

impl PostgresStore {
    /// A store on the database at `url` (`postgres://user:password@host:port/dbname`, or a
    /// `key=value` connection string), with the default settings.
    ///
    /// Fails only if the URL does not parse; the error shows it with its password hidden.
    pub fn from_url(url: &str) -> Result<PostgresStore, ConfigError> {
        PostgresStore::builder(url).build()
    }

    /// A builder for a store on the database at `url`, to change the settings.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cachelock::postgres::PostgresStore;
    ///
    /// let store = PostgresStore::builder("postgres://app:secret@db.example/app")
    ///     .schema("locks")
    ///     .table("app_locks")
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .statement_timeout(Duration::from_millis(500))
    ///     .build()?;
    /// # Ok::<(), cachelock::postgres::ConfigError>(())
    /// ```
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        let target = redact_url(url);
        let config = url.parse::<tokio_postgres::Config>().map_err(|error| {
            // The parser's messages name options, never their values; still, show nothing
            // that holds a `:` or `@` from the URL.
            let reason = error.to_string();
            let reason = if reason.contains('@') || reason.contains("://") {
                "it does not parse".to_owned()
            } else {
                reason
            };
            ConfigError::new(format!("invalid PostgreSQL URL `{target}`: {reason}"))
        });
        PostgresStoreBuilder {
            config,
            target,
            settings: Settings::default(),
        }
    }

    /// A store with the connection settings of a [`tokio_postgres::Config`] you already
    /// have (host, port, user, password, database, keepalives, ...), with the default
    /// settings. Its `connect_timeout` is replaced by the store's.
    pub fn from_config(config: tokio_postgres::Config) -> PostgresStore {
        let target = describe(&config);
        PostgresStore {
            core: Core::new(config, Settings::default(), target),
        }
    }

    /// A builder for a store with the connection settings of a [`tokio_postgres::Config`].
    pub fn builder_from_config(config: tokio_postgres::Config) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            target: describe(&config),
            config: Ok(config),
            settings: Settings::default(),
        }
    }

    /// How many idle sync connections the pool holds right now.
    pub fn idle_connections(&self) -> usize {
        self.core.idle_connections()
    }

    /// Whether the release listener is connected and listening (it starts with the first
    /// wait for a release; until then, and while it reconnects, waiters poll).
    pub fn is_listening(&self) -> bool {
        self.core
            .inner
            .listening
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many release notifications (`NOTIFY` on `cachelock_released` or
    /// `cachelock_tree_released`) the listener has received, from every client of the
    /// database: to see that waiters are woken rather than polling.
    pub fn release_notifications(&self) -> u64 {
        self.core
            .inner
            .notifications
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The SQL that creates the store's table, tree table and fence sequence (in one
    /// transaction, serialized by a transaction-scoped advisory lock), with this store's
    /// names: for those who manage migrations and build with
    /// [`create_table(false)`](PostgresStoreBuilder::create_table).
    pub fn create_table_sql(&self) -> &str {
        &self.core.inner.sql.create
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.core.inner;
        f.debug_struct("PostgresStore")
            .field("target", &inner.target)
            .field("table", &inner.sql.table)
            .field("connect_timeout", &inner.settings.connect_timeout)
            .field("statement_timeout", &inner.settings.statement_timeout)
            .field("idle_connections", &self.core.idle_connections())
            .finish()
    }
}

impl PostgresStoreBuilder {
    /// How long opening a connection may take (TCP connect and authentication).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long one statement may wait for its answer, client side (`claim` and `extend`
    /// also never wait longer than the lock's TTL). A connection whose statement timed out
    /// is closed, not reused.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.settings.statement_timeout = timeout;
        self
    }

    /// How many idle connections each pool keeps between operations (the sync pool, and
    /// the async pool of each tokio runtime).
    pub fn max_idle_connections(mut self, max: usize) -> Self {
        self.settings.max_idle = max;
        self
    }

    /// The lock table's name (default `cachelock_locks`); the tree table is `<name>_tree`
    /// and the fence sequence `<name>_fence`. At most 57 bytes. Quoted as given: `Locks`
    /// is not `locks`.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.settings.table = name.into();
        self
    }

    /// The schema of the tables (default: none, the connection's `search_path`). The
    /// schema must exist.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.settings.schema = Some(name.into());
        self
    }

    /// Whether the first operation creates the tables and the sequence when they are
    /// missing (default `true`). Turn it off when migrations create them
    /// ([`PostgresStore::create_table_sql`] gives the SQL) and the store's user may not
    /// run DDL.
    pub fn create_table(mut self, create: bool) -> Self {
        self.settings.create_table = create;
        self
    }

    /// Builds the store. Connects nothing yet: the first operation does.
    ///
    /// Fails if the URL did not parse, a timeout is zero, or a name is too long.
    pub fn build(self) -> Result<PostgresStore, ConfigError> {
        self.settings.check()?;
        let config = self.config?;
        Ok(PostgresStore {
            core: Core::new(config, self.settings, self.target),
        })
    }
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .finish()
    }
}

// --- the store traits ------------------------------------------------------------------

fn unexpected(op: Op<'_>, reply: Reply) -> BoxError {
    format!("unexpected reply to PostgreSQL {}: {reply:?}", op.name()).into()
}

fn fence(op: Op<'_>, reply: Reply, fencing: bool) -> CacheResult<Option<Claimed>> {
    match reply {
        Reply::Fence(fence) => Ok(fence.map(|f| Claimed::new(if fencing { f } else { 0 }))),
        other => Err(unexpected(op, other)),
    }
}

fn flag(op: Op<'_>, reply: Reply) -> CacheResult<bool> {
    match reply {
        Reply::Flag(flag) => Ok(flag),
        other => Err(unexpected(op, other)),
    }
}

fn claim_op<'a>(key: &'a str, claim: &'a Claim<'_>, owner: &'a str) -> Op<'a> {
    Op::Claim {
        key,
        token: claim.token(),
        owner,
        ttl: claim.ttl(),
    }
}

impl LockStore for PostgresStore {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let owner = claim.owner_value();
        let op = claim_op(key, claim, &owner);
        fence(op, self.core.run(op)?, claim.fencing())
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            let owner = claim.owner_value();
            let op = claim_op(key, claim, &owner);
            fence(op, self.core.run_async(op).await?, claim.fencing())
        })
    }

    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        let op = Op::Release { key, token };
        flag(op, self.core.run(op)?)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = Op::Release { key, token };
            flag(op, self.core.run_async(op).await?)
        })
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let op = Op::Extend { key, token, ttl };
        flag(op, self.core.run(op)?)
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = Op::Extend { key, token, ttl };
            flag(op, self.core.run_async(op).await?)
        })
    }

    /// Waits for the key's `NOTIFY` on `cachelock_released` (the release statement sends
    /// it), or `pause`, whichever comes first. The first wait starts the listener.
    fn wait_for_release(&self, key: &str, pause: Duration) {
        self.core.ensure_listener();
        self.core.inner.board.wait(key, pause, || true);
    }

    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.core.ensure_listener();
            self.core.inner.board.wait_async(key, pause, || true).await;
        })
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(self)
    }
}

fn value(op: Op<'_>, reply: Reply) -> CacheResult<Option<(String, Option<Duration>)>> {
    match reply {
        Reply::Value(value) => Ok(value),
        other => Err(unexpected(op, other)),
    }
}

fn keys(op: Op<'_>, reply: Reply) -> CacheResult<Vec<String>> {
    match reply {
        Reply::Keys(keys) => Ok(keys),
        other => Err(unexpected(op, other)),
    }
}

impl LockAdmin for PostgresStore {
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let op = Op::Holder { key };
        value(op, self.core.run(op)?)
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(async move {
            let op = Op::Holder { key };
            value(op, self.core.run_async(op).await?)
        })
    }

    /// `key LIKE '<prefix>%'` (with `\`, `%` and `_` escaped), live locks only.
    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let pattern = like_prefix(prefix);
        let op = Op::Keys { pattern: &pattern };
        keys(op, self.core.run(op)?)
    }

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(async move {
            let pattern = like_prefix(prefix);
            let op = Op::Keys { pattern: &pattern };
            keys(op, self.core.run_async(op).await?)
        })
    }

    fn force_release(&self, key: &str) -> CacheResult<()> {
        let op = Op::ForceRelease { key };
        flag(op, self.core.run(op)?).map(drop)
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(async move {
            let op = Op::ForceRelease { key };
            flag(op, self.core.run_async(op).await?).map(drop)
        })
    }
}

fn entry(op: Op<'_>, reply: Reply) -> CacheResult<Option<TreeEntry>> {
    match reply {
        Reply::Entry(entry) => Ok(entry),
        other => Err(unexpected(op, other)),
    }
}

fn entries(op: Op<'_>, reply: Reply) -> CacheResult<Vec<TreeEntry>> {
    match reply {
        Reply::Entries(entries) => Ok(entries),
        other => Err(unexpected(op, other)),
    }
}

impl PostgresStore {
    /// The advisory lock key text of a lock space: the table and the space.
    fn space_lock(&self, space: &str) -> String {
        format!("cachelock-tree {} {space}", self.core.inner.sql.tree_table)
    }
}

fn tree_claim_op<'a>(
    lock: &'a str,
    space: &'a str,
    path: &'a str,
    scope: TreeScope,
    claim: &'a Claim<'_>,
    owner: &'a str,
) -> Op<'a> {
    Op::TreeClaim {
        lock,
        space,
        path,
        token: claim.token(),
        owner,
        scope,
        ttl: claim.ttl(),
    }
}

impl TreeStore for PostgresStore {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        let (lock, owner) = (self.space_lock(space), claim.owner_value());
        let op = tree_claim_op(&lock, space, path, scope, claim, &owner);
        fence(op, self.core.run(op)?, true)
    }

    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            let (lock, owner) = (self.space_lock(space), claim.owner_value());
            let op = tree_claim_op(&lock, space, path, scope, claim, &owner);
            fence(op, self.core.run_async(op).await?, true)
        })
    }

    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let op = Op::TreeRelease { space, path, token };
        flag(op, self.core.run(op)?)
    }

    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = Op::TreeRelease { space, path, token };
            flag(op, self.core.run_async(op).await?)
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
        let op = Op::TreeExtend {
            space,
            path,
            token,
            ttl,
        };
        flag(op, self.core.run(op)?)
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
            let op = Op::TreeExtend {
                space,
                path,
                token,
                ttl,
            };
            flag(op, self.core.run_async(op).await?)
        })
    }

    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        let op = Op::TreeHolder { space, path, scope };
        entry(op, self.core.run(op)?)
    }

    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        Box::pin(async move {
            let op = Op::TreeHolder { space, path, scope };
            entry(op, self.core.run_async(op).await?)
        })
    }

    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        let op = Op::TreeList { space };
        entries(op, self.core.run(op)?)
    }

    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        Box::pin(async move {
            let op = Op::TreeList { space };
            entries(op, self.core.run_async(op).await?)
        })
    }

    /// Waits for a `NOTIFY` on `cachelock_tree_released` of the space (any path of it: the
    /// waiter then tries its claim again), or `pause`.
    fn wait_for_release(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        let _ = (path, scope);
        self.core.ensure_listener();
        self.core
            .inner
            .board
            .wait(&tree_wake_key(space), pause, || true);
    }

    fn wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = (path, scope);
            self.core.ensure_listener();
            self.core
                .inner
                .board
                .wait_async(&tree_wake_key(space), pause, || true)
                .await;
        })
    }
}
