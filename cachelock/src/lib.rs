//! Run a piece of code at most once at a time, across threads, tasks, processes and machines.
//!
//! A lock on a key in a store, with an owner token (only its owner releases or extends it),
//! a TTL (a crashed holder blocks the key at most that long), renewal while the work runs,
//! and a fencing token. Two ways in:
//!
//! **A block of code**, with [`Lock`]:
//!
//! ```
//! use std::time::Duration;
//! use cachelock::Lock;
//!
//! let lock = Lock::new("nightly-report").ttl(Duration::from_secs(30));
//! let guard = lock.try_acquire()?;                 // released when `guard` drops
//! assert!(lock.try_acquire().unwrap_err().is_locked()); // anyone else is refused
//! guard.release()?;                                // or report a lost lock
//! assert_eq!(lock.run(|| 6 * 7)?, 42);             // closure form: releases on return or panic
//! # Ok::<(), cachelock::Error>(())
//! ```
//!
//! **A function**, with [`#[once]`](macro@once): at most one call at a time per formatted key;
//! while the key is held elsewhere the call is skipped (or returns `Err(Error::Locked)` with
//! `raise_if_locked = true`). Every option is on [its page](macro@once).
//!
//! ```
//! use cachelock::once;
//!
//! #[once(key = "invoice-<customer>-<month>", ttl = "2m")]
//! fn send_invoice(customer: u64, month: &str) -> Option<u64> {
//!     Some(customer) // runs only if nobody else holds `invoice-<customer>-<month>`
//! }
//! assert_eq!(send_invoice(7, "2026-12"), Some(7));
//! ```
//!
//! Locks live in the process default store, a [`MemoryCache`] (this process only) unless
//! [`set_default_cache`] names another: a shared store excludes every process that uses it.
//! [`store_from_url`] picks one from a URL (`file:///var/lock/app`, `redis://…`,
//! `postgres://…`, `mysql://…`, `memcache://…`, `etcd://…`), or [`Lock::cache`] and
//! `#[once(cache = …)]` name one per lock.
//!
//! **The same on Redis**, across every process and machine: `cargo add cachelock --features
//! redis`, then point the process default at the server once, at start-up; every `Lock` and
//! `#[once]` after that excludes every process using that server:
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # fn main() -> Result<(), cachelock::Error> {
//! use cachelock::{once, redis::RedisCache, set_default_cache};
//!
//! #[once(key = "invoice-<customer>", ttl = "2m")]
//! fn send_invoice(customer: u64) -> Option<u64> {
//!     Some(customer) // on one replica at a time; `None` where another holds the key
//! }
//!
//! set_default_cache(RedisCache::from_url("redis://127.0.0.1:6379")?)?;
//! send_invoice(7);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "redis"))]
//! # fn main() {}
//! ```
//!
//! With Redis down, such a call does not run its body (it fails closed): a function that
//! returns `Result` gets the error; one that does not is counted in [`fail_closed_count`],
//! logged, handed to [`on_fail_closed`]'s hook, and written to stderr when neither a hook
//! nor a `tracing` subscriber listens (see [`macro@once`]).
//!
//! # What is here
//!
//! - [`Lock`], [`Guard`], [`AsyncGuard`]: taking, holding, renewing ([`Lock::renew`],
//!   [`Lock::max_hold`], [`Lock::hold_at_least`]) and releasing a lock, sync and async;
//!   [`Guard::fence`] the fencing token; [`Guard::is_lost`] / [`Guard::lost`] the lost signal.
//! - [`macro@once`]: the attribute, and what a skipped call reports ([`on_fail_closed`],
//!   [`fail_closed_count`]).
//! - Stores: [`MemoryCache`] (the default), [`NoopCache`] (grants everything, for tests),
//!   [`CacheStore`] (a get/set/delete [`Cache`] you already have), and behind cargo features
//!   `cachelock::file`, `cachelock::redis`, `cachelock::postgres`, `cachelock::mysql`,
//!   `cachelock::memcached`, `cachelock::etcd`; [`store_from_url`].
//! - The store contract: [`LockStore`] (with [`Claim`], [`Claimed`], [`Handle`]) and the
//!   capabilities a store may add, [`LockAdmin`] and [`tree::TreeStore`]; [`testing`], the
//!   conformance suites every store passes.
//! - [`tree`]: hierarchical locks ([`TreeLock`](tree::TreeLock)): `/a/b` also excludes `/a`
//!   and `/a/b/c`, not `/a/x` (Locker's model).
//! - Admin calls: [`Lock::holder`], [`held_locks`], [`Lock::force_release`] (and async twins).
//! - Settings: [`set_default_cache`], [`set_key_prefix`], [`DEFAULT_TTL`], [`MAX_TTL`],
//!   [`MAX_KEY_LEN`]; [`Error`], one error type whose every message names the key.
//!
//! # Cargo features
//!
#![doc = document_features::document_features!()]
//!
//! # Guarantees
//!
//! Exclusion **while a lock's TTL runs, on the store you give it**: no two holders of a key
//! are inside at once as long as each renews or releases before its TTL runs out and the
//! store keeps what it was told. Release and extend are owner-checked everywhere. A holder
//! that goes a whole TTL without renewing (a paused process, a store it cannot reach) is no
//! longer exclusive and is not stopped: it learns it from [`Guard::is_lost`], and the
//! fencing token lets the resource it writes refuse it. What each store adds (atomic
//! across processes or not, what a restart or fail-over loses) is in its module docs; a
//! get/set/delete [`CacheStore`] is atomic within one process only.
//!
//! # Observability
//!
//! Every lock reports through [`tracing`](https://docs.rs/tracing) (targets `cachelock::*`),
//! each event with the stored `key`, none with the owner token or a password:
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
//! | `releasing lock failed; it stays until its TTL runs out` | error | `key`, `error` |
//! | `lock granted only after its TTL; released again` | warn | `key`, `ttl` |
//! | `lock force-released` | warn | `key`, `holder_host`, `holder_pid`, `holder_label` |
//! | `#[once] did not run the function: the lock could not be taken (fail closed)` | error | `function`, `key`, `error` |
//! | `#[once] body cancelled: its lock was lost` | warn | `key`, `held_for` |
#![cfg_attr(docsrs, feature(doc_cfg))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
mod fail_closed;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub mod file;
mod from_url;
#[cfg(feature = "redis")]
mod gate;
mod guard;
mod lease;
mod lock;
mod log;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub mod memcached;
mod memory;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
mod noop;
mod overlap;
mod owner;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod redact;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
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
