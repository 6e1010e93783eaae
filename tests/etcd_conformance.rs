//! The conformance suites against a real etcd (started by the test on free loopback ports):
//! plain locks and tree locks, sync and async, directly, boxed (the suites box the store
//! themselves) and opened by URL.
#![cfg(feature = "etcd")]

use cachelock::etcd::EtcdStore;
use cachelock::testing;
use cachelock_testkit::etcd::EtcdServer;

#[test]
fn the_store_conforms_sync() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).expect("a valid URL");
    testing::conformance(store).expect("EtcdStore conforms (sync)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_conforms_async() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).expect("a valid URL");
    testing::conformance_async(store)
        .await
        .expect("EtcdStore conforms (async)");
}

#[test]
fn the_store_opened_by_url_conforms() {
    let server = EtcdServer::start();
    let store = cachelock::store_from_url(&server.url()).expect("an etcd:// URL opens");
    testing::conformance(store).expect("the store from store_from_url conforms");
}

#[test]
fn tree_locks_conform_sync() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).expect("a valid URL");
    testing::tree_conformance(store).expect("EtcdStore's tree locks conform (sync)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_locks_conform_async() {
    let server = EtcdServer::start();
    let store = EtcdStore::from_url(&server.url()).expect("a valid URL");
    testing::tree_conformance_async(store)
        .await
        .expect("EtcdStore's tree locks conform (async)");
}
