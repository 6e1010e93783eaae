//! Async connections, one per tokio runtime.
//!
//! A `ConnectionManager` (or a cluster connection) runs its I/O on a task of the runtime
//! it was created in, and dies with that runtime. A cache is often shared by several
//! runtimes over its life (a `#[tokio::test]` per test, a process default cache used from a
//! `block_on` here and a `#[tokio::main]` there), so each runtime gets its own connection,
//! made on first use there. The few most recent runtimes are remembered.

use std::sync::Mutex;

use redis::{ErrorKind, RedisError, RedisResult};
use tokio::runtime::{Handle, Id};

const REMEMBERED_RUNTIMES: usize = 4;

pub(crate) struct PerRuntime<T> {
    slots: Mutex<Vec<(Id, T)>>,
}

impl<T: Clone> PerRuntime<T> {
    pub(crate) fn new() -> Self {
        PerRuntime {
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The connection of the current runtime, made by `make` on first use.
    ///
    /// An error (never a panic) outside a tokio runtime.
    pub(crate) fn get(&self, make: impl FnOnce() -> RedisResult<T>) -> RedisResult<T> {
        let id = Handle::try_current()
            .map_err(|_| {
                RedisError::from((
                    ErrorKind::Client,
                    "async Redis operations must run inside a tokio runtime",
                ))
            })?
            .id();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, con)) = slots.iter().find(|(slot, _)| *slot == id) {
            return Ok(con.clone());
        }
        let con = make()?;
        if slots.len() >= REMEMBERED_RUNTIMES {
            slots.remove(0);
        }
        slots.push((id, con.clone()));
        Ok(con)
    }
}
