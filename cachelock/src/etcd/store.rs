//! [`EtcdStore`]: the public type, its builder, and the store traits, each operation run on
//! the private runtime (`runtime.rs`): blocking the caller for the sync methods, awaited for
//! the async ones.

use std::time::Duration;

use super::config::{parse_url, ConfigError, Settings, Target};
use super::core::Core;
use super::ops::ClaimArgs;
use super::runtime;
use crate::claim::{Claim, Claimed, Handle};
use crate::redact::redact_url;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::{TreeEntry, TreeScope, TreeStore};

/// A [`LockStore`] on an etcd cluster (v3 API), for sync and async code alike, with
/// [`LockAdmin`] and [`TreeStore`].
///
/// ```no_run
/// use cachelock::etcd::EtcdStore;
/// use cachelock::Lock;
///
/// let store = EtcdStore::from_url("etcd://127.0.0.1:2379")?;
/// let guard = Lock::new("nightly-report").cache(store.clone()).try_acquire()?;
/// // ... the work; every process using the same etcd cluster is refused meanwhile ...
/// println!("fencing token {}", guard.fence());
/// guard.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Connecting
///
/// From a URL ([`from_url`](EtcdStore::from_url), [`builder`](EtcdStore::builder)):
/// `etcd://[user:password@]host[:port][,host[:port]...]` (port 2379 by default; several
/// members of one cluster separated by commas; user and password `%`-encoded if they hold
/// `@`, `:` or `%`). Or from an [`etcd_client::Client`] you already have
/// ([`from_client`](EtcdStore::from_client)): the way to TLS, or to any option the URL does
/// not take. Building connects nothing: the first operation does, so building never fails on
/// a cluster that is down. Passwords never appear in `Debug` output, error messages or logs.
///
/// # Sync and async
///
/// The client runs on a runtime of the etcd stores' own (one thread, `cachelock-etcd`,
/// started on first use): sync methods hand their operation to it and wait, so they work
/// anywhere, also on a tokio runtime's thread (a sync guard dropped in async code); async
/// methods await it without blocking their runtime, whose timer they do not need. A store
/// outlives the runtimes that used it. Clones are cheap and share the client.
///
/// # Faults
///
/// Every operation is bounded by the connect timeout plus the response timeout (and a claim
/// or extend by its lease's TTL); past it, an error for which
/// [`Error::is_timeout`](crate::Error::is_timeout) is true. A request that finds its
/// connection dead (a restarted member) is sent once more on a new connection, so the first
/// operation after a restart works on the same store value. See the
/// [module docs](crate::etcd) for what each operation sends and what it guarantees.
#[derive(Clone)]
pub struct EtcdStore {
    core: Core,
}

impl EtcdStore {
    /// A store on the cluster at `url`, with the default settings.
    ///
    /// Fails only if the URL does not parse; the error shows it with its password redacted.
    pub fn from_url(url: &str) -> Result<EtcdStore, ConfigError> {
        EtcdStore::builder(url).build()
    }

    /// A builder for a store on the cluster at `url`, to change the settings.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cachelock::etcd::EtcdStore;
    ///
    /// let store = EtcdStore::builder("etcd://app:secret@etcd-1:2379,etcd-2:2379")
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .response_timeout(Duration::from_secs(1))
    ///     .key_prefix("myapp/")
    ///     .build()?;
    /// # Ok::<(), cachelock::etcd::ConfigError>(())
    /// ```
    pub fn builder(url: &str) -> EtcdStoreBuilder {
        EtcdStoreBuilder {
            source: parse_url(url).map(Source::Url),
            shown: redact_url(url),
            settings: Settings::default(),
        }
    }

    /// A store on an [`etcd_client::Client`] you already have, with the default settings.
    ///
    /// The client's channel runs on the runtime it was made on: keep that runtime alive as
    /// long as the store is used (a store made from a URL has no such tie). Its own options
    /// (TLS, authentication, its timeouts) apply; the store's timeouts bound each operation
    /// on top of them.
    pub fn from_client(client: etcd_client::Client) -> EtcdStore {
        EtcdStore::builder_from_client(client)
            .build()
            .expect("the default settings are valid")
    }

    /// A builder for a store on an [`etcd_client::Client`] you already have.
    pub fn builder_from_client(client: etcd_client::Client) -> EtcdStoreBuilder {
        EtcdStoreBuilder {
            source: Ok(Source::Client(Box::new(client))),
            shown: "etcd (an etcd_client::Client)".to_owned(),
            settings: Settings::default(),
        }
    }

