//! Counting the commands a Redis server ran (`INFO commandstats`), for the tests that prove
//! how many round trips a lock costs.
#![allow(dead_code)]

use std::collections::BTreeMap;

use cachelock_testkit::RedisServer;

/// A plain connection to `server` for admin commands.
pub fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("admin connection")
}

/// `cmdstat_<name>` → `calls`, the `INFO` command itself left out.
pub fn command_calls(admin: &mut redis::Connection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(admin)
        .expect("INFO commandstats");
    let mut calls = cachelock_testkit::parse_commandstats(&info);
    calls.remove("info");
    calls
}

/// The commands run between two [`command_calls`] readings, with how many times each.
pub fn delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(name, &calls)| {
            let diff = calls - before.get(name).copied().unwrap_or(0);
            (diff > 0).then(|| (name.clone(), diff))
        })
        .collect()
}
