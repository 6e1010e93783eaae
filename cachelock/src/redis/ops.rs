//! The store operations as data: each [`Op`] knows its Redis command (or script) and how to
//! read its reply; [`exec`](super::exec) sends any of them, sync or async.
//!
//! | operation | command |
//! |---|---|
//! | claim | `EVALSHA <set-nx-px, then bump the fence counter> 2 key counter value ms` |
//! | claim without a fence | `SET key value NX PX ms` |
//! | claim without a fence, sent again (see [`Op::resent`]) | `EVALSHA <set-nx-px, else compare> 1 key value ms` |
//! | release | `EVALSHA <compare-and-delete> 1 key token value` (value: the owner's whole value, unlabelled) |
//! | release, sent again (see [`Op::resent`]) | `EVALSHA <compare-and-delete, absent counts as done> 1 key token value` |
//! | extend | `EVALSHA <compare-and-pexpire> 1 key token ms` |
//! | holder | `EVALSHA <get with pttl> 1 key` |
//! | force-release | `DEL key` |
//! | tree claim, release, extend, holder, list | `EVALSHA <the tree script> 4 <the space's keys> ...` (`tree.rs`) |
//!
//! TTLs are rounded up to whole milliseconds, never to zero.

use std::time::Duration;

use redis::{Cmd, RedisError, RedisResult, Script, Value};

use super::command::{evalsha, Reply};
use super::scripts;
use super::tree::{TreeKeys, TreeOp};
use crate::clock::ttl_ms;
use crate::owner::owner_value;

