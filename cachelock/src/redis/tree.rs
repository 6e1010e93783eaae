//! Tree locks on Redis: the keys of a lock space, and one Lua script per operation.
//!
//! # Keys
//!
//! A lock space `space` (a `TreeLock`'s prefix), behind the cache's own key prefix, is
//! four keys that share the hash tag `{cachelock-tree}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix><space>{cachelock-tree}:own` | hash | path → scope flags (`"11"`...) + owner value |
//! | `<prefix><space>{cachelock-tree}:exp` | sorted set | path, scored by its deadline (server ms) |
//! | `<prefix><space>{cachelock-tree}:up` | sorted set | the paths that lock their parents (score 0, ranged by `ZRANGEBYLEX`) |
//! | `<prefix><space>{cachelock-tree}:fence` | string | the space's fencing counter |
//!
//! The hash tag is the first `{...}` of a key, and everything up to and including
//! `{cachelock-tree}` is the same for the four keys, so they hash to one Redis Cluster slot
//! and every script touches that slot alone. [`keys`] enforces it: a space whose first `{`
//! opens an empty tag (`{}`, which would make Redis hash each whole key) is refused, and the
//! four slots are checked equal.
//!
//! The first three keys get a `PEXPIREAT` at the latest deadline they hold, so a space whose
//! holders all crashed disappears by itself; the fence counter stays (one per space).
//!
//! # Scripts
//!
//! Each takes its deadlines from the server's `TIME`, purges the expired entries of the
//! space first (claim and holder; the listing only skips them), and checks the owner token
//! as the plain lock scripts do (the value before the first `|`). A claim checks the path,
//! then each ancestor (one `HGET` each), then the descendants that lock their parents (one
//! `ZRANGEBYLEX ... LIMIT 0 2` on `:up`): O(depth + log n). The listing reads the live
//! deadlines (`ZRANGEBYSCORE`) and the owner of each: O(n) in the locks of the space.
//!
//! A release that deleted a lock publishes `<path>\n<space owner hash key>` on
//! `cachelock:tree-released`: the cache's one release subscriber records the path and wakes
//! the space's waiters, and each tries its claim again only if that path could have blocked
//! it (`tree_wake.rs`). On Redis Cluster the `PUBLISH` reaches every node, as for plain
//! locks.

use std::sync::OnceLock;
use std::time::Duration;

use redis::{Cmd, RedisError, RedisResult, Script, Value};

use super::command::{evalsha, Reply};
use crate::clock::ttl_ms;
use crate::error::BoxError;
use crate::tree::{TreeEntry, TreeScope};

/// The four keys of a lock space: owner hash, deadline set, `lock_parents` set, fence.
pub(crate) struct TreeKeys([String; 4]);

/// The hash tag every key of every lock space carries.
const TAG: &str = "{cachelock-tree}";

/// Builds the keys of `space` behind the cache prefix `prefix`; refuses a space whose keys
/// would not share one Redis Cluster slot.
pub(crate) fn keys(prefix: &str, space: &str) -> Result<TreeKeys, BoxError> {
    let base = format!("{prefix}{space}{TAG}:");
    let keys = ["own", "exp", "up", "fence"].map(|part| format!("{base}{part}"));
    // The first `{` is at or before our tag's; the first `}` after it is at or before our
    // tag's `}`: the tag lies in the common part, unless it is empty.
    let open = base.find('{').unwrap_or(0);
    if base[open + 1..].starts_with('}') {
        return Err(format!(
            "the tree lock space {:?} contains an empty hash tag `{{}}`, which would spread its keys over several Redis Cluster slots; remove it",
            format!("{prefix}{space}")
        )
        .into());
    }
    let slot = super::fence::slot(&keys[0]);
    if keys.iter().any(|key| super::fence::slot(key) != slot) {
        return Err(format!("the keys of tree lock space {space:?} do not share one slot").into());
    }
    Ok(TreeKeys(keys))
}

impl TreeKeys {
    /// The key a release of the space is published under (on `cachelock:released`): the
    /// owner hash. `Lock` refuses the keys of tree spaces, so no plain lock shares it.
    pub(crate) fn released_key(&self) -> &str {
        &self.0[0]
    }
}

