//! Every store operation as a value ([`Op`]), what it answers ([`Reply`]), and how it runs on
//! one connection ([`exec`]), the same code for the sync and the async path.
//!
//! Statements go out with `query_typed` (the unnamed prepared statement, parameter types
//! given): one round trip each, nothing kept on the server between them, so a
//! transaction-mode PgBouncer in front is fine.

use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error, Row};

use super::sql::Sql;
use crate::tree::{TreeEntry, TreeScope};

/// One operation, its key or lock space as stored.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<'a> {
    Claim {
        key: &'a str,
        token: &'a str,
        owner: &'a str,
        ttl: Duration,
    },
    Release {
        key: &'a str,
        token: &'a str,
    },
    Extend {
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    },
    Holder {
        key: &'a str,
    },
    Keys {
        pattern: &'a str,
    },
    ForceRelease {
        key: &'a str,
    },
    TreeClaim {
        /// The space's advisory lock key text (the table and the space).
        lock: &'a str,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        owner: &'a str,
        scope: TreeScope,
        ttl: Duration,
    },
    TreeRelease {
        space: &'a str,
        path: &'a str,
        token: &'a str,
    },
    TreeExtend {
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
    },
    TreeHolder {
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    },
    TreeList {
        space: &'a str,
    },
}

/// What an operation answers.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A claim: the fence if it won.
    Fence(Option<u64>),
    /// Release, extend, force-release: whether a row changed.
    Flag(bool),
    /// Holder lookup.
    Value(Option<(String, Option<Duration>)>),
    /// Listing.
    Keys(Vec<String>),
    /// Tree holder lookup.
    Entry(Option<TreeEntry>),
    /// Tree listing.
    Entries(Vec<TreeEntry>),
}

impl Op<'_> {
    /// The operation's name, for errors and logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Claim { .. } => "claim",
            Op::Release { .. } => "release",
            Op::Extend { .. } => "extend",
            Op::Holder { .. } => "holder lookup",
            Op::Keys { .. } => "listing",
            Op::ForceRelease { .. } => "force-release",
            Op::TreeClaim { .. } => "tree claim",
            Op::TreeRelease { .. } => "tree release",
            Op::TreeExtend { .. } => "tree extend",
            Op::TreeHolder { .. } => "tree holder lookup",
            Op::TreeList { .. } => "tree listing",
        }
    }

    /// The lock's TTL, for the operations that must not answer after it.
    pub(crate) fn lock_ttl(&self) -> Option<Duration> {
        match self {
            Op::Claim { ttl, .. }
            | Op::Extend { ttl, .. }
            | Op::TreeClaim { ttl, .. }
            | Op::TreeExtend { ttl, .. } => Some(*ttl),
            _ => None,
        }
    }
}

/// A TTL in whole microseconds, rounded up (the resolution of `timestamptz`).
pub(crate) fn micros(ttl: Duration) -> i64 {
    let micros = ttl.as_nanos().div_ceil(1000);
    i64::try_from(micros).unwrap_or(i64::MAX)
}

/// The microseconds left that a row reports, as a TTL (at least 1 µs: the row was live).
fn left(micros: Option<i64>) -> Option<Duration> {
    micros.map(|m| Duration::from_micros(m.max(1).unsigned_abs()))
}

fn entry(row: &Row) -> Result<TreeEntry, Error> {
    Ok(TreeEntry {
        path: row.try_get(0)?,
        value: row.try_get(1)?,
        ttl: left(row.try_get(2)?),
    })
}

fn fence(rows: &[Row]) -> Result<Option<u64>, Error> {
    match rows.first() {
        Some(row) => Ok(Some(row.try_get::<_, i64>(0)?.unsigned_abs())),
        None => Ok(None),
    }
}

const T: Type = Type::TEXT;
const I: Type = Type::INT8;
const B: Type = Type::BOOL;

