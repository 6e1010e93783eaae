//! Every operation of the store, written once over a [`Session`]: the sync path runs it on
//! a blocking connection, the async path on an async one.

use std::time::Duration;

use mysql::Value;

use super::session::{DbError, Session};
use super::sql::{prefix_end, tree_key, ttl_us, Sql, TREE_TAG};
use crate::tree::path::{ancestors, child_prefix};
use crate::tree::{conflicts, TreeEntry, TreeScope};

/// One operation, its keys already checked.
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
        prefix: &'a str,
    },
    ForceRelease {
        key: &'a str,
    },
    TreeClaim {
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        token: &'a str,
        owner: &'a str,
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
    /// Release, extend: whether it did.
    Flag(bool),
    /// The holder lookup: owner value and time left.
    Holder(Option<(String, Option<Duration>)>),
    /// The listing.
    Keys(Vec<String>),
    /// Force-release.
    Done,
    /// The tree holder lookup.
    Entry(Option<TreeEntry>),
    /// The tree listing.
    Entries(Vec<TreeEntry>),
}

fn bytes(text: &str) -> Value {
    Value::Bytes(text.as_bytes().to_vec())
}

fn uint(value: u64) -> Value {
    Value::UInt(value)
}

fn text_of(value: Value) -> Option<String> {
    match value {
        Value::Bytes(bytes) => Some(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
        _ => None,
    }
}

fn int_of(value: &Value) -> Option<i128> {
    match value {
        Value::Int(v) => Some(i128::from(*v)),
        Value::UInt(v) => Some(i128::from(*v)),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Microseconds left (a live row has some) as a TTL.
fn left(value: &Value) -> Option<Duration> {
    int_of(value).map(|us| Duration::from_micros(u64::try_from(us.max(1)).unwrap_or(u64::MAX)))
}

fn unexpected(what: &str) -> DbError {
    DbError::other(format!("unexpected reply to {what}"))
}

impl Op<'_> {
    /// The operation's name, for error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Claim { .. } => "claim",
            Op::Release { .. } => "release",
            Op::Extend { .. } => "extend",
            Op::Holder { .. } => "holder lookup",
            Op::Keys { .. } => "listing",
            Op::ForceRelease { .. } => "force-release",
            Op::TreeClaim { .. } => "tree lock claim",
            Op::TreeRelease { .. } => "tree lock release",
            Op::TreeExtend { .. } => "tree lock extend",
            Op::TreeHolder { .. } => "tree lock holder lookup",
            Op::TreeList { .. } => "tree lock listing",
        }
    }

    /// Runs the operation on `session`.
    pub(crate) async fn run<S: Session>(&self, s: &mut S, sql: &Sql) -> Result<Reply, DbError> {
        match *self {
            Op::Claim {
                key,
                token,
                owner,
                ttl,
            } => {
                let ttl = uint(ttl_us(ttl));
                let done = s
                    .execute(
                        &sql.claim,
                        vec![
                            bytes(key),
                            bytes(token),
                            bytes(owner),
                            ttl.clone(),
                            bytes(token),
                            bytes(owner),
                            bytes(token),
                            ttl,
                        ],
                    )
                    .await?;
                // Every path through the statement calls LAST_INSERT_ID(expr) last with
                // the fence of a win, or with 0 on a refusal.
                Ok(Reply::Fence((done.last_id != 0).then_some(done.last_id)))
            }
            Op::Release { key, token } => {
                let done = s
                    .execute(&sql.release, vec![bytes(key), bytes(token)])
                    .await?;
                Ok(Reply::Flag(done.affected > 0))
            }
            Op::Extend { key, token, ttl } => {
                let ttl = uint(ttl_us(ttl));
                let done = s
                    .execute(
                        &sql.extend,
                        vec![ttl.clone(), ttl, bytes(key), bytes(token)],
                    )
                    .await?;
                Ok(Reply::Flag(done.affected > 0))
            }
            Op::Holder { key } => {
                let rows = s.select(&sql.holder, vec![bytes(key)]).await?;
                let Some(mut row) = rows.into_iter().next() else {
                    return Ok(Reply::Holder(None));
                };
                if row.len() != 2 {
                    return Err(unexpected("the holder lookup"));
                }
                let ttl = left(&row[1]);
                let owner = text_of(row.swap_remove(0)).unwrap_or_default();
                Ok(Reply::Holder(Some((owner, ttl))))
            }
            Op::Keys { prefix } => {
                let rows = match prefix_end(prefix.as_bytes()) {
                    Some(end) => {
                        s.select(&sql.keys_range, vec![bytes(prefix), Value::Bytes(end)])
                            .await?
                    }
                    None => s.select(&sql.keys_from, vec![bytes(prefix)]).await?,
                };
                Ok(Reply::Keys(
                    rows.into_iter()
                        .filter_map(|row| row.into_iter().next().and_then(text_of))
                        .collect(),
                ))
            }
            Op::ForceRelease { key } => {
                s.execute(&sql.force_release, vec![bytes(key)]).await?;
                Ok(Reply::Done)
            }
            Op::TreeClaim {
                space,
                path,
                scope,
                token,
                owner,
                ttl,
            } => {
                s.batch(sql.begin).await?;
                let outcome = tree_claim(s, sql, space, path, scope, token, owner, ttl).await;
                match outcome {
                    Ok(TreeClaim::Won(fence)) => {
                        s.batch("COMMIT").await?;
                        Ok(Reply::Fence(Some(fence)))
                    }
                    Ok(TreeClaim::Own(fence)) => {
                        s.batch("ROLLBACK").await?;
                        Ok(Reply::Fence(Some(fence)))
                    }
                    Ok(TreeClaim::Refused) => {
                        s.batch("ROLLBACK").await?;
                        Ok(Reply::Fence(None))
                    }
                    Err(error) => {
                        // Best effort: the connection is dropped after an error anyway,
                        // which rolls back on the server.
                        let _ = s.batch("ROLLBACK").await;
                        Err(error)
                    }
                }
            }
            Op::TreeRelease { space, path, token } => {
                let done = s
                    .execute(
                        &sql.tree_release,
                        vec![bytes(&tree_key(space, path)), bytes(token)],
                    )
                    .await?;
                Ok(Reply::Flag(done.affected > 0))
            }
            Op::TreeExtend {
                space,
                path,
                token,
                ttl,
            } => {
                let ttl = uint(ttl_us(ttl));
                let done = s
                    .execute(
                        &sql.tree_extend,
                        vec![
                            ttl.clone(),
                            ttl,
                            bytes(&tree_key(space, path)),
                            bytes(token),
                        ],
                    )
                    .await?;
                Ok(Reply::Flag(done.affected > 0))
            }
            Op::TreeHolder { space, path, scope } => {
                let candidates = Candidates::new(space, path, scope);
                let rows = s
                    .select(
                        &sql.tree_candidates(candidates.points.len(), false),
                        candidates.params(),
                    )
                    .await?;
                let mut found: Vec<(usize, String, TreeEntry)> = Vec::new();
                for row in rows {
                    let Some(c) = Candidate::read(space, row) else {
                        continue;
                    };
                    if !c.live || c.token.is_none() || !conflicts(path, scope, &c.path, c.scope) {
                        continue;
                    }
                    // The path itself first, then its ancestors from the root, then its
                    // descendants in key order.
                    let rank = if c.path == path {
                        0
                    } else if crate::tree::is_ancestor(&c.path, path) {
                        1 + c.path.len()
                    } else {
                        usize::MAX
                    };
                    found.push((
                        rank,
                        c.path.clone(),
                        TreeEntry {
                            path: c.path,
                            value: c.owner,
                            ttl: c.left,
                        },
                    ));
                }
                found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                Ok(Reply::Entry(found.into_iter().next().map(|(_, _, e)| e)))
            }
            Op::TreeList { space } => {
                let from = tree_key(space, "/");
                let to = tree_key(space, "0");
                let rows = s
                    .select(&sql.tree_list, vec![bytes(&from), bytes(&to)])
                    .await?;
                let mut entries = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut row = row.into_iter();
                    let (Some(key), Some(owner), Some(ttl)) = (row.next(), row.next(), row.next())
                    else {
                        return Err(unexpected("the tree lock listing"));
                    };
                    let Some(path) = text_of(key).and_then(|k| path_of(space, &k)) else {
                        continue;
                    };
                    entries.push(TreeEntry {
                        path,
                        value: text_of(owner).unwrap_or_default(),
                        ttl: left(&ttl),
                    });
                }
                Ok(Reply::Entries(entries))
            }
        }
    }
}

