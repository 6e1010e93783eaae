//! The lock store a command works on, chosen once for every command: a store URL
//! (`--store` / `CACHELOCK_STORE`), one Redis server (`--redis` / `CACHELOCK_REDIS_URL`), a
//! Redis Cluster (`--redis-cluster` / `CACHELOCK_REDIS_CLUSTER_URLS`), or, when none is
//! given, this user's lock directory on this host (`cachelock::file`): every process of the
//! user shares it, so `run` excludes them with no server at all.
//!
//! Every command gets the same [`Backend`]: an `Arc<dyn LockStore>` and a description of the
//! [`Store`] for messages. No command knows which kind of store it works on, except to refuse
//! the in-process ones where they make no sense ([`Backend::require_shared`]).

use std::fmt;
use std::sync::Arc;

use cachelock::file::FileStore;
use cachelock::redis::{redact_url, RedisCache, RedisClusterCache};
use cachelock::{store_from_url, Lock, LockStore};

use crate::cli::BackendArgs;
use crate::exit::{error_chain, Failure, UNAVAILABLE};

/// Which store the locks live in, with URLs as they may be shown (passwords masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// This process's memory (`memory://`): excludes no other process.
    Memory,
    /// `noop://`: grants every lock, excludes nobody.
    Noop,
    /// A directory of lock files on this host (the default: this user's directory).
    File {
        /// The directory, as given.
        dir: String,
    },
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
    /// Another store named by its URL (`postgres://`, `etcd://`...).
    Other {
        /// Its URL, password masked.
        url: String,
    },
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Memory => f.write_str("this process's memory"),
            Store::Noop => f.write_str("noop:// (every lock granted)"),
            Store::File { dir } => write!(f, "the lock directory {dir}"),
            Store::Redis { url } => write!(f, "Redis at {url}"),
            Store::Cluster { nodes } => write!(f, "Redis Cluster at {}", nodes.join(", ")),
            Store::Other { url } => write!(f, "the store at {url}"),
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
    /// Builds the store the arguments name, or this user's lock directory when none is
    /// named; `prefix` goes in front of every key. Two store options, or a bad URL, is a usage error (64); a default directory
    /// that cannot be used is 69. No server is contacted yet.
    pub fn from_args(args: &BackendArgs, prefix: &str) -> Result<Backend, Failure> {
        let prefix = prefix.to_owned();
        fn given(value: Option<&str>) -> Option<&str> {
            value.map(str::trim).filter(|u| !u.is_empty())
        }
        let url = given(args.store.as_deref());
        let redis = given(args.redis.as_deref());
        // `a,b`, `a, b`, `--redis-cluster a --redis-cluster b`; a stray comma is no node.
        let nodes: Vec<&str> = args
            .redis_cluster
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .collect();
        let named = usize::from(url.is_some())
            + usize::from(redis.is_some())
            + usize::from(!nodes.is_empty());
        if named > 1 {
            return Err(conflict(args, url, redis, &nodes));
        }
        let (cache, store): (Arc<dyn LockStore>, Store) = if let Some(url) = url {
            let cache = store_from_url(url).map_err(|e| {
                // The library's message names the URL it refused, password masked.
                Failure::usage(format!("invalid --store: {}", error_chain(&e)))
            })?;
            (cache, describe_url(url))
        } else if let Some(url) = redis {
            let cache = RedisCache::from_url(url).map_err(|e| {
                Failure::usage(format!(
                    "invalid --redis URL `{}`: {}",
                    redact_url(url),
                    error_chain(&e)
                ))
            })?;
            let url = redact_url(url);
            (Arc::new(cache), Store::Redis { url })
        } else if !nodes.is_empty() {
            let cache = RedisClusterCache::from_urls(&nodes).map_err(|e| {
                // The library's message names the URL it refused, password masked.
                Failure::usage(format!("invalid --redis-cluster: {}", error_chain(&e)))
            })?;
            let nodes = nodes.iter().map(|u| redact_url(u)).collect();
            (Arc::new(cache), Store::Cluster { nodes })
        } else {
            let cache = FileStore::for_user().map_err(|e| {
                Failure::new(
                    UNAVAILABLE,
                    format!(
                        "{e}; name another store with --store URL (e.g. --store \
                         file:///var/lock/myapp)"
                    ),
                )
            })?;
            let dir = cache.dir().display().to_string();
            (Arc::new(cache), Store::File { dir })
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

    /// Whether other processes see these locks (every store but `memory://` and `noop://`).
    pub fn is_shared(&self) -> bool {
        !matches!(self.store, Store::Memory | Store::Noop)
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
            "`cachelock {command}` {NEEDS_SHARED}: {} holds no other process's locks",
            self.store
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
                     CACHELOCK_REDIS_CLUSTER_URLS, or --store redis-cluster://...) instead of \
                     --redis",
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

/// How a `--store` URL is described in messages (password masked).
fn describe_url(url: &str) -> Store {
    let scheme = url
        .split_once("://")
        .map_or("", |(scheme, _)| scheme)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "memory" => Store::Memory,
        "noop" => Store::Noop,
        "file" => {
            let rest = &url[url.find("://").map_or(0, |at| at + 3)..];
            let dir = rest.strip_prefix("localhost").unwrap_or(rest);
            if dir.is_empty() {
                Store::File {
                    dir: cachelock::file::user_dir().display().to_string(),
                }
            } else {
                Store::File {
                    dir: dir.to_owned(),
                }
            }
        }
        "redis" | "rediss" | "redis+unix" | "unix" => Store::Redis {
            url: redact_url(url),
        },
        "redis-cluster" | "rediss-cluster" => Store::Cluster {
            nodes: vec![redact_url(url)],
        },
        _ => Store::Other {
            url: redact_url(url),
        },
    }
}

/// What `status`, `list` and `release` say on a store of this process alone.
const NEEDS_SHARED: &str = "needs a store other processes share (the default, this user's lock \
                            directory, or --store URL, --redis URL, --redis-cluster URL,..)";

/// Several store options given: which lock store was meant cannot be guessed, and a guess
/// that is wrong takes locks that exclude nobody. Says where each value came from, since one
/// of them is often an environment variable set long ago.
fn conflict(args: &BackendArgs, url: Option<&str>, redis: Option<&str>, nodes: &[&str]) -> Failure {
    let origin = |from_env: bool, var: &str| {
        if from_env {
            format!(" (from {var})")
        } else {
            String::new()
        }
    };
    let mut given = Vec::new();
    if let Some(url) = url {
        given.push(format!(
            "--store {}{}",
            redact_url(url),
            origin(args.from_env.store, "CACHELOCK_STORE")
        ));
    }
    if let Some(url) = redis {
        given.push(format!(
            "--redis {}{}",
            redact_url(url),
            origin(args.from_env.redis, "CACHELOCK_REDIS_URL")
        ));
    }
    if !nodes.is_empty() {
        let nodes: Vec<String> = nodes.iter().map(|u| redact_url(u)).collect();
        given.push(format!(
            "--redis-cluster {}{}",
            nodes.join(","),
            origin(args.from_env.redis_cluster, "CACHELOCK_REDIS_CLUSTER_URLS")
        ));
    }
    Failure::usage(format!(
        "{} cannot be used together: name one store (--store URL, --redis URL for one Redis \
         server, or --redis-cluster URL,.. for a Redis Cluster), not several",
        given.join(" and ")
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
        Backend::from_args(&cli.backend, cachelock::DEFAULT_PREFIX)
            .map(|backend| backend.store().clone())
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
        assert!(matches!(
            store(&["--redis", " ", "--redis-cluster", ",", "--store", ""]).unwrap(),
            Store::File { .. }
        ));
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

    #[test]
    fn store_urls_are_described_with_passwords_masked() {
        assert_eq!(store(&["--store", "memory://"]).unwrap(), Store::Memory);
        assert_eq!(
            store(&["--store", "redis://:secret@a:6379"]).unwrap(),
            Store::Redis {
                url: "redis://:***@a:6379".to_owned()
            }
        );
        assert_eq!(
            describe_url("file:///var/lock/app"),
            Store::File {
                dir: "/var/lock/app".to_owned()
            }
        );
        assert_eq!(
            describe_url("postgres://u:pw@db/app").to_string(),
            "the store at postgres://u:***@db/app"
        );
        let failure = store(&["--store", "gopher://x"]).unwrap_err();
        assert_eq!(failure.code, crate::exit::USAGE);
        assert!(failure.message.contains("gopher"), "{}", failure.message);
    }

    #[test]
    fn a_store_url_with_another_store_option_is_a_usage_error_naming_both() {
        for other in [
            &["--redis", "redis://:pw@a"][..],
            &["--redis-cluster", "redis://b"],
        ] {
            let mut args = vec!["--store", "memory://"];
            args.extend_from_slice(other);
            let failure = store(&args).unwrap_err();
            assert_eq!(failure.code, crate::exit::USAGE);
            assert!(
                failure.message.contains("--store memory://"),
                "{}",
                failure.message
            );
            assert!(failure.message.contains(other[0]), "{}", failure.message);
            assert!(!failure.message.contains("pw"), "{}", failure.message);
        }
    }
}
