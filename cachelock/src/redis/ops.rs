//! The cache operations as Redis commands, one round trip each, sync and async.
//!
//! | operation | command |
//! |---|---|
//! | `get` | `GET key` |
//! | `set` | `SET key value [PX ms]` |
//! | `delete` | `DEL key` |
//! | `claim` | `EVALSHA <set-nx-px, then bump the fence counter> 2 key counter token ms` |
//! | `claim_unfenced` | `SET key token NX PX ms` |
//! | `claim_unfenced`, sent again (see [`Op::resent`]) | `EVALSHA <set-nx-px, else compare> 1 key token ms` |
//! | `release` | `EVALSHA <compare-and-delete> 1 key token` |
//! | `release`, sent again (see [`Op::resent`]) | `EVALSHA <compare-and-delete, absent counts as done> 1 key token` |
//! | `extend` | `EVALSHA <compare-and-pexpire> 1 key token ms` |
//!
//! TTLs are rounded up to whole milliseconds, never to zero.

use std::time::Duration;

use redis::{aio, Cmd, ConnectionLike, FromRedisValue, RedisError, RedisResult, Script, Value};

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

/// `SET key token NX PX ms`: the claim of a lock taken without a fencing token.
fn set_nx_cmd(key: &str, token: &str, ttl: Duration) -> Cmd {
    let mut cmd = Cmd::with_capacity(6, 3 + key.len() + token.len() + 2 + 2 + 20);
    cmd.arg("SET")
        .arg(key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(ttl_ms(ttl));
    cmd
}

/// `SET ... NX` answers `OK` when it stored the value, nil when the key exists.
fn set_nx_stored(reply: Value) -> RedisResult<bool> {
    match reply {
        Value::Nil => Ok(false),
        Value::Okay => Ok(true),
        other => {
            let text: String = redis::from_redis_value(other)?;
            Ok(text == "OK")
        }
    }
}

fn del_cmd(key: &str) -> Cmd {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(key);
    cmd
}

/// `EVALSHA <sha1 of script> <numkeys>`, in a command sized for `data` more bytes of keys
/// and arguments: the command is built directly, one buffer, no per-argument allocation.
fn evalsha(script: &Script, numkeys: u8, args: usize, data: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(3 + args, 7 + 40 + 1 + data);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(numkeys);
    cmd
}

/// Runs an `EVALSHA`; on `NOSCRIPT` (first use, or the server restarted or flushed its
/// script cache) loads the script and sends it once more.
fn invoke<T: FromRedisValue>(
    con: &mut dyn ConnectionLike,
    script: &Script,
    cmd: &Cmd,
) -> RedisResult<T> {
    match cmd.query(con) {
        Err(error) if is_noscript(&error) => {
            script.load(con)?;
            cmd.query(con)
        }
        outcome => outcome,
    }
}

/// Async twin of [`invoke`].
async fn invoke_async<T: FromRedisValue, C: aio::ConnectionLike + Send>(
    con: &mut C,
    script: &Script,
    cmd: &Cmd,
) -> RedisResult<T> {
    match cmd.query_async(con).await {
        Err(error) if is_noscript(&error) => {
            script.load_async(con).await?;
            cmd.query_async(con).await
        }
        outcome => outcome,
    }
}

fn is_noscript(error: &RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

fn claim_cmd(key: &str, counter: &str, token: &str, ttl: Duration) -> Cmd {
    let mut cmd = evalsha(
        scripts::claim(),
        2,
        4,
        key.len() + counter.len() + token.len() + 20,
    );
    cmd.arg(key).arg(counter).arg(token).arg(ttl_ms(ttl));
    cmd
}

fn claim_unfenced_resent_cmd(key: &str, token: &str, ttl: Duration) -> Cmd {
    let mut cmd = evalsha(
        scripts::claim_unfenced_resent(),
        1,
        3,
        key.len() + token.len() + 20,
    );
    cmd.arg(key).arg(token).arg(ttl_ms(ttl));
    cmd
}

fn release_cmd(key: &str, token: &str) -> Cmd {
    let mut cmd = evalsha(scripts::release(), 1, 2, key.len() + token.len());
    cmd.arg(key).arg(token);
    cmd
}

fn release_resent_cmd(key: &str, token: &str) -> Cmd {
    let mut cmd = evalsha(scripts::release_resent(), 1, 2, key.len() + token.len());
    cmd.arg(key).arg(token);
    cmd
}

fn extend_cmd(key: &str, token: &str, ttl: Duration) -> Cmd {
    let mut cmd = evalsha(scripts::extend(), 1, 3, key.len() + token.len() + 20);
    cmd.arg(key).arg(token).arg(ttl_ms(ttl));
    cmd
}

/// The claim script answers the fence (an integer) when it stored the token, nil when the
/// key is held.
fn claimed(reply: Value) -> RedisResult<Option<u64>> {
    let not_a_fence = || {
        RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "the claim script returned a fence that is not a positive number",
        ))
    };
    match reply {
        Value::Nil => Ok(None),
        Value::Int(fence) => u64::try_from(fence).map(Some).map_err(|_| not_a_fence()),
        other => {
            let text: String = redis::from_redis_value(other)?;
            text.parse().map(Some).map_err(|_| not_a_fence())
        }
    }
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

fn claim(
    con: &mut dyn ConnectionLike,
    key: &str,
    counter: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<Option<u64>> {
    claimed(invoke(
        con,
        scripts::claim(),
        &claim_cmd(key, counter, token, ttl),
    )?)
}

fn release(con: &mut dyn ConnectionLike, key: &str, token: &str) -> RedisResult<bool> {
    invoke::<i64>(con, scripts::release(), &release_cmd(key, token)).map(|n| n == 1)
}

fn extend(
    con: &mut dyn ConnectionLike,
    key: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<bool> {
    invoke::<i64>(con, scripts::extend(), &extend_cmd(key, token, ttl)).map(|n| n == 1)
}

fn get_with_ttl_reply(reply: Option<(String, i64)>) -> Option<(String, Option<Duration>)> {
    reply.map(|(value, pttl)| {
        let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
        (value, ttl)
    })
}

fn get_with_ttl(
    con: &mut dyn ConnectionLike,
    key: &str,
) -> RedisResult<Option<(String, Option<Duration>)>> {
    scripts::get_with_ttl()
        .key(key)
        .invoke::<Option<(String, i64)>>(con)
        .map(get_with_ttl_reply)
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
    counter: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<Option<u64>> {
    claimed(invoke_async(con, scripts::claim(), &claim_cmd(key, counter, token, ttl)).await?)
}

async fn release_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    token: &str,
) -> RedisResult<bool> {
    invoke_async::<i64, _>(con, scripts::release(), &release_cmd(key, token))
        .await
        .map(|n| n == 1)
}

async fn extend_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    key: &str,
    token: &str,
    ttl: Duration,
) -> RedisResult<bool> {
    invoke_async::<i64, _>(con, scripts::extend(), &extend_cmd(key, token, ttl))
        .await
        .map(|n| n == 1)
}

/// One cache operation, with the key as sent to Redis.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<'a> {
    Get(&'a str),
    GetWithTtl(&'a str),
    Set(&'a str, &'a str, Option<Duration>),
    Delete(&'a str),
    /// Key, fence counter key (filled in by the core), token, TTL.
    Claim(&'a str, &'a str, &'a str, Duration),
    /// Key, token, TTL: `SET NX PX`, no fence.
    ClaimUnfenced(&'a str, &'a str, Duration),
    /// The same claim sent again: a script that also wins when the key already holds exactly
    /// this token (see [`Op::resent`]).
    ClaimUnfencedResent(&'a str, &'a str, Duration),
    Release(&'a str, &'a str),
    /// The same release sent again: an absent key counts as released (see [`Op::resent`]).
    ReleaseResent(&'a str, &'a str),
    Extend(&'a str, &'a str, Duration),
}

impl<'a> Op<'a> {
    pub(crate) fn key(&self) -> &'a str {
        match *self {
            Op::Get(key)
            | Op::GetWithTtl(key)
            | Op::Set(key, ..)
            | Op::Delete(key)
            | Op::Claim(key, ..)
            | Op::ClaimUnfenced(key, ..)
            | Op::ClaimUnfencedResent(key, ..)
            | Op::Release(key, _)
            | Op::ReleaseResent(key, _)
            | Op::Extend(key, ..) => key,
        }
    }

    /// The same claim with its fence counter key (other operations are unchanged).
    pub(crate) fn with_counter<'b>(self, counter: &'b str) -> Op<'b>
    where
        'a: 'b,
    {
        match self {
            Op::Claim(key, _, token, ttl) => Op::Claim(key, counter, token, ttl),
            other => other,
        }
    }

    /// The same operation on another key (the key with the cache's prefix).
    pub(crate) fn with_key<'b>(self, key: &'b str) -> Op<'b>
    where
        'a: 'b,
    {
        match self {
            Op::Get(_) => Op::Get(key),
            Op::GetWithTtl(_) => Op::GetWithTtl(key),
            Op::Set(_, value, ttl) => Op::Set(key, value, ttl),
            Op::Delete(_) => Op::Delete(key),
            Op::Claim(_, counter, token, ttl) => Op::Claim(key, counter, token, ttl),
            Op::ClaimUnfenced(_, token, ttl) => Op::ClaimUnfenced(key, token, ttl),
            Op::ClaimUnfencedResent(_, token, ttl) => Op::ClaimUnfencedResent(key, token, ttl),
            Op::Release(_, token) => Op::Release(key, token),
            Op::ReleaseResent(_, token) => Op::ReleaseResent(key, token),
            Op::Extend(_, token, ttl) => Op::Extend(key, token, ttl),
        }
    }

    /// The lock TTL that bounds how long the operation may wait (claim and extend only).
    pub(crate) fn lock_ttl(&self) -> Option<Duration> {
        match *self {
            Op::Claim(_, _, _, ttl)
            | Op::ClaimUnfenced(_, _, ttl)
            | Op::ClaimUnfencedResent(_, _, ttl)
            | Op::Extend(_, _, ttl) => Some(ttl),
            _ => None,
        }
    }

    /// The form in which the operation is sent again when it may already have run: its
    /// connection died after the command was written, so the server may have run it and
    /// only the reply was lost.
    ///
    /// Every operation is its own resent form, except two:
    ///
    /// - the unfenced claim: a plain `SET NX PX` sent again after its first send landed finds
    ///   the key holding its own value and answers nil, which would report the key held (by
    ///   nobody) for a whole TTL. Its resent form is a script that takes its own value as a
    ///   win. The first send stays the plain `SET`, one command; only a resend pays for the
    ///   script;
    /// - the release: sent again after its first send deleted the key, it finds nothing and
    ///   would report the lock lost (a false alarm, logged at warn level). Its resent form
    ///   counts an absent key as released; a key holding another value is still refused.
    ///
    /// (The fenced claim script already recognises its own value; get, set, delete and
    /// extend can run twice.) On Redis Cluster the client resends by itself, unseen: there a
    /// release whose reply was lost may still report the lock lost, because an absent key
    /// cannot be told from one that ran out before the release.
    pub(crate) fn resent(self) -> Op<'a> {
        match self {
            Op::ClaimUnfenced(key, token, ttl) => Op::ClaimUnfencedResent(key, token, ttl),
            Op::Release(key, token) => Op::ReleaseResent(key, token),
            other => other,
        }
    }

    /// Whether a `Flag(false)` reply to this operation may be the answer of a resend the
    /// client did not tell about: only a plain unfenced claim (see [`Op::resent`]).
    pub(crate) fn refusal_may_be_own_resend(&self) -> bool {
        matches!(self, Op::ClaimUnfenced(..))
    }

    /// A short name for logs and errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Get(_) => "get",
            Op::GetWithTtl(_) => "get with ttl",
            Op::Set(..) => "set",
            Op::Delete(_) => "delete",
            Op::Claim(..) => "claim",
            Op::ClaimUnfenced(..) => "claim (unfenced)",
            Op::ClaimUnfencedResent(..) => "claim (unfenced, resent)",
            Op::Release(..) => "release",
            Op::ReleaseResent(..) => "release (resent)",
            Op::Extend(..) => "extend",
        }
    }
}

