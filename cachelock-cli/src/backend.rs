//! The lock store a command works on, chosen once for every command: one Redis server
//! (`--redis` / `CACHELOCK_REDIS_URL`), a Redis Cluster (`--redis-cluster` /
//! `CACHELOCK_REDIS_CLUSTER_URLS`), or this process's memory when neither is given.
//!
//! Every command gets the same [`Backend`]: an `Arc<dyn LockStore>` and a description of the
//! [`Store`] for messages. No command knows which kind of store it works on, except to refuse
//! the in-memory one where it makes no sense ([`Backend::require_shared`]).

use std::fmt;
use std::sync::Arc;

use cachelock::redis::{redact_url, RedisCache, RedisClusterCache};
use cachelock::{Lock, LockStore, MemoryCache};

use crate::cli::BackendArgs;
use crate::exit::{error_chain, Failure};

/// Which store the locks live in, with URLs as they may be shown (passwords masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// This process's memory: excludes no other process.
    Memory,
    /// One Redis server.
    Redis {
        /// Its URL, password masked.
        url: String,
    },
    /// A Redis Cluster.
    Cluster {
        /// The node URLs it was given (the others are discovered), passwords masked.
        nodes: Vec<String>,
    },
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Memory => f.write_str("this process's memory"),
            Store::Redis { url } => write!(f, "Redis at {url}"),
            Store::Cluster { nodes } => write!(f, "Redis Cluster at {}", nodes.join(", ")),
        }
    }
}

/// The cache handle, its prefix and a description for messages.
#[derive(Clone)]
pub struct Backend {
    cache: Arc<dyn LockStore>,
    prefix: String,
    store: Store,
}

impl Backend {
    /// Builds the store the arguments name. Both `--redis` and `--redis-cluster`, or a bad
    /// URL, is a usage error (64); no server is contacted yet.
    pub fn from_args(args: &BackendArgs) -> Result<Backend, Failure> {
        let prefix = args.prefix.clone();
        let redis = args
            .redis
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        // `a,b`, `a, b`, `--redis-cluster a --redis-cluster b`; a stray comma is no node.
        let nodes: Vec<&str> = args
            .redis_cluster
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .collect();
        let (cache, store): (Arc<dyn LockStore>, Store) = match (redis, nodes.is_empty()) {
            (Some(url), false) => return Err(conflict(args, url, &nodes)),
            (None, true) => (Arc::new(MemoryCache::new()), Store::Memory),
            (Some(url), true) => {
                let cache = RedisCache::from_url(url).map_err(|e| {
                    Failure::usage(format!(
                        "invalid --redis URL `{}`: {}",
                        redact_url(url),
                        error_chain(&e)
                    ))
                })?;
                let url = redact_url(url);
                (Arc::new(cache), Store::Redis { url })
            }
            (None, false) => {
                let cache = RedisClusterCache::from_urls(&nodes).map_err(|e| {
                    // The library's message names the URL it refused, password masked.
                    Failure::usage(format!("invalid --redis-cluster: {}", error_chain(&e)))
                })?;
                let nodes = nodes.iter().map(|u| redact_url(u)).collect();
                (Arc::new(cache), Store::Cluster { nodes })
            }
        };
        Ok(Backend {
            cache,
            prefix,
            store,
        })
    }

    /// The cache handle.
    pub fn cache(&self) -> &Arc<dyn LockStore> {
        &self.cache
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Which store this is.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether other processes see these locks (Redis or Redis Cluster).
    pub fn is_shared(&self) -> bool {
        self.store != Store::Memory
    }

    /// A lock on `key` in this store.
    pub fn lock(&self, key: &str) -> Lock<Arc<dyn LockStore>> {
        Lock::new(key)
            .cache(Arc::clone(&self.cache))
            .prefix(self.prefix.clone())
    }

    /// Refuses commands that only make sense on a shared store.
    pub fn require_shared(&self, command: &str) -> Result<(), Failure> {
        if self.is_shared() {
            return Ok(());
        }
        Err(Failure::usage(format!(
            "`cachelock {command}` {NEEDS_SHARED}: without it the locks live in this process's \
             memory, which holds no other process's locks"
        )))
    }

    /// `key` without the store's prefix, for display.
    pub fn short_key<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(self.prefix.as_str()).unwrap_or(key)
    }

