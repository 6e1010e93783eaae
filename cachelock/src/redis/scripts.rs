//! The two Lua scripts: compare-and-delete and compare-and-expire.
//!
//! Each touches only `KEYS[1]`, so it runs on Redis Cluster (one key, one slot). They are
//! sent with `EVALSHA`; on `NOSCRIPT` (first use, or a server that restarted or flushed its
//! script cache) the redis crate loads the script and retries, once.
//!
//! `GET` is called with `redis.pcall`: when the key holds another type (a list, a hash...)
//! `GET` fails with `WRONGTYPE`, `pcall` returns that error as a table, the comparison with
//! the token is false, and the script returns 0. So a key holding garbage is never deleted
//! or extended, and the caller gets a plain "not yours" instead of an error.

use std::sync::OnceLock;

use redis::Script;

/// `DEL KEYS[1]` if it holds `ARGV[1]`; returns 1 if deleted, 0 otherwise.
const RELEASE: &str = r"
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// `PEXPIRE KEYS[1] ARGV[2]` if it holds `ARGV[1]`; returns 1 if extended, 0 otherwise.
const EXTEND: &str = r"
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

pub(crate) fn release() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(RELEASE))
}

pub(crate) fn extend() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(EXTEND))
}
