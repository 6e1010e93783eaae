//! One URL picks the store: `#[once]` on whatever store the command line names.
//!
//! ```text
//! cargo run --example stores                                  # memory://
//! cargo run --example stores -- file:///tmp/cachelock-demo    # one host, no server
//! cargo run --example stores --features redis -- redis://127.0.0.1:6379
//! cargo run --example stores --features postgres -- postgres://postgres@127.0.0.1/postgres
//! cargo run --example stores --features mysql -- mysql://root@127.0.0.1/test
//! cargo run --example stores --features memcached -- memcache://127.0.0.1:11211
//! cargo run --example stores --features etcd -- etcd://127.0.0.1:2379
//! ```
//!
//! A URL whose store's cargo feature is off is refused with a message naming the feature.

use std::sync::atomic::{AtomicU32, Ordering};

use cachelock::{once, set_default_cache_arc, store_from_url};

static RUNS: AtomicU32 = AtomicU32::new(0);

/// The nightly report of `day`: at most one run at a time per day, across every process
/// that shares the store.
#[once(key = "report-<day>", ttl = "30s")]
fn nightly_report(day: u32) {
    RUNS.fetch_add(1, Ordering::SeqCst);
    // While this runs, a second call for the same day is skipped.
    nested(day);
}

fn nested(day: u32) {
    nightly_report(day); // the key is held: skipped, returns `()`
}

fn main() -> Result<(), cachelock::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://".to_owned());
    set_default_cache_arc(store_from_url(&url)?)?;
    nightly_report(20261205);
    println!(
        "{}: the report ran {} time(s); the nested call for the same day was skipped",
        cachelock::redact_url(&url),
        RUNS.load(Ordering::SeqCst)
    );
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    Ok(())
}
