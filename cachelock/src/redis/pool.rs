//! The sync connection pool: idle connections on a stack, so threads never wait on each other.
//!
//! A thread takes an idle connection (or opens one when none is idle), runs one command on
//! it, and puts it back. Nothing is shared while a command runs, so many threads run their
//! commands in parallel, each on its own connection; at most `max_idle` connections are kept
//! between commands, the others are closed.
//!
//! A connection that failed is closed, not put back (after a timeout, its late reply could
//! otherwise be read as the answer to the next command), except after an error *reply* from
//! the server (`WRONGTYPE`...), which leaves the connection in a clean state.
//!
//! When a connection taken from the pool turns out dead (the server restarted since it was
//! last used, or the connection was cut), the pool is emptied and the command is sent once
//! more on a fresh connection. Usually the first send never reached a server, but it may
//! have run there with only its reply lost: so the second send is the operation's resent
//! form ([`Pool::run_resending`]), which must be safe to run twice.

use std::sync::Mutex;
use std::time::Duration;

use redis::{ConnectionLike, RedisError, RedisResult};

/// A sync connection whose socket timeouts can be set.
pub(crate) trait SyncConnection: ConnectionLike + Send + 'static {
    /// Sets the read and write timeouts of every socket under it.
    fn set_timeouts(&mut self, timeout: Duration) -> RedisResult<()>;
}

impl SyncConnection for redis::Connection {
    fn set_timeouts(&mut self, timeout: Duration) -> RedisResult<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl SyncConnection for redis::cluster::ClusterConnection {
    fn set_timeouts(&mut self, timeout: Duration) -> RedisResult<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

struct Pooled<C> {
    con: C,
    /// The timeouts last set on the sockets, to skip the system calls when unchanged.
    timeout: Option<Duration>,
}

impl<C: SyncConnection> Pooled<C> {
    fn call<T>(
        &mut self,
        timeout: Duration,
        op: &impl Fn(&mut C) -> RedisResult<T>,
    ) -> RedisResult<T> {
        if self.timeout != Some(timeout) {
            // Forget the old value first: if setting fails half-way, it is unknown.
            self.timeout = None;
            self.con.set_timeouts(timeout)?;
            self.timeout = Some(timeout);
        }
        op(&mut self.con)
    }
}

/// `true` for an error after which the connection is still in step with the server.
fn connection_still_good(error: &RedisError) -> bool {
    matches!(error.kind(), redis::ErrorKind::Server(_))
}

/// `true` for a dead connection (as opposed to a slow server or an error reply).
pub(crate) fn is_dead_connection(error: &RedisError) -> bool {
    !error.is_timeout() && (error.is_connection_dropped() || error.is_io_error())
}

pub(crate) struct Pool<C> {
    idle: Mutex<Vec<Pooled<C>>>,
    max_idle: usize,
}

impl<C: SyncConnection> Pool<C> {
    pub(crate) fn new(max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Pooled<C>>> {
        // The vector is consistent at every step; a panic elsewhere cannot break it.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many idle connections are kept right now.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle().len()
    }

    fn put(&self, pooled: Pooled<C>) {
        let mut idle = self.idle();
        if idle.len() < self.max_idle {
            idle.push(pooled);
        }
    }

    fn finish<T>(&self, pooled: Pooled<C>, outcome: &RedisResult<T>) {
        match outcome {
            Ok(_) => self.put(pooled),
            Err(error) if connection_still_good(error) => self.put(pooled),
            Err(_) => {}
        }
    }

    /// Runs `op` on a pooled connection (see the module docs for failures and the retry);
    /// for an `op` that is safe to send twice as it is.
    pub(crate) fn run<T>(
        &self,
        connect: impl Fn() -> RedisResult<C>,
        timeout: Duration,
        op: impl Fn(&mut C) -> RedisResult<T>,
    ) -> RedisResult<T> {
        self.run_resending(connect, timeout, &op, &op)
    }

    /// Runs `op` on a pooled connection; if the connection turns out dead, sends `resend`
    /// on a fresh one (`op` may have run on the server, only its reply lost).
    pub(crate) fn run_resending<T>(
        &self,
        connect: impl Fn() -> RedisResult<C>,
        timeout: Duration,
        op: impl Fn(&mut C) -> RedisResult<T>,
        resend: impl Fn(&mut C) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let taken = self.idle().pop();
        let (mut pooled, reused) = match taken {
            Some(pooled) => (pooled, true),
            None => (
                Pooled {
                    con: connect()?,
                    timeout: None,
                },
                false,
            ),
        };
        let outcome = pooled.call(timeout, &op);
        match outcome {
            Err(error) if reused && is_dead_connection(&error) => {
                tracing::debug!(%error, "pooled Redis connection is dead; retrying on a new one");
                drop(pooled);
                // The other idle connections went to the same server: likely dead too.
                self.idle().clear();
                let mut fresh = Pooled {
                    con: connect()?,
                    timeout: None,
                };
                let outcome = fresh.call(timeout, &resend);
                self.finish(fresh, &outcome);
                outcome
            }
            outcome => {
                self.finish(pooled, &outcome);
                outcome
            }
        }
    }
}
