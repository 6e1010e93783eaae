//! Acquisition, written once for [`Lock`](crate::Lock) and
//! [`TreeLock`](crate::tree::TreeLock): the attempt, the backoff, the wait for a release,
//! the give-back of a failed claim and the late-grant check are one small state machine
//! ([`Attempts`]), stepped by a sync and an async driver ([`acquire`], [`acquire_async`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::backoff::Backoff;
use crate::claim::{Claim, Claimed};
use crate::detached::{give_back_failed, InFlight};
use crate::error::Error;
use crate::guard::Holding;
use crate::lease::Lease;
use crate::result::CacheResult;
use crate::settings::Settings;
use crate::target::{Kind, Target};

/// The attempts of one acquisition of `target`.
pub(crate) struct Attempts<'s, T> {
    target: T,
    settings: &'s Settings,
    /// `None`: one attempt only.
    backoff: Option<Backoff>,
}

/// What to do after an attempt.
pub(crate) enum Next {
    /// The claim won: make the lease.
    Won(Claimed),
    /// Held: wait this long for a release (the target's wait), then try again.
    Wait(Duration),
    /// The store granted the claim only after its whole TTL: give it back (owner-checked),
    /// then fail with this error.
    Late(Error),
    Failed(Error),
}

impl<'s, T: Target> Attempts<'s, T> {
    /// Attempts on `target`: one, or until `wait` has passed.
    pub(crate) fn new(target: T, settings: &'s Settings, wait: Option<Duration>) -> Self {
        let backoff = wait.map(|wait| Backoff::until(Instant::now() + wait.min(crate::MAX_TTL)));
        Attempts {
            backoff,
            target,
            settings,
        }
    }

    /// The next claim, with a fresh token.
    ///
    /// The TTL starts when the store keeps the token, a little after the claim is made: the
    /// lease counts from [`Claim::made_at`], so every local estimate of the expiry is early,
    /// never late.
    pub(crate) fn claim(&self) -> Claim<'s> {
        if T::KIND == Kind::Key {
            tracing::trace!(key = %self.target.key(), "lock attempt");
        }
        Claim::new(self.settings.ttl)
            .with_fencing(self.settings.fencing || T::KIND == Kind::Tree)
            .with_label_opt(self.settings.label.as_deref())
    }

    /// What the claim's `result` means.
    pub(crate) fn next(&mut self, claim: &Claim<'_>, result: CacheResult<Option<Claimed>>) -> Next {
        let key = self.target.key();
        match result {
            Ok(Some(claimed)) if is_late(&claimed, claim.made_at(), self.settings.ttl) => {
                // The grant came back after the whole TTL (retries, a reconnect, a stalled
                // server): the key may already have run out, so the hold cannot be trusted.
                Next::Late(late_grant(key, self.settings.ttl))
            }
            Ok(Some(claimed)) => {
                match T::KIND {
                    Kind::Key => {
                        tracing::debug!(key = %key, fence = claimed.fence, "lock acquired")
                    }
                    Kind::Tree => {
                        tracing::debug!(key = %key, fence = claimed.fence, "tree lock acquired")
                    }
                }
                Next::Won(claimed)
            }
            Ok(None) => {
                match T::KIND {
                    Kind::Key => tracing::debug!(key = %key, "lock contended"),
                    Kind::Tree => tracing::debug!(key = %key, "tree lock contended"),
                }
                match self.backoff.as_mut().and_then(Backoff::next_pause) {
                    Some(pause) => {
                        match T::KIND {
                            Kind::Key => tracing::trace!(key = %key, ?pause, "lock held; waiting"),
                            Kind::Tree => {
                                tracing::trace!(key = %key, ?pause, "tree lock held; waiting")
                            }
                        }
                        Next::Wait(pause)
                    }
                    None => Next::Failed(Error::Locked {
                        key: key.to_owned(),
                    }),
                }
            }
            Err(source) => {
                // The error may have come after the claim landed: give it back.
                give_back_failed(&self.target, claim.owner_token());
                Next::Failed(Error::backend(key, source))
            }
        }
    }

    /// The lease of the claim that won, looked after by the renewer.
    pub(crate) fn won(self, claim: &Claim<'_>, claimed: Claimed) -> Arc<Lease<T>> {
        Lease::new(
            self.target,
            claim.owner_token(),
            claimed,
            self.settings.ttl,
            claim.made_at(),
            self.settings.policy,
        )
        .watched()
    }
}

