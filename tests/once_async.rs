//! `#[once]` on async functions: shapes (spawned with `tokio::spawn`, so their futures are
//! `Send`), both return policies, early returns, panics, cancellation, and contention
//! between tasks.

mod common;

use std::fmt::Display;
use std::sync::Arc;

use cachelock::{once, Error, Lock, MemoryCache};
use common::{is_held, is_held_in, RecordingCache};
use tokio::sync::{oneshot, Notify};

#[derive(Debug, PartialEq)]
enum JobError {
    Cache(String),
    Parse,
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Cache(error.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Return policies, spawned on the runtime (the futures are `Send`).

#[once(key = "async-unit-<n>")]
async fn unit_job(n: u32, ran: Arc<std::sync::atomic::AtomicU32>) {
    tokio::task::yield_now().await;
    assert!(is_held(&format!("async-unit-{n}")));
    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

#[once(key = "async-option-<n>")]
async fn option_job(n: u32) -> Option<u32> {
    tokio::task::yield_now().await;
    Some(n)
}

#[once(key = "async-result-<input>")]
async fn result_job(input: String) -> Result<Option<u32>, JobError> {
    tokio::task::yield_now().await;
    let n: u32 = input.parse().map_err(|_| JobError::Parse)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(n))
}

#[once(key = "async-raise-<n>", raise_if_locked = true)]
async fn raising(n: u32) -> Result<u32, JobError> {
    tokio::task::yield_now().await;
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_functions_run_and_skip() {
    let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
    tokio::spawn(unit_job(1, ran.clone())).await.unwrap();
    assert_eq!(tokio::spawn(option_job(1)).await.unwrap(), Some(1));
    assert_eq!(
        tokio::spawn(result_job("5".into())).await.unwrap(),
        Ok(Some(5))
    );
    assert_eq!(
        tokio::spawn(result_job("x".into())).await.unwrap(),
        Err(JobError::Parse),
        "`?` works in an async body"
    );
    assert_eq!(tokio::spawn(raising(1)).await.unwrap(), Ok(1));
    for key in [
        "async-unit-1",
        "async-option-1",
        "async-result-5",
        "async-raise-1",
    ] {
        assert!(!is_held(key), "{key} released after the body");
    }

    let _held = [
        "async-unit-1",
        "async-option-1",
        "async-result-5",
        "async-raise-1",
    ]
    .map(|key| Lock::new(key).try_acquire().unwrap());
    tokio::spawn(unit_job(1, ran.clone())).await.unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1, "skipped");
    assert_eq!(tokio::spawn(option_job(1)).await.unwrap(), None);
    assert_eq!(
        tokio::spawn(result_job("5".into())).await.unwrap(),
        Ok(None)
    );
    assert_eq!(
        tokio::spawn(raising(1)).await.unwrap(),
        Err(JobError::Cache(
            "lock `cachelock:async-raise-1` is held by another owner".into()
        ))
    );
}

// ---------------------------------------------------------------------------------------
// Shapes.

#[once(key = "async-generic-<item>")]
async fn generic<T: Display + Send>(item: T) -> Option<T> {
    tokio::task::yield_now().await;
    Some(item)
}

#[once(key = "async-impl-<shown>")]
async fn impl_trait(shown: impl Display + Send) -> Option<String> {
    tokio::task::yield_now().await;
    Some(shown.to_string())
}

#[once(key = "async-lifetime-<text>")]
async fn lifetime<'a>(text: &'a str) -> Option<&'a str> {
    tokio::task::yield_now().await;
    text.split(' ').next()
}

struct Service {
    name: String,
    cache: MemoryCache,
    calls: u32,
}

impl Service {
    #[once(key = "async-method-<self.name>", cache = self.cache)]
    async fn by_ref(&self) -> Option<String> {
        tokio::task::yield_now().await;
        assert!(is_held_in(
            &self.cache,
            &format!("async-method-{}", self.name)
        ));
        Some(self.name.clone())
    }

    #[once(key = "async-method-mut-<self.name>")]
    async fn by_mut(&mut self) -> Option<u32> {
        tokio::task::yield_now().await;
        self.calls += 1;
        Some(self.calls)
    }

    #[once(key = "async-method-owned-<self.name>")]
    async fn by_value(self) -> Option<u32> {
        tokio::task::yield_now().await;
        Some(self.calls)
    }

