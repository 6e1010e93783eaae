//! Settings of the etcd store, their defaults, the configuration error, and `etcd://` URLs.

use std::borrow::Cow;
use std::time::Duration;

use crate::redact::redact_url;

/// How long opening the connection to an etcd member may take (TCP connect, and the
/// authentication of a user given in the URL): 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one operation may wait for etcd's answers (a claim is two requests, see the
/// [module docs](super)): 2 seconds.
///
/// A write to etcd goes through its Raft log (a disk sync on a quorum of members), so it
/// answers in milliseconds rather than microseconds; two seconds leave room for a loaded
/// cluster and for a leader election, and still fail fast when no member answers.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The port of an endpoint that names none: etcd's client port, 2379.
pub const DEFAULT_PORT: u16 = 2379;

/// The settings of an [`EtcdStore`](super::EtcdStore).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) key_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
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

    /// The bound of one whole operation: a (re)connection plus the answers. A claim or an
    /// extend is also bounded by the lease it asks for (`lease`), so that it never answers
    /// after the lock it reports has run out.
    pub(crate) fn operation_timeout(&self, lease: Option<Duration>) -> Duration {
        let timeout = self.connect_timeout + self.response_timeout;
        match lease {
            Some(lease) => timeout.min(lease).max(Duration::from_millis(1)),
            None => timeout,
        }
    }

    /// The key as stored in etcd: the store's own prefix (empty by default) + the key.
    pub(crate) fn key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        if self.key_prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(format!("{}{key}", self.key_prefix))
        }
    }
}

/// An etcd store could not be built: a URL that does not parse, a zero timeout.
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

    fn url(url: &str, why: &str) -> Self {
        ConfigError::new(format!("invalid etcd URL `{}`: {why}", redact_url(url)))
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// What an `etcd://` URL says: the endpoints (`http://host:port`) and the credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) endpoints: Vec<String>,
    pub(crate) user: Option<(String, String)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// Parses `etcd://[user:password@]host[:port][,host[:port]...][/]`.
pub(crate) fn parse_url(url: &str) -> Result<Target, ConfigError> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("etcd") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("etcds") => {
            return Err(ConfigError::url(
                url,
                "TLS is not taken from a URL: build an `etcd_client::Client` with TLS (etcd-client's `tls` feature) and hand it to `EtcdStore::from_client`",
            ))
        }
        _ => {
            return Err(ConfigError::url(
                url,
                "an etcd URL looks like etcd://host:2379 or etcd://user:password@host1:2379,host2:2379",
            ))
        }
    };
    if rest.contains('?') {
        return Err(ConfigError::url(
            url,
            "an etcd URL takes no query parameters; set timeouts and a key prefix with EtcdStore::builder",
        ));
    }
    // The user-info ends at the last `@`: a password may hold `@` or `/` (or encode them).
    let (userinfo, hosts) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
    if hosts.contains('/') {
        return Err(ConfigError::url(
            url,
            "an etcd URL has no path; set a key prefix with EtcdStore::builder(..).key_prefix(..)",
        ));
    }
    let user = match userinfo {
        None => None,
        Some(info) => {
            let Some((user, password)) = info.split_once(':') else {
                return Err(ConfigError::url(
                    url,
                    "credentials are given as user:password@ (etcd has no password-only login)",
                ));
            };
            let user = percent_decode(user)
                .ok_or_else(|| ConfigError::url(url, "bad %-escape in the user name"))?;
            let password = percent_decode(password)
                .ok_or_else(|| ConfigError::url(url, "bad %-escape in the password"))?;
            if user.is_empty() {
                return Err(ConfigError::url(url, "the user name is empty"));
            }
            Some((user, password))
        }
    };
    let mut endpoints = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(ConfigError::url(url, "an empty host in the host list"));
        }
        endpoints.push(endpoint(host).map_err(|why| ConfigError::url(url, &why))?);
    }
    Ok(Target { endpoints, user })
}

/// `host[:port]` (or `[v6]:port`) as `http://host:port`.
fn endpoint(host: &str) -> Result<String, String> {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, "")) => (format!("[{addr}]"), None),
            Some((addr, port)) => match port.strip_prefix(':') {
                Some(port) => (format!("[{addr}]"), Some(port)),
                None => return Err(format!("cannot read the host `{host}`")),
            },
            None => return Err(format!("cannot read the host `{host}`")),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.to_owned(), None),
        }
    };
    if name.is_empty() || name.contains(['@', ' ', '#']) {
        return Err(format!("cannot read the host `{host}`"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("the port of `{host}` is not a number from 1 to 65535"))?,
    };
    Ok(format!("http://{name}:{port}"))
}

/// `%XX` escapes decoded; `None` if one is malformed or the result is not UTF-8.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_endpoints_and_credentials() {
        let t = parse_url("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(t.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(t.user, None);
        let t = parse_url("etcd://u:p%40ss@a,b:2380,[::1]:2381/").unwrap();
        assert_eq!(
            t.endpoints,
            ["http://a:2379", "http://b:2380", "http://[::1]:2381"]
        );
        assert_eq!(t.user, Some(("u".to_owned(), "p@ss".to_owned())));
        assert!(!format!("{t:?}").contains("p@ss"));
        let t = parse_url("ETCD://u:pa@ss@host").unwrap();
        assert_eq!(t.user, Some(("u".to_owned(), "pa@ss".to_owned())));
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for url in [
            "etcd://",
            "etcd://u:secret@",
            "etcd://u:secret@a,,b",
            "etcd://u:secret@host:99999",
            "etcd://u:secret@host/path",
            "etcd://u:secret@host?x=1",
            "etcds://u:secret@host",
            "http://u:secret@host",
            "etcd://secret@host",
        ] {
            let error = parse_url(url).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{url}: {error}");
            assert!(error.contains("invalid etcd URL"), "{url}: {error}");
        }
    }
}
