//! Locks in etcd (cargo feature `etcd`, on the `etcd-client` crate; building it runs
//! `protoc`).
//!
//! [`EtcdStore`] serves sync and async code alike, and is a [`LockStore`]
//! (with [`LockAdmin`](crate::LockAdmin) and [`TreeStore`](crate::tree::TreeStore)) to hand
//! to [`Lock::cache`](crate::Lock::cache) or [`set_default_cache`](crate::set_default_cache),
//! or to open by URL with [`store_from_url`](crate::store_from_url).
//!
//! ```no_run
//! use cachelock::etcd::EtcdStore;
//! use cachelock::{set_default_cache, Lock};
//!
//! set_default_cache(EtcdStore::from_url("etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379")?)?;
//! // Every Lock (and `#[once]`) now coordinates through etcd.
//! let guard = Lock::new("nightly-report").try_acquire()?;
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Connecting
//!
//! | URL | |
//! |---|---|
//! | `etcd://host:2379` | one member (port 2379 when none is given) |
//! | `etcd://host1:2379,host2:2379,host3:2379` | several members of one cluster: requests are balanced over them, a member that is down is skipped |
//! | `etcd://user:password@host:2379` | etcd authentication (a token from `Authenticate`, renewed when it expires) |
//!
//! Or hand over an [`etcd_client::Client`] built your way
//! ([`EtcdStore::from_client`]): for TLS, or any option the URL does not take. Passwords
//! never appear in `Debug` output, error messages or logs (URLs are shown as
//! `etcd://user:***@host`).
//!
//! # How a lock is kept
//!
//! A lock is one key, `<key>` → the owner value (`<token>|<pid>|<host>|<label>`), attached to
//! a **lease of its own**: the lease is what expires, on the etcd leader's clock. The lease's
//! id is chosen by the store: 40 random bits, then the TTL it was granted for in seconds in
//! the low 22 bits, so whoever reads the key knows whether a renewal keeps the TTL.
//!
//! | operation | requests | round trips |
//! |---|---|---|
//! | claim | `LeaseGrant`, then `Txn` if `create_revision(key) == 0` then `Put(key, value, lease)` else `Get(key)` | 2 |
//! | release | `Txn` if `value(key) > "<token>\|"` and `value(key) < "<token>}"` then `Delete(key)`; then `LeaseRevoke` in the background | 1 |
//! | extend, same TTL | `Txn[Get(key)]` (owner and lease id), then one `LeaseKeepAlive` | 2 |
//! | extend, another TTL | `Txn[Get(key)]`, `LeaseGrant`, `Txn` if the owner compares then `Put(key, ignore_value, new lease)`; the old lease revoked in the background | 3 |
//! | holder lookup ([`Lock::holder`](crate::Lock::holder)) | `Range(key)`, `LeaseTimeToLive` | 2 |
//! | listing ([`held_locks`](crate::held_locks)) | `Range(prefix, keys only)` | 1 |
//! | force-release | `DeleteRange(key)`; its lease revoked in the background | 1 |
//! | waiting for a release | `Watch(key, no puts, from the revision the claim saw)` | stream |
//! | tree lock claim | `LeaseGrant`, then one `Txn` over the path and its relatives (see below) | 2 |
//! | tree lock release / extend | as for a plain lock, on the path's keys | 1 / 2 |
//!
//! The owner check is etcd's own comparison, in the same transaction as the delete or the
//! put: the stored value lies between `<token>|` and `<token>}` exactly when its token part
//! is `<token>` (`}` follows `|` in ASCII; tokens are 32 hex digits), so release and extend
//! never read, compare, then write in two steps. A same-TTL extend reads the key to find its
//! lease, then renews that lease: it is this lock's alone, so renewing it can never keep
//! anyone else's key alive, and a lease that expired or was revoked meanwhile refuses the
//! keep-alive (the extend answers `false`). A claim that loses revokes its fresh lease in the
//! background, as a release does the lock's: a lease left behind holds no key and runs out
//! by itself.
//!
//! # TTLs: whole seconds, at least etcd's minimum lease
//!
//! A lease's TTL is a whole number of seconds, so a lock's TTL is **rounded up** to the
//! next second; and etcd raises a lease shorter than its minimum to that minimum:
//! `ceil(1.5 × election timeout)`, **2 s** with the default `--election-timeout 1000`
//! (1 s with an election timeout of 600 ms or less). The store learns the minimum from the
//! first grant that shows it. A lock with a shorter TTL is therefore kept longer than asked:
//! its holder's own view (a [`Guard`](crate::Guard) counts the TTL it asked for) expires first, so
//! it never believes it holds a lock it lost; other claimants wait for the longer lease.
//! Expiry runs on the leader, which checks its leases every 500 ms and revokes the expired
//! ones through Raft: a lock frees between its lease TTL and about half a second later.
//! After a leader change, etcd gives every lease its full TTL again (etcd does not persist
//! the time left, unless `--experimental-enable-lease-checkpoint` is on): a lock may then be
//! kept up to one more TTL, never less.
//!
//! # Fencing tokens
//!
//! The fence of a claim ([`Guard::fence`](crate::Guard::fence)) is the **create revision**
//! of the lock key: the revision of the transaction that stored it. etcd has one revision
//! counter for the whole cluster, raised by every write, committed through Raft and kept on
//! disk by every member; a key deleted (released, expired: a lease revoke is a write too,
//! force-released) and stored again gets the revision of that new write. So the fences of a
//! key strictly increase across release, expiry, claims from any client, restarts of
//! members or of the whole cluster, and leader changes (a committed revision is never
//! handed out again). Fences are even increasing across all keys of the cluster, tree locks
//! included. They do **not** survive losing the data: a cluster started afresh begins again
//! at revision 1, and one restored from a snapshot continues from the snapshot's revision
//! unless the restore bumps it (`etcdutl snapshot restore --bump-revision`, where your
//! version has it). Compaction does not lower the revision. An unfenced claim
//! ([`Lock::fencing(false)`](crate::Lock::fencing)) costs the same and returns 0.
//!
//! # Tree locks
//!
//! Each tree lock is its owner key plus, for each relative it excludes, an empty flag key,
//! all on its lease; a claim is one transaction whose comparisons check the path, each
//! ancestor's "excludes descendants" flag, and the whole range of "excludes ancestors"
//! flags under the path (etcd compares every key of a range in one comparison). So a claim
//! never retries and costs `depth + 2` comparisons whatever the size of the space. The
//! fence is the owner key's create revision, as above. Waiters watch the space's owner keys
//! for a delete.
//!
//! # Waiting
//!
//! A waiter in [`acquire_timeout`](crate::Lock::acquire_timeout) (or its async twin) watches
//! the key for a delete (release, expiry, force-release), starting right after the revision
//! at which its refused claim found the key held, so a release in between is never missed.
//! Polling with backoff stays the fallback (the watch failed, or the pause ran out).
//!
//! # Faults
//!
//! | what happens | what you get |
//! |---|---|
//! | no member reachable | [`Error::Backend`](crate::Error::Backend) with [`is_timeout`](crate::Error::is_timeout) true, after the connect + response timeouts (a claim or extend: at most its lease's TTL) |
//! | a member restarted, a connection cut | the request that finds its connection dead is sent once more on a new one: the next operation works on the same store value |
//! | a claim's answer lost on a dead connection | its resend finds the key holding its own value and wins with the key's create revision as its fence, instead of reporting the key held (by nobody) for a whole TTL |
//! | a release's answer lost on a dead connection | its resend finds the key gone and answers `false` ([`Error::LockLost`](crate::Error::LockLost) from a guard), though the lock was released |
//! | leader election, a member without quorum | requests wait for a leader, then fail by the timeout: no lock is granted by a minority |
//! | the cluster gone while a lock is held | release fails with [`Error::Backend`](crate::Error::Backend); a guard's `Drop` logs it and never hangs; the key expires with its lease |
//!
//! Nothing here panics on a failure.

mod config;
mod core;
mod ops;
mod runtime;
mod store;
mod tree;

pub use config::{ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT, DEFAULT_RESPONSE_TIMEOUT};
/// The `etcd-client` crate this store is built on, for [`EtcdStore::from_client`].
pub use etcd_client;
pub use store::{EtcdStore, EtcdStoreBuilder};

use std::sync::Arc;

use crate::error::BoxError;
use crate::store::LockStore;

/// Opens a `etcd://` URL (see [`store_from_url`](crate::store_from_url)).
pub(crate) fn open_url(url: &str) -> Result<Arc<dyn LockStore>, BoxError> {
    Ok(Arc::new(EtcdStore::from_url(url)?))
}
