//! Settings of the memcached store, their defaults, the URL it reads, and its configuration
//! error.

use std::time::Duration;

use crate::redact::redact_url;

/// How long opening a connection may take (TCP connect, authentication, the `stats` and
/// run-marker exchange): 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one command may wait for its reply: 2 seconds (`claim` and `extend` never wait
/// longer than the lock's TTL).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many idle connections the sync pool (and each runtime's async pool) keeps: 16.
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 16;

/// The port of a URL without one: 11211.
pub const DEFAULT_PORT: u16 = 11211;

/// The settings of a [`MemcachedCache`](super::MemcachedCache).
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

    /// The reply timeout of one exchange: the response timeout, and never longer than the
    /// lock's TTL for `claim` and `extend`. At least 1 ms: a socket refuses a zero timeout.
    pub(crate) fn reply_timeout(&self, ttl: Option<Duration>) -> Duration {
        let timeout = match ttl {
            Some(ttl) => self.response_timeout.min(ttl),
            None => self.response_timeout,
        };
        timeout.max(Duration::from_millis(1))
    }

    /// The whole-operation bound of an async call (a reconnect, then the exchanges), never
    /// longer than the lock's TTL for `claim` and `extend`; `None` when the connect and
    /// reply timeouts already bound it.
    pub(crate) fn operation_limit(&self, ttl: Option<Duration>) -> Option<Duration> {
        let natural = self.connect_timeout + self.response_timeout;
        match ttl {
            Some(ttl) if ttl < natural => Some(ttl.max(Duration::from_millis(1))),
            _ => None,
        }
    }
}

/// Where a store connects: one server, and the credentials of memcached's ASCII
/// authentication (`-Y`), if any.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<(String, String)>,
}

impl Target {
    /// `host:port`, as given to the resolver (an IPv6 host in brackets).
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The target as a URL, password hidden: what `Debug` and error messages show.
    pub(crate) fn display(&self) -> String {
        match &self.credentials {
            Some((user, _)) => format!("memcache://{user}:***@{}", self.address()),
            None => format!("memcache://{}", self.address()),
        }
    }

    /// Reads `memcache://[user:password@]host[:port][/]` (or `memcached://`).
    pub(crate) fn parse(url: &str) -> Result<Target, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(format!(
                "invalid memcached URL `{}`: {why}",
                redact_url(url)
            ))
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected memcache://host:port"))?;
        if !scheme.eq_ignore_ascii_case("memcache") && !scheme.eq_ignore_ascii_case("memcached") {
            return Err(bad("the scheme must be memcache:// or memcached://"));
        }
        // The user-info ends at the last `@`: a password may hold `@` or `/`.
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let authority = match rest.find(['/', '?', '#']) {
            Some(end) => {
                let tail = &rest[end..];
                if tail != "/" {
                    return Err(bad(
                        "a memcached URL has no path or options: memcache://[user:password@]host[:port]",
                    ));
                }
                &rest[..end]
            }
            None => rest,
        };
        if authority.contains(',') {
            return Err(bad(
                "one server per store: cachelock's memcached store does not shard keys over several servers",
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("expected host[:port]"))?;
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').ok_or_else(|| {
                    bad("credentials are user:password (memcached's ASCII authentication, -Y)")
                })?;
                let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user"))?;
                let password =
                    percent_decode(password).ok_or_else(|| bad("bad %-escape in the password"))?;
                let fits = |s: &str| {
                    !s.is_empty() && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
                };
                if !fits(&user) || !fits(&password) {
                    return Err(bad(
                        "the user and the password must be non-empty, without spaces or control characters",
                    ));
                }
                Some((user, password))
            }
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            credentials,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return (!host.is_empty()).then_some((host, port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    (!host.is_empty() && !host.contains(':')).then_some((host, port))
}

/// Decodes `%XX` escapes; `None` on a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A memcached store could not be built: a URL that does not parse (or names several
/// servers), a zero timeout.
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

/// So that a builder's `build()?` works in a function returning `cachelock::Error`:
/// [`Error::InvalidStore`](crate::Error::InvalidStore) with the message (password hidden).
impl From<ConfigError> for crate::Error {
    fn from(error: ConfigError) -> Self {
        crate::Error::InvalidStore {
            store: "Memcached".to_owned(),
            reason: error.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_one_target() {
        let t = Target::parse("memcache://127.0.0.1:11311").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 11311));
        assert!(t.credentials.is_none());
        let t = Target::parse("memcached://cache.example/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("cache.example", DEFAULT_PORT));
        let t = Target::parse("memcache://[::1]:5").unwrap();
        assert_eq!((t.address().as_str(), t.port), ("[::1]:5", 5));
        let t = Target::parse("memcache://u:p%40ss@h").unwrap();
        assert_eq!(
            t.credentials,
            Some(("u".to_owned(), "p@ss".to_owned())),
            "escapes are decoded"
        );
        assert_eq!(t.display(), "memcache://u:***@h:11211");
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        for url in [
            "memcache://a:1,b:2",
            "memcache://h:0",
            "memcache://h:port",
            "memcache://h/path",
            "memcache://h?timeout=1",
            "redis://h",
            "memcache://",
            "memcache://user@h",
            "memcache://u:s3cr%zzt@h",
            "memcache://u:s3cr et@h",
            "h:11211",
        ] {
            let error = Target::parse(url).err().unwrap_or_else(|| panic!("{url}"));
            let text = error.to_string();
            assert!(!text.contains("s3cr"), "{text}");
            assert!(text.contains("memcache"), "{text}");
        }
    }
}
