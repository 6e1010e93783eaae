//! The private tokio runtime every etcd store runs on.
//!
//! `etcd-client` is async (tonic): its channel drives the HTTP/2 connection from a task of
//! the runtime it was made on, and dies with that runtime. So the stores make their clients
//! on one runtime of their own, started on first use and never stopped (one worker thread,
//! `cachelock-etcd`, for the whole process), and run every operation there:
//!
//! - a sync call spawns the operation on it and waits on a plain channel, so it works on
//!   any thread: outside any runtime, and on a runtime's thread too (a sync `Guard` dropped
//!   in async code), where `block_on` would panic; the work runs on the private runtime, so
//!   even a blocked current-thread runtime cannot deadlock it;
//! - an async call spawns it there too and awaits its result: nothing blocks the caller's
//!   runtime, the caller's runtime needs no timer, and a store outlives the runtimes that
//!   used it (a `#[tokio::test]`'s runtime is dropped at the end of each test). A caller that
//!   drops the future aborts the operation at its next await.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::BoxError;
use crate::result::CacheResult;

/// The runtime, or why it could not start.
fn runtime() -> Result<&'static Runtime, BoxError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cachelock-etcd")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the etcd store's runtime thread: {e}"))
        })
        .as_ref()
        .map_err(|e| e.clone().into())
}

/// A handle to the runtime, to spawn on it.
pub(crate) fn handle() -> Result<Handle, BoxError> {
    runtime().map(|rt| rt.handle().clone())
}

/// Spawns `fut` on the runtime without waiting for it (background clean-up); nothing
/// happens if the runtime could not start.
pub(crate) fn spawn_detached(fut: impl Future<Output = ()> + Send + 'static) {
    if let Ok(handle) = handle() {
        drop(handle.spawn(fut));
    }
}

/// Runs `fut` on the runtime and blocks the calling thread until it is done. Never panics
/// inside a runtime; `fut` bounds its own time (every operation has a timeout).
pub(crate) fn block_on<T: Send + 'static>(
    fut: impl Future<Output = CacheResult<T>> + Send + 'static,
) -> CacheResult<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| BoxError::from("an etcd operation ended without an answer (it panicked)"))?
}

/// Runs `fut` on the runtime; the returned future waits for it from any executor. Dropping
/// the returned future aborts the operation.
pub(crate) async fn run<T: Send + 'static>(
    fut: impl Future<Output = CacheResult<T>> + Send + 'static,
) -> CacheResult<T> {
    let task = AbortOnDrop(handle()?.spawn(fut));
    match task.await {
        Ok(outcome) => outcome,
        Err(error) if error.is_panic() => {
            Err("an etcd operation ended without an answer (it panicked)".into())
        }
        Err(_) => Err("an etcd operation was cancelled".into()),
    }
}

/// A task that is aborted when its handle is dropped before it finished.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