    /// The key prefix this store puts in front of every key.
    pub fn key_prefix(&self) -> &str {
        &self.core.settings.key_prefix
    }

    fn block<T: Send + 'static>(
        &self,
        op: impl FnOnce(Core) -> BoxFuture<'static, CacheResult<T>>,
    ) -> CacheResult<T> {
        self.core.block(op)
    }

    fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(Core) -> BoxFuture<'static, CacheResult<T>>,
    ) -> BoxFuture<'static, CacheResult<T>> {
        self.core.run(op)
    }
}

impl Core {
    /// Runs a sync operation on the private runtime.
    fn block<T: Send + 'static>(
        &self,
        op: impl FnOnce(Core) -> BoxFuture<'static, CacheResult<T>>,
    ) -> CacheResult<T> {
        runtime::block_on(op(self.clone()))
    }

    /// Runs an async operation on the private runtime.
    fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(Core) -> BoxFuture<'static, CacheResult<T>>,
    ) -> BoxFuture<'static, CacheResult<T>> {
        Box::pin(runtime::run(op(self.clone())))
    }
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = &self.core.settings;
        f.debug_struct("EtcdStore")
            .field("target", &self.core.shown)
            .field("connect_timeout", &settings.connect_timeout)
            .field("response_timeout", &settings.response_timeout)
            .field("key_prefix", &settings.key_prefix)
            .finish()
    }
}

enum Source {
    Url(Target),
    Client(Box<etcd_client::Client>),
}

/// Settings for an [`EtcdStore`]; made by [`EtcdStore::builder`].
///
/// | setting | default |
/// |---|---|
/// | [`connect_timeout`](EtcdStoreBuilder::connect_timeout) | [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) (2 s) |
/// | [`response_timeout`](EtcdStoreBuilder::response_timeout) | [`DEFAULT_RESPONSE_TIMEOUT`](super::DEFAULT_RESPONSE_TIMEOUT) (2 s) |
/// | [`key_prefix`](EtcdStoreBuilder::key_prefix) | none (a [`Lock`](crate::Lock) already puts `cachelock:` in front) |
#[must_use = "a builder does nothing until `build` is called"]
pub struct EtcdStoreBuilder {
    source: Result<Source, ConfigError>,
    shown: String,
    settings: Settings,
}

impl EtcdStoreBuilder {
    /// How long opening a connection to a member may take (with a user in the URL, the
    /// authentication too). Only for stores made from a URL.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long one operation may wait for etcd's answers, on top of the connect timeout
    /// (`claim` and `extend` also never wait longer than their lease's TTL).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.settings.response_timeout = timeout;
        self
    }

    /// Puts `prefix` in front of every key this store writes, to share one cluster between
    /// applications (etcd's own namespacing, as `etcdctl --prefix` shows it). It comes
    /// before a [`Lock`](crate::Lock)'s own prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.key_prefix = prefix.into();
        self
    }

    /// Builds the store. Connects nothing yet: the first operation does.
    ///
    /// Fails if the URL did not parse or a timeout is zero.
    pub fn build(self) -> Result<EtcdStore, ConfigError> {
        self.settings.check()?;
        let (target, client) = match self.source? {
            Source::Url(target) => (Some(target), None),
            Source::Client(client) => (None, Some(*client)),
        };
        Ok(EtcdStore {
            core: Core::new(target, client, self.settings, self.shown),
        })
    }
}

impl std::fmt::Debug for EtcdStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStoreBuilder")
            .field("target", &self.shown)
            .field("connect_timeout", &self.settings.connect_timeout)
            .field("response_timeout", &self.settings.response_timeout)
            .field("key_prefix", &self.settings.key_prefix)
            .finish()
    }
}

