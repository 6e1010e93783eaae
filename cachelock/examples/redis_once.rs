//! "Run at most once at a time" across processes, through Redis: one run, one skip.
//!
//! ```text
//! cargo run --example redis_once --features redis
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis_once --features redis
//! ```
//!
//! The example takes a lock on Redis and, while holding it, starts a second copy of itself
//! (another process, another connection): that copy is refused and skips the job. Without
//! `REDIS_URL` it starts its own throwaway `redis-server` on a free loopback port.
//!
//! The job is an ordinary function with `#[once]`: the attribute formats the key, takes the
//! lock in the cache given by `cache = ...`, runs the body and releases the lock.

use std::process::Command;

use cachelock::redis::RedisCache;
use cachelock::{once, Error};

/// Set in the second copy: which Redis to use.
const CHILD_ENV: &str = "CACHELOCK_REDIS_ONCE_CHILD";

/// The job that must never run twice at the same time, on any machine.
///
/// `Ok(Some(()))`: it ran. `Ok(None)`: another process held the key, so it was skipped.
/// `Err(..)`: Redis failed (the body did not run).
#[once(key = "redis-once:nightly-report", cache = cache, ttl = "60s")]
fn nightly_report(
    cache: &RedisCache,
    who: &str,
    during: &mut dyn FnMut(),
) -> Result<Option<()>, Error> {
    println!("[{who}] acquired the lock: running the job");
    during();
    println!("[{who}] job done; releasing the lock");
    Ok(Some(()))
}

fn run(cache: &RedisCache, who: &str, during: &mut dyn FnMut()) -> Result<(), Error> {
    if nightly_report(cache, who, during)?.is_none() {
        println!("[{who}] the job is running in another process: skipped");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        let who = format!("second process {}", std::process::id());
        return Ok(run(&RedisCache::from_url(&url)?, &who, &mut || {})?);
    }

    // Our own redis-server unless REDIS_URL names one; it stops when `_server` drops.
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = cachelock_testkit::RedisServer::start();
            println!("started redis-server on {}", server.url());
            (server.url(), Some(server))
        }
    };
    let cache = RedisCache::from_url(&url)?;
    let who = format!("first process {}", std::process::id());
    let mut child_failed = None;
    run(&cache, &who, &mut || {
        // While we hold the lock, a second copy of this program tries the same job.
        let status =
            std::env::current_exe().and_then(|exe| Command::new(exe).env(CHILD_ENV, &url).status());
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => child_failed = Some(format!("second process failed: {status}")),
            Err(e) => child_failed = Some(format!("cannot start second process: {e}")),
        }
    })?;
    match child_failed {
        Some(message) => Err(message.into()),
        None => Ok(()),
    }
}
