//! The executor of every operation, sync and async, with the same timeout and resend rules,
//! and the two connection pools.
//!
//! Both paths run the same async code ([`exec`]) on tokio-postgres connections:
//!
//! - **sync**: each pooled connection owns a current-thread tokio runtime that drives its
//!   socket while the calling thread blocks on the statement (what the `postgres` crate's
//!   blocking client does, plus a client-side timeout). Blocking on a runtime from a thread
//!   that is already inside one panics in tokio, so a sync call made from a runtime thread (a
//!   sync `Guard` dropped in async code) runs on a short-lived helper thread instead, and the
//!   caller waits for it.
//! - **async**: connections whose socket is driven by a task of the caller's runtime, pooled
//!   per runtime (a connection dies with the runtime that drives it; a store is often shared
//!   by several runtimes over its life, a `#[tokio::test]` each).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::runtime::{Handle, Id, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::config::Settings;
use super::ops::{ensure_schema, exec, Op, Reply};
use super::sql::Sql;
use crate::error::BoxError;
use crate::result::CacheResult;
use crate::wake::Board;

/// Runtimes whose async pools are remembered.
const REMEMBERED_RUNTIMES: usize = 4;

/// A failed operation: what it was, where (password hidden), and the cause as its source.
#[derive(Debug)]
pub(crate) struct PgError {
    message: String,
    source: BoxError,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.message, self.source)
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Why one attempt failed.
enum Failure {
    Pg(tokio_postgres::Error),
    /// The connection's runtime could not be built.
    Runtime(std::io::Error),
    TimedOut(&'static str, Duration),
}

impl Failure {
    /// The connection is gone (closed, reset, the server shut down or restarted): worth one
    /// more try on a fresh connection.
    fn is_dead_connection(&self) -> bool {
        let Failure::Pg(error) = self else {
            return false;
        };
        if error.is_closed() {
            return true;
        }
        if let Some(code) = error.code() {
            return *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08");
        }
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = next {
            if e.is::<std::io::Error>() {
                return true;
            }
            next = e.source();
        }
        false
    }

    fn is_undefined_table(&self) -> bool {
        matches!(self, Failure::Pg(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE))
    }
}

/// A sync connection: its client and the runtime that drives its socket.
struct SyncConn {
    client: Client,
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
}

impl SyncConn {
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("a SyncConn's runtime is taken only when it is dropped"),
        }
    }
}

impl Drop for SyncConn {
    /// A runtime dropped the usual way panics inside another runtime's context (a store
    /// dropped in async code drops its idle connections): shut it down without waiting.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The async connections of one runtime.
struct RuntimePool {
    id: Id,
    idle: Vec<Client>,
}

pub(crate) struct Inner {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) settings: Settings,
    pub(crate) sql: Sql,
    /// Where it connects, password hidden (for `Debug` and errors).
    pub(crate) target: String,
    sync_idle: Mutex<Vec<SyncConn>>,
    async_idle: Mutex<Vec<RuntimePool>>,
    /// The tables were found or created (reset when a statement finds them missing).
    schema_ready: AtomicBool,
    /// Waiters for a release, woken by the listener thread.
    pub(crate) board: Arc<Board>,
    pub(crate) listener: Once,
    /// The listener is connected and listening.
    pub(crate) listening: Arc<AtomicBool>,
    /// Release notifications the listener received.
    pub(crate) notifications: Arc<AtomicU64>,
}

