//! Criterion benches for the workloads of WORKLOADS.md: W1 on Redis with its LIMIT rows, W3
//! in memory with its moka LIMIT row, `#[once]` next to the hand-written `Lock` on both, and
//! W2 (16 threads trying one key; the time is per attempt, won or refused, and a second
//! occupant of the critical section fails the bench).
//!
//! ```text
//! cargo bench --features redis                 # every case
//! cargo bench --features redis -- W3           # only the in-memory group
//! cargo bench --features redis -- W2           # only the contended group
//! ```
//!
//! Starts its own `redis-server` on a free loopback port. `examples/bench.rs` runs the same
//! cases (plus W2 and the memory section) as one table with the ratios to the targets.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachelock::redis::RedisCache;
use cachelock::{once, Lock, LockStore, MemoryCache};
use cachelock_testkit::RedisServer;
use criterion::{criterion_group, criterion_main, Criterion};
use moka::ops::compute::Op;

const TTL: Duration = Duration::from_secs(10);

const RELEASE_SCRIPT: &str = r"
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";
const RAW_TOKEN: &str = "0123456789abcdef0123456789abcdef";

#[once(key = "bench:w1:<i>", cache = cache.clone(), ttl = "10s")]
fn w1_once(cache: &RedisCache, i: u32) -> Option<u32> {
    Some(black_box(i))
}

#[once(key = "bench:w1:<i>", cache = cache.clone(), ttl = "10s")]
async fn w1_once_async(cache: &RedisCache, i: u32) -> Option<u32> {
    Some(black_box(i))
}

#[once(key = "bench:w3:<i>", cache = cache.clone(), ttl = "10s")]
fn w3_once(cache: &MemoryCache, i: u32) -> Option<u32> {
    Some(black_box(i))
}

/// Cycles through the 1000 keys of W1/W3.
struct Keys(u32);

impl Keys {
    fn next(&mut self) -> u32 {
        self.0 = (self.0 + 1) % 1000;
        self.0
    }
}

struct Expire;

impl moka::Expiry<String, (u64, Instant)> for Expire {
    fn expire_after_create(
        &self,
        _: &String,
        v: &(u64, Instant),
        now: Instant,
    ) -> Option<Duration> {
        Some(v.1.saturating_duration_since(now))
    }
}

fn w3(c: &mut Criterion) {
    let mut group = c.benchmark_group("W3");
    let keys: Vec<String> = (0..1000).map(|i| format!("bench:w3:{i}")).collect();

    let mut k = Keys(0);
    // LIMIT: what MemoryCache is built on, a moka read for the key's slot (inserted by a
    // compute the first time) and a compare-and-set under the slot's mutex, twice.
    type RawSlot = Arc<Mutex<Option<(u64, Instant)>>>;
    let slots: moka::sync::Cache<String, RawSlot> = moka::sync::Cache::builder().build();
    let slot = |key: &str| -> RawSlot {
        slots.get(key).unwrap_or_else(|| {
            slots
                .entry_by_ref(key)
                .or_insert_with(|| Arc::new(Mutex::new(None)))
                .into_value()
        })
    };
    group.bench_function("LIMIT moka get + slot compare-and-set", |b| {
        b.iter(|| {
            // One moka read, then a compare-and-set in the slot to claim and one to release
            // through the same slot, as a MemoryCache guard does.
            let key = keys[k.next() as usize].as_str();
            let slot = slot(key);
            {
                let mut state = slot.lock().expect("not poisoned");
                let now = Instant::now();
                assert!(state.is_none_or(|(_, deadline)| deadline <= now));
                *state = Some((1, now + TTL));
            }
            let mut state = slot.lock().expect("not poisoned");
            if state.is_some_and(|(held, _)| held == 1) {
                *state = None;
            }
        })
    });

    // The previous design's primitive, for reference: two atomic computes.
    let moka: moka::sync::Cache<String, (u64, Instant)> =
        moka::sync::Cache::builder().expire_after(Expire).build();
    group.bench_function("moka compute claim+remove (old design)", |b| {
        b.iter(|| {
            let key = keys[k.next() as usize].as_str();
            moka.entry_by_ref(key)
                .and_compute_with(|current| match current {
                    None => Op::Put((1, Instant::now() + TTL)),
                    Some(_) => Op::Nop,
                });
            moka.entry_by_ref(key)
                .and_compute_with(|current| match current {
                    Some(entry) if entry.value().0 == 1 => Op::Remove,
                    _ => Op::Nop,
                });
        })
    });

    let cache = MemoryCache::new();
    group.bench_function("Lock, MemoryCache", |b| {
        b.iter(|| {
            let guard = Lock::new(keys[k.next() as usize].as_str())
                .cache(cache.clone())
                .ttl(TTL)
                .try_acquire()
                .expect("free");
            guard.release().expect("released");
        })
    });
    group.bench_function("Lock, MemoryCache, key format!", |b| {
        b.iter(|| {
            let guard = Lock::new(format!("bench:w3:{}", k.next()))
                .cache(cache.clone())
                .ttl(TTL)
                .try_acquire()
                .expect("free");
            guard.release().expect("released");
        })
    });
    group.bench_function("#[once], MemoryCache", |b| {
        b.iter(|| assert!(w3_once(&cache, k.next()).is_some()))
    });
    group.finish();
}

