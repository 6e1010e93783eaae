//! The process-wide key prefix.

use std::sync::OnceLock;

use crate::error::Error;

/// The key prefix used when none is configured: `"cachelock:"`.
pub const DEFAULT_PREFIX: &str = "cachelock:";

static PREFIX: OnceLock<String> = OnceLock::new();

/// Sets the prefix put in front of every lock key (default [`DEFAULT_PREFIX`]).
///
/// Once per process, before the first lock, like
/// [`set_default_cache`](crate::set_default_cache); a second call returns
/// [`Error::AlreadyConfigured`]. A single [`Lock`](crate::Lock) can still choose its own
/// prefix with [`Lock::prefix`](crate::Lock::prefix).
pub fn set_key_prefix(prefix: impl Into<String>) -> Result<(), Error> {
    PREFIX
        .set(prefix.into())
        .map_err(|_| Error::AlreadyConfigured { what: "key prefix" })
}

/// The process-wide key prefix.
pub fn key_prefix() -> &'static str {
    PREFIX.get_or_init(|| DEFAULT_PREFIX.to_owned())
}
