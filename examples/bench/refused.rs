//! `--profile` cases of one refused attempt (W2's common step): a key held by someone else,
//! tried again and again. Not rows of the table: W2 measures the same step under load; these
//! give its client-side cost alone, for a profiler.
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='bench::profile_loop' \
//!   target/release/examples/bench --redis-only --profile 'refused: Lock async' 100000
//! ```

use cachelock::redis::RedisCache;
use cachelock::Lock;

use super::{async_case, case, profile, Settings, RAW_TOKEN, TTL, TTL_MS};

const KEY: &str = "bench:refused";

/// Holds [`KEY`] for the run, then profiles the case `--profile` names, if it is one of these.
pub(crate) fn profile_refused(settings: &Settings, url: &str) {
    let Some(wanted) = &settings.profile else {
        return;
    };
    let client = redis::Client::open(url).expect("url");
    let mut raw = client.get_connection().expect("connect");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let raw_async = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connect");
    let cache = RedisCache::from_url(url).expect("url");
    let _held = Lock::new(KEY)
        .cache(cache.clone())
        .ttl(TTL)
        .try_acquire()
        .expect("the held key");
    let set_nx = || {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("cachelock:{KEY}"))
            .arg(RAW_TOKEN)
            .arg("NX")
            .arg("PX")
            .arg(TTL_MS);
        cmd
    };
    let mut cases = [
        case("refused: raw SET NX sync", |_| {
            let set: Option<String> = set_nx().query(&mut raw).expect("SET");
            assert!(set.is_none());
        }),
        case("refused: Lock sync", |_| {
            let refused = Lock::new(KEY).cache(cache.clone()).ttl(TTL).try_acquire();
            assert!(refused.is_err_and(|e| e.is_locked()));
        }),
        async_case("refused: raw SET NX async", &rt, |_| {
            let mut con = raw_async.clone();
            let cmd = set_nx();
            Box::pin(async move {
                let set: Option<String> = cmd.query_async(&mut con).await.expect("SET");
                assert!(set.is_none());
            })
        }),
        async_case("refused: Lock async", &rt, |_| {
            let cache = cache.clone();
            Box::pin(async move {
                let refused = Lock::new(KEY)
                    .cache(cache)
                    .ttl(TTL)
                    .try_acquire_async()
                    .await;
                assert!(refused.is_err_and(|e| e.is_locked()));
            })
        }),
    ];
    profile(&mut cases, wanted);
}
