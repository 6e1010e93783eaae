//! Locks in a MariaDB or MySQL table (cargo feature `mysql`), on the `mysql` (sync) and
//! `mysql_async` crates.
//!
//! [`MysqlStore`] is a [`LockStore`] (with
//! [`LockAdmin`](crate::LockAdmin) and [`TreeStore`](crate::tree::TreeStore)) for sync and
//! async code alike. It needs MariaDB 10.3+ or MySQL 5.7+ with **InnoDB** (row locks and
//! transactions; MyISAM would lose atomicity), and it is tested on MariaDB 10.11.
//!
//! ```no_run
//! use cachelock::mysql::MysqlStore;
//! use cachelock::{set_default_cache, Lock};
//!
//! set_default_cache(MysqlStore::from_url("mysql://app:secret@db.example:3306/app")?)?;
//! // Every Lock (and `#[once]`) now coordinates through the database.
//! let guard = Lock::new("nightly-report").try_acquire()?;
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The table
//!
//! One table, `cachelock_locks` unless told otherwise ([`MysqlStoreBuilder::table`], or
//! `?table=` in the URL), created the first time an operation finds it missing, unless
//! [`create_table(false)`](MysqlStoreBuilder::create_table). For migrations, the statement
//! ([`MysqlStore::create_table_statement`]) is:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS `cachelock_locks` (
//!   lock_key   VARBINARY(3072)  NOT NULL,  -- the lock key (bytes, compared exactly)
//!   token      VARBINARY(64)    NULL,      -- the holder's owner token; NULL once released
//!   owner      BLOB             NULL,      -- <token>|<pid>|<host>|<label>
//!   scope      VARBINARY(2)     NULL,      -- NULL: a plain lock; '11'..'00': a tree lock; '--': a tree lock space
//!   fence      BIGINT UNSIGNED  NOT NULL DEFAULT 0,
//!   expires_at DATETIME(6)      NOT NULL,  -- UTC, by the server's clock
//!   PRIMARY KEY (lock_key)
//! ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC
//! ```
//!
//! A released or expired lock keeps its row (token `NULL` or deadline past), so the next
//! claim of the key continues its fence: rows are one per key ever locked, and a few dozen
//! bytes each. Keys are at most 3,072 bytes (InnoDB's key limit with 16 KiB pages; smaller
//! pages allow less), owner values at most 64 KiB: longer ones are refused before anything
//! is sent. The account needs `SELECT, INSERT, UPDATE, DELETE` on the table (and `CREATE`
//! to create it).
//!
//! # Cost: two round trips per lock
//!
//! | operation | statement | round trips |
//! |---|---|---|
//! | claim (fenced or not) | `INSERT … VALUES (…, LAST_INSERT_ID(<now µs>), UTC_TIMESTAMP(6) + INTERVAL ttl MICROSECOND) ON DUPLICATE KEY UPDATE fence = IF(expires_at > UTC_TIMESTAMP(6), IF(token = ?, LAST_INSERT_ID(fence), fence + LAST_INSERT_ID(0)), LAST_INSERT_ID(GREATEST(fence + 1, <now µs>))), owner = IF(live, owner, ?), token = IF(live, token, ?), expires_at = IF(live, expires_at, <new deadline>)` | 1 |
//! | release | `UPDATE … SET token = NULL, owner = NULL, expires_at = UTC_TIMESTAMP(6) WHERE lock_key = ? AND token = ? AND expires_at > UTC_TIMESTAMP(6)` | 1 |
//! | extend | `UPDATE … SET expires_at = <now + ttl> WHERE lock_key = ? AND token = ? AND expires_at > UTC_TIMESTAMP(6)` | 1 |
//! | holder lookup ([`Lock::holder`](crate::Lock::holder)) | `SELECT owner, <µs left> … WHERE lock_key = ? AND token IS NOT NULL AND expires_at > UTC_TIMESTAMP(6)` | 1 |
//! | listing ([`held_locks`](crate::held_locks)) | `SELECT lock_key … WHERE lock_key >= <prefix> AND lock_key < <prefix's successor> AND …live` (a primary-key range: no `LIKE` pattern to escape) | 1 |
//! | force-release | `UPDATE … SET token = NULL, owner = NULL … WHERE lock_key = ?` (the row and its fence stay) | 1 |
//! | tree lock claim | a transaction: `SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION` · lock the space's row and take its next fence (`INSERT … ON DUPLICATE KEY UPDATE fence = LAST_INSERT_ID(…)`) · read the path, its ancestors and its descendants `FOR UPDATE` · check the [conflict rule](crate::tree#the-conflict-rule) · `INSERT` the lock · `COMMIT` | 5 (4 when refused) |
//! | tree lock release / extend / holder / listing | one `DELETE` / `UPDATE` / `SELECT` each | 1 |
//!
//! How a claim knows it won: every path through its `ON DUPLICATE KEY UPDATE` calls
//! `LAST_INSERT_ID(expr)` last, with the new fence when the key was free (or expired) and
//! with 0 when it is held; the server returns that value in the statement's OK packet, so
//! the claim is one statement and one round trip, with no second read and no reliance on
//! the affected-row count (whose meaning changes with the client's `CLIENT_FOUND_ROWS`
//! flag). A claim is atomic because InnoDB holds the row's lock for the statement (and for
//! a new key, the unique primary key admits one insert). The column updates are ordered so
//! that `expires_at`, which every condition reads, changes last: the statement means the
//! same under MySQL's left-to-right assignments and MariaDB's `SIMULTANEOUS_ASSIGNMENT`.
//! Release and extend change the row whenever they match (extend adds a microsecond if the
//! new deadline equals the old), so "one row affected" means "done" whatever that flag
//! says. Statements are prepared once per connection (the drivers cache them).
//!
//! Each claim and release is a committed write: with InnoDB's default
//! `innodb_flush_log_at_trx_commit=1` each waits for a redo-log flush, which sets the speed
//! of a lock (on the slow shared disk of the bench machine, about 6 ms per statement; on an
//! SSD, tens of microseconds). `=2` trades the locks of the last second before a server
//! crash for speed; fences stay increasing through the clock floor.
//!
//! The isolation level does not matter to the plain statements (each is one statement on
//! the newest row version, under its row lock). The tree claim reads `FOR UPDATE` at READ
//! COMMITTED, so it reads the newest committed rows (not a REPEATABLE READ snapshot), a
//! concurrent extend or release of a row it read waits for it, and no gap locks are taken.
//!
//! # Deadlines and TTL resolution
//!
//! Deadlines are `UTC_TIMESTAMP(6)` + TTL: the database server's clock, in microseconds,
//! independent of the session's time zone and of every client's clock. A TTL is rounded up
//! to a whole microsecond. `UTC_TIMESTAMP(6)` is fixed for a statement, so one statement
//! sees one "now".
//!
//! # Fencing tokens
//!
//! The claim that wins returns `max(fence stored in the row + 1, server clock in µs since
//! 1970)`, stored in the row in the same statement. Rows are never deleted by the store
//! (release and force-release only clear the owner), so **the fences of a key strictly
//! increase across expiry, release, force-release and server restarts** (InnoDB is durable;
//! with the default `innodb_flush_log_at_trx_commit=1` a committed claim survives a crash).
//! Should a row be lost anyway (the table truncated or dropped, a failover to a replica
//! that had not received it), the clock floor still keeps new fences above the old ones,
//! unless the server's clock went back by more than the time since the last claim. Tree
//! locks take their fence from their lock space's row the same way, so they strictly
//! increase within a space. An unfenced claim ([`Lock::fencing(false)`](crate::Lock::fencing))
//! costs the same statement; its guard's fence is 0.
//!
//! MariaDB has `SEQUENCE` objects and MySQL does not; a per-row counter floored by the
//! clock works on both, needs no extra object, and keeps each key's fences in its own row.
//!
//! # Waiting
//!
//! MariaDB and MySQL have no `LISTEN`/`NOTIFY`: a waiter in
//! [`acquire_timeout`](crate::Lock::acquire_timeout) polls, with the backoff pause (2 ms
//! doubling to 100 ms, jittered) between attempts, each attempt one claim statement.
//!
//! # Tree locks
//!
//! A tree lock of path `/a/b` in the lock space `space` is the row
//! `space{cachelock-tree}:/a/b` (the same key form as the Redis backend; plain
//! [`Lock`](crate::Lock)s refuse keys that contain `{cachelock-tree}:`), and the space
//! itself is the row `space{cachelock-tree}:` with scope `'--'`, which holds its fence
//! counter and serializes the space's claims: a claim locks it first (`INSERT … ON
//! DUPLICATE KEY UPDATE`), then reads the path, its ancestors (point lookups) and its
//! descendants (one primary-key range) with a locking read, and checks
//! [`conflicts`](crate::tree::conflicts) on what it found. So claims are atomic within a
//! space, and spaces never wait on each other. A released tree lock's row is deleted (its
//! fence lives in the space's row); expired ones are deleted by the next claim that reads
//! them. InnoDB may break a rare deadlock between spaces whose keys are neighbours: the
//! claim is then sent again (three times at most).
//!
//! # Connections, sync and async
//!
//! | path | connections | bounds |
//! |---|---|---|
//! | sync, [`from_url`](MysqlStore::from_url) | the store's own pool of `mysql::Conn`s: each thread takes an idle one or connects; one that failed is closed, never reused | connect timeout (TCP + handshake); response timeout on every socket read and write |
//! | async, `from_url` | one `mysql_async::Pool` per tokio runtime, made on first use there (a pool's connections belong to the runtime that opened them) | the connect plus the response timeout for the whole operation |
//! | [`from_pool`](MysqlStore::from_pool) (the app's `mysql::Pool`) | sync on the app's pool; async runs the sync operation on tokio's blocking pool | the pool's own options (sync); connect + response timeouts (async) |
//! | [`from_pools`](MysqlStore::from_pools) (plus the app's `mysql_async::Pool`) | each path on the app's pool | as above |
//!
//! Why these: the `mysql` crate's own pool pings every connection it hands out by default
//! (a second round trip per operation) and resets it on return (a third, which also empties
//! its statement cache); the store's own pools do neither, and the store turns the reset
//! off for its checkouts from an app's pool. URLs to `localhost` stay on TCP unless they
//! say `prefer_socket=true`. There is no TLS yet (a URL asking for it is refused).
//!
//! # Faults
//!
//! | what happens | what you get |
//! |---|---|
//! | server down or unreachable | [`Error::Backend`](crate::Error::Backend) after at most the connect timeout (async: connect + response) |
//! | server slow, or a row lock held long by another transaction | [`Error::Backend`](crate::Error::Backend) with [`is_timeout`](crate::Error::is_timeout) true, after the response timeout (async: connect + response) |
//! | server restarted | nothing: a pooled connection found dead is replaced and the statement sent once more, so the next operation works on the same store value; locks and fences survive (InnoDB) |
//! | connection cut after a claim ran (its reply lost) | the claim sent again finds the key holding its own token and wins with the stored fence (tree claims too), instead of reporting the key held, by nobody, for a TTL. A claim not sent again returns `Error::Backend`; `Lock`/`TreeLock` then give it back with an owner-checked release in the background, in case it landed |
//! | server gone while a lock is held | `release` returns [`Error::Backend`](crate::Error::Backend); a guard's `Drop` logs it and never hangs; the row expires with its TTL |
//! | table missing | created (`CREATE TABLE IF NOT EXISTS`) and the statement sent again, unless `create_table(false)` |
//! | failover to a replica | asynchronous replication may lose the last claims: a lock may be granted twice around a failover; fences stay increasing unless the new primary's clock is behind |
//!
//! Nothing here panics on a failure. Passwords never appear in `Debug` output, error
//! messages or logs: URLs are shown as `mysql://user:***@host`, and a driver message that
//! would quote the password is scrubbed.
//!
//! # MySQL 8
//!
//! Every statement is the same on MariaDB and MySQL 8 (no `VALUES()` in the upsert, which
//! MySQL 8.0.20 deprecates and MariaDB spells differently; no `RETURNING`, which MySQL
//! lacks; no sequences). MySQL 8's default `caching_sha2_password` authentication over TCP
//! without TLS needs the server's RSA key exchange, which the drivers do; an account with
//! `mysql_native_password` avoids it. Only MariaDB 10.11 is tested here.

