//! What the standalone and the cluster cache share: running an operation, sync or async,
//! with timeouts and one retry on a dead connection, and the [`Cache`] implementation.

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::{aio, RedisError, RedisResult};

use super::config::Settings;
use super::listing;
use super::ops::{self, Op, Reply};
use super::pool::{is_dead_connection, Pool, SyncConnection};
use super::runtime::PerRuntime;
use super::tree::TreeOp;
use super::tree_wake::{TreeLog, TreeWait, TREE_RELEASED};
use crate::cache::{BoxFuture, Cache, CacheResult};
use crate::error::BoxError;
use crate::wake::Board;

/// How a backend opens its connections.
pub(crate) trait Backend: Send + Sync + 'static {
    /// A sync connection, pooled.
    type Sync: SyncConnection;
    /// An async connection that reconnects by itself; cheap to clone, one per runtime.
    type Async: aio::ConnectionLike + Clone + Send + Sync + 'static;

    /// Opens a sync connection, within the connect timeout.
    fn connect(&self, settings: &Settings) -> RedisResult<Self::Sync>;

    /// Whether keys are spread over Redis Cluster slots (one fence counter per slot).
    const CLUSTER: bool;

    /// Whether the client sends a command again by itself when its connection died, without
    /// telling (the cluster clients do, up to their retry count): a command whose first send
    /// ran but whose reply was lost is then answered as the resend saw it. A refused plain
    /// unfenced claim may be such an answer, so it is asked again in its resent form
    /// ([`Op::resent`]).
    const RESENDS_BY_ITSELF: bool;

    /// A connection for the release channel (`SUBSCRIBE`), if this backend has one.
    fn subscriber(&self, settings: &Settings) -> Option<RedisResult<redis::Connection>> {
        let _ = settings;
        None
    }

    /// Whether [`subscriber`](Backend::subscriber) can give a connection: if not, waiters
    /// poll with backoff.
    fn subscribes(&self) -> bool {
        false
    }

    /// Makes the async connection of the current runtime; it connects on first use.
    fn connect_async(&self, settings: &Settings) -> RedisResult<Self::Async>;

    /// Every key that matches `pattern`, with `SCAN` (see `listing.rs`).
    fn scan(con: &mut Self::Sync, pattern: &str) -> RedisResult<Vec<String>>;

    /// Async twin of [`Backend::scan`].
    fn scan_async<'a>(
        con: &'a mut Self::Async,
        pattern: &'a str,
    ) -> BoxFuture<'a, RedisResult<Vec<String>>>;
}

struct Inner<B: Backend> {
    backend: B,
    settings: Settings,
    /// Where it connects, credentials redacted (for `Debug`).
    target: String,
    pool: Pool<B::Sync>,
    async_cons: PerRuntime<B::Async>,
    /// Waiters for a release, woken by the subscriber thread.
    board: Arc<Board>,
    /// Recent tree releases, recorded by the subscriber thread.
    tree_log: Arc<TreeLog>,
    subscribed: std::sync::Once,
    /// The fence counter key of every claim, on standalone Redis (one counter), computed
    /// once; on Redis Cluster it depends on the key's slot and is computed per claim.
    fence_key: String,
}

/// The channel the release script publishes each released key on.
const RELEASED: &str = "cachelock:released";

