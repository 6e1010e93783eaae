//! Sending an [`Op`]: its command, a script loaded on `NOSCRIPT`, its reply read. One sync
//! and one async executor; the timeouts and the resend rule are the core's (`core.rs`).

use redis::{aio, Cmd, ConnectionLike, RedisError, RedisResult, Script, Value};

use super::command::Reply;
use super::ops::Op;

fn is_noscript(error: &RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// Sends `cmd`; on `NOSCRIPT` (first use, or the server restarted or flushed its script
/// cache) loads `script` and sends it once more.
fn query(con: &mut dyn ConnectionLike, cmd: &Cmd, script: Option<&Script>) -> RedisResult<Value> {
    match (cmd.query(con), script) {
        (Err(error), Some(script)) if is_noscript(&error) => {
            script.load(con)?;
            cmd.query(con)
        }
        (outcome, _) => outcome,
    }
}

/// Async twin of [`query`]. The command goes to the connection's `req_packed_command`
/// directly (what `Cmd::query_async` calls, without its extra future around it).
async fn query_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    cmd: &Cmd,
    script: Option<&Script>,
) -> RedisResult<Value> {
    let reply = con
        .req_packed_command(cmd)
        .await
        .and_then(Value::extract_error);
    match (reply, script) {
        (Err(error), Some(script)) if is_noscript(&error) => {
            script.load_async(con).await?;
            con.req_packed_command(cmd).await?.extract_error()
        }
        (outcome, _) => outcome,
    }
}

/// Runs `op` on `con`.
pub(crate) fn exec(con: &mut dyn ConnectionLike, op: Op<'_>) -> RedisResult<Reply> {
    let (cmd, script) = op.command();
    op.decode(query(con, &cmd, script)?)
}

/// Async twin of [`exec`].
pub(crate) async fn exec_async<C: aio::ConnectionLike + Send>(
    con: &mut C,
    op: Op<'_>,
) -> RedisResult<Reply> {
    let (cmd, script) = op.command();
    op.decode(query_async(con, &cmd, script).await?)
}