/// Shared Lua: server time, purge of expired entries, owner check, conflict search,
/// key expiry.
const PRELUDE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local function now_us()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function purge(now)
    local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
    for i = 1, #dead do
        redis.call('HDEL', KEYS[1], dead[i])
        redis.call('ZREM', KEYS[3], dead[i])
    end
    if #dead > 0 then
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    end
end
local function owned(stored, token)
    local value = string.sub(stored, 3)
    return token ~= '' and (value == token or string.sub(value, 1, #token + 1) == token .. '|')
end
local function live(path, now)
    local deadline = tonumber(redis.call('ZSCORE', KEYS[2], path))
    return deadline ~= nil and deadline > now
end
local function locks_children(path)
    local stored = redis.call('HGET', KEYS[1], path)
    return stored and string.sub(stored, 2, 2) == '1'
end
local function conflict(path, flags)
    if redis.call('HEXISTS', KEYS[1], path) == 1 then
        return path
    end
    if string.sub(flags, 1, 1) == '1' and path ~= '/' then
        if locks_children('/') then
            return '/'
        end
        local from = 2
        while true do
            local at = string.find(path, '/', from, true)
            if not at then
                break
            end
            local ancestor = string.sub(path, 1, at - 1)
            if locks_children(ancestor) then
                return ancestor
            end
            from = at + 1
        end
    end
    if string.sub(flags, 2, 2) == '1' then
        local prefix = path .. '/'
        if path == '/' then
            prefix = '/'
        end
        local hits = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. prefix, '[' .. prefix .. '\255', 'LIMIT', 0, 2)
        for _, q in ipairs(hits) do
            if q ~= path then
                return q
            end
        end
    end
    return nil
end
local function keep_until_last_deadline()
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    if last[2] then
        for i = 1, 3 do
            redis.call('PEXPIREAT', KEYS[i], last[2])
        end
    end
end
";

/// ARGV: path, flags, owner value, ttl ms. Returns the fence (decimal string) or nil. A
/// claim resent after its connection died that finds its own value already stored (the
/// first send landed; values carry a fresh random token) is answered with the current
/// fence instead of a conflict with itself.
const CLAIM: &str = r"
local now = math.floor(now_us() / 1000)
purge(now)
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] .. ARGV[3] then
    local current = redis.pcall('GET', KEYS[4])
    if type(current) == 'string' and tonumber(current) ~= nil then
        return current
    end
end
if conflict(ARGV[1], ARGV[2]) then
    return false
end
local last = redis.pcall('GET', KEYS[4])
if last == false then
    last = 0
elseif type(last) ~= 'string' or tonumber(last) == nil then
    return redis.error_reply('the fencing counter ' .. KEYS[4] .. ' does not hold a number')
else
    last = tonumber(last)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
if string.sub(ARGV[2], 1, 1) == '1' then
    redis.call('ZADD', KEYS[3], 0, ARGV[1])
end
keep_until_last_deadline()
local fence = string.format('%.0f', math.max(last + 1, now_us()))
redis.call('SET', KEYS[4], fence)
return fence
";

/// ARGV: path, token. Returns 1 if it deleted the path's lock, 0 otherwise. After a
/// deletion, `PUBLISH cachelock:tree-released <path>\n<KEYS[1]>` (the space's owner hash),
/// for the cache's release subscriber (`tree_wake.rs`). `pcall`, as in the plain
/// release: a user whose ACL forbids the channel still releases (its waiters poll).
const RELEASE: &str = r"
local now = math.floor(now_us() / 1000)
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored or not live(ARGV[1], now) or not owned(stored, ARGV[2]) then
    return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.pcall('PUBLISH', 'cachelock:tree-released', ARGV[1] .. '\n' .. KEYS[1])
return 1
";

/// ARGV: path, token, ttl ms. Returns 1 if it reset the path's deadline, 0 otherwise.
const EXTEND: &str = r"
local now = math.floor(now_us() / 1000)
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored or not live(ARGV[1], now) or not owned(stored, ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[3]), ARGV[1])
keep_until_last_deadline()
return 1
";

/// ARGV: path, flags. Returns {held path, owner value, ms left} of the first conflict, or nil.
const HOLDER: &str = r"
local now = math.floor(now_us() / 1000)
purge(now)
local q = conflict(ARGV[1], ARGV[2])
if not q then
    return false
end
local stored = redis.call('HGET', KEYS[1], q)
local deadline = tonumber(redis.call('ZSCORE', KEYS[2], q))
return {q, string.sub(stored, 3), deadline - now}
";