/// The path of a stored tree key of `space`.
fn path_of(space: &str, key: &str) -> Option<String> {
    key.strip_prefix(space)?
        .strip_prefix(TREE_TAG)
        .filter(|path| path.starts_with('/'))
        .map(str::to_owned)
}

/// The rows a tree claim or holder lookup reads: the path, its ancestors (if the lock
/// locks its parents), and the key range of its descendants (if it locks its children;
/// otherwise an empty range).
struct Candidates {
    points: Vec<String>,
    from: String,
    to: String,
}

impl Candidates {
    fn new(space: &str, path: &str, scope: TreeScope) -> Candidates {
        let mut points = vec![tree_key(space, path)];
        if scope.lock_parents {
            points.extend(ancestors(path).map(|a| tree_key(space, a)));
        }
        let (from, to) = if scope.lock_children {
            let from = tree_key(space, &child_prefix(path));
            // Every descendant key starts with `from`, which ends with `/`; `0` follows `/`.
            let mut to = from.clone();
            to.pop();
            to.push('0');
            (from, to)
        } else {
            (points[0].clone(), points[0].clone())
        };
        Candidates { points, from, to }
    }

    fn params(&self) -> Vec<Value> {
        let mut params: Vec<Value> = self.points.iter().map(|p| bytes(p)).collect();
        params.push(bytes(&self.from));
        params.push(bytes(&self.to));
        params
    }
}

