//! Listing keys for the admin calls ([`held_locks`](crate::held_locks)): `SCAN` with
//! `MATCH <prefix>*`, never `KEYS`, on one server, or on every primary of a Redis Cluster.
//!
//! A cluster spreads keys over its primaries and `SCAN` walks one node's keys, so the cluster
//! listing asks `CLUSTER SLOTS` for the primaries, then runs the `SCAN` loop on each of them
//! (routed by address through the cluster connection, which connects to a node it has not
//! met yet with the cluster's credentials and TLS settings). Replicas are not scanned: they
//! hold copies of their primary's keys.

use std::collections::BTreeSet;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{aio, Cmd, ConnectionLike, ErrorKind, RedisError, RedisResult, Value};

use crate::result::BoxFuture;

/// How many keys one `SCAN` call looks at.
const SCAN_COUNT: u64 = 1000;

/// The `MATCH` pattern of the keys that start with `prefix`: its glob characters escaped,
/// then `*`.
pub(crate) fn pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// The keys as the caller named them: the cache's own prefix taken off, sorted, each once
/// (`SCAN` may return a key more than once, and a key may move between nodes mid-listing),
/// without cachelock's own bookkeeping keys (see [`is_internal`]).
pub(crate) fn without_own_prefix(keys: Vec<String>, own: &str) -> Vec<String> {
    keys.into_iter()
        .filter_map(|key| key.strip_prefix(own).map(str::to_owned))
        .filter(|key| !is_internal(key))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Keys cachelock keeps for itself, which are not locks and must not be listed as such: the
/// fencing counters (`cachelock-fence`, `cachelock-fence:{tag}`) and the hashes of a tree
/// lock space (`<space>{cachelock-tree}:own|exp|up|fence`, listed by their own API).
/// Without this, `held_locks` with an empty prefix, or with a prefix a tree lock space
/// shares, would report them as locks of an unknown owner, or fail reading a hash as a string.
pub(crate) fn is_internal(key: &str) -> bool {
    crate::lock::is_reserved_key(key)
}

fn scan_cmd(cursor: u64, pattern: &str) -> Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
}

/// One `SCAN` reply: the next cursor and a batch of keys.
fn scan_reply(reply: Value) -> RedisResult<(u64, Vec<String>)> {
    Ok(redis::from_redis_value(reply)?)
}

/// `INFO cluster`: asked before a standalone listing, since `SCAN` on one node of a Redis
/// Cluster would silently list that node's keys only.
fn info_cluster() -> Cmd {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("cluster");
    cmd
}

/// Refuses a standalone listing on a Redis Cluster node (`INFO cluster` answered
/// `cluster_enabled:1`). A server that does not answer `INFO` (an ACL that forbids it) is
/// listed as it is.
fn not_a_cluster_node(info: RedisResult<String>) -> RedisResult<()> {
    let Ok(info) = info else {
        return Ok(());
    };
    if info.lines().any(|line| line.trim() == "cluster_enabled:1") {
        return Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "this server is a Redis Cluster node",
            "a listing here would see only this node's keys; use RedisClusterCache (the \
             cachelock command: --redis-cluster)"
                .to_owned(),
        )));
    }
    Ok(())
}

/// The `SCAN` loop on one server, until the cursor comes back to 0.
pub(crate) fn scan(con: &mut dyn ConnectionLike, pattern: &str) -> RedisResult<Vec<String>> {
    not_a_cluster_node(info_cluster().query(con))?;
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, batch) = scan_reply(scan_cmd(cursor, pattern).query(con)?)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Async twin of [`scan`].
pub(crate) fn scan_async<'a, C: aio::ConnectionLike + Send>(
    con: &'a mut C,
    pattern: &'a str,
) -> BoxFuture<'a, RedisResult<Vec<String>>> {
    Box::pin(async move {
        not_a_cluster_node(info_cluster().query_async(con).await)?;
        let mut keys = Vec::new();
        let mut cursor = 0;
        loop {
            let reply: Value = scan_cmd(cursor, pattern).query_async(con).await?;
            let (next, batch) = scan_reply(reply)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    })
}

