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
//! (Written with [`Lock::run`]; the `#[once]` attribute does the same in one line.)

use std::process::Command;
use std::time::Duration;

use cachelock::redis::RedisCache;
use cachelock::{Error, Lock};

/// Set in the second copy: which Redis to use.
const CHILD_ENV: &str = "CACHELOCK_REDIS_ONCE_CHILD";

/// The job that must never run twice at the same time, on any machine.
fn nightly_report(cache: &RedisCache, who: &str, during: impl FnOnce()) -> Result<(), Error> {
    let lock = Lock::new("redis-once:nightly-report")
        .cache(cache.clone())
        .ttl(Duration::from_secs(60));
    match lock.run(|| {
        println!("[{who}] acquired `{}`: running the job", lock.full_key());
        during();
        println!("[{who}] job done; releasing the lock");
    }) {
        Ok(()) => Ok(()),
        Err(Error::Locked { key }) => {
            println!("[{who}] `{key}` is held by another process: skipped");
            Ok(())
        }
        Err(other) => Err(other),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        let who = format!("second process {}", std::process::id());
        return Ok(nightly_report(&RedisCache::from_url(&url)?, &who, || {})?);
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
    nightly_report(&cache, &who, || {
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