/// Runs `op` on `client`: one statement, one round trip (a tree claim: a pipelined
/// transaction of four, one round trip).
pub(crate) async fn exec(client: &Client, sql: &Sql, op: Op<'_>) -> Result<Reply, Error> {
    match op {
        Op::Claim {
            key,
            token,
            owner,
            ttl,
        } => {
            let ttl = micros(ttl);
            let params: [(&(dyn ToSql + Sync), Type); 4] =
                [(&key, T), (&token, T), (&owner, T), (&ttl, I)];
            let rows = client.query_typed(&sql.claim, &params).await?;
            Ok(Reply::Fence(fence(&rows)?))
        }
        Op::Release { key, token } => {
            let rows = client
                .query_typed(&sql.release, &[(&key, T), (&token, T)])
                .await?;
            Ok(Reply::Flag(!rows.is_empty()))
        }
        Op::Extend { key, token, ttl } => {
            let ttl = micros(ttl);
            let params: [(&(dyn ToSql + Sync), Type); 3] = [(&key, T), (&token, T), (&ttl, I)];
            let changed = client.execute_typed(&sql.extend, &params).await?;
            Ok(Reply::Flag(changed > 0))
        }
        Op::Holder { key } => {
            let rows = client.query_typed(&sql.holder, &[(&key, T)]).await?;
            let value = match rows.first() {
                Some(row) => Some((row.try_get(0)?, left(row.try_get(1)?))),
                None => None,
            };
            Ok(Reply::Value(value))
        }
        Op::Keys { pattern } => {
            let rows = client.query_typed(&sql.keys, &[(&pattern, T)]).await?;
            let keys = rows
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            Ok(Reply::Keys(keys))
        }
        Op::ForceRelease { key } => {
            let rows = client.query_typed(&sql.force_release, &[(&key, T)]).await?;
            Ok(Reply::Flag(!rows.is_empty()))
        }
        Op::TreeClaim {
            lock,
            space,
            path,
            token,
            owner,
            scope,
            ttl,
        } => {
            let ttl = micros(ttl);
            let (parents, children) = (scope.lock_parents, scope.lock_children);
            let params: [(&(dyn ToSql + Sync), Type); 7] = [
                (&space, T),
                (&path, T),
                (&token, T),
                (&owner, T),
                (&parents, B),
                (&children, B),
                (&ttl, I),
            ];
            // Sent together, answered in order: one round trip. The claim's snapshot is
            // taken when it starts, after the space's lock is granted.
            let begin = client.batch_execute("BEGIN");
            let lock_params: [(&(dyn ToSql + Sync), Type); 1] = [(&lock, T)];
            let locked = client.query_typed(&sql.tree_lock, &lock_params);
            let claimed = client.query_typed(&sql.tree_claim, &params);
            let commit = client.batch_execute("COMMIT");
            let (begin, locked, claimed, commit) =
                futures_util::future::join4(begin, locked, claimed, commit).await;
            begin?;
            locked?;
            let rows = claimed?;
            commit?;
            Ok(Reply::Fence(fence(&rows)?))
        }
        Op::TreeRelease { space, path, token } => {
            let rows = client
                .query_typed(&sql.tree_release, &[(&space, T), (&path, T), (&token, T)])
                .await?;
            Ok(Reply::Flag(!rows.is_empty()))
        }
        Op::TreeExtend {
            space,
            path,
            token,
            ttl,
        } => {
            let ttl = micros(ttl);
            let params: [(&(dyn ToSql + Sync), Type); 4] =
                [(&space, T), (&path, T), (&token, T), (&ttl, I)];
            let changed = client.execute_typed(&sql.tree_extend, &params).await?;
            Ok(Reply::Flag(changed > 0))
        }
        Op::TreeHolder { space, path, scope } => {
            let (parents, children) = (scope.lock_parents, scope.lock_children);
            let params: [(&(dyn ToSql + Sync), Type); 4] =
                [(&space, T), (&path, T), (&parents, B), (&children, B)];
            let rows = client.query_typed(&sql.tree_holder, &params).await?;
            Ok(Reply::Entry(rows.first().map(entry).transpose()?))
        }
        Op::TreeList { space } => {
            let rows = client.query_typed(&sql.tree_list, &[(&space, T)]).await?;
            Ok(Reply::Entries(
                rows.iter().map(entry).collect::<Result<_, _>>()?,
            ))
        }
    }
}

/// Creates the tables and the sequence if one of them is missing (one round trip when they
/// all exist).
pub(crate) async fn ensure_schema(client: &Client, sql: &Sql) -> Result<(), Error> {
    let [a, b, c] = &sql.names;
    let row = client
        .query_typed_one(&sql.exists, &[(a, T), (b, T), (c, T)])
        .await?;
    if !row.try_get::<_, bool>(0)? {
        client.batch_execute(&sql.create).await?;
    }
    Ok(())
}