/// Each operation: the core's future (`ops.rs`, `tree.rs`), on the private runtime.
impl LockStore for EtcdStore {
    /// A lease grant, then one transaction: `create_revision(key) == 0` ? put the owner
    /// value with the lease : get the key.
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let (key, args) = (self.core.key(key), ClaimArgs::new(claim));
        let won = self.block(|core| Box::pin(core.claim(key, args)))?;
        Ok(won.map(Claimed::new))
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let (key, args) = (self.core.key(key), ClaimArgs::new(claim));
        let won = self.run(|core| Box::pin(core.claim(key, args)));
        Box::pin(async move { Ok(won.await?.map(Claimed::new)) })
    }

    /// One transaction: if the value starts with `token|`, delete the key (then the lease
    /// is revoked in the background).
    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        let (key, token) = (self.core.key(key), token.to_owned());
        self.block(|core| Box::pin(core.release(key, token)))
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (key, token) = (self.core.key(key), token.to_owned());
        self.run(|core| Box::pin(core.release(key, token)))
    }

    /// A read of the key, then a keep-alive of its lease (same TTL), or a new lease put on
    /// the key in a transaction that compares the owner (another TTL).
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let (key, token) = (self.core.key(key), token.to_owned());
        self.block(|core| Box::pin(core.extend(key, token, ttl)))
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (key, token) = (self.core.key(key), token.to_owned());
        self.run(|core| Box::pin(core.extend(key, token, ttl)))
    }

    /// A watch on the key for its delete (release, expiry, force-release), from the revision
    /// this store's last claim found it held at; or `pause`.
    fn wait_for_release(&self, key: &str, pause: Duration) {
        let key = self.core.key(key);
        let _ = self.block(|core| Box::pin(core.wait(key, pause)));
    }

    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        let key = self.core.key(key);
        let wait = self.run(|core| Box::pin(core.wait(key, pause)));
        Box::pin(async move {
            let _ = wait.await;
        })
    }

    /// etcd's minimum lease TTL: 2 s (etcd's default), or the longer minimum a grant showed.
    fn min_ttl(&self) -> Duration {
        self.core.min_lease()
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(&self.core)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(&self.core)
    }
}

/// On the core, not on [`EtcdStore`], so that `holder` and `claim` stay unambiguous on it.
impl LockAdmin for Core {
    /// A read of the key, then its lease's time to live.
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let key = self.key(key);
        self.block(|core| Box::pin(core.holder(key)))
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        let key = self.key(key);
        self.run(|core| Box::pin(core.holder(key)))
    }

    /// One range read of the keys under the prefix (keys only).
    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let prefix = prefix.to_owned();
        self.block(|core| Box::pin(core.keys(prefix)))
    }

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        let prefix = prefix.to_owned();
        self.run(|core| Box::pin(core.keys(prefix)))
    }

    /// A delete of the key (then its lease revoked in the background).
    fn force_release(&self, key: &str) -> CacheResult<()> {
        let key = self.key(key);
        self.block(|core| Box::pin(core.force_release(key)))
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        let key = self.key(key);
        self.run(|core| Box::pin(core.force_release(key)))
    }
}

/// Tree locks: one transaction per claim over the path's relatives (see `tree.rs`).
impl TreeStore for Core {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        let (space, path, args) = (space.to_owned(), path.to_owned(), ClaimArgs::new(claim));
        let won = self.block(|core| Box::pin(core.tree_claim(space, path, scope, args)))?;
        Ok(won.map(Claimed::new))
    }

    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let (space, path, args) = (space.to_owned(), path.to_owned(), ClaimArgs::new(claim));
        let won = self.run(|core| Box::pin(core.tree_claim(space, path, scope, args)));
        Box::pin(async move { Ok(won.await?.map(Claimed::new)) })
    }

    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        self.block(|core| Box::pin(core.tree_release(space, path, token)))
    }

    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        self.run(|core| Box::pin(core.tree_release(space, path, token)))
    }

    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        self.block(|core| Box::pin(core.tree_extend(space, path, token, ttl)))
    }

    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        self.run(|core| Box::pin(core.tree_extend(space, path, token, ttl)))
    }

    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        let (space, path) = (space.to_owned(), path.to_owned());
        self.block(|core| Box::pin(core.tree_holder(space, path, scope)))
    }

    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        let (space, path) = (space.to_owned(), path.to_owned());
        self.run(|core| Box::pin(core.tree_holder(space, path, scope)))
    }

    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        let space = space.to_owned();
        self.block(|core| Box::pin(core.tree_list(space)))
    }

    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        let space = space.to_owned();
        self.run(|core| Box::pin(core.tree_list(space)))
    }

    /// A watch on the space's owner keys for a delete; or `pause`.
    fn wait_for_release(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        let _ = (path, scope);
        let space = space.to_owned();
        let _ = self.block(|core| Box::pin(core.tree_wait(space, pause)));
    }

    fn wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        let _ = (path, scope);
        let space = space.to_owned();
        let wait = self.run(|core| Box::pin(core.tree_wait(space, pause)));
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}
