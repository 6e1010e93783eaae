//! Releases nobody waits for: a dropped [`AsyncGuard`](crate::AsyncGuard), a claim whose
//! future was dropped in flight, a claim that answered with an error. One mechanism for all:
//! an owner-checked release (or, for `hold_at_least`, an owner-checked extend) that never
//! blocks the caller: on a task of the current tokio runtime, or on a short-lived thread
//! outside one. The outcome is logged through `tracing`.
//!
//! # Claims given back
//!
//! An async claim is one round trip: the store may store the token and then the caller drops
//! the future (`tokio::select!` with a shutdown signal, a request timeout, an aborted task)
//! before the answer arrives. Nobody then holds a guard for a key that is held, and it would
//! stay blocked for a whole TTL. [`InFlight`] is armed for the duration of the claim; dropped
//! while armed, it gives the claim back. The release only deletes the key if it holds this
//! claim's token, so it is harmless when the claim never landed. On Redis, inside a runtime
//! it goes over the same multiplexed connection as the claim, so the server sees it after the
//! claim.
//!
//! A claim that answered with an error (sync or async) is given back too
//! ([`give_back_failed`]): the error may have come after the store kept the token (a reply
//! lost with a connection that is not sent again, a response timeout), and the key would
//! otherwise stay blocked, by nobody, for a whole TTL. The error is returned at once (a
//! claim never waits longer than its TTL), and the give-back is logged at debug level only:
//! when the store is down it fails too, and the claim's error already says so. At most
//! [`MAX_GIVE_BACKS`] of those run at a time, so a caller retrying in a loop against a store
//! that is down does not pile up threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::log::{log_detached_release, log_give_back, GiveBack};
use crate::result::CacheResult;
use crate::target::Target;
use crate::token::Token;

/// What a detached job does to the key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Job {
    /// Delete it, owner-checked.
    Release,
    /// Keep it `hold_at_least` longer: set its TTL to this, owner-checked.
    Keep(Duration),
}

impl Job {
    fn run<T: Target>(self, target: &T, token: &str) -> CacheResult<bool> {
        match self {
            Job::Release => target.release(token, None),
            Job::Keep(keep) => target.extend(token, keep, None),
        }
    }

    async fn run_async<T: Target>(self, target: &T, token: &str) -> CacheResult<bool> {
        match self {
            Job::Release => target.release_async(token, None).await,
            Job::Keep(keep) => target.extend_async(token, keep, None).await,
        }
    }
}

/// Runs `job` on `target` for `token` without blocking: on the current tokio runtime, or on
/// a thread; `done` gets the outcome. `false` if no thread could be started (`done` is not
/// called then).
fn in_background<T: Target>(
    target: T,
    token: Token,
    job: Job,
    done: impl FnOnce(&str, CacheResult<bool>) + Send + 'static,
) -> bool {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let outcome = job.run_async(&target, token.as_str()).await;
            done(target.key(), outcome);
        });
        return true;
    }
    let spawned = std::thread::Builder::new()
        .name("cachelock-release".to_owned())
        .spawn(move || {
            let outcome = job.run(&target, token.as_str());
            done(target.key(), outcome);
        });
    match spawned {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(%error, "cannot start a thread to release a lock; it stays until its TTL runs out");
            false
        }
    }
}

/// Lets go of a lock whose guard was dropped in async code, without blocking: `job` on
/// `target`, logged with `held_for` like a guard's own release.
pub(crate) fn let_go<T: Target>(target: T, token: Token, job: Job, held_for: Duration) {
    in_background(target, token, job, move |key, outcome| {
        log_detached_release(key, Some(held_for), outcome);
    });
}

/// Give-backs of failed claims running right now, at most [`MAX_GIVE_BACKS`].
static GIVE_BACKS: AtomicUsize = AtomicUsize::new(0);
const MAX_GIVE_BACKS: usize = 4;

/// Gives back a claim of `target` by `token` that answered with an error, in case it
/// landed; see the module docs.
pub(crate) fn give_back_failed<T: Target>(target: &T, token: Token) {
    if GIVE_BACKS.fetch_add(1, Ordering::SeqCst) >= MAX_GIVE_BACKS {
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(key = %target.key(), "failed lock claim not given back: too many give-backs running");
        return;
    }
    let spawned = in_background(target.clone(), token, Job::Release, |key, outcome| {
        log_give_back(key, GiveBack::Failed, outcome);
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
    });
    if !spawned {
        GIVE_BACKS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Armed while an async claim is in flight; see the module docs.
pub(crate) struct InFlight<'a, T: Target> {
    target: &'a T,
    token: Token,
    armed: bool,
}

impl<'a, T: Target> InFlight<'a, T> {
    /// Arms the give-back of the claim of `target` by `token`.
    pub(crate) fn new(target: &'a T, token: Token) -> Self {
        InFlight {
            target,
            token,
            armed: true,
        }
    }

    /// The claim answered: nothing to give back.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl<T: Target> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            in_background(
                self.target.clone(),
                self.token,
                Job::Release,
                |key, outcome| {
                    log_give_back(key, GiveBack::Cancelled, outcome);
                },
            );
        }
    }
}
