//! Settings of the Redis backends, their defaults, the configuration error, and URL redaction.

use std::borrow::Cow;
use std::time::Duration;

/// How long opening a connection may take (TCP connect, TLS, `AUTH`, `SELECT`): 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one command may wait for its reply: 2 seconds.
///
/// Lock commands answer in microseconds on a healthy server; two seconds leaves room for a
/// loaded one and still fails fast when the server hangs. `claim` and `extend` never wait
/// longer than the lock's TTL, whatever this says.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many idle connections the sync pool keeps: 16.
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 16;

/// The settings shared by [`RedisCache`](super::RedisCache) and
/// [`RedisClusterCache`](super::RedisClusterCache).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) key_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_idle: DEFAULT_MAX_IDLE_CONNECTIONS,
            key_prefix: String::new(),
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
        if self.response_timeout.is_zero() {
            return Err(ConfigError::new(
                "the response timeout must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The reply timeout of one command: the response timeout, and never longer than the
    /// lock's TTL for `claim` and `extend` (a claim answered after its TTL would hand out a
    /// lock that has already expired). At least 1 ms: a socket refuses a zero timeout.
    pub(crate) fn reply_timeout(&self, ttl: Option<Duration>) -> Duration {
        let timeout = match ttl {
            Some(ttl) => self.response_timeout.min(ttl),
            None => self.response_timeout,
        };
        timeout.max(Duration::from_millis(1))
    }

    /// The whole-operation bound of an async call: a reconnect plus the reply, and never
    /// longer than the lock's TTL for `claim` and `extend`.
    pub(crate) fn operation_timeout(&self, ttl: Option<Duration>) -> Duration {
        let timeout = self.connect_timeout + self.response_timeout;
        match ttl {
            Some(ttl) => timeout.min(ttl).max(Duration::from_millis(1)),
            None => timeout,
        }
    }

    /// The key as sent to Redis: the cache's own prefix (empty by default) + the key.
    pub(crate) fn key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        if self.key_prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            let mut full = String::with_capacity(self.key_prefix.len() + key.len());
            full.push_str(&self.key_prefix);
            full.push_str(key);
            Cow::Owned(full)
        }
    }
}

/// A Redis cache could not be built: a URL that does not parse, a scheme whose cargo feature
/// is off (`rediss://` needs `redis-tls`), a zero timeout.
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

    /// For cluster nodes that the redis cluster client refused; `nodes` is already redacted.
    pub(crate) fn cluster(nodes: &str, error: &redis::RedisError) -> Self {
        ConfigError::new(format!(
            "invalid Redis Cluster nodes `{nodes}`: {}",
            error_text(error)
        ))
    }

    /// For a URL that the redis client refused; the URL is shown redacted.
    pub(crate) fn url(url: &str, error: &redis::RedisError) -> Self {
        ConfigError::new(format!(
            "invalid Redis URL `{}`: {}",
            redact_url(url),
            error_text(error)
        ))
    }
}

/// The text of a redis error without anything that could carry a secret: its category and
/// its static description, never a URL.
fn error_text(error: &redis::RedisError) -> String {
    match error.detail() {
        Some(detail) if !detail.contains('@') && !detail.contains("://") => {
            format!("{} ({detail})", error.category())
        }
        _ => error.category().to_owned(),
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// So that `RedisCache::from_url(url)?` works in a function returning `cachelock::Error`:
/// [`Error::InvalidStore`](crate::Error::InvalidStore) with the message (URL redacted).
impl From<ConfigError> for crate::Error {
    fn from(error: ConfigError) -> Self {
        crate::Error::InvalidStore {
            store: "Redis".to_owned(),
            reason: error.message,
        }
    }
}

pub use crate::redact::redact_url;

/// Describes where a `redis::ConnectionInfo` points, without credentials.
pub(crate) fn describe(info: &redis::ConnectionInfo) -> String {
    let scheme = match info.addr() {
        redis::ConnectionAddr::Tcp(..) => "redis://",
        redis::ConnectionAddr::TcpTls { .. } => "rediss://",
        redis::ConnectionAddr::Unix(..) => "redis+unix://",
        _ => "",
    };
    let settings = info.redis_settings();
    let user = match (settings.username(), settings.password()) {
        (Some(user), Some(_)) => format!("{user}:***@"),
        (Some(user), None) => format!("{user}@"),
        (None, Some(_)) => ":***@".to_owned(),
        (None, None) => String::new(),
    };
    format!("{scheme}{user}{}/{}", info.addr(), settings.db())
}

/// The setters and `Debug` that [`RedisCacheBuilder`](super::RedisCacheBuilder) and
/// [`RedisClusterCacheBuilder`](super::RedisClusterCacheBuilder) share: both keep a
/// `target` (the URLs, password redacted) and the [`Settings`].
macro_rules! settings_setters {
    ($builder:ident) => {
        impl $builder {
            /// How long opening a connection (to one node, on a cluster) may take: TCP
            /// connect, TLS, `AUTH`, `SELECT`.
            pub fn connect_timeout(mut self, timeout: Duration) -> Self {
                self.settings.connect_timeout = timeout;
                self
            }

            /// How long one command may wait for its reply (`claim` and `extend` also never
            /// wait longer than the lock's TTL).
            pub fn response_timeout(mut self, timeout: Duration) -> Self {
                self.settings.response_timeout = timeout;
                self
            }

            /// How many idle connections (whole cluster connections, on a cluster) the sync
            /// pool keeps between commands.
            pub fn max_idle_connections(mut self, max: usize) -> Self {
                self.settings.max_idle = max;
                self
            }

            /// Puts `prefix` in front of every key this cache sends to Redis, to share one
            /// server between applications. It comes before a [`Lock`](crate::Lock)'s own
            /// prefix.
            pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
                self.settings.key_prefix = prefix.into();
                self
            }
        }

        impl std::fmt::Debug for $builder {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($builder))
                    .field("target", &self.target)
                    .field("connect_timeout", &self.settings.connect_timeout)
                    .field("response_timeout", &self.settings.response_timeout)
                    .field("max_idle_connections", &self.settings.max_idle)
                    .field("key_prefix", &self.settings.key_prefix)
                    .finish()
            }
        }
    };
}
pub(crate) use settings_setters;

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_every_url_form() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://user:s3cret@host:6379/2",
                "redis://user:***@host:6379/2",
            ),
            ("redis://:s3cret@host", "redis://:***@host"),
            ("rediss://s3cret@host", "rediss://***@host"),
            ("redis://u:pa/ss@w@rd@host/0", "redis://u:***@host/0"),
            (
                "redis+unix:///tmp/r.sock?db=1&user=u&pass=s3cret",
                "redis+unix:///tmp/r.sock?db=1&user=u&pass=***",
            ),
            (
                "redis://u:s3cret@host:notaport",
                "redis://u:***@host:notaport",
            ),
            ("garbage:s3cret@", "garbage:***@"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
