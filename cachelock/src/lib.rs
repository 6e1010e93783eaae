//! Run a piece of code at most once at a time, across threads, tasks, processes and machines.
//!
//! cachelock takes a lock on a key in a store: in process memory by default, Redis, or any
//! store that implements [`LockStore`] (a get/set/delete [`Cache`] plugs in through
//! [`CacheStore`]). Every lock has an owner token and a TTL: only its owner can release or
//! extend it, and a holder that crashes blocks the key for at most the TTL.
//!
//! ```
//! use cachelock::Lock;
//!
//! // Take a lock for a block of code; it is released when `guard` drops.
//! let guard = Lock::new("nightly-report").try_acquire()?;
//!
//! // Anyone else (another thread, task, or process sharing the cache) is refused.
//! let second = Lock::new("nightly-report").try_acquire();
//! assert!(matches!(second, Err(cachelock::Error::Locked { .. })));
//!
//! drop(guard);
//! assert!(Lock::new("nightly-report").try_acquire().is_ok());
//! # Ok::<(), cachelock::Error>(())
//! ```
//!
//! # What is here
//!
//! - [`Lock`]: builder (key, [`ttl`](Lock::ttl), [`cache`](Lock::cache),
//!   [`prefix`](Lock::prefix)); [`try_acquire`](Lock::try_acquire),
//!   [`acquire_timeout`](Lock::acquire_timeout), their async twins, and the closure forms
//!   [`run`](Lock::run) / [`run_async`](Lock::run_async).
//! - [`Guard`] (sync, releases on drop) and [`AsyncGuard`] (`release().await`, and a `Drop`
//!   that never blocks a runtime thread).
//! - [`LockStore`]: the contract of a store with atomic lock operations; [`MemoryCache`]
//!   (the default, on moka) and [`NoopCache`] (grants everything, for tests) implement it,
//!   and so does [`CacheStore`], the adapter for a get/set/delete [`Cache`] you already have.
//!   [`LockAdmin`] and [`tree::TreeStore`] are the capabilities a store may add.
//! - [`set_default_cache`] and [`set_key_prefix`]: process-wide settings, set once.
//! - [`testing`]: the conformance suites every store passes; run them on your own store
//!   ([`testing::conformance`]) or cache ([`testing::cache_conformance`]).
//! - `cachelock::redis` (cargo feature `redis`, TLS with `redis-tls`): `RedisCache` and
//!   `RedisClusterCache`, atomic locks across processes and machines in two round trips per
//!   acquire + release.
//! - [`tree`]: hierarchical locks ([`TreeLock`](tree::TreeLock)): a lock on `/a/b` also
//!   excludes `/a` and `/a/b/c`, not `/a/x` (Locker's model), on memory and Redis.
//! - Admin calls: [`Lock::holder`] (who holds a key, for how much longer),
//!   [`held_locks`] (every lock under a prefix; Redis `SCAN`, on every primary of a
//!   cluster), [`Lock::force_release`], and their async twins [`Lock::holder_async`],
//!   [`held_locks_async`], [`Lock::force_release_async`].
//! - [`Error`]: one error type; every message names the key.
//!
//! # Observability
//!
//! Every lock reports through [`tracing`](https://docs.rs/tracing) (targets `cachelock::*`),
//! each event with the stored `key`, none with the owner token:
//!
//! | event | level | fields |
//! |---|---|---|
//! | `lock attempt` | trace | `key` |
//! | `lock acquired` | debug | `key`, `fence` |
//! | `lock contended` | debug | `key` |
//! | `tree lock acquired` / `tree lock contended` | debug | `key` (lock space + path; `fence` when acquired) |
//! | `lock held; waiting` / `tree lock held; waiting` | trace | `key`, `pause` |
//! | `lock renewed` | trace | `key`, `ttl`, `held_for` |
//! | `lock lost` | warn | `key`, `held_for`, `why` |
//! | `lock released` | debug | `key`, `held_for` (tree locks too, `key` = lock space + path; also when a dropped async guard releases in the background) |
//! | `lock was lost before release` | warn | `key`, `held_for` |
//! | `lock force-released` | warn | `key`, `holder_host`, `holder_pid`, `holder_label` |
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

/// The README's code blocks, compiled and run as doctests (`cargo test --doc --all-features`).
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod acquire;
mod admin;
mod backoff;
mod cache;
mod cache_store;
mod claim;
mod clock;
mod config;
mod default_cache;
mod detached;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod fail_closed;
#[cfg(feature = "file")]
pub mod file;
mod from_url;
mod guard;
mod lease;
mod lock;
mod log;
#[cfg(feature = "memcached")]
pub mod memcached;
mod memory;
#[cfg(feature = "mysql")]
pub mod mysql;
mod noop;
mod owner;
#[cfg(feature = "postgres")]
pub mod postgres;
mod redact;
#[cfg(feature = "redis")]
pub mod redis;
mod renew;
mod result;
mod settings;
mod store;
mod target;
pub mod testing;
mod token;
pub mod tree;
mod wake;

use std::time::Duration;

pub use admin::{held_locks, held_locks_async};
pub use cache::Cache;
pub use cache_store::CacheStore;
pub use claim::{Claim, Claimed, Handle};
pub use config::{key_prefix, set_key_prefix, DEFAULT_PREFIX};
pub use default_cache::{
    default_cache, default_cache_arc, set_default_cache, set_default_cache_arc, DefaultCache,
};
pub use error::{BoxError, Error};
pub use fail_closed::{fail_closed_count, on_fail_closed, FailClosed};
pub use from_url::store_from_url;
pub use guard::{AsyncGuard, Guard};
pub use lock::Lock;
pub use memory::MemoryCache;
pub use noop::NoopCache;
pub use owner::{Holder, OwnerValue};
pub use redact::redact_url;
pub use result::{BoxFuture, CacheResult};
pub use store::{LockAdmin, LockStore};

/// Runs a function at most once at a time per formatted key: `#[once(key = "job-<id>")]`.
///
/// The options, the key template, what a call returns and the mapping from python-cachelock's
/// `@once` are documented below.
pub use cachelock_macros::once;

/// The TTL of a lock unless [`Lock::ttl`] says otherwise: 60 seconds.
///
/// Long enough for most scheduled jobs, short enough that a crashed holder frees its key
/// within a minute.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The longest TTL a lock accepts: 30 days.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The longest key a lock accepts, in bytes, prefix not counted: 1024.
///
/// Memcached-style stores limit keys to 250 bytes and Redis to 512 MB; 1024 keeps keys cheap
/// to send and index while leaving room for formatted keys with several arguments.
pub const MAX_KEY_LEN: usize = 1024;