/// What an operation answered.
#[derive(Debug)]
pub(crate) enum Reply {
    Value(Option<String>),
    ValueTtl(Option<(String, Option<Duration>)>),
    Flag(bool),
    Fence(Option<u64>),
    Done,
}

pub(crate) fn exec(con: &mut dyn ConnectionLike, op: Op<'_>) -> RedisResult<Reply> {
    Ok(match op {
        Op::Get(key) => Reply::Value(get(con, key)?),
        Op::GetWithTtl(key) => Reply::ValueTtl(get_with_ttl(con, key)?),
        Op::Set(key, value, ttl) => {
            set(con, key, value, ttl)?;
            Reply::Done
        }
        Op::Delete(key) => {
            delete(con, key)?;
            Reply::Done
        }
        Op::Claim(key, counter, token, ttl) => Reply::Fence(claim(con, key, counter, token, ttl)?),
        Op::ClaimUnfenced(key, token, ttl) => {
            Reply::Flag(set_nx_stored(set_nx_cmd(key, token, ttl).query(con)?)?)
        }
        Op::ClaimUnfencedResent(key, token, ttl) => Reply::Flag(
            invoke::<i64>(
                con,
                scripts::claim_unfenced_resent(),
                &claim_unfenced_resent_cmd(key, token, ttl),
            )? == 1,
        ),
        Op::Release(key, token) => Reply::Flag(release(con, key, token)?),
        Op::ReleaseResent(key, token) => Reply::Flag(
            invoke::<i64>(
                con,
                scripts::release_resent(),
                &release_resent_cmd(key, token),
            )? == 1,
        ),
        Op::Extend(key, token, ttl) => Reply::Flag(extend(con, key, token, ttl)?),
    })
}

