//! Giving back a claim whose future was dropped while the claim was in flight, or whose
//! answer was an error.
//!
//! An async claim is one round trip: the cache may store the token and then the caller drops
//! the future (`tokio::select!` with a shutdown signal, a request timeout, an aborted task)
//! before the answer arrives. Nobody then holds a guard for a key that is held, and it would
//! stay blocked for a whole TTL. [`InFlight`] is armed for the duration of the claim; dropped
//! while armed, it sends an owner-checked release in the background. The release only deletes
//! the key if it holds this claim's token, so it is harmless when the claim never landed. On
//! Redis, inside a runtime it goes over the same multiplexed connection as the claim, so the
//! server sees it after the claim.
//!
//! A claim that answered with an error (sync or async) is given back too
//! ([`give_back_failed`]): the error may have come after the server stored the token (a
//! reply lost with a connection that is not sent again, a response timeout), and the key
//! would otherwise stay blocked, by nobody, for a whole TTL. That release runs in the
//! background (the error is returned at once: a claim never waits longer than its TTL) and
//! is logged at debug level only: when the store is down it fails too, and the claim's
//! error already says so.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cache::Cache;

/// Armed while an async claim is in flight; see the module docs.
pub(crate) struct InFlight<'a, C: Cache + Clone + 'static> {
    cache: &'a C,
    key: &'a str,
    token: &'a str,
    armed: bool,
}

impl<'a, C: Cache + Clone + 'static> InFlight<'a, C> {
    /// Arms the give-back for the claim of `key` with `token`.
    pub(crate) fn new(cache: &'a C, key: &'a str, token: &'a str) -> Self {
        InFlight {
            cache,
            key,
            token,
            armed: true,
        }
    }

    /// The claim answered: nothing to give back.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl<C: Cache + Clone + 'static> Drop for InFlight<'_, C> {
    fn drop(&mut self) {
        if self.armed {
            give_back(self.cache, self.key, self.token, Why::Cancelled);
        }
    }
}

/// Why a claim is given back.
#[derive(Clone, Copy)]
enum Why {
    /// Its future was dropped while it was in flight.
    Cancelled,
    /// It answered with an error (the store is likely down: the caller reports that).
    Failed,
}

/// Give-backs of failed claims running right now, at most [`MAX_GIVE_BACKS`]: when the
/// store is down every claim fails, and a caller retrying in a loop must not pile up threads.
static GIVE_BACKS: AtomicUsize = AtomicUsize::new(0);
const MAX_GIVE_BACKS: usize = 4;

/// Gives back a claim of `key` with `token` that answered with an error, in case it landed
/// (owner-checked, so harmless if it did not); see the module docs. Never blocks (at most
/// `MAX_GIVE_BACKS` at a time; beyond that the claim is left to its TTL, logged at debug
/// level).
pub(crate) fn give_back_failed<C: Cache + Clone + 'static>(cache: &C, key: &str, token: &str) {
    give_back(cache, key, token, Why::Failed);
}

/// The one give-back: an owner-checked release that never blocks. Inside a tokio runtime
/// (its `rt` feature comes with `redis`): on a task. Outside one: a cancelled claim goes
/// through the cache's own non-blocking `release_detached`; a failed one, whose release
/// would fail quietly too when the store is down, on a short-lived thread.
fn give_back<C: Cache + Clone + 'static>(cache: &C, key: &str, token: &str, why: Why) {
    if matches!(why, Why::Failed) && GIVE_BACKS.fetch_add(1, Ordering::SeqCst) >= MAX_GIVE_BACKS {
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(key = %key, "failed lock claim not given back: too many give-backs running");
        return;
    }
    let (cache, key, token) = (cache.clone(), key.to_owned(), token.to_owned());
    #[cfg(feature = "redis")]
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let outcome = cache.release_async(&key, &token).await;
            given_back(&key, why, outcome);
        });
        return;
    }
    match why {
        Why::Cancelled => cache.release_detached(&key, &token, None),
        Why::Failed => {
            let spawned = std::thread::Builder::new()
                .name("cachelock-give-back".to_owned())
                .spawn(move || given_back(&key, why, cache.release(&key, &token)));
            if let Err(error) = spawned {
                GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
                tracing::debug!(%error, "failed lock claim not given back: no thread");
            }
        }
    }
}

/// Logs a give-back by outcome (a claim that never landed is not a warning, and a failed
/// claim's give-back failing too is only a debug event) and counts a failed one as done.
fn given_back(key: &str, why: Why, outcome: crate::CacheResult<bool>) {
    match (why, outcome) {
        (Why::Cancelled, Ok(true)) => {
            tracing::debug!(key = %key, "lock claim cancelled in flight; given back")
        }
        (Why::Cancelled, Ok(false)) => {
            tracing::trace!(key = %key, "lock claim cancelled before it landed")
        }
        (Why::Cancelled, Err(error)) => tracing::warn!(
            key = %key,
            %error,
            "lock claim cancelled in flight; giving it back failed, it stays until its TTL runs out"
        ),
        (Why::Failed, Ok(true)) => {
            tracing::debug!(key = %key, "lock claim failed after it landed; given back")
        }
        (Why::Failed, Ok(false)) => {
            tracing::trace!(key = %key, "failed lock claim had not landed")
        }
        (Why::Failed, Err(error)) => {
            tracing::debug!(key = %key, %error, "failed lock claim: giving it back failed too")
        }
    }
    if matches!(why, Why::Failed) {
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
    }
}