/// No ARGV. Returns {path, owner value, ms left} of every live lock of the space. Reads
/// only: expired entries are skipped, left for the next claim's purge.
const LIST: &str = r"
local now = math.floor(now_us() / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
    local stored = redis.call('HGET', KEYS[1], live[i])
    if stored then
        out[#out + 1] = {live[i], string.sub(stored, 3), tonumber(live[i + 1]) - now}
    end
end
return out
";

fn script(cell: &'static OnceLock<Script>, body: &str) -> &'static Script {
    cell.get_or_init(|| Script::new(&format!("{PRELUDE}{body}")))
}

/// One tree operation.
#[derive(Clone, Copy)]
pub(crate) enum TreeOp<'a> {
    Claim {
        path: &'a str,
        value: &'a str,
        ttl: Duration,
        scope: TreeScope,
    },
    Release {
        path: &'a str,
        token: &'a str,
    },
    Extend {
        path: &'a str,
        token: &'a str,
        ttl: Duration,
    },
    Holder {
        path: &'a str,
        scope: TreeScope,
    },
    /// Every live lock of the space.
    List,
}

impl TreeOp<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            TreeOp::Claim { .. } => "tree claim",
            TreeOp::Release { .. } => "tree release",
            TreeOp::Extend { .. } => "tree extend",
            TreeOp::Holder { .. } => "tree holder",
            TreeOp::List => "tree list",
        }
    }

    /// The lock TTL that bounds how long the operation may wait (claim and extend).
    pub(crate) fn lock_ttl(&self) -> Option<Duration> {
        match *self {
            TreeOp::Claim { ttl, .. } | TreeOp::Extend { ttl, .. } => Some(ttl),
            _ => None,
        }
    }

    /// The script call, with the space's keys.
    pub(crate) fn command(&self, keys: &TreeKeys) -> (Cmd, Option<&'static Script>) {
        static CLAIM_S: OnceLock<Script> = OnceLock::new();
        static RELEASE_S: OnceLock<Script> = OnceLock::new();
        static EXTEND_S: OnceLock<Script> = OnceLock::new();
        static HOLDER_S: OnceLock<Script> = OnceLock::new();
        static LIST_S: OnceLock<Script> = OnceLock::new();
        let script = match *self {
            TreeOp::Claim { .. } => script(&CLAIM_S, CLAIM),
            TreeOp::Release { .. } => script(&RELEASE_S, RELEASE),
            TreeOp::Extend { .. } => script(&EXTEND_S, EXTEND),
            TreeOp::Holder { .. } => script(&HOLDER_S, HOLDER),
            TreeOp::List => script(&LIST_S, LIST),
        };
        let data: usize = keys.0.iter().map(String::len).sum::<usize>() + 64;
        let mut cmd = evalsha(script, 4, 8, data);
        for key in &keys.0 {
            cmd.arg(key);
        }
        match *self {
            TreeOp::Claim {
                path,
                value,
                ttl,
                scope,
            } => cmd.arg(path).arg(scope.flags()).arg(value).arg(ttl_ms(ttl)),
            TreeOp::Release { path, token } => cmd.arg(path).arg(token),
            TreeOp::Extend { path, token, ttl } => cmd.arg(path).arg(token).arg(ttl_ms(ttl)),
            TreeOp::Holder { path, scope } => cmd.arg(path).arg(scope.flags()),
            TreeOp::List => &mut cmd,
        };
        (cmd, Some(script))
    }

    /// Reads the script's reply.
    pub(crate) fn decode(&self, reply: Value) -> RedisResult<Reply> {
        Ok(match self {
            TreeOp::Claim { .. } => Reply::Fence(claimed(reply)?),
            TreeOp::Release { .. } | TreeOp::Extend { .. } => {
                Reply::Flag(redis::from_redis_value::<i64>(reply)? == 1)
            }
            TreeOp::Holder { .. } => Reply::Entry(holder(reply)?),
            TreeOp::List => Reply::Entries(listed(reply)?),
        })
    }
}

fn unexpected(what: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::UnexpectedReturnType, what))
}

/// The claim script's answer: the fence, or `None` on a conflict.
fn claimed(reply: Value) -> RedisResult<Option<u64>> {
    match reply {
        Value::Nil => Ok(None),
        other => {
            let text: String = redis::from_redis_value(other)?;
            text.parse().map(Some).map_err(|_| {
                unexpected("the tree claim script returned a fence that is not a number")
            })
        }
    }
}

fn entry((path, value, left): (String, String, i64)) -> TreeEntry {
    TreeEntry {
        path,
        value,
        ttl: Some(Duration::from_millis(u64::try_from(left).unwrap_or(0))),
    }
}

/// The holder script's answer.
fn holder(reply: Value) -> RedisResult<Option<TreeEntry>> {
    let found: Option<(String, String, i64)> = redis::from_redis_value(reply)?;
    Ok(found.map(entry))
}

/// The list script's answer.
fn listed(reply: Value) -> RedisResult<Vec<TreeEntry>> {
    let found: Vec<(String, String, i64)> = redis::from_redis_value(reply)?;
    Ok(found.into_iter().map(entry).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::fence::slot;

    #[test]
    fn every_key_of_a_space_shares_one_slot() {
        for prefix in ["", "app:", "{app}:", "a{b", "}"] {
            for space in ["cachelock:", "tenant-{7}:", "x{", "}{", "日本:"] {
                let keys = keys(prefix, space).expect("a usable space");
                let first = slot(&keys.0[0]);
                assert!(keys.0.iter().all(|k| slot(k) == first), "{prefix}{space}");
                assert!(keys.0[0].starts_with(&format!("{prefix}{space}")));
            }
        }
    }

    #[test]
    fn a_space_with_an_empty_hash_tag_is_refused() {
        assert!(keys("", "bad{}:").is_err());
        assert!(keys("p{}", "cachelock:").is_err());
        // An empty pair after a real tag does not matter: the first tag wins.
        assert!(keys("", "{t}{}:").is_ok());
    }
}