/// One row read by [`Candidates`].
struct Candidate {
    key: Vec<u8>,
    path: String,
    token: Option<String>,
    owner: String,
    scope: TreeScope,
    fence: u64,
    live: bool,
    left: Option<Duration>,
}

impl Candidate {
    /// Reads a row (key, token, owner, scope, fence, live, µs left); `None` for a row that
    /// is not a lock of `space`.
    fn read(space: &str, row: Vec<Value>) -> Option<Candidate> {
        let mut row = row.into_iter();
        let key = match row.next()? {
            Value::Bytes(key) => key,
            _ => return None,
        };
        let path = path_of(space, std::str::from_utf8(&key).ok()?)?;
        let token = text_of(row.next()?);
        let owner = text_of(row.next()?).unwrap_or_default();
        // An unreadable scope is taken as the widest.
        let scope = text_of(row.next()?)
            .and_then(|flags| TreeScope::from_flags(&flags))
            .unwrap_or_default();
        let fence = int_of(&row.next()?).and_then(|f| u64::try_from(f).ok())?;
        let live = int_of(&row.next()?)? != 0;
        let left = left(&row.next()?);
        Some(Candidate {
            key,
            path,
            token,
            owner,
            scope,
            fence,
            live,
            left,
        })
    }
}

enum TreeClaim {
    /// Stored, with this fence.
    Won(u64),
    /// The path already holds this claim's token (the claim was sent again after its
    /// connection died, and the first send had committed): its fence.
    Own(u64),
    /// A live lock of the space conflicts.
    Refused,
}

/// The body of the tree claim transaction: lock the space's row (and take its next fence),
/// read the candidates with a locking read, check the conflict rule, store the lock.
#[allow(clippy::too_many_arguments)]
async fn tree_claim<S: Session>(
    s: &mut S,
    sql: &Sql,
    space: &str,
    path: &str,
    scope: TreeScope,
    token: &str,
    owner: &str,
    ttl: Duration,
) -> Result<TreeClaim, DbError> {
    let space_row = s
        .execute(&sql.tree_space, vec![bytes(&tree_key(space, ""))])
        .await?;
    let fence = space_row.last_id;
    if fence == 0 {
        return Err(unexpected("the tree lock space's fence"));
    }
    let candidates = Candidates::new(space, path, scope);
    let rows = s
        .select(
            &sql.tree_candidates(candidates.points.len(), true),
            candidates.params(),
        )
        .await?;
    let mut expired = Vec::new();
    for row in rows {
        let Some(c) = Candidate::read(space, row) else {
            continue;
        };
        if !c.live || c.token.is_none() {
            if c.path != path {
                expired.push(Value::Bytes(c.key));
            }
            continue;
        }
        if c.path == path {
            return Ok(if c.token.as_deref() == Some(token) {
                TreeClaim::Own(c.fence)
            } else {
                TreeClaim::Refused
            });
        }
        if conflicts(path, scope, &c.path, c.scope) {
            return Ok(TreeClaim::Refused);
        }
    }
    if !expired.is_empty() {
        // Locks of crashed holders the claim came across: gone for good.
        s.execute(&sql.tree_purge(expired.len()), expired).await?;
    }
    let key = tree_key(space, path);
    let ttl = uint(ttl_us(ttl));
    let mut params = Vec::with_capacity(11);
    params.push(bytes(&key));
    for _ in 0..2 {
        params.extend([
            bytes(token),
            bytes(owner),
            bytes(scope.flags()),
            uint(fence),
            ttl.clone(),
        ]);
    }
    s.execute(&sql.tree_insert, params).await?;
    Ok(TreeClaim::Won(fence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_the_path_its_ancestors_and_its_descendants() {
        let all = TreeScope::default();
        let c = Candidates::new("s:", "/a/b", all);
        let tag = TREE_TAG;
        assert_eq!(
            c.points,
            [
                format!("s:{tag}/a/b"),
                format!("s:{tag}/"),
                format!("s:{tag}/a")
            ]
        );
        assert_eq!(
            (c.from.as_str(), c.to.as_str()),
            (&*format!("s:{tag}/a/b/"), &*format!("s:{tag}/a/b0"))
        );
        let root = Candidates::new("s:", "/", all);
        assert_eq!(root.points, [format!("s:{tag}/")]);
        assert_eq!(
            (root.from.as_str(), root.to.as_str()),
            (&*format!("s:{tag}/"), &*format!("s:{tag}0"))
        );
        let none = Candidates::new(
            "s:",
            "/a",
            TreeScope {
                lock_parents: false,
                lock_children: false,
            },
        );
        assert_eq!(none.points.len(), 1);
        assert_eq!(none.from, none.to);
        assert_eq!(path_of("s:", &format!("s:{tag}/x")), Some("/x".to_owned()));
        assert_eq!(path_of("s:", &format!("s:{tag}")), None);
    }
}
