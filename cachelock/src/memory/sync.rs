//! What the slot protocol runs on: std's mutex, atomics and clock, or, in the unit tests of a
//! `RUSTFLAGS="--cfg loom"` build, loom's, so that `loom_tests.rs` can model-check it.
//!
//! Only the tests switch (`cfg(all(test, loom))`): loom is a dev-dependency, and a program
//! that runs its own loom tests builds every crate with `--cfg loom`, cachelock included,
//! which then stays the normal build.
//!
//! The normal build gets the std items themselves (re-exports, and `now` is
//! `Instant::now` inlined): no indirection. Under loom, a mutex or an atomic is a point where
//! loom switches threads, and the clock is a counter that only a test moves (`advance`),
//! so an expiry is one step of the model, taken between any two others.

#[cfg(all(test, loom))]
pub(super) use loom::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(all(test, loom))]
pub(super) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(super) use std::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(not(all(test, loom)))]
pub(super) use std::sync::{Mutex, MutexGuard};

use std::time::Instant;

/// The time every deadline of the memory store is read against.
#[cfg(not(all(test, loom)))]
#[inline(always)]
pub(super) fn now() -> Instant {
    Instant::now()
}

/// The model's clock: a fixed instant plus the milliseconds the test advanced it by (a loom
/// atomic, reset for every execution of the model).
#[cfg(all(test, loom))]
pub(super) fn now() -> Instant {
    use std::sync::atomic::Ordering;
    use std::sync::OnceLock;
    use std::time::Duration;

    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    start + Duration::from_millis(CLOCK_MS.load(Ordering::SeqCst))
}

#[cfg(all(test, loom))]
loom::lazy_static! {
    /// Milliseconds since the model's start.
    static ref CLOCK_MS: loom::sync::atomic::AtomicU64 = loom::sync::atomic::AtomicU64::new(0);
}

/// Moves the model's clock forward: every deadline at most `by` ahead is now past.
#[cfg(all(test, loom))]
pub(super) fn advance(by: std::time::Duration) {
    let by = u64::try_from(by.as_millis()).expect("a short advance");
    CLOCK_MS.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
}