    /// A hint for a backend failure that comes from pointing the wrong option at a server:
    /// `--redis` at a cluster node (a key of another node's slot answers `MOVED`, a script on
    /// a key and its fence counter `CROSSSLOT`), or `--redis-cluster` at servers that serve no
    /// cluster (the cluster client finds no node to send to).
    pub fn hint(&self, message: &str) -> Option<&'static str> {
        // The server's error codes, matched as the server spells them ("moved" alone would
        // also match "removed").
        let redirected = message.contains("MOVED ")
            || message.contains("CROSSSLOT")
            || message.contains("this server is a Redis Cluster node")
            || message.contains("Moved:")
            || message.contains("CrossSlot");
        let message = message.to_ascii_lowercase();
        match self.store {
            Store::Redis { .. } if redirected => Some(
                "this server is a Redis Cluster node: use --redis-cluster (or \
                     CACHELOCK_REDIS_CLUSTER_URLS) instead of --redis",
            ),
            Store::Cluster { .. }
                if message.contains("clusterconnectionnotfound")
                    || message.contains("cluster support disabled") =>
            {
                Some(
                    "no Redis Cluster answered: if these are standalone servers, use --redis \
                     (or CACHELOCK_REDIS_URL) instead of --redis-cluster",
                )
            }
            _ => None,
        }
    }
}

/// What `status`, `list` and `release` say when there is no shared store.
const NEEDS_SHARED: &str = "needs --redis URL (or CACHELOCK_REDIS_URL), or --redis-cluster \
                            URL[,URL...] (or CACHELOCK_REDIS_CLUSTER_URLS)";

/// Both options given: which lock store was meant cannot be guessed, and a guess that is
/// wrong takes locks that exclude nobody. Says where each value came from, since one of them
/// is often an environment variable set long ago.
fn conflict(args: &BackendArgs, url: &str, nodes: &[&str]) -> Failure {
    let origin = |from_env: bool, var: &str| {
        if from_env {
            format!(" (from {var})")
        } else {
            String::new()
        }
    };
    let nodes: Vec<String> = nodes.iter().map(|u| redact_url(u)).collect();
    Failure::usage(format!(
        "--redis {}{} and --redis-cluster {}{} cannot be used together: give --redis for one \
         Redis server or --redis-cluster for a Redis Cluster, not both",
        redact_url(url),
        origin(args.from_env.redis, "CACHELOCK_REDIS_URL"),
        nodes.join(","),
        origin(args.from_env.redis_cluster, "CACHELOCK_REDIS_CLUSTER_URLS"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn store(args: &[&str]) -> Result<Store, Failure> {
        let cli =
            Cli::try_parse_from(["cachelock"].iter().chain(args).chain(&["list"])).expect("parses");
        Backend::from_args(&cli.backend).map(|backend| backend.store().clone())
    }

    #[test]
    fn cluster_nodes_are_comma_separated_or_repeated_and_trimmed() {
        let store = store(&[
            "--redis-cluster",
            "redis://a:7000, redis://:secret@b:7001,",
            "--redis-cluster",
            "redis://c:7002",
        ])
        .unwrap();
        assert_eq!(
            store,
            Store::Cluster {
                nodes: vec![
                    "redis://a:7000".to_owned(),
                    "redis://:***@b:7001".to_owned(),
                    "redis://c:7002".to_owned(),
                ]
            }
        );
        assert_eq!(
            store.to_string(),
            "Redis Cluster at redis://a:7000, redis://:***@b:7001, redis://c:7002"
        );
    }

    #[test]
    fn empty_values_are_no_store_and_both_stores_a_usage_error() {
        assert_eq!(
            store(&["--redis", " ", "--redis-cluster", ","]).unwrap(),
            Store::Memory
        );
        assert_eq!(
            store(&["--redis", "redis://a", "--redis-cluster", ""]).unwrap(),
            Store::Redis {
                url: "redis://a".to_owned()
            }
        );
        let failure = store(&["--redis", "redis://a", "--redis-cluster", "redis://b"]).unwrap_err();
        assert_eq!(failure.code, crate::exit::USAGE);
        assert!(
            failure.message.contains("cannot be used together"),
            "{}",
            failure.message
        );
    }
}