/// The subscriber thread: wakes the waiters of every key published on [`RELEASED`], and of
/// every tree lock space published on [`TREE_RELEASED`] (recording the released path first).
/// Reconnects after a failure; ends once the cache (its board) is gone.
fn subscribe_loop(
    connect: impl Fn() -> Option<RedisResult<redis::Connection>>,
    board: Weak<Board>,
    tree_log: Weak<TreeLog>,
) {
    while board.strong_count() > 0 {
        let Some(Ok(mut con)) = connect() else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        if con.set_read_timeout(Some(Duration::from_secs(1))).is_err() {
            continue;
        }
        let mut pubsub = con.as_pubsub();
        if let Err(error) = pubsub.subscribe(&[RELEASED, TREE_RELEASED]) {
            tracing::debug!(%error, "cannot subscribe to lock releases; waiters poll");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        loop {
            match pubsub.get_message() {
                Ok(message) => {
                    let Some(board) = board.upgrade() else { return };
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    if message.get_channel_name() == TREE_RELEASED {
                        let Some(log) = tree_log.upgrade() else {
                            return;
                        };
                        if let Some(key) = log.record(&payload) {
                            board.released(key);
                        }
                    } else {
                        board.released(&payload);
                    }
                }
                Err(error) if error.is_timeout() => {
                    if board.strong_count() == 0 {
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "lock release subscription lost; reconnecting");
                    break;
                }
            }
        }
    }
}

/// A backend with its settings, pool and async connections; clones share them.
pub(crate) struct Core<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Core<B> {
    fn clone(&self) -> Self {
        Core {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn timed_out(op: Op<'_>, after: Duration) -> BoxError {
    Box::new(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("Redis {} timed out after {after:?}", op.name()),
    ))
}

fn unexpected(op: Op<'_>, reply: Reply) -> BoxError {
    format!("unexpected reply to Redis {}: {reply:?}", op.name()).into()
}

fn boxed(error: RedisError) -> BoxError {
    Box::new(error)
}

impl<B: Backend> Core<B> {
    pub(crate) fn new(backend: B, settings: Settings, target: String) -> Self {
        let fence_key = if B::CLUSTER {
            String::new()
        } else {
            super::fence::counter_key("", &settings.key_prefix, false)
        };
        Core {
            inner: Arc::new(Inner {
                fence_key,
                pool: Pool::new(settings.max_idle),
                async_cons: PerRuntime::new(),
                board: Arc::new(Board::new()),
                tree_log: Arc::default(),
                subscribed: std::sync::Once::new(),
                backend,
                settings,
                target,
            }),
        }
    }

    /// Starts the subscriber thread, once, if the backend has a release channel; returns
    /// whether waiters can expect a wake-up.
    fn ensure_subscriber(&self) {
        self.inner.subscribed.call_once(|| {
            let weak_inner = Arc::downgrade(&self.inner);
            let board = Arc::downgrade(&self.inner.board);
            let tree_log = Arc::downgrade(&self.inner.tree_log);
            let spawned = std::thread::Builder::new()
                .name("cachelock-released".to_owned())
                .spawn(move || {
                    subscribe_loop(
                        || {
                            let inner = weak_inner.upgrade()?;
                            inner.backend.subscriber(&inner.settings)
                        },
                        board,
                        tree_log,
                    )
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the release subscriber; waiters poll");
            }
        });
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn target(&self) -> &str {
        &self.inner.target
    }

    pub(crate) fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    fn run(&self, op: Op<'_>) -> CacheResult<Reply> {
        let inner = &*self.inner;
        let key = inner.settings.key(op.key());
        let counter = self.counter(op, &key);
        let op = op.with_key(&key).with_counter(&counter);
        let timeout = inner.settings.reply_timeout(op.lock_ttl());
        inner
            .pool
            .run_resending(
                || inner.backend.connect(&inner.settings),
                timeout,
                |con| Self::exec_first(con, op),
                |con| ops::exec(con, op.resent()),
            )
            .map_err(boxed)
    }

    /// Sends `op` as it is; on a backend whose client resends by itself, a refused plain
    /// unfenced claim is asked again in its resent form (see [`Backend::RESENDS_BY_ITSELF`]).
    fn exec_first(con: &mut B::Sync, op: Op<'_>) -> RedisResult<Reply> {
        match ops::exec(con, op)? {
            Reply::Flag(false) if B::RESENDS_BY_ITSELF && op.refusal_may_be_own_resend() => {
                ops::exec(con, op.resent())
            }
            reply => Ok(reply),
        }
    }

    /// Async twin of [`exec_first`](Core::exec_first).
    async fn exec_first_async(con: &mut B::Async, op: Op<'_>) -> RedisResult<Reply> {
        match ops::exec_async(con, op).await? {
            Reply::Flag(false) if B::RESENDS_BY_ITSELF && op.refusal_may_be_own_resend() => {
                ops::exec_async(con, op.resent()).await
            }
            reply => Ok(reply),
        }
    }

    /// The fence counter key of a claim of the (prefixed) `key`; empty for other operations.
    fn counter(&self, op: Op<'_>, key: &str) -> Cow<'_, str> {
        match op {
            Op::Claim(..) if B::CLUSTER => Cow::Owned(super::fence::counter_key(
                key,
                &self.inner.settings.key_prefix,
                true,
            )),
            Op::Claim(..) => Cow::Borrowed(&self.inner.fence_key),
            _ => Cow::Borrowed(""),
        }
    }

    fn async_con(&self) -> RedisResult<B::Async> {
        let inner = &*self.inner;
        inner
            .async_cons
            .get(|| inner.backend.connect_async(&inner.settings))
    }

    async fn run_async(&self, op: Op<'_>) -> CacheResult<Reply> {
        let settings = &self.inner.settings;
        let key = settings.key(op.key());
        let counter = self.counter(op, &key);
        let op = op.with_key(&key).with_counter(&counter);
        let limit = settings.operation_timeout(op.lock_ttl());
        let attempt = async {
            let mut con = self.async_con()?;
            match Self::exec_first_async(&mut con, op).await {
                // The connection was found dead (the server restarted, or the connection was
                // cut): the async connection reconnects by itself. The command may have run
                // with only its reply lost, so it is sent again in its resent form.
                Err(error) if is_dead_connection(&error) => {
                    tracing::debug!(%error, "Redis connection is dead; retrying once");
                    let mut con = self.async_con()?;
                    ops::exec_async(&mut con, op.resent()).await
                }
                outcome => outcome,
            }
        };
        // The async connection bounds connecting and each reply by itself (connect and
        // response timeouts), so a second timer per operation is only needed when the
        // lock's TTL is the tighter bound: a claim or extend must not answer after it.
        if limit >= settings.connect_timeout + settings.response_timeout {
            return attempt.await.map_err(boxed);
        }
        match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome.map_err(boxed),
            Err(_) => Err(timed_out(op, limit)),
        }
    }

    fn fence(op: Op<'_>, reply: CacheResult<Reply>) -> CacheResult<Option<u64>> {
        match reply? {
            Reply::Fence(fence) => Ok(fence),
            other => Err(unexpected(op, other)),
        }
    }

    fn flag(op: Op<'_>, reply: CacheResult<Reply>) -> CacheResult<bool> {
        match reply? {
            Reply::Flag(flag) => Ok(flag),
            other => Err(unexpected(op, other)),
        }
    }
}

/// Tree locks (`redis/tree.rs`): one script per operation on the keys of one lock space.
impl<B: Backend> Core<B> {
    fn tree_run(&self, space: &str, op: TreeOp<'_>) -> CacheResult<redis::Value> {
        let inner = &*self.inner;
        let keys = super::tree::keys(&inner.settings.key_prefix, space)?;
        let invocation = op.invocation(&keys);
        let timeout = inner.settings.reply_timeout(op.lock_ttl());
        inner
            .pool
            .run(
                || inner.backend.connect(&inner.settings),
                timeout,
                |con| invocation.invoke::<redis::Value>(con),
            )
            .map_err(boxed)
    }

    async fn tree_run_async(&self, space: &str, op: TreeOp<'_>) -> CacheResult<redis::Value> {
        let settings = &self.inner.settings;
        let keys = super::tree::keys(&settings.key_prefix, space)?;
        let invocation = op.invocation(&keys);
        let limit = settings.operation_timeout(op.lock_ttl());
        let attempt = async {
            let mut con = self.async_con()?;
            match invocation.invoke_async::<redis::Value>(&mut con).await {
                Err(error) if is_dead_connection(&error) => {
                    tracing::debug!(%error, "Redis connection is dead; retrying once");
                    let mut con = self.async_con()?;
                    invocation.invoke_async::<redis::Value>(&mut con).await
                }
                outcome => outcome,
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome.map_err(boxed),
            Err(_) => Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("Redis {} timed out after {limit:?}", op.name()),
            ))),
        }
    }
}

impl<B: Backend> Core<B> {
    /// Never blocks: inside a tokio runtime the release (or, with `keep_for`, the
    /// owner-checked extend) is spawned on it; elsewhere it runs on a short-lived background
    /// thread. The outcome is logged through `tracing`, with `held_for` when known.
    fn release_in_background(
        &self,
        key: &str,
        token: &str,
        keep_for: Option<Duration>,
        held_for: Option<Duration>,
    ) {
        let core = self.clone();
        let (key, token) = (key.to_owned(), token.to_owned());
        let log = crate::basic::log_detached_release;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let outcome = match keep_for {
                        Some(keep) => core.extend_async(&key, &token, keep).await,
                        None => core.release_async(&key, &token).await,
                    };
                    log(&key, held_for, outcome);
                });
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("cachelock-release".to_owned())
                    .spawn(move || {
                        let outcome = match keep_for {
                            Some(keep) => core.extend(&key, &token, keep),
                            None => core.release(&key, &token),
                        };
                        log(&key, held_for, outcome);
                    });
                if let Err(error) = spawned {
                    tracing::error!(
                        %error,
                        "cannot start a thread to release a lock; it stays until its TTL runs out"
                    );
                }
            }
        }
    }
}

