//! The core the standalone and the cluster stores share: the backend (how connections are
//! opened), the settings, the pool and the per-runtime async connections, and the one
//! executor of every operation, sync and async, with the same timeout and resend rules.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use redis::{aio, RedisError, RedisResult};

use super::command::Reply;
use super::config::Settings;
use super::exec::{exec, exec_async};
use super::ops::Op;
use super::pool::{is_dead_connection, Pool, SyncConnection};
use super::runtime::PerRuntime;
use super::tree_wake::TreeLog;
use crate::error::BoxError;
use crate::gate::Gate;
use crate::result::{BoxFuture, CacheResult};
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
    /// ran but whose reply was lost is then answered as the resend saw it. A refused claim
    /// (fenced or not) may be such an answer, so it is asked again in its resent form
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

pub(super) struct Inner<B: Backend> {
    pub(super) backend: B,
    pub(super) settings: Settings,
    /// Where it connects, credentials redacted (for `Debug`).
    target: String,
    pool: Pool<B::Sync>,
    async_cons: PerRuntime<B::Async>,
    /// Waiters for a release, woken by the subscriber thread.
    pub(super) board: Arc<Board>,
    /// Recent tree releases, recorded by the subscriber thread.
    pub(super) tree_log: Arc<TreeLog>,
    pub(super) subscribed: std::sync::Once,
    /// What this handle knows of its own claims (`gate.rs`).
    pub(super) gate: Gate,
    /// The fence counter key of every claim, on standalone Redis (one counter), computed
    /// once; on Redis Cluster it depends on the key's slot and is computed per claim.
    fence_key: String,
}

/// A backend with its settings, pool and async connections; clones share them.
pub(crate) struct Core<B: Backend> {
    pub(super) inner: Arc<Inner<B>>,
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

pub(super) fn boxed(error: RedisError) -> BoxError {
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
                gate: Gate::default(),
                backend,
                settings,
                target,
            }),
        }
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

    /// The key as sent to Redis: with the cache's own prefix.
    pub(super) fn key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        self.inner.settings.key(key)
    }

    /// The fence counter key of a claim of the (prefixed) `key`.
    pub(super) fn counter(&self, key: &str) -> Cow<'_, str> {
        if B::CLUSTER {
            Cow::Owned(super::fence::counter_key(
                key,
                &self.inner.settings.key_prefix,
                true,
            ))
        } else {
            Cow::Borrowed(&self.inner.fence_key)
        }
    }

    pub(super) fn async_con(&self) -> RedisResult<B::Async> {
        let inner = &*self.inner;
        inner
            .async_cons
            .get(|| inner.backend.connect_async(&inner.settings))
    }

    /// Runs `op` (its keys already prefixed) on a pooled connection, bounded by the
    /// response timeout (and a claim or extend by its TTL); a connection found dead is
    /// replaced and `op` sent once more, in its resent form ([`Op::resent`]).
    pub(super) fn run(&self, op: Op<'_>) -> CacheResult<Reply> {
        let inner = &*self.inner;
        let timeout = inner.settings.reply_timeout(op.lock_ttl());
        inner
            .pool
            .run_resending(
                || inner.backend.connect(&inner.settings),
                timeout,
                |con| Self::exec_first(con, op),
                |con| exec(con, op.resent()),
            )
            .map_err(boxed)
    }

    /// Sends `op` as it is; on a backend whose client resends by itself, a refused claim is
    /// asked again in its resent form (see [`Backend::RESENDS_BY_ITSELF`]).
    fn exec_first(con: &mut B::Sync, op: Op<'_>) -> RedisResult<Reply> {
        match exec(con, op)? {
            reply
                if reply.is_refusal() && B::RESENDS_BY_ITSELF && op.refusal_may_be_own_resend() =>
            {
                exec(con, op.resent())
            }
            reply => Ok(reply),
        }
    }

    /// Async twin of [`exec_first`](Core::exec_first).
    async fn exec_first_async(con: &mut B::Async, op: Op<'_>) -> RedisResult<Reply> {
        match exec_async(con, op).await? {
            reply
                if reply.is_refusal() && B::RESENDS_BY_ITSELF && op.refusal_may_be_own_resend() =>
            {
                exec_async(con, op.resent()).await
            }
            reply => Ok(reply),
        }
    }

    /// Async twin of [`run`](Core::run), on the runtime's multiplexed connection, with the
    /// same bounds and the same resend.
    pub(super) async fn run_async(&self, op: Op<'_>) -> CacheResult<Reply> {
        let settings = &self.inner.settings;
        let limit = settings.operation_timeout(op.lock_ttl());
        // The async connection bounds connecting and each reply by itself (connect and
        // response timeouts), so a second timer per operation is only needed when the
        // lock's TTL is the tighter bound: a claim or extend must not answer after it. The
        // attempt's future is made in each branch, where it is awaited: made once before
        // the branch, it would be moved (copied) into whichever branch runs.
        if limit >= settings.connect_timeout + settings.response_timeout {
            return self.attempt_async(op).await.map_err(boxed);
        }
        match tokio::time::timeout(limit, self.attempt_async(op)).await {
            Ok(outcome) => outcome.map_err(boxed),
            Err(_) => Err(timed_out(op, limit)),
        }
    }

    /// One run of `op` on the runtime's connection: sent as it is, and, when the connection
    /// was found dead, once more in its resent form.
    async fn attempt_async(&self, op: Op<'_>) -> RedisResult<Reply> {
        let mut con = self.async_con()?;
        match Self::exec_first_async(&mut con, op).await {
            // The connection was found dead (the server restarted, or the connection was
            // cut): the async connection reconnects by itself. The command may have run
            // with only its reply lost, so it is sent again in its resent form.
            Err(error) if is_dead_connection(&error) => {
                tracing::debug!(%error, "Redis connection is dead; retrying once");
                let mut con = self.async_con()?;
                exec_async(&mut con, op.resent()).await
            }
            outcome => outcome,
        }
    }

    /// Every key that matches `pattern`, with `SCAN`, on a pooled connection.
    pub(super) fn scan(&self, pattern: &str) -> CacheResult<Vec<String>> {
        let inner = &*self.inner;
        inner
            .pool
            .run(
                || inner.backend.connect(&inner.settings),
                inner.settings.reply_timeout(None),
                |con| B::scan(con, pattern),
            )
            .map_err(boxed)
    }

    /// Async twin of [`scan`](Core::scan); each `SCAN` is bounded by the response timeout.
    pub(super) async fn scan_async(&self, pattern: &str) -> CacheResult<Vec<String>> {
        let mut con = self.async_con().map_err(boxed)?;
        B::scan_async(&mut con, pattern).await.map_err(boxed)
    }
}

/// The reply an operation did not expect.
pub(super) fn unexpected(op: Op<'_>, reply: Reply) -> BoxError {
    format!("unexpected reply to Redis {}: {reply:?}", op.name()).into()
}
