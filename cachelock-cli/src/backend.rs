//! The lock store a command works on: Redis when `--redis` (or `CACHELOCK_REDIS_URL`) is
//! given, this process's memory otherwise.

use std::sync::Arc;

use cachelock::redis::{redact_url, RedisCache};
use cachelock::{Cache, Lock, MemoryCache};

use crate::cli::BackendArgs;
use crate::exit::{error_chain, Failure};

/// The cache handle, its prefix and a description for messages.
#[derive(Clone)]
pub struct Backend {
    cache: Arc<dyn Cache>,
    prefix: String,
    /// The Redis URL with any password masked; `None` for the in-memory store.
    redis: Option<String>,
}

impl Backend {
    /// Builds the store the arguments name. A bad Redis URL is a usage error (64); the
    /// server is not contacted yet.
    pub fn from_args(args: &BackendArgs) -> Result<Backend, Failure> {
        let prefix = args.prefix.clone();
        match args.redis.as_deref().map(str::trim) {
            None | Some("") => Ok(Backend {
                cache: Arc::new(MemoryCache::new()),
                prefix,
                redis: None,
            }),
            Some(url) => {
                let cache = RedisCache::from_url(url).map_err(|e| {
                    Failure::usage(format!(
                        "invalid --redis URL `{}`: {}",
                        redact_url(url),
                        error_chain(&e)
                    ))
                })?;
                Ok(Backend {
                    cache: Arc::new(cache),
                    prefix,
                    redis: Some(redact_url(url)),
                })
            }
        }
    }

    /// The cache handle.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis URL (password masked), or `None` for the in-memory store.
    pub fn redis(&self) -> Option<&str> {
        self.redis.as_deref()
    }

    /// A lock on `key` in this store.
    pub fn lock(&self, key: &str) -> Lock<Arc<dyn Cache>> {
        Lock::new(key)
            .cache(Arc::clone(&self.cache))
            .prefix(self.prefix.clone())
    }

    /// Refuses commands that only make sense on a shared store.
    pub fn require_shared(&self, command: &str) -> Result<(), Failure> {
        if self.redis.is_some() {
            return Ok(());
        }
        Err(Failure::usage(format!(
            "`cachelock {command}` needs --redis URL (or CACHELOCK_REDIS_URL): without it the \
             locks live in this process's memory, which holds no other process's locks"
        )))
    }

    /// `key` without the store's prefix, for display.
    pub fn short_key<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.prefix.as_str()).unwrap_or(key)
    }
}