impl<B: Backend> Core<B> {
    /// Releases a tree lock (or, with `keep`, sets its TTL to `keep` for `hold_at_least`),
    /// owner-checked, without blocking: spawned on the current tokio runtime, or run on a
    /// short-lived thread outside one. The outcome is logged.
    fn tree_release_in_background(
        &self,
        space: &str,
        path: &str,
        token: &str,
        keep: Option<Duration>,
    ) {
        let core = self.clone();
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        let log = move |space: &str, path: &str, outcome| match keep {
            Some(keep) => crate::tree::log_kept(space, path, keep, outcome),
            None => crate::tree::log_release(space, path, outcome),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let outcome = match keep {
                        Some(keep) => core.tree_extend_async(&space, &path, &token, keep).await,
                        None => core.tree_release_async(&space, &path, &token).await,
                    };
                    log(&space, &path, outcome);
                });
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("cachelock-release".to_owned())
                    .spawn(move || {
                        let outcome = match keep {
                            Some(keep) => core.tree_extend(&space, &path, &token, keep),
                            None => core.tree_release(&space, &path, &token),
                        };
                        log(&space, &path, outcome);
                    });
                if let Err(error) = spawned {
                    tracing::error!(
                        %error,
                        "cannot start a thread to release a tree lock; it stays until its TTL runs out"
                    );
                }
            }
        }
    }
}

