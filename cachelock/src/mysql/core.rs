//! The executor of every operation, sync and async: where connections come from, the
//! timeouts, the one resend after a dead connection, and the table made on first need.
//!
//! - Sync, own: a stack of idle `mysql::Conn`s ([`SyncPool`]). A thread takes one (or
//!   connects), runs the operation, and puts it back; a connection that failed in any way
//!   is closed, never put back (after a timeout its late reply would be read as the next
//!   answer). Connecting is bounded by the connect timeout, every read and write by the
//!   response timeout (socket timeouts).
//! - Sync, the app's `mysql::Pool`: a pooled connection per operation; one that failed is
//!   marked to be reset on its return, which drops it from the pool when it is dead.
//! - Async, own: one `mysql_async::Pool` per tokio runtime (a pool's connections and
//!   background task belong to the runtime that made them), made on first use there.
//! - Async, the app's `mysql_async::Pool`: used as it is, in the app's runtime.
//! - Async, a store made from a sync pool alone: the sync operation on tokio's blocking
//!   pool (`spawn_blocking`), never on a runtime thread.
//!
//! Every async operation is bounded by the connect timeout plus the response timeout
//! (`mysql_async` has no socket timeouts of its own). A connection found dead on first use
//! (the server restarted) is replaced and the operation sent once more: every operation
//! is safe to send twice (a claim resent finds its own token and wins; see `ops.rs`). A
//! table that does not exist yet (`ER_NO_SUCH_TABLE`) is created, then the operation sent
//! again; an InnoDB deadlock (a tree claim, rolled back by the server) is retried too.

use std::sync::{Arc, Mutex};

use tokio::runtime::{Handle, Id};

use super::config::Settings;
use super::ops::{Op, Reply};
use super::session::{block, DbError, Session, DEADLOCK, NO_SUCH_TABLE};
use super::sql::Sql;

/// How many times an operation is sent after an InnoDB deadlock (tree claims only can
/// meet one), beyond the first.
const DEADLOCK_RETRIES: usize = 3;

/// The few most recent runtimes whose async pools are kept.
const REMEMBERED_RUNTIMES: usize = 4;

/// Idle sync connections, most recently used on top.
pub(crate) struct SyncPool {
    opts: mysql::Opts,
    idle: Mutex<Vec<mysql::Conn>>,
    max_idle: usize,
}

