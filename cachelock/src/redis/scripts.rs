//! The Lua scripts: claim (with its fencing token), compare-and-delete, compare-and-expire,
//! and the resent forms of the claims and the release.
//!
//! Release and extend touch only `KEYS[1]`; claim touches the lock key and the fencing
//! counter of its slot (see `fence.rs`), so every script runs on Redis Cluster (one slot). They are
//! sent with `EVALSHA`; on `NOSCRIPT` (first use, or a server that restarted or flushed its
//! script cache) the redis crate loads the script and retries, once.
//!
//! The owner check compares the token alone: the stored value is the token, or the token
//! followed by `|` and the holder's metadata (tokens are 32 hex digits, so the check is
//! exact).
//!
//! `GET` is called with `redis.pcall`: when the key holds another type (a list, a hash...)
//! `GET` fails with `WRONGTYPE`, `pcall` returns that error as a table, the comparison with
//! the token is false, and the script returns 0. So a key holding garbage is never deleted
//! or extended, and the caller gets a plain "not yours" instead of an error.

use std::sync::OnceLock;

use redis::Script;

/// The Lua that sets `fence` to the next fence of the counter `KEYS[2]` for the lock
/// `KEYS[1]` this script holds (see [`CLAIM`]): `max(counter + 1, server time in µs)`, the
/// counter written in the same `SET ... GET`; a counter that holds garbage takes the lock
/// back out and fails the script. Shared by [`CLAIM`] and [`CLAIM_RESENT`].
///
/// The common case is string work only: the server time is spelled as its decimal digits
/// (seconds, then the microseconds, padded to six digits only when shorter), and a counter
/// below it (all digits, and shorter, or as long and lower in byte order, which for digit
/// strings of one length is numeric order) keeps that value, returned as a bulk string.
/// Only a counter that is not such a string (at or above the server time, empty, signed, a
/// float, or garbage) is read as a number. This skips the number conversions of an earlier
/// form (two `tonumber` of the `TIME` reply, the fence's number-to-string for the `SET`, the
/// counter's `tonumber`). The cheap tests come first: the lengths and the byte order, then
/// the one anchored pattern (`^%d+$`) that makes the order a numeric one; `type` is called
/// only for a shorter counter, where it is needed: the error table `pcall` gives for a
/// counter of another type has length 0, so it takes the shorter branch, and `type` keeps
/// it from `string.find` (which would raise on a table) and sends it to the slow path.
/// redis-server 7.0 runs 49,300 instructions per won claim (`bash
/// benches/redis_script_instructions.sh`, callgrind), ≈52,000 on the same machine before
/// this order: a bare `SET NX PX` is 11,200, a script doing only its `SET NX PX` 29,700, and
/// its three calls alone (`SET NX PX`, `TIME`, `SET … GET`) 45,800. Measured per step: the
/// padding done always cost ~1,400 more, `type` first ~800.
macro_rules! bump_fence {
    () => {
        r"
local now = redis.call('TIME')
local micros = now[2]
if #micros < 6 then
    micros = string.sub('00000' .. micros, -6)
end
local fence = now[1] .. micros
local old = redis.pcall('SET', KEYS[2], fence, 'GET')
if old and not (((#old == #fence and old < fence) or (#old < #fence and type(old) == 'string'))
        and string.find(old, '^%d+$')) then
    local last = type(old) == 'string' and tonumber(old)
    if not last then
        if type(old) == 'string' then
            redis.call('SET', KEYS[2], old)
        end
        redis.call('DEL', KEYS[1])
        return redis.error_reply('the fencing counter ' .. KEYS[2] .. ' does not hold a number')
    end
    if last >= tonumber(fence) then
        fence = math.floor(last) + 1
        redis.call('SET', KEYS[2], fence)
    end
end
"
    };
}

/// `SET KEYS[1] ARGV[1] NX PX ARGV[2]`; if it stored the value, bumps the fencing counter
/// `KEYS[2]` and returns the new fence (a bulk string of decimal digits, or an integer reply
/// when the counter was ahead of the clock: Redis converts the Lua number, exact below 2^53),
/// else returns nil at once: a refused claim costs the server one `SET NX`, as a plain
/// lock's would, and never touches the counter.
///
/// The fence is `max(counter + 1, server time in µs)`: strictly greater than the counter, so
/// strictly increasing per slot (scripts run one at a time), and, should the counter ever
/// be lost (`FLUSHALL`, eviction under an `allkeys-*` policy, a failover that dropped the
/// last writes), still greater than every earlier fence unless the server clock went back.
/// Every fence is floored by the clock of the claim that got it, not only the counter's
/// first: after a fail-over that lost the last increments, the new primary's counter is
/// behind the fences already handed out, and only the clock puts the next fence above them.
/// Lua numbers are doubles: exact for integers below 2^53, which µs since 1970 stay below
/// until the year 2255.
///
/// The counter is read and written in one call, `SET counter <now> GET` (Redis 6.2 and
/// newer): the common case, a counter below the server time, needs no second write; only a
/// counter at or above it (two grants within one µs, or a server clock set back) is written
/// again with `counter + 1`.
/// A counter holding garbage (another type, or not a number) fails the claim with an error
/// and takes the lock back out: nothing is left written (a string that is not a number is
/// put back as it was).
///
/// A claim sent again after its connection died (its first send may have landed) is sent as
/// [`CLAIM_RESENT`], which also recognises its own value; the first send stays this one.
pub(crate) const CLAIM: &str = concat!(
    r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return false
end
",
    bump_fence!(),
    "return fence\n"
);

/// The fenced claim as it is sent again after its connection died: as [`CLAIM`], but a key
/// that already holds exactly `ARGV[1]` (the first send landed: values carry a fresh random
/// token, so no other claim matches) is this claim's own grant, answered with the current
/// counter (never below the fence the first send handed out), instead of a conflict that
/// would leave the key blocked by nobody for a whole TTL. On Redis Cluster, whose client
/// resends by itself without telling, a refused fenced claim is asked again in this form.
pub(crate) const CLAIM_RESENT: &str = concat!(
    r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
",
    bump_fence!(),
    r"
    return fence
end
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    local last = tonumber(redis.pcall('GET', KEYS[2]))
    if last then
        return last
    end
end
return false
"
);

/// The value of `KEYS[1]` and its `PTTL` (-1: no TTL), or nil if absent or not a string.
const GET_WITH_TTL: &str = r"
local value = redis.pcall('GET', KEYS[1])
if type(value) ~= 'string' then
    return false
end
return {value, redis.call('PTTL', KEYS[1])}
";

/// The tail of [`RELEASE`] and [`RELEASE_RESENT`], on the key's `value` (as `GET` gave it):
/// if it is the owner's (`ARGV[2]`, the whole value a claim by the token `ARGV[1]` from this
/// process stores without a label, or else any value whose token part is `ARGV[1]`),
/// `DEL KEYS[1]` and `PUBLISH cachelock:released KEYS[1]`, returning 1; else 0.
///
/// The whole-value comparison comes first because it is the cheap one: Lua strings are
/// interned, so `value == ARGV[2]` compares two pointers, where the token-part check cuts a
/// substring and builds `ARGV[1] .. '|'`. A release of an unlabelled lock (the default)
/// costs redis-server 3,300 fewer instructions (44,600 instead of 47,900 a `SET` + release
/// script, `callgrind`). `ARGV[2]` holds the token, so it matches only the owner's value; a
/// caller that sends no `ARGV[2]` (nil) gets the token-part check alone.
macro_rules! release_if_owner {
    () => {
        r"
if value == ARGV[2] or (type(value) == 'string'
        and (value == ARGV[1] or string.sub(value, 1, #ARGV[1] + 1) == ARGV[1] .. '|')) then
    redis.call('DEL', KEYS[1])
    redis.pcall('PUBLISH', 'cachelock:released', KEYS[1])
    return 1
end
return 0
"
    };
}

/// `DEL KEYS[1]` if it holds the token `ARGV[1]` (`ARGV[2]`: the owner's whole value, see
/// `release_if_owner!`), then `PUBLISH cachelock:released KEYS[1]` (waiters subscribe to
/// wake at once); returns 1 if deleted, 0 otherwise. `PUBLISH` goes through `pcall`: a user
/// whose ACL forbids the channel still releases (its waiters poll).
///
/// It publishes whether or not anyone listens: a `PUBLISH` to a channel with no subscriber
/// costs the server no more than asking (`PUBSUB NUMSUB`, measured dearer by
/// `benches/redis_script_cost.sh`; see BENCHMARKS.md).
pub(crate) const RELEASE: &str = concat!(
    "local value = redis.pcall('GET', KEYS[1])\n",
    release_if_owner!()
);

/// The release as it is sent again after its connection died (see `Op::resent`): as
/// [`RELEASE`], but an absent key also answers 1. The first send may have run, deleting the
/// key, with only its reply lost; sent again as is, it would find nothing and report the
/// lock lost. An absent key is then this release's own work, or a key that ran out (or was
/// deleted by an admin) in the same moment: either way nothing is left to release, and no
/// other holder's key is touched (a key holding another value still answers 0).
const RELEASE_RESENT: &str = concat!(
    r"
local value = redis.pcall('GET', KEYS[1])
if value == false then
    return 1
end",
    release_if_owner!()
);

/// `PEXPIRE KEYS[1] ARGV[2]` if it holds `ARGV[1]`; returns 1 if extended, 0 otherwise.
const EXTEND: &str = r"
local value = redis.pcall('GET', KEYS[1])
if type(value) == 'string' and (value == ARGV[1] or string.sub(value, 1, #ARGV[1] + 1) == ARGV[1] .. '|') then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

pub(crate) fn claim() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(CLAIM))
}

pub(crate) fn claim_resent() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(CLAIM_RESENT))
}

pub(crate) fn get_with_ttl() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(GET_WITH_TTL))
}

pub(crate) fn release() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(RELEASE))
}

pub(crate) fn release_resent() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(RELEASE_RESENT))
}

pub(crate) fn extend() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(EXTEND))
}

/// The unfenced claim as it is sent again: `SET KEYS[1] ARGV[1] NX PX ARGV[2]`, and if the
/// key is held, whether it holds exactly `ARGV[1]`; returns 1 (this claim holds the key) or 0.
///
/// The unfenced claim's first send is a plain `SET key value NX PX ttl`, one command. When
/// its connection dies before the reply, the command may have run anyway: sent again as the
/// same `SET NX`, it would find the key holding its own value and answer nil, and the key
/// would stay blocked by nobody for a whole TTL. This form recognises that value (values
/// carry a fresh random token, so no other claim can match) as its own grant, like the
/// fenced [`CLAIM`] script. The TTL set by the first send is kept: it runs out no later than
/// the caller expects.
const CLAIM_UNFENCED_RESENT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    return 1
end
return 0
";

pub(crate) fn claim_unfenced_resent() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(CLAIM_UNFENCED_RESENT))
}
