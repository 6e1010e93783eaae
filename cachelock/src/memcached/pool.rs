//! Idle connections: one stack for the sync path, one per tokio runtime for the async path
//! (a tokio socket belongs to the runtime that opened it).
//!
//! An operation takes a connection (or opens one), runs on it alone, and puts it back only
//! if it succeeded: after an error or a timeout the connection's state is unknown (a late
//! reply could be read as the next command's), so it is closed. A future dropped mid-way
//! drops its connection with it. At most `max_idle` connections are kept per stack.

use std::sync::{Mutex, MutexGuard};

use tokio::runtime::{Handle, Id};

use super::conn::{AsyncConn, SyncConn};

/// How many runtimes' stacks are kept (the most recent ones).
const REMEMBERED_RUNTIMES: usize = 4;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The contents are consistent at every step; a panic elsewhere cannot break them.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sync connections.
pub(super) struct SyncPool {
    idle: Mutex<Vec<SyncConn>>,
    max_idle: usize,
}

impl SyncPool {
    pub(super) fn new(max_idle: usize) -> Self {
        SyncPool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    pub(super) fn take(&self) -> Option<SyncConn> {
        lock(&self.idle).pop()
    }

    pub(super) fn put(&self, con: SyncConn) {
        let mut idle = lock(&self.idle);
        if idle.len() < self.max_idle {
            idle.push(con);
        }
    }

    /// Closes every idle connection (they went to a server that is gone).
    pub(super) fn clear(&self) {
        let drained: Vec<SyncConn> = std::mem::take(&mut *lock(&self.idle));
        drop(drained);
    }

    pub(super) fn idle_count(&self) -> usize {
        lock(&self.idle).len()
    }
}

/// The async connections, by runtime.
pub(super) struct AsyncPools {
    runtimes: Mutex<Vec<(Id, Vec<AsyncConn>)>>,
    max_idle: usize,
}

impl AsyncPools {
    pub(super) fn new(max_idle: usize) -> Self {
        AsyncPools {
            runtimes: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// The current runtime's id; an error (never a panic) outside a runtime.
    pub(super) fn runtime() -> std::io::Result<Id> {
        Handle::try_current().map(|h| h.id()).map_err(|_| {
            std::io::Error::other("async memcached operations must run inside a tokio runtime")
        })
    }

    pub(super) fn take(&self, runtime: Id) -> Option<AsyncConn> {
        let mut runtimes = lock(&self.runtimes);
        runtimes
            .iter_mut()
            .find(|(id, _)| *id == runtime)
            .and_then(|(_, idle)| idle.pop())
    }

    pub(super) fn put(&self, runtime: Id, con: AsyncConn) {
        let mut runtimes = lock(&self.runtimes);
        if let Some((_, idle)) = runtimes.iter_mut().find(|(id, _)| *id == runtime) {
            if idle.len() < self.max_idle {
                idle.push(con);
            }
            return;
        }
        if self.max_idle == 0 {
            return;
        }
        if runtimes.len() >= REMEMBERED_RUNTIMES {
            runtimes.remove(0);
        }
        runtimes.push((runtime, vec![con]));
    }

    /// Closes the current runtime's idle connections.
    pub(super) fn clear(&self, runtime: Id) {
        let drained = {
            let mut runtimes = lock(&self.runtimes);
            runtimes
                .iter_mut()
                .find(|(id, _)| *id == runtime)
                .map(|(_, idle)| std::mem::take(idle))
        };
        drop(drained);
    }
}
