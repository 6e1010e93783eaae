//! Settings of the PostgreSQL store, their defaults, and the configuration error.

use std::time::Duration;

use super::sql::MAX_TABLE_NAME;

/// How long opening a connection may take (TCP connect and authentication): 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one statement may wait for its answer: 2 seconds.
///
/// Lock statements answer in well under a millisecond on a healthy server (plus the commit's
/// WAL flush); two seconds leaves room for a loaded one and still fails fast when the
/// server hangs. `claim` and `extend` never wait longer than the lock's TTL, whatever this
/// says.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// How many idle connections each pool keeps (the sync pool, and the async pool of each
/// tokio runtime): 16.
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 16;

/// The table's default name: `cachelock_locks` (with `cachelock_locks_tree` and the
/// sequence `cachelock_locks_fence` beside it).
pub const DEFAULT_TABLE: &str = "cachelock_locks";

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
    pub(crate) create_table: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            max_idle: DEFAULT_MAX_IDLE_CONNECTIONS,
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
            create_table: true,
        }
    }
}

impl Settings {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "the connect timeout must be greater than zero",
            ));
        }
        if self.statement_timeout.is_zero() {
            return Err(ConfigError::new(
                "the statement timeout must be greater than zero",
            ));
        }
        if self.table.is_empty() || self.table.len() > MAX_TABLE_NAME {
            return Err(ConfigError::new(format!(
                "the table name must have 1 to {MAX_TABLE_NAME} bytes (PostgreSQL cuts names at 63, and the sequence adds `_fence`)"
            )));
        }
        if self
            .schema
            .as_deref()
            .is_some_and(|s| s.is_empty() || s.len() > 63)
        {
            return Err(ConfigError::new("the schema name must have 1 to 63 bytes"));
        }
        if self.table.contains('\0') || self.schema.as_deref().is_some_and(|s| s.contains('\0')) {
            return Err(ConfigError::new(
                "table and schema names must not contain NUL",
            ));
        }
        Ok(())
    }

    /// The bound of one statement: the statement timeout, and never longer than the lock's
    /// TTL for `claim` and `extend` (a claim answered after its TTL would hand out a lock
    /// that has already expired).
    pub(crate) fn statement_bound(&self, ttl: Option<Duration>) -> Duration {
        match ttl {
            Some(ttl) => self.statement_timeout.min(ttl),
            None => self.statement_timeout,
        }
        .max(Duration::from_millis(1))
    }
}

/// A PostgreSQL store could not be built: a URL that does not parse, a zero timeout, a table
/// name PostgreSQL would cut.
///
/// The message never contains a password: URLs in it are redacted.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a config points, without its password: `postgres://user@host:port/dbname`.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}
