//! The `Lock` guard in async code (tokio).

use std::time::Duration;

use cachelock::{Error, Lock, MemoryCache};
use futures_util::FutureExt;
use tokio::sync::oneshot;

fn lock(cache: &MemoryCache, key: &str) -> Lock<MemoryCache> {
    Lock::new(key).cache(cache.clone())
}

#[tokio::test]
async fn try_acquire_async_refuses_a_held_key_and_grants_after_release() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "job").try_acquire_async().await.unwrap();
    let err = lock(&cache, "job").try_acquire_async().await.unwrap_err();
    assert!(
        matches!(&err, Error::Locked { key } if key == "cachelock:job"),
        "{err:?}"
    );
    guard.release().await.unwrap();
    assert!(lock(&cache, "job").try_acquire_async().await.is_ok());
}

#[tokio::test]
async fn dropping_an_async_guard_releases_without_blocking() {
    let cache = MemoryCache::new();
    drop(lock(&cache, "job").try_acquire_async().await.unwrap());
    assert!(lock(&cache, "job").try_acquire_async().await.is_ok());
}

#[tokio::test]
async fn async_release_after_expiry_reports_lost() {
    let cache = MemoryCache::new();
    let first = lock(&cache, "job")
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire_async()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let _second = lock(&cache, "job").try_acquire_async().await.unwrap();
    assert!(first.release().await.unwrap_err().is_lost());
    assert!(lock(&cache, "job")
        .try_acquire_async()
        .await
        .unwrap_err()
        .is_locked());
}

#[tokio::test]
async fn async_extend_is_owner_checked() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "job")
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire_async()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(guard.extend().await.unwrap_err().is_lost());
}

#[tokio::test]
async fn acquire_timeout_async_gives_up_with_locked() {
    let cache = MemoryCache::new();
    let _held = lock(&cache, "job").try_acquire_async().await.unwrap();
    let err = lock(&cache, "job")
        .acquire_timeout_async(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.is_locked(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_timeout_async_gets_the_lock_once_the_holder_releases() {
    let cache = MemoryCache::new();
    let held = lock(&cache, "job").try_acquire_async().await.unwrap();
    let (started_tx, started_rx) = oneshot::channel();
    let waiter = tokio::spawn({
        let cache = cache.clone();
        async move {
            started_tx.send(()).unwrap();
            let guard = lock(&cache, "job")
                .acquire_timeout_async(Duration::from_secs(60))
                .await;
            guard.map(|g| g.key().to_owned())
        }
    });
    started_rx.await.unwrap();
    held.release().await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), "cachelock:job");
}

#[tokio::test]
async fn run_async_releases_on_return_and_on_panic() {
    let cache = MemoryCache::new();
    assert_eq!(lock(&cache, "job").run_async(async { 7 }).await.unwrap(), 7);
    assert!(lock(&cache, "job").try_acquire_async().await.is_ok());

    let l = lock(&cache, "job");
    let panicked = std::panic::AssertUnwindSafe(l.run_async(async { panic!("boom") }))
        .catch_unwind()
        .await;
    assert!(panicked.is_err());
    assert!(
        lock(&cache, "job").try_acquire_async().await.is_ok(),
        "a panic must release"
    );
}

#[tokio::test]
async fn run_async_does_not_poll_the_future_when_the_key_is_held() {
    let cache = MemoryCache::new();
    let _held = lock(&cache, "job").try_acquire_async().await.unwrap();
    let mut polled = false;
    let err = lock(&cache, "job")
        .run_async(async { polled = true })
        .await
        .unwrap_err();
    assert!(err.is_locked());
    assert!(!polled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_async_releases_the_lock() {
    let cache = MemoryCache::new();
    let (entered_tx, entered_rx) = oneshot::channel();
    let task = tokio::spawn({
        let cache = cache.clone();
        async move {
            lock(&cache, "job")
                .run_async(async move {
                    entered_tx.send(()).unwrap();
                    std::future::pending::<()>().await;
                })
                .await
        }
    });
    entered_rx.await.unwrap();
    assert!(lock(&cache, "job")
        .try_acquire_async()
        .await
        .unwrap_err()
        .is_locked());
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        lock(&cache, "job").try_acquire_async().await.is_ok(),
        "dropping the future mid-way must release the lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_task_wins_among_many() {
    for round in 0..200 {
        let cache = MemoryCache::new();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, barrier) = (cache.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let guard = lock(&cache, "job").try_acquire_async().await;
                    let won = guard.is_ok();
                    // Hold until everybody has tried.
                    barrier.wait().await;
                    drop(guard);
                    won
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_are_send_and_can_be_held_across_awaits_in_spawned_tasks() {
    let cache = MemoryCache::new();
    let handle = tokio::spawn({
        let cache = cache.clone();
        async move {
            let guard = lock(&cache, "job").try_acquire_async().await?;
            tokio::task::yield_now().await;
            guard.release().await
        }
    });
    handle.await.unwrap().unwrap();
}
