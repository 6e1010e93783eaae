//! Locks in PostgreSQL (cargo feature `postgres`): [`PostgresStore`].
//!
//! One table holds the locks, one row per key; every decision is one SQL statement run in
//! autocommit, measured by the database's clock. A [`PostgresStore`] serves sync and async
//! code alike and is a [`LockStore`] with [`LockAdmin`](crate::LockAdmin) and
//! [`TreeStore`](crate::tree::TreeStore), to hand to
//! [`Lock::cache`](crate::Lock::cache), [`set_default_cache`](crate::set_default_cache) or
//! [`store_from_url`](crate::store_from_url) (`postgres://…`, `postgresql://…`).
//!
//! ```no_run
//! use cachelock::postgres::PostgresStore;
//! use cachelock::{set_default_cache, Lock};
//!
//! set_default_cache(PostgresStore::from_url("postgres://app:secret@127.0.0.1/app")?)?;
//! // Every Lock (and `#[once]`) now coordinates through the database.
//! let guard = Lock::new("nightly-report").try_acquire()?;
//! guard.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The table
//!
//! The first operation creates what is missing (one round trip to find that nothing is,
//! once per store), in a transaction serialized by a transaction-scoped advisory lock so
//! that two processes starting at once do not race on `CREATE`. For migrations, the SQL
//! (the default names, no schema; [`PostgresStore::create_table_sql`] gives it with yours),
//! then build with [`create_table(false)`](PostgresStoreBuilder::create_table):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "cachelock_locks" (
//!     key        text COLLATE "C" PRIMARY KEY,
//!     token      text NOT NULL,          -- the owner token, compared by release/extend
//!     owner      text NOT NULL,          -- <token>|<pid>|<host>|<label>
//!     expires_at timestamptz NOT NULL,   -- '-infinity' once released
//!     fence      bigint NOT NULL
//! );
//! CREATE SEQUENCE IF NOT EXISTS "cachelock_locks_fence" AS bigint;
//! CREATE TABLE IF NOT EXISTS "cachelock_locks_tree" (
//!     space         text COLLATE "C" NOT NULL,
//!     path          text COLLATE "C" NOT NULL,
//!     token         text NOT NULL,
//!     owner         text NOT NULL,
//!     lock_parents  boolean NOT NULL,
//!     lock_children boolean NOT NULL,
//!     expires_at    timestamptz NOT NULL,
//!     fence         bigint NOT NULL,
//!     PRIMARY KEY (space, path)
//! );
//! ```
//!
//! The names are settings ([`table`](PostgresStoreBuilder::table),
//! [`schema`](PostgresStoreBuilder::schema)). The store's user needs `SELECT`, `INSERT`,
//! `UPDATE` on the two tables and `USAGE` on the sequence. A released or expired lock keeps
//! its row (it is free: `expires_at` is in the past), so its fence survives; rows are
//! never deleted by the store. A table whose keys are random grows: deleting rows that are
//! not live (`DELETE FROM cachelock_locks WHERE expires_at < now() - interval '1 day'`) is
//! safe at any time; fences then still come from the sequence.
//!
//! # What each operation sends
//!
//! | operation | statement | round trips |
//! |---|---|---|
//! | claim | `INSERT … VALUES (key, token, owner, clock_timestamp() + ttl, nextval(seq)) ON CONFLICT (key) DO UPDATE SET … fence = GREATEST(nextval(seq), fence + 1) WHERE expires_at <= clock_timestamp() OR token = <this claim's token> RETURNING fence` | 1 |
//! | release | `WITH r AS (UPDATE … SET expires_at = '-infinity' WHERE key = $1 AND token = $2 AND expires_at > clock_timestamp() RETURNING key) SELECT pg_notify('cachelock_released', key), set_config('synchronous_commit', 'off', true) FROM r` | 1 |
//! | extend | `UPDATE … SET expires_at = clock_timestamp() + ttl WHERE key = $1 AND token = $2 AND expires_at > clock_timestamp()` | 1 |
//! | holder lookup | `SELECT owner, <µs left> … WHERE key = $1 AND expires_at > clock_timestamp()` | 1 |
//! | listing ([`held_locks`](crate::held_locks)) | `SELECT key … WHERE key LIKE '<prefix>%' ESCAPE '\' AND expires_at > clock_timestamp()` (`\`, `%`, `_` escaped; the `"C"` collation lets it use the primary key's index) | 1 |
//! | force-release | the release without the token check (it notifies too) | 1 |
//! | tree claim | `BEGIN; SELECT pg_advisory_xact_lock(hashtextextended(<table + space>, 0)); INSERT … SELECT … WHERE NOT EXISTS (<a live conflicting lock of the space>) ON CONFLICT (space, path) DO UPDATE … RETURNING fence; COMMIT`, pipelined | 1 |
//! | tree release / extend / holder / listing | one statement each, as for plain locks | 1 |
//! | first operation of a store | `SELECT to_regclass(…) IS NOT NULL AND …` (and the `CREATE`s if something is missing) | +1 |
//!
//! Statements go out with the unnamed prepared statement and typed parameters (tokio-postgres'
//! `query_typed`): one round trip each, nothing left on the server between them, so a
//! PgBouncer in transaction mode in front works. An uncontended acquire + release is two
//! statements, two round trips, each a small write transaction (the bench counts them with
//! `pg_stat_database.xact_commit`: 2.00 per acquire + release).
//!
//! The claim and the extend commit as the server is configured (with
//! `synchronous_commit = on`, the default, after their WAL flush): a holder must never
//! believe in a lock or a deadline that a crash could take back. A release that freed a lock
//! commits without waiting for its flush (`set_config('synchronous_commit', 'off', true)`,
//! for its own transaction only), which halves the latency of an acquire + release on a
//! server whose flushes are slow: a release lost in a crash only leaves the lock held until
//! its deadline (nobody else can take it meanwhile), and the next claim's commit flushes it
//! anyway (the WAL is written in order).
//!
//! **Why not advisory locks** (`pg_advisory_lock`): they belong to the database session
//! that took them, not to the caller. Behind a connection pool the session is shared and
//! outlives the caller (a lock left on a pooled connection is held by whoever borrows it
//! next), behind PgBouncer in transaction mode the unlock may run on another server session
//! (it fails, and the lock stays), a lock cannot be seen or released from another session,
//! and it has no TTL: a holder that hangs with its connection open holds it forever. A row
//! with a deadline has none of these problems. The tree claim does use
//! `pg_advisory_xact_lock`, the transaction-scoped kind, only to serialize the claims of
//! one lock space for the few microseconds of its transaction: it is released at `COMMIT`,
//! whatever happens, so it is safe behind PgBouncer in transaction mode too.
//!
//! # Time and TTLs
//!
//! Deadlines come from the database clock: `clock_timestamp()` (the time when the
//! statement reads it; `now()` would be the start of the transaction, older than that for
//! a statement that waited on a row lock). TTLs are sent in whole microseconds, rounded up
//! (the resolution of `timestamptz`), so a fractional TTL never becomes "no TTL". The
//! clients' clocks play no part. A claim or extend is never answered after the lock's
//! TTL: the client stops waiting by then (see "Faults").
//!
//! # Fencing tokens
//!
//! A fence comes from the sequence `<table>_fence`: `nextval` when a key's row is inserted,
//! and `GREATEST(nextval, <the row's last fence> + 1)` when a claim takes over an expired
//! or released row, evaluated under the row's lock. So:
//!
//! - fences of one key strictly increase, across expiry, release, force-release and every
//!   client: takeovers of a row are serialized by its row lock, and each takes a fence above
//!   the row's last one;
//! - across a server restart or a crash too, provided commits are durable
//!   (`synchronous_commit = on`, `fsync = on`, the defaults): a fence is handed out only
//!   once its claim has committed, and that commit made the sequence's advance durable.
//!   After a crash the sequence may skip values (it logs up to 32 ahead) but never goes
//!   back; the row floor holds even if the sequence were reset;
//! - with `synchronous_commit = off`, a crash may lose the last claims' commits and the
//!   sequence's last advance: a fence handed out just before it may be handed out again.
//!   The same holds for a fail-over to an asynchronous replica that had not received the
//!   last commits (with synchronous replication it has);
//! - tree lock fences come from the same sequence and strictly increase within a lock
//!   space (its claims are serialized by the space's transaction lock).
//!
//! A claim without a fence ([`Lock::fencing(false)`](crate::Lock::fencing)) runs the same
//! statement and reports 0.
//!
//! # Waiting
//!
//! The release statements `NOTIFY` the released key on the channel `cachelock_released`
//! (tree releases: `<space>\n<path>` on `cachelock_tree_released`), sent by the server at
//! commit. The first wait of a store starts its listener: one background thread with one
//! connection that runs `LISTEN` on both channels and wakes that store's waiters of the key
//! (of the space, for trees); it reconnects after a failure, checks its connection every
//! 10 s of silence, and ends when the store is dropped. Polling with the backoff is the
//! fallback: a waiter whose wake-up is lost (the listener reconnecting, an expiry, which
//! sends nothing) tries again after its backoff pause. Notifications carry the key only,
//! never a token. [`PostgresStore::release_notifications`] counts what the listener
//! received.
//!
//! # Sync and async
//!
//! Everything runs on [tokio-postgres](tokio_postgres) connections, sync and async, with
//! the same statements and the same timeouts:
//!
//! - **sync** calls take a connection from a pool; each pooled connection owns a small
//!   current-thread tokio runtime that drives its socket while the calling thread waits (as
//!   the `postgres` crate's blocking client does, which is why that crate is not used: it
//!   panics when called from inside a tokio runtime, and has no client-side timeout). A
//!   sync call made from inside a tokio runtime (a sync [`Guard`](crate::Guard) dropped in
//!   async code, [`Lock::try_acquire`](crate::Lock::try_acquire) in an `async fn`) runs on
//!   a short-lived helper thread while the caller blocks: it works, and blocks that runtime
//!   thread for one round trip, as any sync call there does.
//! - **async** calls use connections driven by a task of the caller's runtime, pooled per
//!   runtime (the four most recent runtimes are remembered); no runtime thread ever blocks.
//!   The runtime must have its timer enabled (`enable_all`, or `#[tokio::main]`).
//!
//! The statement timeout is the client's ([`statement_timeout`](PostgresStoreBuilder::statement_timeout)),
//! followed by a cancel request; the server's own `statement_timeout` setting is left as the
//! role or database sets it (setting it per connection takes a startup option that
//! PgBouncer refuses, or one more round trip).
//!
//! Each pool keeps up to [`max_idle_connections`](PostgresStoreBuilder::max_idle_connections)
//! idle connections; the listener is one more.
//!
//! # Connecting, and the app's own connections
//!
//! [`PostgresStore::from_url`] (and [`builder`](PostgresStore::builder)) take a
//! `postgres://user:password@host:port/dbname?options` URL or a `key=value` connection
//! string, as tokio-postgres reads them; [`from_config`](PostgresStore::from_config) takes a
//! [`tokio_postgres::Config`] the app already builds. TLS is not supported yet (plain TCP
//! or a Unix socket: `host=/run/postgresql`). Passwords never appear in `Debug` output,
//! error messages or logs: URLs are shown as `postgres://user:***@host/db`.
//!
//! The store is built from the app's **connection settings**, not from its pool
//! (`deadpool-postgres`, `bb8-postgres`): the listener needs a session of its own that
//! stays in `LISTEN`, the sync path needs connections driven by their own runtime (a
//! pool's connections are driven by tasks of the runtime that opened them, which a sync
//! caller cannot wait on from inside that runtime), and every lock statement is a single
//! autocommit statement that must not end up inside a transaction the app left open on a
//! pooled connection. With deadpool, hand over the same `tokio_postgres::Config` the pool
//! is built from (`deadpool_postgres::Config::get_pg_config`). The store's own pools are
//! small (idle connections only; they close when idle ones exceed the limit).
//!
//! # Faults
//!
//! | what happens | what you get |
//! |---|---|
//! | server down or unreachable | [`Error::Backend`](crate::Error::Backend) after at most the connect timeout ([`is_timeout`](crate::Error::is_timeout) when it was the timeout, not a refusal) |
//! | server slow, paused or a link that hangs | [`Error::Backend`](crate::Error::Backend) with [`is_timeout`](crate::Error::is_timeout) true after the statement timeout (never more than the TTL for claim and extend); the statement is cancelled on the server (a cancel request, in the background), so a claim stuck behind a lock does not land after the caller gave up, and that connection is closed, not reused |
//! | server restarted (or the connection killed: `pg_terminate_backend`) | nothing: a pooled connection found dead is replaced and the statement sent once more, so the first operation after the restart works on the same store value |
//! | connection lost after the server ran a claim (its reply lost) | the claim sent again finds the row holding its own token and wins (the `OR token = …` of the claim), instead of reporting the key held, by nobody, for a whole TTL. A claim not sent again (a fresh connection, a timeout) returns `Error::Backend`, and `Lock`/`TreeLock` give it back with an owner-checked release in the background, in case it landed |
//! | server gone while a lock is held | `release` returns [`Error::Backend`](crate::Error::Backend); a guard's `Drop` logs it and never hangs; the row expires with its TTL |
//! | the tables dropped (or a fresh database) while the store runs | the statement fails with "undefined table"; the store creates them again and sends it once more |
//! | fail-over to a replica | the guarantees of the fencing section; locks whose commits the replica had not received are lost (free) there |
//!
//! Nothing here panics on a failure.

mod config;
mod core;
mod listener;
mod ops;
mod sql;
mod store;

pub use config::{
    ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IDLE_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT,
    DEFAULT_TABLE,
};
pub use store::{PostgresStore, PostgresStoreBuilder};
/// The tokio-postgres crate this store is built on, for [`PostgresStore::from_config`].
pub use tokio_postgres;

use std::sync::Arc;

use crate::error::BoxError;
use crate::store::LockStore;

/// Opens a `postgres://` URL (see [`store_from_url`](crate::store_from_url)).
pub(crate) fn open_url(url: &str) -> Result<Arc<dyn LockStore>, BoxError> {
    Ok(Arc::new(PostgresStore::from_url(url)?))
}

/// The bare statements of a claim and a release, for the benchmarks that compare the store
/// with the raw two-round-trip primitive. Not a stable API.
#[doc(hidden)]
pub mod raw_sql {
    /// The claim (`$1` key, `$2` token, `$3` owner value, `$4` TTL in µs) and the release
    /// (`$1` key, `$2` token) on the default table.
    pub fn claim_release() -> (String, String) {
        let sql = super::sql::Sql::new(None, super::DEFAULT_TABLE);
        (sql.claim, sql.release)
    }
}
