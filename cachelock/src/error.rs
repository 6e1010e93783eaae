//! The one error type of cachelock.

use std::time::Duration;

/// A boxed error from a cache backend.
///
/// Cache implementations return this from every operation; any error type converts into it
/// with `?` or `.into()`. It never names a backend's own error type in cachelock's public
/// API, so a major release of a backend's client library is not a breaking change here.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when taking, holding or releasing a lock.
///
/// Every message names the key involved, as it is stored in the cache (prefix included),
/// so that it can be looked up there directly (for example with `redis-cli GET <key>`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is held by another owner (and the wait, if any, ran out).
    #[error("lock `{key}` is held by another owner")]
    Locked {
        /// The key, prefix included.
        key: String,
    },

    /// The lock was lost before it was released or extended: its TTL ran out, or another
    /// owner took the key over. Nothing was deleted or extended.
    #[error("lock `{key}` was lost: its TTL ran out or another owner took it over")]
    LockLost {
        /// The key, prefix included.
        key: String,
    },

    /// The cache failed (connection refused, timeout, a value of the wrong type...).
    #[error("cache backend failed on lock `{key}`")]
    Backend {
        /// The key, prefix included.
        key: String,
        /// What the backend reported.
        #[source]
        source: BoxError,
    },

    /// The key cannot be used as a lock key.
    #[error("invalid lock key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given (truncated to 64 characters when it is too long to show).
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A lock setting is out of range (for example a zero TTL).
    #[error("invalid setting for lock `{key}`: {reason}")]
    InvalidSetting {
        /// The key, prefix included.
        key: String,
        /// What is wrong and the allowed range.
        reason: String,
    },

    /// A store could not be set up: an unknown URL scheme, a store whose cargo feature is
    /// off, a URL or settings the store cannot use. Nothing was connected yet.
    #[error("invalid store `{store}`: {reason}")]
    InvalidStore {
        /// The store's URL (password hidden) or name.
        store: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// A process-wide setting was set a second time, or after its default was already in use.
    #[error(
        "the process-wide {what} is already set: set it once, at start-up, before the first lock is taken"
    )]
    AlreadyConfigured {
        /// Which setting (`"default cache"`, `"key prefix"`).
        what: &'static str,
    },
}

impl Error {
    /// Wraps a backend failure for `key`.
    pub fn backend(key: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            key: key.into(),
            source: source.into(),
        }
    }

    /// The key this error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::Locked { key }
            | Error::LockLost { key }
            | Error::Backend { key, .. }
            | Error::InvalidKey { key, .. }
            | Error::InvalidSetting { key, .. } => Some(key),
            Error::AlreadyConfigured { .. } | Error::InvalidStore { .. } => None,
        }
    }

    /// `true` for [`Error::Locked`]: somebody else holds the key.
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }

    /// `true` for [`Error::LockLost`]: the lock ran out or was taken over while held.
    pub fn is_lost(&self) -> bool {
        matches!(self, Error::LockLost { .. })
    }

    /// `true` for [`Error::Backend`]: the cache itself failed.
    pub fn is_backend(&self) -> bool {
        matches!(self, Error::Backend { .. })
    }

    /// `true` if the cache failed because it did not answer in time: a backend error with an
    /// I/O timeout (`TimedOut`, or `WouldBlock` from a socket read timeout) anywhere in its
    /// source chain.
    pub fn is_timeout(&self) -> bool {
        let Error::Backend { source, .. } = self else {
            return false;
        };
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
        while let Some(error) = next {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) {
                    return true;
                }
            }
            #[cfg(feature = "redis")]
            if let Some(redis) = error.downcast_ref::<::redis::RedisError>() {
                if redis.is_timeout() {
                    return true;
                }
            }
            next = error.source();
        }
        false
    }
}

/// Checks that a TTL is usable: non-zero and at most [`crate::MAX_TTL`].
pub(crate) fn check_ttl(key: &str, what: &str, ttl: Duration) -> Result<(), Error> {
    if ttl.is_zero() {
        return Err(Error::InvalidSetting {
            key: key.to_owned(),
            reason: format!("{what} must be greater than zero"),
        });
    }
    if ttl > crate::MAX_TTL {
        return Err(Error::InvalidSetting {
            key: key.to_owned(),
            reason: format!(
                "{what} of {ttl:?} is longer than the maximum of {:?}",
                crate::MAX_TTL
            ),
        });
    }
    Ok(())
}