/// One store operation, with the keys as sent to Redis (the cache's prefix included).
#[derive(Clone, Copy)]
pub(crate) enum Op<'a> {
    /// The owner value and TTL of a key.
    Holder(&'a str),
    /// `DEL`, whoever holds the key.
    Delete(&'a str),
    /// Key, fence counter key, owner value, TTL.
    Claim(&'a str, &'a str, &'a str, Duration),
    /// The same claim sent again: a script that also wins when the key already holds exactly
    /// this value (see [`Op::resent`]).
    ClaimResent(&'a str, &'a str, &'a str, Duration),
    /// Key, owner value, TTL: `SET NX PX`, no fence.
    ClaimUnfenced(&'a str, &'a str, Duration),
    /// The same claim sent again: a script that also wins when the key already holds exactly
    /// this value (see [`Op::resent`]).
    ClaimUnfencedResent(&'a str, &'a str, Duration),
    /// Key, token.
    Release(&'a str, &'a str),
    /// The same release sent again: an absent key counts as released (see [`Op::resent`]).
    ReleaseResent(&'a str, &'a str),
    /// Key, token, TTL.
    Extend(&'a str, &'a str, Duration),
    /// A tree lock operation on the keys of one lock space.
    Tree(&'a TreeKeys, TreeOp<'a>),
}

/// A script command on one key with `args` (room left for one more, a TTL).
fn script_cmd(script: &'static Script, key: &str, args: &[&[u8]]) -> Cmd {
    let data = key.len() + args.iter().map(|a| a.len()).sum::<usize>() + 20;
    let mut cmd = evalsha(script, 1, 2 + args.len(), data);
    cmd.arg(key);
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

fn unexpected(what: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::UnexpectedReturnType, what))
}

/// A 0/1 script answer.
fn flag(reply: Value) -> RedisResult<bool> {
    Ok(redis::from_redis_value::<i64>(reply)? == 1)
}

/// `SET ... NX` answers `OK` when it stored the value, nil when the key exists.
fn set_nx_stored(reply: Value) -> RedisResult<bool> {
    match reply {
        Value::Nil => Ok(false),
        Value::Okay => Ok(true),
        other => Ok(redis::from_redis_value::<String>(other)? == "OK"),
    }
}

/// The claim script answers the fence when it stored the value (its decimal digits, or an
/// integer when the counter was ahead of the clock: see `scripts::CLAIM`), nil when the key
/// is held.
fn fence(reply: Value) -> RedisResult<Option<u64>> {
    let not_a_fence =
        || unexpected("the claim script returned a fence that is not a positive number");
    match reply {
        Value::Nil => Ok(None),
        Value::Int(fence) => u64::try_from(fence).map(Some).map_err(|_| not_a_fence()),
        Value::BulkString(digits) => std::str::from_utf8(&digits)
            .ok()
            .and_then(|text| text.parse().ok())
            .map(Some)
            .ok_or_else(not_a_fence),
        other => {
            let text: String = redis::from_redis_value(other)?;
            text.parse().map(Some).map_err(|_| not_a_fence())
        }
    }
}

impl<'a> Op<'a> {
    /// The command to send, and the script it runs (loaded on `NOSCRIPT`), if any.
    pub(crate) fn command(&self) -> (Cmd, Option<&'static Script>) {
        match *self {
            Op::Holder(key) => (
                script_cmd(scripts::get_with_ttl(), key, &[]),
                Some(scripts::get_with_ttl()),
            ),
            Op::Delete(key) => {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(key);
                (cmd, None)
            }
            Op::Claim(key, counter, value, ttl) | Op::ClaimResent(key, counter, value, ttl) => {
                let script = match self {
                    Op::Claim(..) => scripts::claim(),
                    _ => scripts::claim_resent(),
                };
                let mut cmd = evalsha(script, 2, 4, key.len() + counter.len() + value.len() + 20);
                cmd.arg(key).arg(counter).arg(value).arg(ttl_ms(ttl));
                (cmd, Some(script))
            }
            Op::ClaimUnfenced(key, value, ttl) => {
                let mut cmd = Cmd::with_capacity(6, 3 + key.len() + value.len() + 2 + 2 + 20);
                cmd.arg("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl));
                (cmd, None)
            }
            Op::ClaimUnfencedResent(key, value, ttl) => {
                let script = scripts::claim_unfenced_resent();
                let mut cmd = script_cmd(script, key, &[value.as_bytes()]);
                cmd.arg(ttl_ms(ttl));
                (cmd, Some(script))
            }
            Op::Release(key, token) | Op::ReleaseResent(key, token) => {
                let script = match self {
                    Op::Release(..) => scripts::release(),
                    _ => scripts::release_resent(),
                };
                // The owner's whole value, as this process stores it without a label: the
                // script's cheap comparison (`scripts::release_if_owner!`).
                let value = owner_value(token, None);
                let args = [token.as_bytes(), value.as_bytes()];
                (script_cmd(script, key, &args), Some(script))
            }
            Op::Extend(key, token, ttl) => {
                let script = scripts::extend();
                let mut cmd = script_cmd(script, key, &[token.as_bytes()]);
                cmd.arg(ttl_ms(ttl));
                (cmd, Some(script))
            }
            Op::Tree(keys, op) => op.command(keys),
        }
    }

    /// Reads the reply to [`command`](Op::command).
    pub(crate) fn decode(&self, reply: Value) -> RedisResult<Reply> {
        Ok(match self {
            Op::Holder(_) => {
                let found: Option<(String, i64)> = redis::from_redis_value(reply)?;
                Reply::Value(found.map(|(value, pttl)| {
                    let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
                    (value, ttl)
                }))
            }
            Op::Delete(_) => Reply::Done,
            Op::Claim(..) | Op::ClaimResent(..) => Reply::Fence(fence(reply)?),
            Op::ClaimUnfenced(..) => Reply::Flag(set_nx_stored(reply)?),
            Op::ClaimUnfencedResent(..)
            | Op::Release(..)
            | Op::ReleaseResent(..)
            | Op::Extend(..) => Reply::Flag(flag(reply)?),
            Op::Tree(_, op) => op.decode(reply)?,
        })
    }

    /// The lock TTL that bounds how long the operation may wait (claims and extends only).
    pub(crate) fn lock_ttl(&self) -> Option<Duration> {
        match *self {
            Op::Claim(_, _, _, ttl)
            | Op::ClaimResent(_, _, _, ttl)
            | Op::ClaimUnfenced(_, _, ttl)
            | Op::ClaimUnfencedResent(_, _, ttl)
            | Op::Extend(_, _, ttl) => Some(ttl),
            Op::Tree(_, op) => op.lock_ttl(),
            _ => None,
        }
    }

    /// The form in which the operation is sent again when it may already have run: its
    /// connection died after the command was written, so the server may have run it and
    /// only the reply was lost.
    ///
    /// Every operation is its own resent form, except three:
    ///
    /// - the claims, fenced and unfenced: sent again after the first send landed, they find
    ///   the key holding their own value and would answer "held", reporting the key held (by
    ///   nobody) for a whole TTL. Their resent forms are scripts that take their own value as
    ///   a win. The first sends stay the cheap ones (a plain `SET NX PX`; the fenced script
    ///   that returns at once on a refusal); only a resend pays for the check;
    /// - the release: sent again after its first send deleted the key, it finds nothing and
    ///   would report the lock lost (a false alarm, logged at warn level). Its resent form
    ///   counts an absent key as released; a key holding another value is still refused.
    ///
    /// (The tree claim script already recognises its own value; the others can run twice.) On Redis Cluster the client resends by itself, unseen: there a release
    /// whose reply was lost may still report the lock lost, because an absent key cannot be
    /// told from one that ran out before the release.
    pub(crate) fn resent(self) -> Op<'a> {
        match self {
            Op::Claim(key, counter, value, ttl) => Op::ClaimResent(key, counter, value, ttl),
            Op::ClaimUnfenced(key, value, ttl) => Op::ClaimUnfencedResent(key, value, ttl),
            Op::Release(key, token) => Op::ReleaseResent(key, token),
            other => other,
        }
    }

    /// Whether a refusal of this operation may be the answer of a resend the client did not
    /// tell about: only a first-form claim, fenced or not (see [`Op::resent`]).
    pub(crate) fn refusal_may_be_own_resend(&self) -> bool {
        matches!(self, Op::Claim(..) | Op::ClaimUnfenced(..))
    }

    /// A short name for logs and errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Holder(_) => "holder",
            Op::Delete(_) => "delete",
            Op::Claim(..) => "claim",
            Op::ClaimResent(..) => "claim (resent)",
            Op::ClaimUnfenced(..) => "claim (unfenced)",
            Op::ClaimUnfencedResent(..) => "claim (unfenced, resent)",
            Op::Release(..) => "release",
            Op::ReleaseResent(..) => "release (resent)",
            Op::Extend(..) => "extend",
            Op::Tree(_, op) => op.name(),
        }
    }
}
