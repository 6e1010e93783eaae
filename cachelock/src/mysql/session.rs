//! One connection as the operations see it ([`Session`]), on either driver, and the one
//! error type ([`DbError`]) both drivers' errors become.
//!
//! The operations (`ops.rs`) are written once, as async code over a [`Session`]. The sync
//! driver's session does its I/O inside the call and returns a ready future, so the sync
//! path drives an operation to its end with a single poll ([`block`]), on the caller's
//! thread, without any runtime.

use std::future::Future;

use mysql::prelude::Queryable as _;
use mysql::Value;

/// What a statement that returns no rows reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    pub(crate) affected: u64,
    /// The statement's `LAST_INSERT_ID` (0 when it set none).
    pub(crate) last_id: u64,
}

/// A connection to run statements on.
pub(crate) trait Session: Send {
    /// A prepared statement (cached per connection) that returns no rows.
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Done, DbError>> + Send + 'a;

    /// A prepared statement that returns rows.
    fn select<'a>(
        &'a mut self,
        sql: &'a str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>, DbError>> + Send + 'a;

    /// A text statement (or several, separated by `;`) whose results are dropped.
    fn batch<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> impl Future<Output = Result<(), DbError>> + Send + 'a;
}

fn params(values: Vec<Value>) -> mysql::Params {
    if values.is_empty() {
        mysql::Params::Empty
    } else {
        mysql::Params::Positional(values)
    }
}

impl Session for mysql::Conn {
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        values: Vec<Value>,
    ) -> impl Future<Output = Result<Done, DbError>> + Send + 'a {
        let outcome = self
            .exec_drop(sql, params(values))
            .map(|()| Done {
                affected: self.affected_rows(),
                last_id: self.last_insert_id(),
            })
            .map_err(DbError::from_sync);
        std::future::ready(outcome)
    }

    fn select<'a>(
        &'a mut self,
        sql: &'a str,
        values: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>, DbError>> + Send + 'a {
        let outcome = self
            .exec::<mysql::Row, _, _>(sql, params(values))
            .map(|rows| rows.into_iter().map(mysql::Row::unwrap).collect())
            .map_err(DbError::from_sync);
        std::future::ready(outcome)
    }

    fn batch<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> impl Future<Output = Result<(), DbError>> + Send + 'a {
        std::future::ready(self.query_drop(sql).map_err(DbError::from_sync))
    }
}

impl Session for mysql::PooledConn {
    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        values: Vec<Value>,
    ) -> impl Future<Output = Result<Done, DbError>> + Send + 'a {
        self.as_mut().execute(sql, values)
    }

    fn select<'a>(
        &'a mut self,
        sql: &'a str,
        values: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>, DbError>> + Send + 'a {
        self.as_mut().select(sql, values)
    }

    fn batch<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> impl Future<Output = Result<(), DbError>> + Send + 'a {
        self.as_mut().batch(sql)
    }
}

impl Session for mysql_async::Conn {
    async fn execute(&mut self, sql: &str, values: Vec<Value>) -> Result<Done, DbError> {
        mysql_async::prelude::Queryable::exec_drop(&mut *self, sql, params(values))
            .await
            .map_err(DbError::from_async)?;
        Ok(Done {
            affected: self.affected_rows(),
            last_id: self.last_insert_id().unwrap_or(0),
        })
    }

    async fn select(&mut self, sql: &str, values: Vec<Value>) -> Result<Vec<Vec<Value>>, DbError> {
        let rows: Vec<mysql_async::Row> =
            mysql_async::prelude::Queryable::exec(&mut *self, sql, params(values))
                .await
                .map_err(DbError::from_async)?;
        Ok(rows.into_iter().map(mysql_async::Row::unwrap).collect())
    }

    async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        mysql_async::prelude::Queryable::query_drop(&mut *self, sql)
            .await
            .map_err(DbError::from_async)
    }
}

/// Drives a future to its end with one poll: for the sync sessions, whose futures are
/// ready when made. A future that is not ready after one poll is an internal error, never
/// a hang.
pub(crate) fn block<T>(future: impl Future<Output = Result<T, DbError>>) -> Result<T, DbError> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(outcome) => outcome,
        std::task::Poll::Pending => Err(DbError::other(
            "internal error: a sync MariaDB/MySQL operation did not complete",
        )),
    }
}

/// What kind of failure a [`DbError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// No reply (or no connection) in time.
    Timeout,
    /// The connection failed or was found dead.
    Connection,
    /// The server answered with an error (its code).
    Server(u16),
    /// Anything else (an unexpected reply...).
    Other,
}

