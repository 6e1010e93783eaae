//! The etcd store's rows, against a throwaway etcd started here (as the tests start theirs).
//!
//! W1 compares an uncontended acquire + release through `Lock` with the same requests sent
//! by hand with etcd-client in the same run (the target row): a lease grant and the claim
//! transaction, then the owner-checked delete transaction, awaited, and the lease revoke
//! sent without waiting for it (as the store does). A second raw row, without a lease (a claim transaction and a delete transaction:
//! two round trips, but a lock that never expires), is the floor, reported, not a target.
//! Every etcd write goes through the Raft log and its disk sync, so the rows measure the
//! disk as much as the client. The requests per op are counted from etcd's own gRPC
//! counters. W2: 16 threads on one key, violations counted.

use std::collections::BTreeMap;
use std::time::Duration;

use cachelock::etcd::etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use cachelock::etcd::EtcdStore;
use cachelock_testkit::etcd::EtcdServer;

use super::super::{
    case, find, lock_op, lock_op_fencing, note, ratio, sequential, w2_lock, w2_threads, Row,
    Settings, RAW_TOKEN,
};

const LIMIT_LEASED: &str = "LIMIT etcd-client grant+txn, txn+revoke";
const RAW_UNLEASED: &str = "raw etcd-client txn+txn, no lease (floor)";
const LOCK_SYNC: &str = "Lock sync, EtcdStore";
const LOCK_SYNC_UNFENCED: &str = "Lock sync, EtcdStore, fencing(false)";
const LOCK_ASYNC: &str = "Lock async, EtcdStore";

/// The lease of the raw rows, in seconds (the Lock rows' TTL is the bench's 10 s).
const LEASE_SECS: i64 = 10;

/// The raw claim + release with a lease: the requests `Lock` sends, by hand: grant, claim
/// transaction, owner-checked delete transaction awaited; the revoke spawned (not awaited),
/// as the store does.
async fn raw_leased(client: &mut Client, key: &str) {
    let lease = client
        .lease_grant(LEASE_SECS, None)
        .await
        .expect("LeaseGrant")
        .id();
    let claimed = client
        .txn(
            Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key,
                    RAW_TOKEN,
                    Some(PutOptions::new().with_lease(lease)),
                )]),
        )
        .await
        .expect("claim Txn");
    assert!(claimed.succeeded(), "uncontended claim");
    let released = client
        .txn(
            Txn::new()
                .when([Compare::value(key, CompareOp::Equal, RAW_TOKEN)])
                .and_then([TxnOp::delete(key, None)]),
        )
        .await
        .expect("release Txn");
    assert!(released.succeeded(), "our own lock");
    let mut revoker = client.clone();
    tokio::spawn(async move {
        revoker.lease_revoke(lease).await.expect("LeaseRevoke");
    });
}

/// The two transactions without a lease (no TTL: the floor, not a lock one would use).
async fn raw_unleased(client: &mut Client, key: &str) {
    let claimed = client
        .txn(
            Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, RAW_TOKEN, None)]),
        )
        .await
        .expect("claim Txn");
    assert!(claimed.succeeded(), "uncontended claim");
    let released = client
        .txn(
            Txn::new()
                .when([Compare::value(key, CompareOp::Equal, RAW_TOKEN)])
                .and_then([TxnOp::delete(key, None)]),
        )
        .await
        .expect("release Txn");
    assert!(released.succeeded(), "our own lock");
}

async fn lock_async(store: &EtcdStore, i: u32) {
    let guard = cachelock::Lock::new(format!("bench:etcd:w1:{i}"))
        .cache(store.clone())
        .ttl(Duration::from_secs(10))
        .try_acquire_async()
        .await
        .expect("uncontended acquire");
    std::hint::black_box(i);
    guard.release().await.expect("release");
}

