//! Locks in memcached (cargo feature `memcached`): [`MemcachedCache`], a
//! [`LockStore`] with a [`LockAdmin`](crate::LockAdmin) (holder lookup and
//! force-release; no listing), for sync and async code alike.
//!
//! ```no_run
//! use cachelock::memcached::MemcachedCache;
//! use cachelock::{set_default_cache, Lock};
//!
//! set_default_cache(MemcachedCache::from_url("memcache://127.0.0.1:11211")?)?;
//! // Every Lock (and `#[once]`) now coordinates through memcached, across processes and hosts.
//! let guard = Lock::new("nightly-report").try_acquire()?;
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Server
//!
//! **memcached 1.6.13 or later** (Debian 12 ships 1.6.18): the store speaks the meta
//! commands (`ms`, `mg`, `md`, `ma`), and 1.6.13 fixed the two it relies on (`md` with a CAS
//! compared against 0 before; the CAS that `ms` answers). An older server, or one started
//! with `-C` (no CAS), is refused with a clear error on the first connection. One server per
//! store (`memcache://host:port`): keys are not sharded over several servers, so the lock
//! server is a single point of failure, as with a standalone Redis. Not through a proxy
//! (mcrouter, twemproxy): the store must reach the memcached that holds its keys.
//!
//! | URL | |
//! |---|---|
//! | `memcache://host:11211` (or `memcached://`) | TCP, port 11211 by default |
//! | `memcache://user:password@host` | memcached's ASCII authentication (a server started with `-Y authfile`; `%`-escapes are decoded) |
//!
//! No TLS. Passwords never appear in `Debug` output, error messages or logs: the URL is
//! shown as `memcache://user:***@host:port`.
//!
//! # The client
//!
//! A small client of its own, over `std::net::TcpStream` (sync, a pool of connections) and
//! `tokio::net::TcpStream` (async, a pool per tokio runtime), speaking the meta text
//! protocol: the store sends five commands on a line-based protocol, and the published
//! crates do not fit. `memcache` is sync only and has no meta commands (classic `delete`
//! cannot compare a CAS, so an owner-checked release would need its binary protocol,
//! deprecated since memcached 1.6), and the async crates are thin. So there is no
//! `from_client`: build the store from a URL.
//!
//! # Cost: two round trips per lock
//!
//! | operation | command |
//! |---|---|
//! | claim | `ms <key> <len> T<secs> ME c` (add mode: stored only if the key is absent; answers the new item's CAS) |
//! | release | `md <key> C<cas>` with the CAS the claim got: deleted only while the item is that very one |
//! | extend | `ms <key> <len> T<secs> C<cas> c` with the claim's value: stored only while the item is that very one (answers the new CAS) |
//! | release / extend when this store value did not make the claim (or the server restarted since) | `mg <key> v c`, compare the token, then `md`/`ms` with that `C<cas>`, on the same connection: one more round trip |
//! | holder lookup ([`Lock::holder`](crate::Lock::holder)) | `mg <key> v t` |
//! | force-release | `md <key>` |
//! | listing ([`held_locks`](crate::held_locks)) | none: memcached cannot list keys, so it is an error saying so |
//! | opening a connection | `stats` and `ma <prefix>cachelock-run N0 J<random> D0 v c` (the run marker, below), in one round trip (after the authentication `set`, if any) |
//!
//! An uncontended acquire + release is two commands, one round trip each, as with the bare
//! `add` + CAS-delete. The owner checks are memcached's own compare-and-swap: `md`/`ms` with
//! `C<cas>` act only while the item's CAS is the one given, and a CAS is never reused within
//! a server run, so a release or an extend can never delete or overwrite another owner's
//! lock, not even one that took the key after this one expired. (Unless some other client
//! writes the lock keys choosing CAS values itself, with the `E` flag of memcached 1.6.27+;
//! cachelock never does.) (`mg` then `md C<cas>` is a
//! read then a compare-and-delete, never a read then a blind delete.) Since a restarted
//! server counts its CAS values from 1 again, a CAS is compared only on a connection to the
//! server run it came from: every connection reads the **run marker** when it opens, a
//! random number stored without TTL at `<prefix>cachelock-run` by the first connection to
//! reach a fresh server, and the remembered CAS is used only when the markers agree (the
//! read-then-compare goes through one connection, which cannot outlive a restart). A marker
//! lost to eviction or `flush_all` only costs the extra round trip.
//!
//! # TTL: whole seconds, rounded up, plus one
//!
//! memcached counts expiry in whole seconds on a clock that ticks once a second, so an
//! expiry of N seconds ends between N - 1 and N seconds later (its docs: "a TTL of 1 will
//! sometimes immediately expire"). The store sends the TTL **rounded up to whole seconds,
//! plus one**, so that a lock never expires before its TTL: a lock lives at least its TTL
//! and less than 2 s more. A 150 ms lock lives 1 to 2 s, a 1.5 s lock 2 to 3 s, a 30 s lock
//! 30 to 31 s. The TTL is measured by the server's clock. Past 30 days memcached reads an
//! expiry as a Unix time: the store sends a relative expiry up to 30 days and, beyond it
//! (only [`MAX_TTL`](crate::MAX_TTL) itself, rounded up, gets there), the Unix time by the
//! server's clock, learned from `stats` when the connection opened. The holder lookup
//! reports the seconds memcached has left minus the added one, in whole seconds.
//!
//! # Fencing tokens
//!
//! A won claim's fence ([`Guard::fence`](crate::Guard::fence)) is
//! `server start time in µs + the item's CAS`: the start time is `time - uptime` from
//! `stats` (whole seconds by the server's clock, the same on every connection to one server
//! run), the CAS the one the claim's `ms` answered. memcached hands out CAS values from one
//! counter for the whole server, in the order it stores items, so:
//!
//! - **within one server run**, the fences of a key strictly increase across release and
//!   expiry, for every client, whatever their clocks (the next holder's item is stored after
//!   the previous one's, so it has a greater CAS);
//! - **across a restart**, the new run's fences are greater if the server's clock did not go
//!   back, the new run started in a later second than the old one, and the old run handed
//!   out fewer than one million CAS values per second between the two starts (every item
//!   write takes one: a memcached also used as a busy cache may go past it). A restart
//!   within the same second as the previous start, or a server clock set back, can give
//!   smaller fences;
//! - it does not depend on the clients' clocks at all.
//!
//! It costs nothing: the claim's own `ms` answers the CAS. A claim without a fence
//! ([`Lock::fencing(false)`](crate::Lock::fencing)) sends the same command and gets 0.
//!
//! # Waiting
//!
//! memcached cannot tell a client that a key was deleted, so waiters in
//! [`acquire_timeout`](crate::Lock::acquire_timeout) poll with the backoff (the default of
//! [`LockStore::wait_for_release`]). No tree locks:
//! memcached has no multi-key atomic operation, so [`trees`](crate::LockStore::trees) is
//! `None` and a [`TreeLock`](crate::tree::TreeLock) on it fails with the core's "does not
//! support tree locks" error.
//!
//! # Keys
//!
//! A memcached key is at most 250 bytes of printable ASCII; a lock key may be 1 KiB of
//! anything. A key of at most 250 bytes, all of it printable ASCII without spaces and
//! without `#`, is sent as it is; any other is sent as its first 200 bytes (every other
//! byte replaced by `_`) + `#` + the SHA-1 of the whole key in hex. The two forms never
//! meet (only hashed keys contain `#`); the holder lookup and force-release map their key
//! the same way. Do not let anything else write the lock keys or the run marker.
//!
//! # Faults
//!
//! | what happens | what you get |
//! |---|---|
//! | server down or unreachable | [`Error::Backend`](crate::Error::Backend), after at most the connect timeout |
//! | server slow or paused | [`Error::Backend`](crate::Error::Backend) with [`is_timeout`](crate::Error::is_timeout) true, after the response timeout (never more than the TTL for claim and extend); the connection is closed, not reused |
//! | server restarted | nothing: a dead pooled connection is replaced and the operation sent once more. The restarted server is empty: every lock is gone (its holders' releases and extends report the lock lost) |
//! | connection cut after the server ran a claim (its reply lost) | the claim sent again finds the key holding its own token and wins; a claim that is not sent again (its connection was new, or the reply timed out) returns `Error::Backend`, and `Lock` gives it back with an owner-checked release in the background, in case it landed |
//! | memory full | memcached **evicts** least recently used items, locks included: a lock can vanish before its TTL and another client then gets the key. Give the locks a memcached that is not full, or one started with `-M` (refuse writes instead of evicting: claims then fail with `Error::Backend`) |
//! | `flush_all` | every lock is gone, as after a restart (the fences keep increasing: the CAS counter is not reset) |
//! | another value at the key | claim is refused ([`Error::Locked`](crate::Error::Locked)); release and extend touch nothing ([`Error::LockLost`](crate::Error::LockLost)) |
//! | an older server, `-C`, a server that wants authentication | [`Error::Backend`](crate::Error::Backend) saying so, on every operation |
//!
//! Nothing here panics on a failure.

mod config;
mod conn;
mod keys;
mod ops;
mod pool;
mod proto;
mod store;

use std::sync::Arc;

use crate::error::BoxError;
use crate::store::LockStore;

pub use config::{
    ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IDLE_CONNECTIONS, DEFAULT_PORT,
    DEFAULT_RESPONSE_TIMEOUT,
};
pub use store::{MemcachedCache, MemcachedCacheBuilder};

/// Opens a `memcache://` (or `memcached://`) URL (see
/// [`store_from_url`](crate::store_from_url)).
pub(crate) fn open_url(url: &str) -> Result<Arc<dyn LockStore>, BoxError> {
    Ok(Arc::new(MemcachedCache::from_url(url)?))
}