    #[once(key = "async-assoc-<name>", raise_if_locked = true)]
    async fn create(name: String) -> Result<Self, Error> {
        tokio::task::yield_now().await;
        Ok(Service {
            name,
            cache: MemoryCache::new(),
            calls: 0,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_shapes_are_send_and_work() {
    assert_eq!(tokio::spawn(generic(3u8)).await.unwrap(), Some(3));
    assert_eq!(
        tokio::spawn(impl_trait(2.5)).await.unwrap(),
        Some("2.5".into())
    );
    assert_eq!(lifetime("a b").await, Some("a"));

    let service = tokio::spawn(Service::create("s".into()))
        .await
        .unwrap()
        .unwrap();
    let service = Arc::new(service);
    let shared = service.clone();
    assert_eq!(
        tokio::spawn(async move { shared.by_ref().await })
            .await
            .unwrap(),
        Some("s".into())
    );
    let mut service = Arc::try_unwrap(service).ok().unwrap();
    let mut service = tokio::spawn(async move {
        assert_eq!(service.by_mut().await, Some(1));
        service
    })
    .await
    .unwrap();
    {
        let _held = Lock::new("async-method-mut-s").try_acquire().unwrap();
        assert_eq!(service.by_mut().await, None);
        assert_eq!(service.calls, 1);
        let _held = Lock::new("async-method-s")
            .cache(service.cache.clone())
            .try_acquire()
            .unwrap();
        assert_eq!(service.by_ref().await, None);
        let _held = Lock::new("async-assoc-t").try_acquire().unwrap();
        assert!(Service::create("t".into())
            .await
            .err()
            .is_some_and(|e| e.is_locked()));
    }
    assert_eq!(tokio::spawn(service.by_value()).await.unwrap(), Some(1));
}

// ---------------------------------------------------------------------------------------
// Panics and cancellation release the lock.

#[once(key = "async-panic")]
async fn panicking() {
    tokio::task::yield_now().await;
    assert!(is_held("async-panic"));
    panic!("async boom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_propagates_and_releases_the_lock() {
    let error = tokio::spawn(panicking()).await.unwrap_err();
    assert!(error.is_panic());
    let payload = error.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"async boom"));
    assert!(!is_held("async-panic"));
}

#[once(key = "async-cancel-<n>")]
async fn never_finishes(n: u32, started: oneshot::Sender<()>) -> Option<()> {
    started.send(()).unwrap();
    std::future::pending::<()>().await;
    Some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_future_mid_way_releases_the_lock() {
    // Aborted task.
    let (started_tx, started_rx) = oneshot::channel();
    let task = tokio::spawn(never_finishes(1, started_tx));
    started_rx.await.unwrap();
    assert!(is_held("async-cancel-1"), "held while the body waits");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        !is_held("async-cancel-1"),
        "released when the future was dropped"
    );

    // A future dropped by hand after it started.
    let (started_tx, started_rx) = oneshot::channel();
    let mut future = Box::pin(never_finishes(2, started_tx));
    tokio::select! {
        _ = &mut future => unreachable!("the body never finishes"),
        started = started_rx => started.unwrap(),
    }
    assert!(is_held("async-cancel-2"));
    drop(future);
    assert!(!is_held("async-cancel-2"));
}

// ---------------------------------------------------------------------------------------
// Contention between tasks.

#[once(key = "async-contended-<day>")]
async fn report(day: u32, inside: Arc<Notify>, finish: Arc<Notify>) -> Option<u32> {
    inside.notify_one();
    finish.notified().await;
    Some(day)
}

#[once(key = "async-contended-raise-<day>", raise_if_locked = true)]
async fn report_or_raise(day: u32, inside: Arc<Notify>, finish: Arc<Notify>) -> Result<u32, Error> {
    inside.notify_one();
    finish.notified().await;
    Ok(day)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_between_tasks() {
    let inside = Arc::new(Notify::new());
    let finish = Arc::new(Notify::new());

    let first = tokio::spawn(report(1, inside.clone(), finish.clone()));
    inside.notified().await;
    // While the first task holds the key, other tasks are skipped.
    let others: Vec<_> = (0..4)
        .map(|_| tokio::spawn(report(1, inside.clone(), finish.clone())))
        .collect();
    for other in others {
        assert_eq!(other.await.unwrap(), None);
    }
    // Another key is not contended.
    let (other_inside, other_finish) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let other_day = tokio::spawn(report(2, other_inside.clone(), other_finish.clone()));
    other_inside.notified().await;
    other_finish.notify_one();
    assert_eq!(other_day.await.unwrap(), Some(2));

    finish.notify_one();
    assert_eq!(first.await.unwrap(), Some(1));
    assert!(!is_held("async-contended-1"));

    let first = tokio::spawn(report_or_raise(1, inside.clone(), finish.clone()));
    inside.notified().await;
    let refused = tokio::spawn(report_or_raise(1, inside.clone(), finish.clone()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(refused.is_locked());
    finish.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), 1);
}

// ---------------------------------------------------------------------------------------
// `wait` in async code.

#[once(key = "async-wait", wait = "10s", raise_if_locked = true, cache = *cache)]
async fn waiting(cache: Arc<RecordingCache>) -> Result<&'static str, Error> {
    Ok("waited")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_option_waits_for_the_holder() {
    let cache = Arc::new(RecordingCache::new());
    let guard = Lock::new("async-wait")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    let waiter = tokio::spawn(waiting(cache.clone()));
    // The holder's claim, then at least one refused claim of the waiter.
    while cache.count() < 2 {
        tokio::task::yield_now().await;
    }
    guard.release().await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), "waited");
}

// ---------------------------------------------------------------------------------------
// Recursion.

#[once(key = "async-recursive")]
async fn recursive(depth: u32) -> Option<Option<u32>> {
    if depth == 0 {
        return Some(None);
    }
    let inner = Box::pin(recursive(depth - 1)).await;
    Some(inner.map(|_| depth))
}

#[tokio::test]
async fn recursive_call_sees_the_key_held() {
    assert_eq!(recursive(2).await, Some(None));
    assert!(!is_held("async-recursive"));
}

// ---------------------------------------------------------------------------------------
// Next to `#[tokio::test]` and `#[tracing::instrument]`, in both orders.

#[tokio::test]
#[once(key = "async-tokio-test-outer")]
async fn under_tokio_test() {
    assert!(is_held("async-tokio-test-outer"));
}

#[once(key = "async-tokio-test-inner")]
#[tokio::test]
async fn over_tokio_test() {
    assert!(is_held("async-tokio-test-inner"));
}

#[tracing::instrument]
#[once(key = "async-instrument-a-<n>")]
async fn instrumented_outside(n: u32) -> Option<u32> {
    tokio::task::yield_now().await;
    Some(n)
}

#[once(key = "async-instrument-b-<n>")]
#[tracing::instrument]
async fn instrumented_inside(n: u32) -> Option<u32> {
    tokio::task::yield_now().await;
    Some(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_next_to_tracing_instrument() {
    assert_eq!(
        tokio::spawn(instrumented_outside(1)).await.unwrap(),
        Some(1)
    );
    assert_eq!(tokio::spawn(instrumented_inside(2)).await.unwrap(), Some(2));
    let _a = Lock::new("async-instrument-a-1").try_acquire().unwrap();
    let _b = Lock::new("async-instrument-b-2").try_acquire().unwrap();
    assert_eq!(instrumented_outside(1).await, None);
    assert_eq!(instrumented_inside(2).await, None);
}

// ---------------------------------------------------------------------------------------
// Arguments are only borrowed to format the key, before the first `.await`.

/// `Send` but not `Sync`: a future that held `&Tally` across an `.await` would not be `Send`.
struct Tally(std::cell::Cell<u32>);

impl Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.get())
    }
}

/// Neither `Clone` nor `Display`-by-value: only borrowed.
#[once(key = "async-borrowed-<tally>-<label>")]
async fn borrowed_only(tally: Tally, label: String) -> Option<u32> {
    tokio::task::yield_now().await;
    tally.0.set(tally.0.get() + 1);
    Some(tally.0.get() + u32::try_from(label.len()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_are_only_borrowed_for_the_key() {
    let tally = Tally(std::cell::Cell::new(1));
    // `tokio::spawn` needs a `Send` future: the key's borrow of the `!Sync` argument ended
    // before the first `.await`.
    let out = tokio::spawn(borrowed_only(tally, "ab".into()))
        .await
        .unwrap();
    assert_eq!(out, Some(4));
}
