//! Settings of the MariaDB/MySQL store, their defaults, the configuration error, and how a
//! URL becomes the two drivers' options.

use std::time::Duration;

use crate::redact::redact_url;

/// How long opening a connection may take (TCP connect and the MySQL handshake): 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one statement may wait for its reply: 2 seconds.
///
/// Lock statements answer in well under a millisecond on a healthy server; two seconds
/// leaves room for a loaded one (or a row lock held for a moment by another claim) and
/// still fails fast when the server hangs.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many idle connections the sync pool keeps, and how many connections each async pool
/// may open: 16.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// The table the locks live in unless [`table`](super::MysqlStoreBuilder::table) says
/// otherwise: `cachelock_locks`.
pub const DEFAULT_TABLE: &str = "cachelock_locks";

/// The settings of a [`MysqlStore`](super::MysqlStore).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) table: String,
    pub(crate) create_table: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
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
        if self.response_timeout.is_zero() {
            return Err(ConfigError::new(
                "the response timeout must be greater than zero",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("the connection limit must be at least 1"));
        }
        check_table(&self.table)
    }

    /// The bound of one async operation: a reconnect plus the replies of a transaction.
    pub(crate) fn operation_timeout(&self) -> Duration {
        self.connect_timeout + self.response_timeout
    }
}

/// Checks a table name: `name` or `database.name`, each part 1 to 64 characters of
/// `[A-Za-z0-9_$]` (the names that need no quoting; the statements quote them anyway).
pub(crate) fn check_table(table: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = table.split('.').collect();
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 64
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    if parts.len() > 2 || !parts.iter().all(|part| valid(part)) {
        return Err(ConfigError::new(format!(
            "invalid table name {table:?}: use `name` or `database.name`, each 1 to 64 characters of letters, digits, `_` and `$`"
        )));
    }
    Ok(())
}

/// The table name quoted for a statement: `` `name` `` or `` `database`.`name` ``.
pub(crate) fn quoted_table(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("`{part}`"))
        .collect::<Vec<_>>()
        .join(".")
}

/// A MariaDB/MySQL store could not be built: a URL that does not parse, an unknown
/// parameter, a zero timeout, an invalid table name.
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

    /// For a URL the driver refused. The driver's message may quote the URL's parts, so
    /// only its kind is kept, and the URL is shown redacted.
    pub(crate) fn url(url: &str, error: &mysql::UrlError) -> Self {
        let what = match error {
            mysql::UrlError::ParseError(_) => "it does not parse as a URL",
            mysql::UrlError::UnsupportedScheme(_) => "the scheme must be mysql:// or mariadb://",
            mysql::UrlError::FeatureRequired(..) => {
                "it needs a driver feature cachelock does not enable (TLS is not supported yet)"
            }
            mysql::UrlError::InvalidValue(..) => "a parameter has an invalid value",
            mysql::UrlError::UnknownParameter(_) => "it has an unknown parameter",
            mysql::UrlError::InvalidPoolConstraints { .. } => "its pool constraints are invalid",
            mysql::UrlError::BadUrl => "it is not a valid connection URL",
        };
        ConfigError::new(format!(
            "invalid MariaDB/MySQL URL `{}`: {what}",
            redact_url(url)
        ))
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug)]
/// What a URL gives: the driver URL (`mysql://`, without cachelock's own parameters) and
/// the table named by `?table=`, if any.
pub(crate) struct ParsedUrl {
    pub(crate) driver_url: String,
    pub(crate) table: Option<String>,
}

/// Splits cachelock's own `table=` parameter off `url` and turns `mariadb://` into
/// `mysql://` for the drivers.
pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, ConfigError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(ConfigError::new(format!(
            "invalid MariaDB/MySQL URL `{}`: it looks like mysql://user:password@host:3306/database",
            redact_url(url)
        )));
    };
    if !scheme.eq_ignore_ascii_case("mysql") && !scheme.eq_ignore_ascii_case("mariadb") {
        return Err(ConfigError::new(format!(
            "invalid MariaDB/MySQL URL `{}`: the scheme must be mysql:// or mariadb://",
            redact_url(url)
        )));
    }
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (rest, None),
    };
    let mut table = None;
    let mut kept = Vec::new();
    for param in query.into_iter().flat_map(|q| q.split('&')) {
        match param.split_once('=') {
            Some(("table", value)) => table = Some(value.to_owned()),
            _ if param.is_empty() => {}
            _ => kept.push(param),
        }
    }
    let mut driver_url = format!("mysql://{base}");
    if !kept.is_empty() {
        driver_url.push('?');
        driver_url.push_str(&kept.join("&"));
    }
    Ok(ParsedUrl { driver_url, table })
}

/// Where the options point, without the password: `mysql://user:***@host:port/db`.
pub(crate) fn describe(opts: &mysql::Opts) -> String {
    let user = match (opts.get_user(), opts.get_pass()) {
        (Some(user), Some(_)) => format!("{user}:***@"),
        (Some(user), None) => format!("{user}@"),
        (None, Some(_)) => ":***@".to_owned(),
        (None, None) => String::new(),
    };
    let host = match opts.get_socket() {
        Some(socket) => format!("(socket {socket})"),
        None => format!("{}:{}", opts.get_ip_or_hostname(), opts.get_tcp_port()),
    };
    format!(
        "mysql://{user}{host}/{}",
        opts.get_db_name().unwrap_or_default()
    )
}

/// Same as [`describe`], for the async driver's options.
pub(crate) fn describe_async(opts: &mysql_async::Opts) -> String {
    let user = match (opts.user(), opts.pass()) {
        (Some(user), Some(_)) => format!("{user}:***@"),
        (Some(user), None) => format!("{user}@"),
        (None, Some(_)) => ":***@".to_owned(),
        (None, None) => String::new(),
    };
    let host = match opts.socket() {
        Some(socket) => format!("(socket {socket})"),
        None => format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
    };
    format!(
        "mysql://{user}{host}/{}",
        opts.db_name().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert!(check_table("cachelock_locks").is_ok());
        assert!(check_table("app.locks$1").is_ok());
        for bad in ["", "a.b.c", "x`y", "a b", ".t", &"t".repeat(65)] {
            assert!(check_table(bad).is_err(), "{bad:?}");
        }
        assert_eq!(quoted_table("app.locks"), "`app`.`locks`");
    }

    #[test]
    fn the_table_parameter_is_split_off() {
        let parsed = parse_url("mariadb://u:p@h:3306/db?table=t1&prefer_socket=false").unwrap();
        assert_eq!(
            parsed.driver_url,
            "mysql://u:p@h:3306/db?prefer_socket=false"
        );
        assert_eq!(parsed.table.as_deref(), Some("t1"));
        let parsed = parse_url("mysql://h/db").unwrap();
        assert_eq!(parsed.driver_url, "mysql://h/db");
        assert!(parsed.table.is_none());
        let error = parse_url("postgres://u:s3cret@h").unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }
}
