//! The MariaDB/MySQL store's rows: W1 (uncontended acquire + release through `Lock` against
//! the bare claim statement + the bare owner-checked release on a raw `mysql::Conn`, both
//! two round trips) and W2 (16 threads, violations counted), on a fresh database of the
//! server the tests use; plus the statements the server ran per operation.

use std::time::Duration;

use cachelock::mysql::driver::prelude::Queryable;
use cachelock::mysql::{driver, statement_text, MysqlStore};
use cachelock::Lock;
use cachelock_testkit::mysql::MysqlDb;

use super::super::{case, find, note, ratio, sequential, w2_lock, w2_threads, Row, Settings};

const TTL: Duration = Duration::from_secs(10);
const TTL_US: u64 = 10_000_000;
const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const KEYS: u32 = 1_000;

fn raw_conn(db: &MysqlDb) -> driver::Conn {
    let opts = driver::OptsBuilder::from_opts(driver::Opts::from_url(&db.url()).expect("url"))
        .prefer_socket(false);
    driver::Conn::new(opts).expect("connect")
}

/// The bare claim: `true` if it won.
fn raw_claim(conn: &mut driver::Conn, claim: &str, key: &str, token: &str) -> bool {
    let owner = format!("{token}|1|bench|");
    conn.exec_drop(
        claim,
        (key, token, &owner, TTL_US, token, &owner, token, TTL_US),
    )
    .expect("claim");
    conn.last_insert_id() != 0
}

/// The bare claim + release: `true` if the claim won.
fn raw_op(conn: &mut driver::Conn, claim: &str, release: &str, key: &str, token: &str) -> bool {
    if !raw_claim(conn, claim, key, token) {
        return false;
    }
    conn.exec_drop(release, (key, token)).expect("release");
    assert_eq!(conn.affected_rows(), 1, "released");
    true
}

/// The server's `Com_stmt_execute` and `Questions` counters (global: other clients of the
/// server count too).
fn counters(db: &MysqlDb) -> (u64, u64) {
    let text =
        db.sql("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_stmt_execute', 'Questions')");
    let mut execute = 0;
    let mut questions = 0;
    for line in text.lines() {
        let mut parts = line.split('\t');
        match (
            parts.next(),
            parts.next().and_then(|v| v.trim().parse().ok()),
        ) {
            (Some("Com_stmt_execute"), Some(v)) => execute = v,
            (Some("Questions"), Some(v)) => questions = v,
            _ => {}
        }
    }
    (execute, questions)
}

pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    let db = MysqlDb::create();
    let store = MysqlStore::from_url(&db.url()).expect("valid url");
    let (claim, release) = statement_text::claim_and_release("cachelock_locks");
    // Creates the table.
    Lock::new("bench:warm")
        .cache(store.clone())
        .try_acquire()
        .expect("free")
        .release()
        .expect("released");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("bench:w1:{i}")).collect();
    let raw_keys: Vec<String> = (0..KEYS).map(|i| format!("bench:w1:raw:{i}")).collect();
    let mut conn = raw_conn(&db);
    let ops = settings.redis_ops.min(5_000);

    // Round trips per acquire + release, counted by the server.
    let count = |f: &mut dyn FnMut()| {
        let before = counters(&db);
        for _ in 0..100 {
            f();
        }
        let after = counters(&db);
        (
            (after.0 - before.0) as f64 / 100.0,
            // The two SHOW STATUS queries count as questions too.
            (after.1 - before.1).saturating_sub(1) as f64 / 100.0,
        )
    };
    let lock = Lock::new("bench:count").cache(store.clone()).ttl(TTL);
    let (lock_exec, lock_q) = count(&mut || {
        lock.try_acquire()
            .expect("free")
            .release()
            .expect("released");
    });
    let (raw_exec, raw_q) = count(&mut || {
        assert!(raw_op(
            &mut conn,
            &claim,
            &release,
            "bench:count:raw",
            TOKEN
        ));
    });
    println!(
        "# MariaDB/MySQL statements per acquire + release (server counters, global): Lock {lock_exec:.2} executed ({lock_q:.2} questions), raw {raw_exec:.2} executed ({raw_q:.2} questions)"
    );

    let mut cases = [
        case("Lock, MysqlStore", |i| {
            Lock::new(&keys[(i % KEYS) as usize][..])
                .prefix("")
                .cache(store.clone())
                .ttl(TTL)
                .try_acquire()
                .expect("free")
                .release()
                .expect("released");
        }),
        case("LIMIT mysql claim + release", |i| {
            assert!(raw_op(
                &mut conn,
                &claim,
                &release,
                &raw_keys[(i % KEYS) as usize],
                TOKEN
            ));
        }),
    ];
    let (mut rows, _) = sequential("W1", ops, settings.passes.min(9), &mut cases);
    drop(cases);

    let time = settings.w2_time;
    rows.push(w2_threads("Lock, MysqlStore, 16 threads", time, |_| {
        let store = store.clone();
        move |critical: &dyn Fn()| w2_lock(&store, critical)
    }));
    let (claim, release) = (&claim, &release);
    let db = &db;
    rows.push(w2_threads(
        "LIMIT mysql claim + release, 16 threads",
        time,
        |w| {
            let mut conn = raw_conn(db);
            let token = format!("{:032x}", w + 1);
            move |critical: &dyn Fn()| {
                if !raw_claim(&mut conn, claim, "bench:w2:raw", &token) {
                    return false;
                }
                critical();
                conn.exec_drop(release, ("bench:w2:raw", &token))
                    .expect("release");
                true
            }
        },
    ));
    rows
}

pub(crate) fn ratios(rows: &[Row]) {
    ratio(
        "W1 MariaDB/MySQL Lock / LIMIT",
        find(rows, "Lock, MysqlStore"),
        find(rows, "LIMIT mysql claim + release"),
        0.9,
    );
    note(
        "W2 MariaDB/MySQL Lock / LIMIT",
        find(rows, "Lock, MysqlStore, 16 threads"),
        find(rows, "LIMIT mysql claim + release, 16 threads"),
    );
}
