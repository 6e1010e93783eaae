//! The PostgreSQL store's rows, in a fresh database on the test server
//! (`CACHELOCK_TEST_POSTGRES_URL`, else 127.0.0.1:5432, else a private server).
//!
//! W1: `Lock` acquire + release against the raw primitive in the same run: the store's own
//! two statements (the claim `INSERT … ON CONFLICT … RETURNING fence` and the owner-checked
//! release `UPDATE … RETURNING` with its `pg_notify`), sent with tokio-postgres'
//! `query_typed` on one connection driven on the calling thread (as the `postgres` crate
//! does), so the ratio is cachelock's own overhead. A second raw row sends the bare release
//! (`DELETE … WHERE key AND token`, no notify) to show what the notification costs. The
//! statements (= transactions = round trips) per op are counted by the server
//! (`pg_stat_database.xact_commit`). W2: 16 threads on one key, violations counted.

use std::hint::black_box;
use std::time::Duration;

use cachelock::postgres::tokio_postgres::types::Type;
use cachelock::postgres::tokio_postgres::{self, Client, NoTls};
use cachelock::postgres::PostgresStore;
use cachelock::Lock;
use cachelock_testkit::postgres::TestDb;

use super::super::{case, note, ratio, sequential, w2_threads, Row, Settings, RAW_TOKEN, TTL};

const TTL_US: i64 = 10_000_000;

/// A tokio-postgres client driven on the calling thread's own current-thread runtime.
struct Raw {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Raw {
    fn connect(url: &str) -> Raw {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
            tokio::spawn(connection);
            client
        });
        Raw { runtime, client }
    }

    /// Claim + release: `true` if the claim won.
    fn claim_release(&self, claim: &str, release: &str, key: &str, token: &str) -> bool {
        self.runtime.block_on(async {
            let owner = format!("{token}|1|bench|");
            let won = !self
                .client
                .query_typed(
                    claim,
                    &[
                        (&key, Type::TEXT),
                        (&token, Type::TEXT),
                        (&owner, Type::TEXT),
                        (&TTL_US, Type::INT8),
                    ],
                )
                .await
                .expect("claim")
                .is_empty();
            if won {
                self.client
                    .query_typed(release, &[(&key, Type::TEXT), (&token, Type::TEXT)])
                    .await
                    .expect("release");
            }
            won
        })
    }

    fn commits(&self, db: &str) -> i64 {
        self.runtime.block_on(async {
            // An idle backend reports its statistics within 10 s (PostgreSQL 15+).
            tokio::time::sleep(Duration::from_secs(11)).await;
            self.client
                .query_typed_one(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = $1",
                    &[(&db, Type::TEXT)],
                )
                .await
                .expect("pg_stat_database")
                .get(0)
        })
    }
}

pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    let db = TestDb::create();
    let url = db.url();
    let store = PostgresStore::from_url(&url).expect("url");
    let (claim, release) = cachelock::postgres::raw_sql::claim_release();
    let bare_release = "DELETE FROM cachelock_locks WHERE key = $1 AND token = $2";
    let ops = (settings.redis_ops / 5).max(50);
    let passes = settings.passes;
    let raw = Raw::connect(&url);
    // Creates the table before the raw rows use it.
    Lock::new("bench:pg:warm")
        .cache(store.clone())
        .try_acquire()
        .expect("warm-up")
        .release()
        .expect("release");
    let async_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    let lock_sync = || {
        Lock::new("bench:pg:w1")
            .cache(store.clone())
            .ttl(TTL)
            .try_acquire()
            .expect("free")
            .release()
            .expect("released");
    };
    // Transactions committed per op (each statement is one, and one round trip); the
    // stats query itself commits one.
    let before = raw.commits(db.name());
    (0..ops).for_each(|_| lock_sync());
    let middle = raw.commits(db.name());
    (0..ops).for_each(|_| {
        assert!(raw.claim_release(&claim, &release, "bench:pg:raw", RAW_TOKEN));
    });
    let after = raw.commits(db.name());
    for (what, commits) in [
        ("Lock sync", middle - before - 1),
        ("raw", after - middle - 1),
    ] {
        println!(
            "# W1 postgres {what}: {:.2} transactions (statements, round trips) per acquire + release",
            commits as f64 / f64::from(ops)
        );
    }

    let mut cases = [
        case("W1 postgres Lock sync", |_| lock_sync()),
        case("W1 postgres LIMIT raw sync (same SQL)", |_| {
            black_box(raw.claim_release(&claim, &release, "bench:pg:raw", RAW_TOKEN));
        }),
        case("W1 postgres raw sync, bare DELETE release", |_| {
            black_box(raw.claim_release(&claim, bare_release, "bench:pg:bare", RAW_TOKEN));
        }),
        case("W1 postgres Lock async", |_| {
            async_runtime.block_on(async {
                Lock::new("bench:pg:w1a")
                    .cache(store.clone())
                    .ttl(TTL)
                    .try_acquire_async()
                    .await
                    .expect("free")
                    .release()
                    .await
                    .expect("released");
            })
        }),
    ];
    let (mut rows, _) = sequential("W1", ops, passes, &mut cases);

    let time = settings.w2_time;
    rows.push(w2_threads(
        "W2 postgres Lock sync, 16 threads",
        time,
        |_| {
            let store = store.clone();
            move |critical: &dyn Fn()| w2_attempt(&store, critical)
        },
    ));
    rows
}

fn w2_attempt(store: &PostgresStore, critical: &dyn Fn()) -> bool {
    match Lock::new("bench:pg:w2")
        .cache(store.clone())
        .ttl(TTL)
        .try_acquire()
    {
        Ok(guard) => {
            critical();
            guard.release().expect("release");
            true
        }
        Err(e) if e.is_locked() => false,
        Err(e) => panic!("W2 attempt failed: {e}"),
    }
}

pub(crate) fn ratios(rows: &[Row]) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    if let (Some(lock), Some(raw)) = (
        find("W1 postgres Lock sync"),
        find("W1 postgres LIMIT raw sync (same SQL)"),
    ) {
        ratio("W1 postgres Lock sync / LIMIT raw sync", lock, raw, 0.9);
    }
    if let (Some(raw), Some(bare)) = (
        find("W1 postgres LIMIT raw sync (same SQL)"),
        find("W1 postgres raw sync, bare DELETE release"),
    ) {
        note(
            "W1 postgres raw with the notifying release / raw with a bare DELETE",
            raw,
            bare,
        );
    }
    if let Some(w2) = find("W2 postgres Lock sync, 16 threads") {
        println!("# W2 postgres: {} violations", w2.violations);
    }
}