/// `ER_NO_SUCH_TABLE`: the table does not exist (yet).
pub(crate) const NO_SUCH_TABLE: u16 = 1146;
/// `ER_LOCK_DEADLOCK`: InnoDB rolled the transaction back to break a deadlock.
pub(crate) const DEADLOCK: u16 = 1213;

/// A failure of the MariaDB/MySQL store: what went wrong, in words that never carry a
/// password, and for I/O failures the `std::io::Error` under it (so that
/// [`Error::is_timeout`](crate::Error::is_timeout) sees a timeout).
#[derive(Debug)]
pub(crate) struct DbError {
    pub(crate) kind: Kind,
    message: String,
    io: Option<std::io::Error>,
}

impl DbError {
    pub(crate) fn other(message: impl Into<String>) -> DbError {
        DbError {
            kind: Kind::Other,
            message: message.into(),
            io: None,
        }
    }

    pub(crate) fn timeout(message: impl Into<String>) -> DbError {
        let message = message.into();
        DbError {
            kind: Kind::Timeout,
            io: Some(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                message.clone(),
            )),
            message,
        }
    }

    fn io(error: std::io::Error) -> DbError {
        let timed_out = matches!(
            error.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        );
        DbError {
            kind: if timed_out {
                Kind::Timeout
            } else {
                Kind::Connection
            },
            message: if timed_out {
                "no reply from the server in time".to_owned()
            } else {
                format!("connection failed: {error}")
            },
            io: Some(error),
        }
    }

    fn server(code: u16, state: &str, message: &str) -> DbError {
        DbError {
            kind: Kind::Server(code),
            message: format!("server error {code} ({state}): {message}"),
            io: None,
        }
    }

    fn connection(message: String) -> DbError {
        DbError {
            kind: Kind::Connection,
            message,
            io: None,
        }
    }

    pub(crate) fn from_sync(error: mysql::Error) -> DbError {
        match error {
            mysql::Error::IoError(io) => DbError::io(io),
            mysql::Error::MySqlError(e) => DbError::server(e.code, &e.state, &e.message),
            mysql::Error::DriverError(mysql::DriverError::ConnectTimeout)
            | mysql::Error::DriverError(mysql::DriverError::Timeout) => {
                DbError::timeout("connecting timed out")
            }
            mysql::Error::DriverError(mysql::DriverError::CouldNotConnect(Some((
                addr,
                description,
                kind,
            )))) => {
                let message = format!("could not connect to {addr}: {description}");
                if matches!(
                    kind,
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) {
                    DbError::timeout(message)
                } else {
                    DbError {
                        kind: Kind::Connection,
                        io: Some(std::io::Error::new(kind, message.clone())),
                        message,
                    }
                }
            }
            mysql::Error::DriverError(e) => DbError::connection(format!("driver error: {e}")),
            mysql::Error::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(
                io,
            )) => DbError::io(io),
            mysql::Error::CodecError(e) => DbError::connection(format!("protocol error: {e}")),
            mysql::Error::UrlError(_) => DbError::other("invalid connection options"),
            mysql::Error::FromValueError(_) | mysql::Error::FromRowError(_) => {
                DbError::other("unexpected reply from the server")
            }
        }
    }

    pub(crate) fn from_async(error: mysql_async::Error) -> DbError {
        match error {
            mysql_async::Error::Io(mysql_async::IoError::Io(io)) => DbError::io(io),
            mysql_async::Error::Server(e) => DbError::server(e.code, &e.state, &e.message),
            mysql_async::Error::Driver(e) => DbError::connection(format!("driver error: {e}")),
            mysql_async::Error::Url(_) => DbError::other("invalid connection options"),
            mysql_async::Error::Other(_) => DbError::other("unexpected failure of the driver"),
        }
    }

    /// A connection that was found dead (the server restarted, the link was cut): a fresh
    /// connection may do better. Not a timeout (the server may be alive but slow).
    pub(crate) fn is_dead_connection(&self) -> bool {
        self.kind == Kind::Connection
    }

    pub(crate) fn is_server(&self, code: u16) -> bool {
        self.kind == Kind::Server(code)
    }

    /// Prefixes the message with the operation and hides `secret` (the password) should a
    /// message ever quote it.
    pub(crate) fn in_op(mut self, op: &str, secret: Option<&str>) -> DbError {
        let mut message = format!("MariaDB/MySQL {op} failed: {}", self.message);
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            message = message.replace(secret, "***");
        }
        self.message = message;
        self
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|io| io as &(dyn std::error::Error + 'static))
    }
}