fn w1(c: &mut Criterion) {
    let server = RedisServer::start();
    let url = server.url();
    let client = redis::Client::open(url.as_str()).expect("url");
    let script = redis::Script::new(RELEASE_SCRIPT);
    let cache = RedisCache::from_url(&url).expect("url");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Vec<String> = (0..1000).map(|i| format!("bench:w1:{i}")).collect();
    let mut k = Keys(0);
    let mut group = c.benchmark_group("W1");

    let mut con = client.get_connection().expect("connect");
    group.bench_function("LIMIT redis-rs sync SET NX PX+EVALSHA", |b| {
        b.iter(|| {
            let key = &keys[k.next() as usize];
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(RAW_TOKEN)
                .arg("NX")
                .arg("PX")
                .arg(10_000)
                .query(&mut con)
                .expect("SET");
            assert!(set.is_some());
            let deleted: i64 = script
                .key(key)
                .arg(RAW_TOKEN)
                .invoke(&mut con)
                .expect("EVALSHA");
            assert_eq!(deleted, 1);
        })
    });
    group.bench_function("Lock sync, RedisCache", |b| {
        b.iter(|| {
            let guard = Lock::new(format!("bench:w1:{}", k.next()))
                .cache(cache.clone())
                .ttl(TTL)
                .try_acquire()
                .expect("free");
            guard.release().expect("released");
        })
    });
    group.bench_function("#[once] sync, RedisCache", |b| {
        b.iter(|| assert!(w1_once(&cache, k.next()).is_some()))
    });

    let con = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connect");
    group.bench_function("LIMIT redis-rs async multiplexed", |b| {
        b.iter(|| {
            let mut con = con.clone();
            let key = &keys[k.next() as usize];
            rt.block_on(async {
                let set: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(RAW_TOKEN)
                    .arg("NX")
                    .arg("PX")
                    .arg(10_000)
                    .query_async(&mut con)
                    .await
                    .expect("SET");
                assert!(set.is_some());
                let deleted: i64 = script
                    .key(key)
                    .arg(RAW_TOKEN)
                    .invoke_async(&mut con)
                    .await
                    .expect("EVALSHA");
                assert_eq!(deleted, 1);
            })
        })
    });
    group.bench_function("Lock async, RedisCache", |b| {
        b.iter(|| {
            rt.block_on(async {
                let guard = Lock::new(format!("bench:w1:{}", k.next()))
                    .cache(cache.clone())
                    .ttl(TTL)
                    .try_acquire_async()
                    .await
                    .expect("free");
                guard.release().await.expect("released");
            })
        })
    });
    group.bench_function("#[once] async, RedisCache", |b| {
        b.iter(|| assert!(rt.block_on(w1_once_async(&cache, k.next())).is_some()))
    });
    group.finish();
    drop(server);
}

const W2_THREADS: u64 = 16;

/// W2: `iters` attempts on one key, shared by 16 threads; returns the wall time of all of
/// them. Panics on a second occupant of the critical section.
fn w2_attempts<C: LockStore + Clone + 'static>(cache: &C, key: &str, iters: u64) -> Duration {
    let left = AtomicU64::new(iters);
    let inside = AtomicU32::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..W2_THREADS {
            scope.spawn(|| {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let lock = Lock::new(key).cache(cache.clone()).ttl(TTL);
                    match lock.try_acquire() {
                        Ok(guard) => {
                            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "violation");
                            std::hint::spin_loop();
                            inside.fetch_sub(1, Ordering::SeqCst);
                            guard.release().expect("release");
                        }
                        Err(e) if e.is_locked() => {}
                        Err(e) => panic!("W2 attempt failed: {e}"),
                    }
                }
            });
        }
    });
    start.elapsed()
}

fn w2(c: &mut Criterion) {
    let server = RedisServer::start();
    let redis = RedisCache::from_url(&server.url()).expect("url");
    let memory = MemoryCache::new();
    let mut group = c.benchmark_group("W2");
    group.bench_function("Lock, MemoryCache, 16 threads, per attempt", |b| {
        b.iter_custom(|iters| w2_attempts(&memory, "bench:w2:memory", iters))
    });
    group.bench_function("Lock sync, RedisCache, 16 threads, per attempt", |b| {
        b.iter_custom(|iters| w2_attempts(&redis, "bench:w2:redis", iters))
    });
    group.finish();
    drop(server);
}

fn config() -> Criterion {
    // Short: these run on a shared 2-core machine; the example gives the full table.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = w3, w1, w2
}
criterion_main!(benches);