impl<B: Backend> Cache for Core<B> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let op = Op::Get(key);
        match self.run(op)? {
            Reply::Value(value) => Ok(value),
            other => Err(unexpected(op, other)),
        }
    }

    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.run(Op::Set(key, value, ttl)).map(drop)
    }

    fn get_with_ttl(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let op = Op::GetWithTtl(key);
        match self.run(op)? {
            Reply::ValueTtl(value) => Ok(value),
            other => Err(unexpected(op, other)),
        }
    }

    /// `SCAN` with `MATCH <prefix>*` (never `KEYS`); on Redis Cluster, on every primary.
    fn keys_with_prefix(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let inner = &*self.inner;
        let pattern = listing::pattern(&inner.settings.key(prefix));
        let keys = inner
            .pool
            .run(
                || inner.backend.connect(&inner.settings),
                inner.settings.reply_timeout(None),
                |con| B::scan(con, &pattern),
            )
            .map_err(boxed)?;
        Ok(listing::without_own_prefix(
            keys,
            &inner.settings.key_prefix,
        ))
    }

    fn delete(&self, key: &str) -> CacheResult<()> {
        self.run(Op::Delete(key)).map(drop)
    }

    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        let op = Op::Claim(key, "", token, ttl);
        Self::fence(op, self.run(op))
    }

    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        let op = Op::Release(key, token);
        Self::flag(op, self.run(op))
    }

    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        let op = Op::Extend(key, token, ttl);
        Self::flag(op, self.run(op))
    }

    /// Waits for the key's release message on the `cachelock:released` channel (the
    /// release script publishes it; on Redis Cluster, every node relays it), or `pause`,
    /// whichever comes first. Without a subscription (a cluster cache made `from_client`):
    /// `pause` (polling).
    fn wait_for_release(&self, key: &str, pause: Duration) {
        if !self.inner.backend.subscribes() {
            std::thread::sleep(pause);
            return;
        }
        self.ensure_subscriber();
        let key = self.inner.settings.key(key);
        self.inner.board.wait(&key, pause, || true);
    }

    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.inner.backend.subscribes() {
                tokio::time::sleep(pause).await;
                return;
            }
            self.ensure_subscriber();
            let key = self.inner.settings.key(key);
            self.inner.board.wait_async(&key, pause, || true).await;
        })
    }

    /// Like `wait_for_release`, for a release in the tree lock space `space` that could
    /// have blocked `path` (see `tree_wake.rs`): the tree release script publishes the
    /// released path and the space's owner hash key; releases of unrelated paths of the
    /// space wake the wait only to send it back to waiting, until `pause` has passed.
    fn tree_wait_for_release(
        &self,
        space: &str,
        path: &str,
        scope: crate::tree::TreeScope,
        pause: Duration,
    ) {
        let keys = super::tree::keys(&self.inner.settings.key_prefix, space);
        match keys {
            Ok(keys) if self.inner.backend.subscribes() => {
                self.ensure_subscriber();
                let key = keys.released_key();
                let mut wait = TreeWait::new(&self.inner.tree_log, key, path, scope, pause);
                while let Some(left) = wait.left() {
                    self.inner.board.wait(key, left, || true);
                    if wait.concerned() {
                        return;
                    }
                }
            }
            _ => std::thread::sleep(pause),
        }
    }

    fn tree_wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: crate::tree::TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let keys = super::tree::keys(&self.inner.settings.key_prefix, space);
            match keys {
                Ok(keys) if self.inner.backend.subscribes() => {
                    self.ensure_subscriber();
                    let key = keys.released_key();
                    let mut wait = TreeWait::new(&self.inner.tree_log, key, path, scope, pause);
                    while let Some(left) = wait.left() {
                        self.inner.board.wait_async(key, left, || true).await;
                        if wait.concerned() {
                            return;
                        }
                    }
                }
                _ => tokio::time::sleep(pause).await,
            }
        })
    }

    /// Never blocks: spawned on the current tokio runtime, or on a short-lived thread
    /// outside one; the outcome is logged through `tracing`.
    fn release_detached(&self, key: &str, token: &str, keep_for: Option<Duration>) {
        self.release_in_background(key, token, keep_for, None);
    }

    fn get_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<Option<String>>> {
        Box::pin(async move {
            let op = Op::Get(key);
            match self.run_async(op).await? {
                Reply::Value(value) => Ok(value),
                other => Err(unexpected(op, other)),
            }
        })
    }

    fn set_async<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(async move { self.run_async(Op::Set(key, value, ttl)).await.map(drop) })
    }

    fn delete_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(async move { self.run_async(Op::Delete(key)).await.map(drop) })
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
        Box::pin(async move {
            let op = Op::Claim(key, "", token, ttl);
            Self::fence(op, self.run_async(op).await)
        })
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = Op::Release(key, token);
            Self::flag(op, self.run_async(op).await)
        })
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = Op::Extend(key, token, ttl);
            Self::flag(op, self.run_async(op).await)
        })
    }

    /// Like `release_detached`; the event it logs carries `held_for`.
    fn release_detached_held(
        &self,
        key: &str,
        token: &str,
        keep_for: Option<Duration>,
        held_for: Duration,
    ) {
        self.release_in_background(key, token, keep_for, Some(held_for));
    }

    fn get_with_ttl_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(async move {
            let op = Op::GetWithTtl(key);
            match self.run_async(op).await? {
                Reply::ValueTtl(value) => Ok(value),
                other => Err(unexpected(op, other)),
            }
        })
    }

    /// Async twin of `keys_with_prefix`; each `SCAN` is bounded by the response timeout.
    fn keys_with_prefix_async<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(async move {
            let settings = &self.inner.settings;
            let pattern = listing::pattern(&settings.key(prefix));
            let mut con = self.async_con().map_err(boxed)?;
            let keys = B::scan_async(&mut con, &pattern).await.map_err(boxed)?;
            Ok(listing::without_own_prefix(keys, &settings.key_prefix))
        })
    }

    fn tree_claim(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<u64>> {
        let op = TreeOp::Claim {
            path,
            value,
            ttl,
            scope,
        };
        super::tree::claimed(self.tree_run(space, op)?)
    }

    fn tree_release(&self, space: &str, path: &str, token: &str) -> CacheResult<bool> {
        super::tree::flag(self.tree_run(space, TreeOp::Release { path, token })?)
    }

    fn tree_extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
    ) -> CacheResult<bool> {
        super::tree::flag(self.tree_run(space, TreeOp::Extend { path, token, ttl })?)
    }

    fn tree_holder(
        &self,
        space: &str,
        path: &str,
        scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<crate::tree::TreeEntry>> {
        super::tree::holder(self.tree_run(space, TreeOp::Holder { path, scope })?)
    }

    fn tree_list(&self, space: &str) -> CacheResult<Vec<crate::tree::TreeEntry>> {
        super::tree::listed(self.tree_run(space, TreeOp::List)?)
    }

    /// Never blocks, like [`release_detached`](Cache::release_detached): spawned on the
    /// current tokio runtime, or run on a short-lived thread outside one.
    fn tree_release_detached(&self, space: &str, path: &str, token: &str) {
        self.tree_release_in_background(space, path, token, None);
    }

    /// Never blocks either (`hold_at_least`): the owner-checked extend runs in the
    /// background like `tree_release_detached`.
    fn tree_extend_detached(&self, space: &str, path: &str, token: &str, keep: Duration) {
        self.tree_release_in_background(space, path, token, Some(keep));
    }

    fn tree_claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        value: &'a str,
        ttl: Duration,
        scope: crate::tree::TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
        Box::pin(async move {
            let op = TreeOp::Claim {
                path,
                value,
                ttl,
                scope,
            };
            super::tree::claimed(self.tree_run_async(space, op).await?)
        })
    }

    fn tree_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = TreeOp::Release { path, token };
            super::tree::flag(self.tree_run_async(space, op).await?)
        })
    }

    fn tree_extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = TreeOp::Extend { path, token, ttl };
            super::tree::flag(self.tree_run_async(space, op).await?)
        })
    }

    fn tree_holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: crate::tree::TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<crate::tree::TreeEntry>>> {
        Box::pin(async move {
            let op = TreeOp::Holder { path, scope };
            super::tree::holder(self.tree_run_async(space, op).await?)
        })
    }

    fn tree_list_async<'a>(
        &'a self,
        space: &'a str,
    ) -> BoxFuture<'a, CacheResult<Vec<crate::tree::TreeEntry>>> {
        Box::pin(
            async move { super::tree::listed(self.tree_run_async(space, TreeOp::List).await?) },
        )
    }

    /// `SET key token NX PX ttl`: one command, no script, no fence counter. Sent again after
    /// its connection died (its first send may have run, the reply lost), it is a script that
    /// also takes the key holding exactly `token` as this claim's own win; on Redis Cluster,
    /// whose client resends by itself, a refusal is asked again that way (one more round trip,
    /// on refusals only).
    fn claim_unfenced(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        let op = Op::ClaimUnfenced(key, token, ttl);
        Self::flag(op, self.run(op))
    }

    fn claim_unfenced_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = Op::ClaimUnfenced(key, token, ttl);
            Self::flag(op, self.run_async(op).await)
        })
    }
}