/// The gRPC requests the member started while `op` ran `n` times, per op.
fn requests_per_op(server: &EtcdServer, n: u32, op: &mut dyn FnMut(u32)) -> String {
    op(0); // warm: connection, lease minimum
    let before = server.grpc_requests();
    for i in 0..n {
        op(i);
    }
    let after = server.grpc_requests();
    let mut per_method: BTreeMap<&str, f64> = BTreeMap::new();
    let mut total = 0.0;
    for (method, count) in &after {
        let delta = count - before.get(method).copied().unwrap_or(0);
        if delta > 0 {
            let per_op = delta as f64 / f64::from(n);
            per_method.insert(method, per_op);
            total += per_op;
        }
    }
    let parts: Vec<String> = per_method
        .iter()
        .map(|(method, per_op)| format!("{method} {per_op:.2}"))
        .collect();
    format!("{total:.2} ({})", parts.join(", "))
}

pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).expect("url");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut raw = rt
        .block_on(Client::connect([server.endpoint()], None))
        .expect("connect");
    let keys: Vec<String> = (0..1000).map(|i| format!("bench:etcd:raw:{i}")).collect();
    // A write is a Raft commit with a disk sync: a hundredth of Redis' ops, a few passes.
    let ops = (settings.redis_ops / 10).max(50);
    let passes = settings.passes.min(7);

    if settings.profile.is_none() {
        let n = 200;
        let line = |name: &str, op: &mut dyn FnMut(u32)| {
            println!(
                "# etcd requests per op, {name}: {}",
                requests_per_op(&server, n, op)
            );
        };
        line(LIMIT_LEASED, &mut |i| {
            rt.block_on(raw_leased(&mut raw, &keys[(i % 1000) as usize]))
        });
        line(LOCK_SYNC, &mut |i| {
            lock_op(&store, "bench:etcd:w1:", i % 1000)
        });
        line(LOCK_SYNC_UNFENCED, &mut |i| {
            lock_op_fencing(&store, "bench:etcd:w1:", i % 1000, false)
        });
        line(LOCK_ASYNC, &mut |i| {
            rt.block_on(lock_async(&store, i % 1000))
        });
    }

    let mut raw_floor = rt
        .block_on(Client::connect([server.endpoint()], None))
        .expect("connect");
    let rt = &rt;
    let mut cases = [
        case(LIMIT_LEASED, |i| {
            rt.block_on(raw_leased(&mut raw, &keys[(i % 1000) as usize]))
        }),
        case(RAW_UNLEASED, |i| {
            rt.block_on(raw_unleased(&mut raw_floor, &keys[(i % 1000) as usize]))
        }),
        case(LOCK_SYNC, |i| lock_op(&store, "bench:etcd:w1:", i % 1000)),
        case(LOCK_SYNC_UNFENCED, |i| {
            lock_op_fencing(&store, "bench:etcd:w1:", i % 1000, false)
        }),
        case(LOCK_ASYNC, |i| rt.block_on(lock_async(&store, i % 1000))),
    ];
    if let Some(wanted) = &settings.profile {
        super::super::profile(&mut cases, wanted);
        return Vec::new();
    }
    let (mut rows, _) = sequential("W1", ops, passes, &mut cases);
    rows.push(w2_threads(
        "Lock sync, EtcdStore, 16 threads",
        settings.w2_time,
        |_| {
            let store = store.clone();
            move |critical: &dyn Fn()| w2_lock(&store, critical)
        },
    ));
    rows
}

pub(crate) fn ratios(rows: &[Row]) {
    ratio(
        "W1 etcd Lock sync / LIMIT etcd-client (the same requests by hand)",
        find(rows, LOCK_SYNC),
        find(rows, LIMIT_LEASED),
        0.90,
    );
    ratio(
        "W1 etcd Lock async / LIMIT etcd-client",
        find(rows, LOCK_ASYNC),
        find(rows, LIMIT_LEASED),
        0.90,
    );
    note(
        "W1 etcd Lock sync / two transactions without a lease (no TTL)",
        find(rows, LOCK_SYNC),
        find(rows, RAW_UNLEASED),
    );
}