pub(crate) async fn exec_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    op: Op<'_>,
) -> RedisResult<Reply> {
    Ok(match op {
        Op::Get(key) => Reply::Value(get_async(con, key).await?),
        Op::GetWithTtl(key) => Reply::ValueTtl(
            scripts::get_with_ttl()
                .key(key)
                .invoke_async::<Option<(String, i64)>>(con)
                .await
                .map(get_with_ttl_reply)?,
        ),
        Op::Set(key, value, ttl) => {
            set_async(con, key, value, ttl).await?;
            Reply::Done
        }
        Op::Delete(key) => {
            delete_async(con, key).await?;
            Reply::Done
        }
        Op::Claim(key, counter, token, ttl) => {
            Reply::Fence(claim_async(con, key, counter, token, ttl).await?)
        }
        Op::ClaimUnfenced(key, token, ttl) => Reply::Flag(set_nx_stored(
            set_nx_cmd(key, token, ttl).query_async(con).await?,
        )?),
        Op::ClaimUnfencedResent(key, token, ttl) => Reply::Flag(
            invoke_async::<i64, _>(
                con,
                scripts::claim_unfenced_resent(),
                &claim_unfenced_resent_cmd(key, token, ttl),
            )
            .await?
                == 1,
        ),
        Op::Release(key, token) => Reply::Flag(release_async(con, key, token).await?),
        Op::ReleaseResent(key, token) => Reply::Flag(
            invoke_async::<i64, _>(
                con,
                scripts::release_resent(),
                &release_resent_cmd(key, token),
            )
            .await?
                == 1,
        ),
        Op::Extend(key, token, ttl) => Reply::Flag(extend_async(con, key, token, ttl).await?),
    })
}
