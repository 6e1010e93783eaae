//! The six operations as Redis commands, one round trip each, sync and async.
//!
//! | operation | command |
//! |---|---|
//! | `get` | `GET key` |
//! | `set` | `SET key value [PX ms]` |
//! | `delete` | `DEL key` |
//! | `claim` | `SET key token NX PX ms` |
//! | `release` | `EVALSHA <compare-and-delete> 1 key token` |
//! | `extend` | `EVALSHA <compare-and-pexpire> 1 key token ms` |
//!
//! TTLs are rounded up to whole milliseconds, never to zero.

use std::time::Duration;

use redis::{aio, Cmd, ConnectionLike, RedisResult, Value};

use super::scripts;
use crate::basic::ttl_ms;

fn get_cmd(key: &str) -> Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

fn set_cmd(key: &str, value: &str, ttl: Option<Duration>) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(ttl_ms(ttl));
    }
    cmd
}

fn del_cmd(key: &str) -> Cmd {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(key);
    cmd
}

fn claim_cmd(key: &str, token: &str, ttl: Duration) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(token).arg("NX").arg("PX").arg(ttl_ms(ttl));
    cmd
}

/// `SET .. NX` answers `OK` when it stored the value and nil when the key exists.
fn claimed(reply: Value) -> bool {
    !matches!(reply, Value::Nil)
}

fn get(con: &mut dyn ConnectionLike, key: &str) -> RedisResult<Option<String>> {
    get_cmd(key).query(con)
}

fn set(
    con: &mut dyn ConnectionLike,
    key: &str,
    value: &str,
    ttl: Option<Duration>,
) -> RedisResult<()> {
    set_cmd(key, value, ttl).query(con)
}

fn delete(con: &mut dyn ConnectionLike, key: &str) -> RedisResult<()> {
    del_cmd(key).query::<i64>(con).map(drop)
}

fn claim(con: &mut dyn ConnectionLike, key: &str, token: &str, ttl: Duration) -> RedisResult<bool> {
    claim_cmd(key, token, ttl).query(con).map(claimed)
}

fn release(con: &mut dyn ConnectionLike, key: &str, token: &str) -> RedisResult<bool> {
    scripts::release()
        .key(key)
        .arg(token)
        .invoke::<i64>(con)
        .map(|n| n == 1)
}

fn extend(
    con: &mut dyn ConnectionLike,
    key: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<bool> {
    scripts::extend()
        .key(key)
        .arg(token)
        .arg(ttl_ms(ttl))
        .invoke::<i64>(con)
        .map(|n| n == 1)
}

async fn get_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
) -> RedisResult<Option<String>> {
    get_cmd(key).query_async(con).await
}

async fn set_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    value: &str,
    ttl: Option<Duration>,
) -> RedisResult<()> {
    set_cmd(key, value, ttl).query_async(con).await
}

async fn delete_async<C: aio::ConnectionLike + Send>(con: &mut C, key: &str) -> RedisResult<()> {
    del_cmd(key).query_async::<i64>(con).await.map(drop)
}

async fn claim_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<bool> {
    claim_cmd(key, token, ttl)
        .query_async(con)
        .await
        .map(claimed)
}

async fn release_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    token: &str,
) -> RedisResult<bool> {
    scripts::release()
        .key(key)
        .arg(token)
        .invoke_async::<i64>(con)
        .await
        .map(|n| n == 1)
}

async fn extend_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<bool> {
    scripts::extend()
        .key(key)
        .arg(token)
        .arg(ttl_ms(ttl))
        .invoke_async::<i64>(con)
        .await
        .map(|n| n == 1)
}

/// One cache operation, with the key as sent to Redis.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<'a> {
    Get(&'a str),
    Set(&'a str, &'a str, Option<Duration>),
    Delete(&'a str),
    Claim(&'a str, &'a str, Duration),
    Release(&'a str, &'a str),
    Extend(&'a str, &'a str, Duration),
}

impl<'a> Op<'a> {
    pub(crate) fn key(&self) -> &'a str {
        match *self {
            Op::Get(key)
            | Op::Set(key, ..)
            | Op::Delete(key)
            | Op::Claim(key, ..)
            | Op::Release(key, _)
            | Op::Extend(key, ..) => key,
        }
    }

    /// The same operation on another key (the key with the cache's prefix).
    pub(crate) fn with_key<'b>(self, key: &'b str) -> Op<'b>
    where
        'a: 'b,
    {
        match self {
            Op::Get(_) => Op::Get(key),
            Op::Set(_, value, ttl) => Op::Set(key, value, ttl),
            Op::Delete(_) => Op::Delete(key),
            Op::Claim(_, token, ttl) => Op::Claim(key, token, ttl),
            Op::Release(_, token) => Op::Release(key, token),
            Op::Extend(_, token, ttl) => Op::Extend(key, token, ttl),
        }
    }

    /// The lock TTL that bounds how long the operation may wait (claim and extend only).
    pub(crate) fn lock_ttl(&self) -> Option<Duration> {
        match *self {
            Op::Claim(_, _, ttl) | Op::Extend(_, _, ttl) => Some(ttl),
            _ => None,
        }
    }

    /// A short name for logs and errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Get(_) => "get",
            Op::Set(..) => "set",
            Op::Delete(_) => "delete",
            Op::Claim(..) => "claim",
            Op::Release(..) => "release",
            Op::Extend(..) => "extend",
        }
    }
}

/// What an operation answered.
#[derive(Debug)]
pub(crate) enum Reply {
    Value(Option<String>),
    Flag(bool),
    Done,
}

pub(crate) fn exec(con: &mut dyn ConnectionLike, op: Op<'_>) -> RedisResult<Reply> {
    Ok(match op {
        Op::Get(key) => Reply::Value(get(con, key)?),
        Op::Set(key, value, ttl) => {
            set(con, key, value, ttl)?;
            Reply::Done
        }
        Op::Delete(key) => {
            delete(con, key)?;
            Reply::Done
        }
        Op::Claim(key, token, ttl) => Reply::Flag(claim(con, key, token, ttl)?),
        Op::Release(key, token) => Reply::Flag(release(con, key, token)?),
        Op::Extend(key, token, ttl) => Reply::Flag(extend(con, key, token, ttl)?),
    })
}

pub(crate) async fn exec_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    op: Op<'_>,
) -> RedisResult<Reply> {
    Ok(match op {
        Op::Get(key) => Reply::Value(get_async(con, key).await?),
        Op::Set(key, value, ttl) => {
            set_async(con, key, value, ttl).await?;
            Reply::Done
        }
        Op::Delete(key) => {
            delete_async(con, key).await?;
            Reply::Done
        }
        Op::Claim(key, token, ttl) => Reply::Flag(claim_async(con, key, token, ttl).await?),
        Op::Release(key, token) => Reply::Flag(release_async(con, key, token).await?),
        Op::Extend(key, token, ttl) => Reply::Flag(extend_async(con, key, token, ttl).await?),
    })
}