mod config;
mod core;
mod ops;
mod session;
mod sql;
mod store;

pub use config::{
    ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_RESPONSE_TIMEOUT,
    DEFAULT_TABLE,
};
pub use store::{MysqlStore, MysqlStoreBuilder};

/// The `mysql` crate (the sync driver) this store is built on, for building the pool to
/// hand to [`MysqlStore::from_pool`] with the same version.
pub use ::mysql as driver;
/// The `mysql_async` crate (the async driver) this store is built on, for
/// [`MysqlStore::from_pools`].
pub use ::mysql_async as async_driver;

/// The claim and release statements for `table`, for the benchmark that sends them without
/// cachelock around them. Not a stable API.
#[doc(hidden)]
pub mod statement_text {
    /// The claim (params: key, token, owner, ttl µs, token, owner, token, ttl µs; the OK
    /// packet's last insert id is the fence, or 0 when refused) and the owner-checked
    /// release (params: key, token).
    pub fn claim_and_release(table: &str) -> (String, String) {
        let sql = super::sql::Sql::new(table);
        (sql.claim, sql.release)
    }
}

use std::sync::Arc;

use crate::error::BoxError;
use crate::store::LockStore;

/// Opens a `mysql://` or `mariadb://` URL (see [`store_from_url`](crate::store_from_url)).
pub(crate) fn open_url(url: &str) -> Result<Arc<dyn LockStore>, BoxError> {
    Ok(Arc::new(MysqlStore::from_url(url)?))
}