/// Takes `target`: one attempt, or waiting up to `wait` (sync).
pub(crate) fn acquire<T: Target>(
    target: T,
    settings: &Settings,
    wait: Option<Duration>,
) -> Result<Arc<Lease<T>>, Error> {
    let mut attempts = Attempts::new(target, settings, wait);
    loop {
        let claim = attempts.claim();
        let result = attempts.target.claim(&claim);
        match attempts.next(&claim, result) {
            Next::Won(claimed) => return Ok(attempts.won(&claim, claimed)),
            Next::Wait(pause) => attempts.target.wait(pause),
            Next::Late(error) => {
                let _ = attempts.target.release(claim.token(), None);
                return Err(error);
            }
            Next::Failed(error) => return Err(error),
        }
    }
}

/// Async twin of [`acquire`]: a claim whose future is dropped in flight is given back.
pub(crate) async fn acquire_async<T: Target>(
    target: T,
    settings: &Settings,
    wait: Option<Duration>,
) -> Result<Arc<Lease<T>>, Error> {
    let mut attempts = Attempts::new(target, settings, wait);
    loop {
        let claim = attempts.claim();
        let in_flight = InFlight::new(&attempts.target, claim.owner_token());
        let result = attempts.target.claim_async(&claim).await;
        in_flight.disarm();
        match attempts.next(&claim, result) {
            Next::Won(claimed) => return Ok(attempts.won(&claim, claimed)),
            Next::Wait(pause) => attempts.target.wait_async(pause).await,
            Next::Late(error) => {
                let _ = attempts.target.release_async(claim.token(), None).await;
                return Err(error);
            }
            Next::Failed(error) => return Err(error),
        }
    }
}

/// How long `run` waits: `None` (one attempt) for a zero wait.
fn run_wait(settings: &Settings) -> Option<Duration> {
    (!settings.wait.is_zero()).then_some(settings.wait)
}

/// Runs `f` while holding `target`, then releases it (also when `f` panics: the guard's
/// drop releases). A release that finds the lock lost or fails is logged, and `f`'s result
/// returned all the same: it has already happened.
pub(crate) fn run<T: Target, R>(
    target: T,
    settings: &Settings,
    f: impl FnOnce() -> R,
) -> Result<R, Error> {
    let held = Holding::sync(acquire(target, settings, run_wait(settings))?);
    let out = f();
    held.release_logged();
    Ok(out)
}

/// Async twin of [`run`]: a panic in `fut` releases the lock, then continues; a dropped
/// future's guard releases without blocking.
pub(crate) async fn run_async<T: Target, F: Future>(
    target: T,
    settings: &Settings,
    fut: F,
) -> Result<F::Output, Error> {
    let held = Holding::detached(acquire_async(target, settings, run_wait(settings)).await?);
    let out = AssertUnwindSafe(fut).catch_unwind().await;
    held.release_logged_async().await;
    match out {
        Ok(value) => Ok(value),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Whether a grant came back only after the lock's whole TTL (counted from `started`, when
/// the claim was made).
/// A store that gave a handle is in-process and started the TTL when it stored the key,
/// after `started` ([`LockStore::claim`](crate::LockStore::claim)): the guard's estimate of
/// the expiry is early, never late, however long the call took, so no clock is read for it.
fn is_late(claimed: &Claimed, started: Instant, ttl: Duration) -> bool {
    claimed.handle.is_none() && started.elapsed() >= ttl
}

/// The error for a claim that the store granted only after the lock's whole TTL had passed
/// on this side: a timeout ([`Error::is_timeout`]), like a claim that never answered.
fn late_grant(key: &str, ttl: Duration) -> Error {
    tracing::warn!(key = %key, ?ttl, "lock granted only after its TTL; released again");
    let source = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the store granted the lock only after its TTL ({ttl:?}) had passed; it was released again"
        ),
    );
    Error::backend(key, source)
}