/// Implements [`Cache`] for a public wrapper by forwarding every method to its `core`.
macro_rules! forward_to_core {
    ($ty:ty) => {
        impl $crate::cache::Cache for $ty {
            fn get(&self, key: &str) -> $crate::cache::CacheResult<Option<String>> {
                self.core.get(key)
            }
            fn set(
                &self,
                key: &str,
                value: &str,
                ttl: Option<std::time::Duration>,
            ) -> $crate::cache::CacheResult<()> {
                self.core.set(key, value, ttl)
            }
            fn delete(&self, key: &str) -> $crate::cache::CacheResult<()> {
                self.core.delete(key)
            }
            fn claim(
                &self,
                key: &str,
                token: &str,
                ttl: std::time::Duration,
            ) -> $crate::cache::CacheResult<Option<u64>> {
                self.core.claim(key, token, ttl)
            }
            fn release(&self, key: &str, token: &str) -> $crate::cache::CacheResult<bool> {
                self.core.release(key, token)
            }
            fn extend(
                &self,
                key: &str,
                token: &str,
                ttl: std::time::Duration,
            ) -> $crate::cache::CacheResult<bool> {
                self.core.extend(key, token, ttl)
            }
            fn get_with_ttl(
                &self,
                key: &str,
            ) -> $crate::cache::CacheResult<Option<(String, Option<Duration>)>> {
                self.core.get_with_ttl(key)
            }
            fn keys_with_prefix(&self, prefix: &str) -> $crate::cache::CacheResult<Vec<String>> {
                self.core.keys_with_prefix(prefix)
            }
            fn wait_for_release(&self, key: &str, pause: Duration) {
                self.core.wait_for_release(key, pause)
            }
            fn wait_for_release_async<'a>(
                &'a self,
                key: &'a str,
                pause: Duration,
            ) -> $crate::cache::BoxFuture<'a, ()> {
                self.core.wait_for_release_async(key, pause)
            }
            fn tree_wait_for_release(
                &self,
                space: &str,
                path: &str,
                scope: $crate::tree::TreeScope,
                pause: Duration,
            ) {
                self.core.tree_wait_for_release(space, path, scope, pause)
            }
            fn tree_wait_for_release_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                scope: $crate::tree::TreeScope,
                pause: Duration,
            ) -> $crate::cache::BoxFuture<'a, ()> {
                self.core
                    .tree_wait_for_release_async(space, path, scope, pause)
            }
            fn release_detached(&self, key: &str, token: &str, keep_for: Option<Duration>) {
                self.core.release_detached(key, token, keep_for)
            }
            fn get_async<'a>(
                &'a self,
                key: &'a str,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<Option<String>>> {
                self.core.get_async(key)
            }
            fn set_async<'a>(
                &'a self,
                key: &'a str,
                value: &'a str,
                ttl: Option<std::time::Duration>,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<()>> {
                self.core.set_async(key, value, ttl)
            }
            fn delete_async<'a>(
                &'a self,
                key: &'a str,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<()>> {
                self.core.delete_async(key)
            }
            fn claim_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
                ttl: std::time::Duration,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<Option<u64>>> {
                self.core.claim_async(key, token, ttl)
            }
            fn release_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<bool>> {
                self.core.release_async(key, token)
            }
            fn extend_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
                ttl: std::time::Duration,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<bool>> {
                self.core.extend_async(key, token, ttl)
            }
            fn release_detached_held(
                &self,
                key: &str,
                token: &str,
                keep_for: Option<Duration>,
                held_for: Duration,
            ) {
                self.core
                    .release_detached_held(key, token, keep_for, held_for)
            }
            fn get_with_ttl_async<'a>(
                &'a self,
                key: &'a str,
            ) -> $crate::cache::BoxFuture<
                'a,
                $crate::cache::CacheResult<Option<(String, Option<Duration>)>>,
            > {
                self.core.get_with_ttl_async(key)
            }
            fn keys_with_prefix_async<'a>(
                &'a self,
                prefix: &'a str,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<Vec<String>>> {
                self.core.keys_with_prefix_async(prefix)
            }
            fn tree_claim(
                &self,
                space: &str,
                path: &str,
                value: &str,
                ttl: std::time::Duration,
                scope: $crate::tree::TreeScope,
            ) -> $crate::cache::CacheResult<Option<u64>> {
                self.core.tree_claim(space, path, value, ttl, scope)
            }
            fn tree_release(
                &self,
                space: &str,
                path: &str,
                token: &str,
            ) -> $crate::cache::CacheResult<bool> {
                self.core.tree_release(space, path, token)
            }
            fn tree_extend(
                &self,
                space: &str,
                path: &str,
                token: &str,
                ttl: std::time::Duration,
            ) -> $crate::cache::CacheResult<bool> {
                self.core.tree_extend(space, path, token, ttl)
            }
            fn tree_holder(
                &self,
                space: &str,
                path: &str,
                scope: $crate::tree::TreeScope,
            ) -> $crate::cache::CacheResult<Option<$crate::tree::TreeEntry>> {
                self.core.tree_holder(space, path, scope)
            }
            fn tree_release_detached(&self, space: &str, path: &str, token: &str) {
                self.core.tree_release_detached(space, path, token)
            }
            fn tree_extend_detached(
                &self,
                space: &str,
                path: &str,
                token: &str,
                keep: std::time::Duration,
            ) {
                self.core.tree_extend_detached(space, path, token, keep)
            }
            fn tree_list(
                &self,
                space: &str,
            ) -> $crate::cache::CacheResult<Vec<$crate::tree::TreeEntry>> {
                self.core.tree_list(space)
            }
            fn tree_claim_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                value: &'a str,
                ttl: std::time::Duration,
                scope: $crate::tree::TreeScope,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<Option<u64>>> {
                self.core.tree_claim_async(space, path, value, ttl, scope)
            }
            fn tree_release_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                token: &'a str,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<bool>> {
                self.core.tree_release_async(space, path, token)
            }
            fn tree_extend_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                token: &'a str,
                ttl: std::time::Duration,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<bool>> {
                self.core.tree_extend_async(space, path, token, ttl)
            }
            fn tree_holder_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                scope: $crate::tree::TreeScope,
            ) -> $crate::cache::BoxFuture<
                'a,
                $crate::cache::CacheResult<Option<$crate::tree::TreeEntry>>,
            > {
                self.core.tree_holder_async(space, path, scope)
            }
            fn tree_list_async<'a>(
                &'a self,
                space: &'a str,
            ) -> $crate::cache::BoxFuture<
                'a,
                $crate::cache::CacheResult<Vec<$crate::tree::TreeEntry>>,
            > {
                self.core.tree_list_async(space)
            }
            fn claim_unfenced(
                &self,
                key: &str,
                token: &str,
                ttl: std::time::Duration,
            ) -> $crate::cache::CacheResult<bool> {
                self.core.claim_unfenced(key, token, ttl)
            }
            fn claim_unfenced_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
                ttl: std::time::Duration,
            ) -> $crate::cache::BoxFuture<'a, $crate::cache::CacheResult<bool>> {
                self.core.claim_unfenced_async(key, token, ttl)
            }
        }
    };
}

pub(crate) use forward_to_core;