/// The store's state; clones share it.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    pub(crate) fn new(
        mut config: tokio_postgres::Config,
        settings: Settings,
        target: String,
    ) -> Core {
        config.connect_timeout(settings.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("cachelock");
        }
        let sql = Sql::new(settings.schema.as_deref(), &settings.table);
        Core {
            inner: Arc::new(Inner {
                config,
                sql,
                target,
                sync_idle: Mutex::new(Vec::new()),
                async_idle: Mutex::new(Vec::new()),
                schema_ready: AtomicBool::new(!settings.create_table),
                board: Arc::new(Board::new()),
                listener: Once::new(),
                listening: Arc::default(),
                notifications: Arc::default(),
                settings,
            }),
        }
    }

    pub(crate) fn idle_connections(&self) -> usize {
        lock(&self.inner.sync_idle).len()
    }

    fn error(&self, op: Op<'_>, failure: Failure) -> BoxError {
        let what = format!("PostgreSQL {} on {}", op.name(), self.inner.target);
        match failure {
            Failure::Pg(error) => Box::new(PgError {
                message: what,
                source: Box::new(error),
            }),
            Failure::Runtime(error) => Box::new(PgError {
                message: what,
                source: Box::new(error),
            }),
            Failure::TimedOut(stage, after) => Box::new(PgError {
                message: what,
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{stage} timed out after {after:?}"),
                )),
            }),
        }
    }

    /// Runs `op` on a connection: the tables first if they are not known to exist yet, then
    /// the statement, all within the statement bound.
    async fn attempt(&self, client: &Client, op: Op<'_>) -> Result<Reply, Failure> {
        let inner = &*self.inner;
        let bound = inner.settings.statement_bound(op.lock_ttl());
        if !inner.schema_ready.load(Ordering::Acquire) {
            // Once per store, bounded by the statement timeout alone: the lock's TTL bounds
            // the lock's own statement.
            let timeout = inner.settings.statement_timeout;
            match tokio::time::timeout(timeout, ensure_schema(client, &inner.sql)).await {
                Ok(Ok(())) => inner.schema_ready.store(true, Ordering::Release),
                Ok(Err(error)) => return Err(Failure::Pg(error)),
                Err(_) => return Err(Failure::TimedOut("creating the tables", timeout)),
            }
        }
        match tokio::time::timeout(bound, exec(client, &inner.sql, op)).await {
            Ok(outcome) => outcome.map_err(Failure::Pg),
            Err(_) => Err(Failure::TimedOut("the statement", bound)),
        }
    }

    /// What to do after a failed attempt on a connection that was `pooled`: `true` to try
    /// once more on a fresh connection (a dead pooled connection; the tables gone).
    fn retry(&self, failure: &Failure, pooled: bool) -> bool {
        if failure.is_undefined_table() && self.inner.settings.create_table {
            self.inner.schema_ready.store(false, Ordering::Release);
            return true;
        }
        if pooled && failure.is_dead_connection() {
            tracing::debug!(target = %self.inner.target, "PostgreSQL connection is dead; retrying once");
            return true;
        }
        false
    }

    // --- sync ----------------------------------------------------------------------------

    fn connect_sync(&self) -> Result<SyncConn, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Failure::Runtime)?;
        let timeout = self.inner.settings.connect_timeout;
        let connected = runtime.block_on(async {
            tokio::time::timeout(timeout, self.inner.config.connect(NoTls)).await
        });
        let (client, connection) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => return Err(Failure::Pg(error)),
            Err(_) => return Err(Failure::TimedOut("connecting", timeout)),
        };
        // Polled whenever the runtime runs, i.e. while a statement is waited for.
        runtime.spawn(connection);
        Ok(SyncConn {
            client,
            runtime: Some(runtime),
        })
    }

    fn attempt_sync(&self, con: &SyncConn, op: Op<'_>) -> Result<Reply, Failure> {
        con.block_on(self.attempt(&con.client, op))
    }

    /// A statement timed out: the server may still run it (a claim behind a lock would land
    /// after the caller gave up), so it is cancelled (a cancel request on a new connection,
    /// in the background, bounded by the connect timeout), then the connection is closed.
    fn cancel_sync(&self, con: SyncConn) {
        let timeout = self.inner.settings.connect_timeout;
        let spawned = std::thread::Builder::new()
            .name("cachelock-pg-cancel".to_owned())
            .spawn(move || {
                let token = con.client.cancel_token();
                con.block_on(async {
                    let _ = tokio::time::timeout(timeout, token.cancel_query(NoTls)).await;
                });
            });
        if let Err(error) = spawned {
            tracing::debug!(%error, "cannot cancel a PostgreSQL statement that timed out");
        }
    }

    /// Runs `op` on a pooled sync connection; a dead pooled connection is replaced and `op`
    /// sent once more. From inside a tokio runtime, on a helper thread (see the module docs).
    pub(crate) fn run(&self, op: Op<'_>) -> CacheResult<Reply> {
        if Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("cachelock-postgres-sync".to_owned())
                    .spawn_scoped(scope, || self.run_here(op))
                    .map_err(|e| -> BoxError { Box::new(e) })?
                    .join()
                    .unwrap_or_else(|_| Err("the PostgreSQL helper thread panicked".into()))
            });
        }
        self.run_here(op)
    }

    fn run_here(&self, op: Op<'_>) -> CacheResult<Reply> {
        let pooled = lock(&self.inner.sync_idle).pop();
        let was_pooled = pooled.is_some();
        let con = match pooled {
            Some(con) => con,
            None => self.connect_sync().map_err(|f| self.error(op, f))?,
        };
        let (con, outcome) = match self.attempt_sync(&con, op) {
            Err(failure) if self.retry(&failure, was_pooled) => {
                if !failure.is_undefined_table() {
                    drop(con);
                    let con = self.connect_sync().map_err(|f| self.error(op, f))?;
                    let outcome = self.attempt_sync(&con, op);
                    (con, outcome)
                } else {
                    let outcome = self.attempt_sync(&con, op);
                    (con, outcome)
                }
            }
            outcome => (con, outcome),
        };
        if let Err(Failure::TimedOut(..)) = outcome {
            self.cancel_sync(con);
            return outcome.map_err(|f| self.error(op, f));
        }
        match outcome {
            Ok(reply) => {
                let mut idle = lock(&self.inner.sync_idle);
                if idle.len() < self.inner.settings.max_idle && !con.client.is_closed() {
                    idle.push(con);
                }
                Ok(reply)
            }
            // A connection that failed is dropped: its state is unknown (a statement may
            // still run, a transaction may be open).
            Err(failure) => Err(self.error(op, failure)),
        }
    }

    // --- async ---------------------------------------------------------------------------

    async fn connect_async(&self) -> Result<Client, Failure> {
        let timeout = self.inner.settings.connect_timeout;
        match tokio::time::timeout(timeout, self.inner.config.connect(NoTls)).await {
            Ok(Ok((client, connection))) => {
                tokio::spawn(connection);
                Ok(client)
            }
            Ok(Err(error)) => Err(Failure::Pg(error)),
            Err(_) => Err(Failure::TimedOut("connecting", timeout)),
        }
    }

    fn take_async(&self, id: Id) -> Option<Client> {
        let mut pools = lock(&self.inner.async_idle);
        let pool = pools.iter_mut().find(|p| p.id == id)?;
        while let Some(client) = pool.idle.pop() {
            if !client.is_closed() {
                return Some(client);
            }
        }
        None
    }

    fn put_async(&self, id: Id, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut pools = lock(&self.inner.async_idle);
        let index = match pools.iter().position(|p| p.id == id) {
            Some(index) => index,
            None => {
                if pools.len() >= REMEMBERED_RUNTIMES {
                    pools.remove(0);
                }
                pools.push(RuntimePool {
                    id,
                    idle: Vec::new(),
                });
                pools.len() - 1
            }
        };
        if pools[index].idle.len() < self.inner.settings.max_idle {
            pools[index].idle.push(client);
        }
    }

    /// Async twin of [`run`](Core::run), on the current runtime's pool.
    pub(crate) async fn run_async(&self, op: Op<'_>) -> CacheResult<Reply> {
        let id = Handle::try_current()
            .map_err(|_| -> BoxError {
                "async PostgreSQL operations must run inside a tokio runtime".into()
            })?
            .id();
        let pooled = self.take_async(id);
        let was_pooled = pooled.is_some();
        let client = match pooled {
            Some(client) => client,
            None => self.connect_async().await.map_err(|f| self.error(op, f))?,
        };
        let (client, outcome) = match self.attempt(&client, op).await {
            Err(failure) if self.retry(&failure, was_pooled) => {
                if failure.is_undefined_table() {
                    let outcome = self.attempt(&client, op).await;
                    (client, outcome)
                } else {
                    drop(client);
                    let client = self.connect_async().await.map_err(|f| self.error(op, f))?;
                    let outcome = self.attempt(&client, op).await;
                    (client, outcome)
                }
            }
            outcome => (client, outcome),
        };
        if let Err(Failure::TimedOut(..)) = outcome {
            let (token, timeout) = (client.cancel_token(), self.inner.settings.connect_timeout);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, token.cancel_query(NoTls)).await;
                drop(client);
            });
            return outcome.map_err(|f| self.error(op, f));
        }
        match outcome {
            Ok(reply) => {
                self.put_async(id, client);
                Ok(reply)
            }
            Err(failure) => Err(self.error(op, failure)),
        }
    }
}
