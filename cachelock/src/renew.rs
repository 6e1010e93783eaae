//! The shared renewer: one background thread that keeps every held lease alive.
//!
//! Guards register their lease here when they are created. The thread sleeps until the
//! earliest lease is due, then renews (owner-checked extend) every due lease, and marks a
//! lease lost when its renewal is refused or its TTL runs out. It is one thread for the
//! whole process, whatever the number of locks, started on first use.
//!
//! Registering is cheap enough for the hot path: a push onto a list under an uncontended
//! mutex, and no wake-up of the thread unless the new lease is due before the thread's next
//! planned wake (which for locks of one TTL happens once per TTL/3, not once per lock).
//! A lease released before it is due is taken back off the list at once when it is the last one
//! registered (a lock taken and released with none taken meanwhile), or else dropped at the
//! next compaction, without ever being renewed.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// A lease the renewer looks after.
pub(crate) trait Renewable: Send + Sync {
    /// `true` once the guard released or dropped the lock: stop looking after it.
    fn is_done(&self) -> bool;

    /// Does what is due at `now` (renew, or declare the lease lost); returns when to come
    /// back, or `None` to forget the lease.
    fn step(&self, now: Instant) -> Option<Instant>;
}

/// The guard of `lease` let go: if it is the last lease handed over (a lock taken and
/// released with no other taken meanwhile on any thread, the common case), take it back off
/// the list, so it is freed now instead of at the next compaction.
pub(crate) fn unwatch(lease: *const ()) {
    let renewer = renewer();
    let popped = {
        let mut state = renewer.lock();
        match state.pending.last() {
            Some((last, _)) if std::ptr::addr_eq(Arc::as_ptr(last), lease) => state.pending.pop(),
            _ => None,
        }
    };
    // Dropped outside the lock (it may be the last reference to the lease).
    drop(popped);
}

/// Hands `lease` to the renewer; its first step is due at `first_due`.
pub(crate) fn watch(lease: Arc<dyn Renewable>, first_due: Instant) {
    let renewer = renewer();
    let mut state = renewer.lock();
    if !state.started {
        state.started = true;
        if let Err(error) = std::thread::Builder::new()
            .name("cachelock-renew".to_owned())
            .spawn(move || renewer_loop(renewer))
        {
            state.started = false;
            tracing::error!(%error, "could not start the lock renewal thread; locks will not be renewed");
            return;
        }
    }
    if state.pending.len() >= state.compact_at {
        state.pending.retain(|(lease, _)| !lease.is_done());
        state.compact_at = (state.pending.len() * 2).max(MIN_COMPACT);
    }
    state.pending.push((lease, first_due));
    state.earliest_pending = Some(
        state
            .earliest_pending
            .map_or(first_due, |e| e.min(first_due)),
    );
    let wake = match state.sleep {
        Sleep::Busy => false,
        Sleep::Forever => true,
        Sleep::Until(at) => first_due < at,
    };
    if wake {
        renewer.wake.notify_one();
    }
}

const MIN_COMPACT: usize = 64;

struct Renewer {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    started: bool,
    pending: Vec<(Arc<dyn Renewable>, Instant)>,
    earliest_pending: Option<Instant>,
    compact_at: usize,
    sleep: Sleep,
}

#[derive(Clone, Copy)]
enum Sleep {
    Busy,
    Until(Instant),
    Forever,
}

impl Renewer {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a thread panicked while holding the lock
        // (every update is a single push or swap), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn renewer() -> &'static Renewer {
    static RENEWER: OnceLock<Renewer> = OnceLock::new();
    RENEWER.get_or_init(|| Renewer {
        state: Mutex::new(State {
            started: false,
            pending: Vec::new(),
            earliest_pending: None,
            compact_at: MIN_COMPACT,
            sleep: Sleep::Busy,
        }),
        wake: Condvar::new(),
    })
}

struct Scheduled {
    due: Instant,
    lease: Arc<dyn Renewable>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        self.due.cmp(&other.due)
    }
}

fn renewer_loop(renewer: &'static Renewer) {
    let mut heap: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
    let mut state = renewer.lock();
    loop {
        state.sleep = Sleep::Busy;
        let now = Instant::now();
        let pending_due = state.earliest_pending.is_some_and(|at| at <= now);
        let heap_due = heap.peek().is_some_and(|Reverse(top)| top.due <= now);
        if pending_due || heap_due {
            // Take every pending lease (most of them long released) and work without the lock.
            let pending = std::mem::take(&mut state.pending);
            state.earliest_pending = None;
            state.compact_at = MIN_COMPACT;
            drop(state);
            for (lease, due) in pending {
                if !lease.is_done() {
                    heap.push(Reverse(Scheduled { due, lease }));
                }
            }
            while let Some(Reverse(top)) = heap.peek() {
                let now = Instant::now();
                if top.due > now {
                    break;
                }
                let Some(Reverse(Scheduled { lease, .. })) = heap.pop() else {
                    break;
                };
                if lease.is_done() {
                    continue;
                }
                // A step may panic only through a user's cache: keep the thread alive.
                let step =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lease.step(now)));
                match step {
                    Ok(Some(due)) => heap.push(Reverse(Scheduled { due, lease })),
                    Ok(None) => {}
                    Err(_) => tracing::error!(
                        "a cache panicked while renewing a lock; that lock is no longer renewed"
                    ),
                }
            }
            state = renewer.lock();
            continue;
        }
        let next = match (heap.peek(), state.earliest_pending) {
            (Some(Reverse(top)), Some(pending)) => Some(top.due.min(pending)),
            (Some(Reverse(top)), None) => Some(top.due),
            (None, pending) => pending,
        };
        state = match next {
            Some(at) => {
                state.sleep = Sleep::Until(at);
                let timeout = at.saturating_duration_since(Instant::now());
                renewer
                    .wake
                    .wait_timeout(state, timeout)
                    .map(|(state, _)| state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0)
            }
            None => {
                state.sleep = Sleep::Forever;
                renewer
                    .wake
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        };
    }
}
