//! [`Slot`]: the per-key state the in-memory cache keeps inside a moka value.
//!
//! # Why a held lock is never handed out twice
//!
//! moka maps each key to an `Arc<Slot>`; the slot's mutex guards the key's owner (token
//! and label, typed: nothing is formatted on a claim), deadline and a `dead` flag. Every operation on a key runs under that mutex.
//!
//! 1. A slot enters the map only through moka's per-key compute, and only when the key has no
//!    entry (`MemoryCache::with_slot`). A slot leaves the map only through the sweep's
//!    per-key compute, which first marks it `dead` under its mutex, and only if it holds no
//!    live value (`sweep.rs`). Nothing else removes an entry: the moka cache has no capacity
//!    bound, no expiry and no time-to-idle, and `invalidate`/`remove` are never called. So a
//!    slot holding a live value stays the key's one entry until that value is released,
//!    deleted or expired.
//! 2. moka serializes the computes of one key, so the key has at most one slot that is not
//!    dead: the one in the map.
//! 3. A reader that fetched a slot just before the sweep removed it finds it `dead` under the
//!    mutex and starts again (from the map); it never claims, writes or frees a dead slot.
//! 4. A claim succeeds only under the slot's mutex, on a slot that is not dead and holds no
//!    live value. So two claims of one key are serialized by one mutex, and the second one
//!    sees the first one's value until it is released or its deadline passes.
//!
//! Hence one holder per key at any moment, exactly as with one atomic compute per claim, at
//! the price of a moka read and an uncontended mutex on the hot path instead of two computes.
//!
//! `loom_tests.rs` checks this with loom over every interleaving of 2–3 threads (claims,
//! releases and extends through the handle and by lookup, expiry, the sweep, a retake), with
//! moka replaced by a stand-in of the same contract (`loom_map.rs`).

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use crate::clock::deadline_after;
use crate::token::Token;

use super::sync::{self, Mutex, MutexGuard};

/// The moka cache under a `MemoryCache`: one slot per key.
#[cfg(not(all(test, loom)))]
pub(super) type Moka = moka::sync::Cache<String, std::sync::Arc<Slot>>;
/// Under loom, a stand-in with the contract the slot protocol relies on (`loom_map.rs`).
#[cfg(all(test, loom))]
pub(super) type Moka = super::loom_map::Map<std::sync::Arc<Slot>>;

/// One key's state.
pub(super) struct Slot {
    state: Mutex<State>,
}

/// Who holds a key: the owner token and the label, as the claim gave them.
pub(super) struct Owner {
    pub(super) token: Token,
    pub(super) label: Option<Box<str>>,
}

/// What a [`Slot`]'s mutex guards.
pub(super) struct State {
    /// The holder, `None` once released or deleted.
    pub(super) owner: Option<Owner>,
    /// When the hold runs out (meaningful while `owner` is set).
    pub(super) deadline: Instant,
    /// Removed from the map: never read or written again (point 3 above).
    pub(super) dead: bool,
    /// The sweep generation in which the slot last became free (see `sweep.rs`).
    pub(super) freed_in: u64,
}

impl Slot {
    pub(super) fn new() -> Self {
        Slot {
            state: Mutex::new(State::free_since(0)),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the mutex (only copies and comparisons), so a poisoned
        // mutex still holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// A state with no holder, free since sweep generation `generation`.
    pub(super) fn free_since(generation: u64) -> Self {
        State {
            owner: None,
            deadline: sync::now(),
            dead: false,
            freed_in: generation,
        }
    }

    /// The holder, if there is one and its deadline has not passed.
    pub(super) fn live(&self, now: Instant) -> Option<&Owner> {
        self.owner.as_ref().filter(|_| now < self.deadline)
    }

    /// Stores `token` (and `label`) for `ttl` from `now` if the key holds no live lock;
    /// `true` if it did. Only a label allocates.
    pub(super) fn claim(
        &mut self,
        token: Token,
        label: Option<&str>,
        now: Instant,
        ttl: Duration,
    ) -> bool {
        if self.live(now).is_some() {
            return false;
        }
        self.owner = Some(Owner {
            token,
            label: label.map(Box::from),
        });
        self.deadline = deadline_after(now, ttl);
        true
    }

    /// Frees the key if its live holder is `token`; `true` if it did.
    pub(super) fn release(&mut self, token: &str, now: Instant, generation: u64) -> bool {
        let owned = self.is_held_by(token, now);
        if owned {
            self.free(generation);
        }
        owned
    }

    /// Sets the deadline to `ttl` from `now` if the live holder is `token`.
    pub(super) fn extend(&mut self, token: &str, now: Instant, ttl: Duration) -> bool {
        let owned = self.is_held_by(token, now);
        if owned {
            self.deadline = deadline_after(now, ttl);
        }
        owned
    }

    fn is_held_by(&self, token: &str, now: Instant) -> bool {
        self.live(now)
            .is_some_and(|owner| owner.token.as_str() == token)
    }

    /// Forgets the holder; `generation` is the sweep generation it became free in.
    pub(super) fn free(&mut self, generation: u64) {
        self.owner = None;
        self.freed_in = generation;
    }
}
