//! The benchmark workloads of WORKLOADS.md, in one process run, printed as one table.
//!
//! ```text
//! cargo run --release --example bench            # full run
//! cargo run --release --example bench -- --quick # a few seconds
//! ```
//!
//! Output: one row per case, `name workload ops_per_s p50_us p99_us violations`. Absolute
//! numbers depend on the machine and its load; compare each row with the LIMIT row of the
//! same workload in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cachelock::{Cache, Lock, MemoryCache};
use moka::ops::compute::Op;

const TTL: Duration = Duration::from_secs(10);

struct Settings {
    /// Operations per measured pass.
    ops: u32,
    /// Measured passes; the median pass gives ops/s.
    passes: usize,
}

struct Row {
    name: &'static str,
    workload: &'static str,
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    violations: u64,
}

fn print_header() {
    println!(
        "{:<34} {:<8} {:>12} {:>9} {:>9} {:>10}",
        "name", "workload", "ops_per_s", "p50_us", "p99_us", "violations"
    );
}

fn print_row(row: &Row) {
    println!(
        "{:<34} {:<8} {:>12.0} {:>9.2} {:>9.2} {:>10}",
        row.name, row.workload, row.ops_per_s, row.p50_us, row.p99_us, row.violations
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `op(i)` sequentially: throughput passes untimed per op, then one pass timing each op.
fn sequential(
    name: &'static str,
    workload: &'static str,
    settings: &Settings,
    mut op: impl FnMut(u32),
) -> Row {
    // Warm-up.
    for i in 0..settings.ops / 10 {
        op(i);
    }
    let mut rates = Vec::with_capacity(settings.passes);
    for _ in 0..settings.passes {
        let start = Instant::now();
        for i in 0..settings.ops {
            op(i);
        }
        rates.push(f64::from(settings.ops) / start.elapsed().as_secs_f64());
    }
    let mut latencies = Vec::with_capacity(settings.ops as usize);
    for i in 0..settings.ops {
        let start = Instant::now();
        op(i);
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    Row {
        name,
        workload,
        ops_per_s: median(&mut rates),
        p50_us: at(0.50),
        p99_us: at(0.99),
        violations: 0,
    }
}

fn w3_keys() -> Vec<String> {
    (0..1000).map(|i| format!("bench:w3:{i}")).collect()
}

/// Per-entry TTL for the LIMIT row, as MemoryCache has (moka's `Expiry`).
struct TtlExpiry;

impl moka::Expiry<String, (u64, Instant)> for TtlExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &(u64, Instant),
        now: Instant,
    ) -> Option<Duration> {
        Some(value.1.saturating_duration_since(now))
    }
}

/// LIMIT for W3: the moka operations MemoryCache is built on (a per-entry TTL, an atomic
/// compute to claim, an atomic compute to compare-and-remove), with nothing of cachelock
/// around them: a u64 token, no key formatting, no guard.
fn limit_moka(settings: &Settings) -> Row {
    let keys = w3_keys();
    let moka: moka::sync::Cache<String, (u64, Instant)> =
        moka::sync::Cache::builder().expire_after(TtlExpiry).build();
    sequential("LIMIT moka compute claim+remove", "W3", settings, |i| {
        let key = keys[(i % 1000) as usize].as_str();
        let token = u64::from(i) + 1;
        let mut won = false;
        moka.entry_by_ref(key)
            .and_compute_with(|current| match current {
                None => {
                    won = true;
                    Op::Put((token, Instant::now() + TTL))
                }
                Some(_) => Op::Nop,
            });
        assert!(won);
        moka.entry_by_ref(key)
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().0 == token => Op::Remove,
                _ => Op::Nop,
            });
    })
}

fn w3_lock(settings: &Settings) -> Row {
    let keys = w3_keys();
    let cache = MemoryCache::new();
    let row = sequential("cachelock Lock, MemoryCache", "W3", settings, |i| {
        let guard = Lock::new(keys[(i % 1000) as usize].as_str())
            .cache(cache.clone())
            .ttl(TTL)
            .try_acquire()
            .expect("uncontended acquire");
        black_box(&guard);
        guard.release().expect("release");
    });
    assert_eq!(cache.entry_count(), 0, "memory back to baseline");
    row
}

fn w3_cache_ops(settings: &Settings) -> Row {
    let keys = w3_keys();
    let cache = MemoryCache::new();
    sequential("MemoryCache claim+release only", "W3", settings, |i| {
        let key = keys[(i % 1000) as usize].as_str();
        assert!(cache
            .claim(key, "0123456789abcdef0123456789abcdef", TTL)
            .unwrap()
            .is_some());
        assert!(cache
            .release(key, "0123456789abcdef0123456789abcdef")
            .unwrap());
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            ops: 20_000,
            passes: 3,
        }
    } else {
        Settings {
            ops: 200_000,
            passes: 5,
        }
    };
    println!(
        "# cachelock bench: {} ops x {} passes per case, {} cores",
        settings.ops,
        settings.passes,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_header();
    let limit = limit_moka(&settings);
    print_row(&limit);
    let ops = w3_cache_ops(&settings);
    print_row(&ops);
    let lock = w3_lock(&settings);
    print_row(&lock);
    println!(
        "# W3 ratio Lock / LIMIT moka: {:.2} (target >= 0.90)",
        lock.ops_per_s / limit.ops_per_s
    );
}
