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
        if !self.armed {
            return;
        }
        #[cfg(not(feature = "redis"))]
        self.cache.release_detached(self.key, self.token, None);
        #[cfg(feature = "redis")]
        self.give_back();
    }
}

#[cfg(feature = "redis")]
impl<C: Cache + Clone + 'static> InFlight<'_, C> {
    /// Inside a tokio runtime (its `rt` feature comes with `redis`): an owner-checked release
    /// on a task, logged by outcome (a claim that never landed is not a warning). Outside
    /// one: the cache's own non-blocking release.
    fn give_back(&self) {
        let (cache, key, token) = (
            self.cache.clone(),
            self.key.to_owned(),
            self.token.to_owned(),
        );
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    match cache.release_async(&key, &token).await {
                        Ok(true) => {
                            tracing::debug!(key = %key, "lock claim cancelled in flight; given back")
                        }
                        Ok(false) => {
                            tracing::trace!(key = %key, "lock claim cancelled before it landed")
                        }
                        Err(error) => tracing::warn!(
                            key = %key,
                            %error,
                            "lock claim cancelled in flight; giving it back failed, it stays until its TTL runs out"
                        ),
                    }
                });
            }
            Err(_) => cache.release_detached(&key, &token, None),
        }
    }
}

/// Give-backs of failed claims running right now, at most [`MAX_GIVE_BACKS`]: when the
/// store is down every claim fails, and a caller retrying in a loop must not pile up threads.
static GIVE_BACKS: AtomicUsize = AtomicUsize::new(0);
const MAX_GIVE_BACKS: usize = 4;

/// Gives back a claim of `key` with `token` that answered with an error, in case it landed
/// (owner-checked, so harmless if it did not); see the module docs. Never blocks: on a task
/// inside a tokio runtime, otherwise on a short-lived thread (at most `MAX_GIVE_BACKS` at a
/// time; beyond that the claim is left to its TTL, logged at debug level).
pub(crate) fn give_back_failed<C: Cache + Clone + 'static>(cache: &C, key: &str, token: &str) {
    if GIVE_BACKS.fetch_add(1, Ordering::SeqCst) >= MAX_GIVE_BACKS {
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(key = %key, "failed lock claim not given back: too many give-backs running");
        return;
    }
    let (cache, key, token) = (cache.clone(), key.to_owned(), token.to_owned());
    #[cfg(feature = "redis")]
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            log_give_back(&key, cache.release_async(&key, &token).await);
            GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
        });
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cachelock-give-back".to_owned())
        .spawn(move || {
            log_give_back(&key, cache.release(&key, &token));
            GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(error) = spawned {
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(%error, "failed lock claim not given back: no thread");
    }
}

fn log_give_back(key: &str, outcome: crate::CacheResult<bool>) {
    match outcome {
        Ok(true) => tracing::debug!(key = %key, "lock claim failed after it landed; given back"),
        Ok(false) => tracing::trace!(key = %key, "failed lock claim had not landed"),
        Err(error) => {
            tracing::debug!(key = %key, %error, "failed lock claim: giving it back failed too")
        }
    }
}
