//! Giving memory back to the system once a burst of clients is gone.
//!
//! glibc's allocator keeps memory that many threads freed in its per-thread arenas instead of
//! returning it: after 200 clients had come and gone, `serve`'s resident memory stayed about
//! 5 MB above where it started and crept up a little with each burst, which reads as a leak
//! to whoever watches the service's memory. When the last open connection closes, `serve`
//! asks glibc to return what it can (`malloc_trim(0)`), at most once a second, on a blocking
//! thread. Elsewhere (musl, other systems) it does nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two trims.
const AT_MOST_EVERY: Duration = Duration::from_secs(1);

static LAST: Mutex<Option<Instant>> = Mutex::new(None);

/// Called when the last open connection closed: trims the allocator, unless it was trimmed
/// less than a second ago.
pub(super) fn after_last_connection() {
    let now = Instant::now();
    {
        // A plain value: consistent even if a holder panicked.
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < AT_MOST_EVERY) {
            return;
        }
        *last = Some(now);
    }
    drop(tokio::task::spawn_blocking(trim));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: `malloc_trim` only releases free memory of the allocator's own arenas; it
    // takes no pointer and is safe to call from any thread at any time.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::trace!(
        released = released != 0,
        "allocator trimmed after the last connection"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