fn bad_reply(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::UnexpectedReturnType, what))
}

/// The primaries' addresses in a `CLUSTER SLOTS` reply: each entry is
/// `[first slot, last slot, [host, port, id, ...], replicas...]`.
fn primaries(reply: Value) -> RedisResult<BTreeSet<(String, u16)>> {
    let entries: Vec<Value> = redis::from_redis_value(reply)?;
    let mut out = BTreeSet::new();
    for entry in entries {
        let Value::Array(entry) = entry else {
            return Err(bad_reply("a CLUSTER SLOTS entry is not an array"));
        };
        let Some(Value::Array(node)) = entry.get(2) else {
            return Err(bad_reply("a CLUSTER SLOTS entry has no primary"));
        };
        let (Some(host), Some(port)) = (node.first(), node.get(1)) else {
            return Err(bad_reply("a CLUSTER SLOTS primary has no host and port"));
        };
        let host: String = redis::from_redis_value_ref(host)?;
        let port: u16 = redis::from_redis_value_ref(port)?;
        if host.is_empty() || host == "?" {
            return Err(bad_reply(
                "CLUSTER SLOTS names a primary without an address (cluster-preferred-endpoint-type unknown-endpoint?)",
            ));
        }
        out.insert((host, port));
    }
    if out.is_empty() {
        return Err(bad_reply(
            "CLUSTER SLOTS lists no primary: is the cluster up?",
        ));
    }
    Ok(out)
}

fn by_address(host: &str, port: u16) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: host.to_owned(),
        port,
    })
}

fn random_node() -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random)
}

fn cluster_slots() -> Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

/// The `SCAN` loop on every primary of the cluster.
pub(crate) fn scan_cluster(
    con: &mut redis::cluster::ClusterConnection,
    pattern: &str,
) -> RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    for (host, port) in primaries(con.route_command(&cluster_slots(), random_node())?)? {
        let mut cursor = 0;
        loop {
            let cmd = scan_cmd(cursor, pattern);
            let (next, batch) = scan_reply(con.route_command(&cmd, by_address(&host, port))?)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(keys)
}

/// Async twin of [`scan_cluster`].
pub(crate) fn scan_cluster_async<'a>(
    con: &'a mut redis::cluster_async::ClusterConnection,
    pattern: &'a str,
) -> BoxFuture<'a, RedisResult<Vec<String>>> {
    Box::pin(async move {
        let mut keys = Vec::new();
        let slots = con.route_command(cluster_slots(), random_node()).await?;
        for (host, port) in primaries(slots)? {
            let mut cursor = 0;
            loop {
                let cmd = scan_cmd(cursor, pattern);
                let reply = con.route_command(cmd, by_address(&host, port)).await?;
                let (next, batch) = scan_reply(reply)?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_keys_are_not_listed() {
        let keys = [
            "p:job-1",
            "p:cachelock-fence",
            "p:cachelock-fence:{a}",
            "p:cachelock:{cachelock-tree}:own",
            "p:cachelock:{cachelock-tree}:fence",
            "p:cachelock-fence-job",
        ];
        let listed = without_own_prefix(keys.iter().map(|k| k.to_string()).collect(), "p:");
        assert_eq!(listed, ["cachelock-fence-job", "job-1"]);
    }

    #[test]
    fn patterns_escape_glob_characters() {
        assert_eq!(pattern("cachelock:"), "cachelock:*");
        assert_eq!(pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn primaries_come_from_every_slot_range_once() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(12000),
                node("127.0.0.1", 7000),
            ]),
        ]);
        let found: Vec<_> = primaries(reply).unwrap().into_iter().collect();
        assert_eq!(
            found,
            [
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
        assert!(primaries(Value::Array(vec![])).is_err());
        assert!(primaries(Value::Array(vec![Value::Int(1)])).is_err());
    }
}
