//! Hierarchical locks (`cachelock::tree`) on a real MariaDB/MySQL server: the conformance
//! suite (sync and async), the hand-written rule table, two stores contending like two
//! processes, fences per lock space, and a claim sent again after a lost reply.
#![cfg(feature = "mysql")]

use std::time::Duration;

use cachelock::mysql::MysqlStore;
use cachelock::testing::{tree_conformance, tree_conformance_async};
use cachelock::tree::{TreeLock, TreeScope, TreeStore};
use cachelock::{Claim, LockStore};
use cachelock_testkit::mysql::MysqlDb;

#[path = "common/tree_cases.rs"]
mod tree_cases;
use tree_cases::TABLE;

fn store(db: &MysqlDb) -> MysqlStore {
    MysqlStore::from_url(&db.url()).expect("valid url")
}

fn lock(store: &MysqlStore, path: &str, scope: TreeScope) -> TreeLock<MysqlStore> {
    TreeLock::new(path)
        .cache(store.clone())
        .lock_parents(scope.lock_parents)
        .lock_children(scope.lock_children)
}

#[test]
fn mysql_passes_the_tree_conformance_suite() {
    let db = MysqlDb::create();
    tree_conformance(store(&db)).expect("MysqlStore conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_passes_the_async_tree_conformance_suite() {
    let db = MysqlDb::create();
    tree_conformance_async(store(&db))
        .await
        .expect("MysqlStore conforms (async)");
}

#[test]
fn every_case_of_the_table_on_mysql() {
    let db = MysqlDb::create();
    let store = store(&db);
    for &(held, held_scope, path, scope, want) in TABLE {
        let first = lock(&store, held, held_scope).try_acquire().expect("free");
        let got = lock(&store, path, scope).try_acquire();
        assert_eq!(
            got.is_err(),
            want,
            "{path} {scope:?} while {held} {held_scope:?} is held"
        );
        drop(got);
        first.release().expect("released");
    }
}

#[test]
fn two_stores_on_one_table_exclude_each_other_and_fences_grow_per_space() {
    let db = MysqlDb::create();
    let (a, b) = (store(&db), store(&db));
    let all = TreeScope::default();
    let held = lock(&a, "/x/y", all).try_acquire().expect("free");
    assert!(lock(&b, "/x", all).try_acquire().unwrap_err().is_locked());
    assert!(lock(&b, "/x/y/z", all)
        .try_acquire()
        .unwrap_err()
        .is_locked());
    let sibling = lock(&b, "/x/w", all).try_acquire().expect("a sibling");
    assert!(sibling.fence() > held.fence());
    // Another space is independent, and has fences of its own.
    let other = lock(&b, "/x", all)
        .prefix("other-space:")
        .try_acquire()
        .expect("another space");
    assert!(other.fence() > 0);
    let mut last = sibling.fence();
    held.release().expect("released");
    sibling.release().expect("released");
    for _ in 0..3 {
        let g = lock(&b, "/x", all).try_acquire().expect("free");
        assert!(g.fence() > last, "{} after {last}", g.fence());
        last = g.fence();
        g.release().expect("released");
    }
    other.release().expect("released");
}

#[test]
fn a_tree_claim_sent_again_with_its_token_wins_with_the_same_fence() {
    let db = MysqlDb::create();
    let store = store(&db);
    let trees = store.trees().expect("MySQL has tree locks");
    let claim = Claim::new(Duration::from_secs(30));
    let all = TreeScope::default();
    let first = trees
        .claim("space:", "/a", all, &claim)
        .expect("claim")
        .expect("free");
    // The same claim again (as after a reply lost with its connection): its own win.
    let again = trees
        .claim("space:", "/a", all, &claim)
        .expect("claim")
        .expect("its own");
    assert_eq!(again.fence, first.fence);
    let other = Claim::new(Duration::from_secs(30));
    assert!(trees
        .claim("space:", "/a", all, &other)
        .expect("claim")
        .is_none());
    assert!(TreeStore::release(trees, "space:", "/a", claim.token(), None).expect("release"));
}

#[test]
fn a_space_with_the_tree_tag_is_refused() {
    let db = MysqlDb::create();
    let store = store(&db);
    let trees = store.trees().expect("MySQL has tree locks");
    let claim = Claim::new(Duration::from_secs(30));
    let error = trees
        .claim("a{cachelock-tree}:b", "/a", TreeScope::default(), &claim)
        .expect_err("refused");
    assert!(error.to_string().contains("{cachelock-tree}:"), "{error}");
}