impl SyncPool {
    pub(crate) fn new(opts: mysql::Opts, max_idle: usize) -> SyncPool {
        SyncPool {
            opts,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn take(&self) -> Option<mysql::Conn> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put(&self, conn: mysql::Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    fn clear(&self) {
        let dead = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        drop(dead);
    }

    fn connect(&self) -> Result<mysql::Conn, DbError> {
        mysql::Conn::new(self.opts.clone()).map_err(DbError::from_sync)
    }

    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Runs `f` on an idle connection or a new one; a dead idle connection is replaced
    /// (and the other idle ones dropped: they are most likely dead too) and `f` run again.
    fn run<T>(
        &self,
        mut f: impl FnMut(&mut mysql::Conn) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let (mut conn, reused) = match self.take() {
            Some(conn) => (conn, true),
            None => (self.connect()?, false),
        };
        match f(&mut conn) {
            Ok(value) => {
                self.put(conn);
                Ok(value)
            }
            Err(error) if reused && error.is_dead_connection() => {
                tracing::debug!(%error, "MariaDB/MySQL connection is dead; retrying once");
                drop(conn);
                self.clear();
                let mut conn = self.connect()?;
                let value = f(&mut conn)?;
                self.put(conn);
                Ok(value)
            }
            Err(error) => Err(error),
        }
    }
}

/// Where the sync path gets its connections.
pub(crate) enum SyncSide {
    Own(SyncPool),
    App(mysql::Pool),
}

/// Where the async path gets its connections.
pub(crate) enum AsyncSide {
    /// One pool per runtime, made from these options.
    Own {
        opts: mysql_async::Opts,
        pools: Mutex<Vec<(Id, mysql_async::Pool)>>,
    },
    /// The app's pool.
    App(mysql_async::Pool),
    /// The sync path, on tokio's blocking pool.
    Blocking,
}

pub(crate) struct Inner {
    pub(crate) sql: Sql,
    pub(crate) settings: Settings,
    /// Where it connects, password redacted.
    pub(crate) target: String,
    /// The password, to scrub from any message.
    secret: Option<String>,
    sync: SyncSide,
    async_side: AsyncSide,
}

/// The store's state; clones share it.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) inner: Arc<Inner>,
}

impl Core {
    pub(crate) fn new(
        settings: Settings,
        target: String,
        secret: Option<String>,
        sync: SyncSide,
        async_side: AsyncSide,
    ) -> Core {
        Core {
            inner: Arc::new(Inner {
                sql: Sql::new(&settings.table),
                settings,
                target,
                secret,
                sync,
                async_side,
            }),
        }
    }

    pub(crate) fn idle_connections(&self) -> usize {
        match &self.inner.sync {
            SyncSide::Own(pool) => pool.idle_count(),
            SyncSide::App(_) => 0,
        }
    }

    fn finish<T>(&self, op: &Op<'_>, outcome: Result<T, DbError>) -> Result<T, crate::BoxError> {
        outcome.map_err(|error| Box::new(error.in_op(op.name(), self.inner.secret.as_deref())) as _)
    }

    /// Runs `op` on a session until it is answered: after `ER_NO_SUCH_TABLE`, creates the
    /// table (if allowed) and runs it again; after a deadlock, runs it again.
    async fn on_session<S: Session>(&self, s: &mut S, op: &Op<'_>) -> Result<Reply, DbError> {
        let inner = &*self.inner;
        let mut created = false;
        let mut deadlocks = 0;
        loop {
            match op.run(s, &inner.sql).await {
                Err(error)
                    if error.is_server(NO_SUCH_TABLE)
                        && inner.settings.create_table
                        && !created =>
                {
                    tracing::debug!(table = %inner.settings.table, "creating the MariaDB/MySQL lock table");
                    s.batch(&inner.sql.create).await?;
                    created = true;
                }
                Err(error) if error.is_server(DEADLOCK) && deadlocks < DEADLOCK_RETRIES => {
                    deadlocks += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Runs `op` with the sync driver, on the caller's thread.
    pub(crate) fn run(&self, op: Op<'_>) -> Result<Reply, crate::BoxError> {
        let outcome = self.run_sync(&op);
        self.finish(&op, outcome)
    }

    fn run_sync(&self, op: &Op<'_>) -> Result<Reply, DbError> {
        match &self.inner.sync {
            SyncSide::Own(pool) => pool.run(|conn| block(self.on_session(conn, op))),
            SyncSide::App(pool) => {
                let attempt = || -> Result<Reply, DbError> {
                    let mut conn = pool.get_conn().map_err(DbError::from_sync)?;
                    // Our statements leave no session state behind: no need to reset the
                    // connection on its way back (which would also empty its statement cache).
                    conn.reset_connection(false);
                    let outcome = block(self.on_session(&mut conn, op));
                    if outcome.is_err() {
                        // A reset on return: a dead connection fails it and leaves the pool.
                        conn.reset_connection(true);
                    }
                    outcome
                };
                match attempt() {
                    Err(error) if error.is_dead_connection() => attempt(),
                    outcome => outcome,
                }
            }
        }
    }

    /// Runs `op` with the async driver (or, for a store made from a sync pool alone, on
    /// tokio's blocking pool), bounded by the connect plus response timeouts.
    pub(crate) async fn run_async(&self, op: Op<'_>) -> Result<Reply, crate::BoxError> {
        let outcome = self.run_async_inner(&op).await;
        self.finish(&op, outcome)
    }

    async fn run_async_inner(&self, op: &Op<'_>) -> Result<Reply, DbError> {
        if Handle::try_current().is_err() {
            return Err(DbError::other(
                "async MariaDB/MySQL operations must run inside a tokio runtime",
            ));
        }
        let limit = self.inner.settings.operation_timeout();
        let attempt = async {
            match &self.inner.async_side {
                AsyncSide::Blocking => self.run_blocking(op).await,
                AsyncSide::App(pool) => self.on_pool(pool, op).await,
                AsyncSide::Own { .. } => {
                    let pool = self.runtime_pool()?;
                    self.on_pool(&pool, op).await
                }
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DbError::timeout(format!(
                "no answer within {limit:?} (connect + response timeouts)"
            ))),
        }
    }

    async fn on_pool(&self, pool: &mysql_async::Pool, op: &Op<'_>) -> Result<Reply, DbError> {
        let attempt = || async {
            let mut conn = pool.get_conn().await.map_err(DbError::from_async)?;
            conn.reset_connection(false);
            self.on_session(&mut conn, op).await
        };
        match attempt().await {
            Err(error) if error.is_dead_connection() => {
                tracing::debug!(%error, "MariaDB/MySQL connection is dead; retrying once");
                attempt().await
            }
            outcome => outcome,
        }
    }

    /// The sync operation on tokio's blocking pool. The operation borrows from the caller,
    /// so it is copied into owned form first.
    async fn run_blocking(&self, op: &Op<'_>) -> Result<Reply, DbError> {
        let owned = OwnedOp::from(op);
        let core = self.clone();
        match tokio::task::spawn_blocking(move || core.run_sync(&owned.op())).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DbError::other("the blocking MariaDB/MySQL task failed")),
        }
    }

    /// The current runtime's own async pool, made on first use.
    fn runtime_pool(&self) -> Result<mysql_async::Pool, DbError> {
        let AsyncSide::Own { opts, pools } = &self.inner.async_side else {
            return Err(DbError::other("no async pool of the store's own"));
        };
        let id = Handle::try_current()
            .map_err(|_| {
                DbError::other("async MariaDB/MySQL operations must run inside a tokio runtime")
            })?
            .id();
        let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, pool)) = pools.iter().find(|(slot, _)| *slot == id) {
            return Ok(pool.clone());
        }
        let pool = mysql_async::Pool::new(opts.clone());
        if pools.len() >= REMEMBERED_RUNTIMES {
            pools.remove(0);
        }
        pools.push((id, pool.clone()));
        Ok(pool)
    }
}

/// An [`Op`] with owned strings, to move to another thread.
struct OwnedOp {
    kind: Op<'static>,
    strings: Vec<String>,
}

impl OwnedOp {
    fn from(op: &Op<'_>) -> OwnedOp {
        // The strings are kept in order, and `op` rebuilds the operation on them.
        let (kind, strings): (Op<'static>, Vec<&str>) = match *op {
            Op::Claim {
                key,
                token,
                owner,
                ttl,
            } => (
                Op::Claim {
                    key: "",
                    token: "",
                    owner: "",
                    ttl,
                },
                vec![key, token, owner],
            ),
            Op::Release { key, token } => (Op::Release { key: "", token: "" }, vec![key, token]),
            Op::Extend { key, token, ttl } => (
                Op::Extend {
                    key: "",
                    token: "",
                    ttl,
                },
                vec![key, token],
            ),
            Op::Holder { key } => (Op::Holder { key: "" }, vec![key]),
            Op::Keys { prefix } => (Op::Keys { prefix: "" }, vec![prefix]),
            Op::ForceRelease { key } => (Op::ForceRelease { key: "" }, vec![key]),
            Op::TreeClaim {
                space,
                path,
                scope,
                token,
                owner,
                ttl,
            } => (
                Op::TreeClaim {
                    space: "",
                    path: "",
                    scope,
                    token: "",
                    owner: "",
                    ttl,
                },
                vec![space, path, token, owner],
            ),
            Op::TreeRelease { space, path, token } => (
                Op::TreeRelease {
                    space: "",
                    path: "",
                    token: "",
                },
                vec![space, path, token],
            ),
            Op::TreeExtend {
                space,
                path,
                token,
                ttl,
            } => (
                Op::TreeExtend {
                    space: "",
                    path: "",
                    token: "",
                    ttl,
                },
                vec![space, path, token],
            ),
            Op::TreeHolder { space, path, scope } => (
                Op::TreeHolder {
                    space: "",
                    path: "",
                    scope,
                },
                vec![space, path],
            ),
            Op::TreeList { space } => (Op::TreeList { space: "" }, vec![space]),
        };
        OwnedOp {
            kind,
            strings: strings.into_iter().map(str::to_owned).collect(),
        }
    }

    fn op(&self) -> Op<'_> {
        let s = |i: usize| self.strings[i].as_str();
        match self.kind {
            Op::Claim { ttl, .. } => Op::Claim {
                key: s(0),
                token: s(1),
                owner: s(2),
                ttl,
            },
            Op::Release { .. } => Op::Release {
                key: s(0),
                token: s(1),
            },
            Op::Extend { ttl, .. } => Op::Extend {
                key: s(0),
                token: s(1),
                ttl,
            },
            Op::Holder { .. } => Op::Holder { key: s(0) },
            Op::Keys { .. } => Op::Keys { prefix: s(0) },
            Op::ForceRelease { .. } => Op::ForceRelease { key: s(0) },
            Op::TreeClaim { scope, ttl, .. } => Op::TreeClaim {
                space: s(0),
                path: s(1),
                scope,
                token: s(2),
                owner: s(3),
                ttl,
            },
            Op::TreeRelease { .. } => Op::TreeRelease {
                space: s(0),
                path: s(1),
                token: s(2),
            },
            Op::TreeExtend { ttl, .. } => Op::TreeExtend {
                space: s(0),
                path: s(1),
                token: s(2),
                ttl,
            },
            Op::TreeHolder { scope, .. } => Op::TreeHolder {
                space: s(0),
                path: s(1),
                scope,
            },
            Op::TreeList { .. } => Op::TreeList { space: s(0) },
        }
    }
}
