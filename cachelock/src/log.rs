//! The events of releases nobody waits for (a dropped async guard, a claim given back),
//! with the same messages as a guard's own release.

use std::time::Duration;

use crate::result::CacheResult;

/// Logs the outcome of a release nobody waits for, with how long the lock was held when
/// known: the same events as a guard's release.
pub(crate) fn log_detached_release(
    key: &str,
    held_for: Option<Duration>,
    outcome: CacheResult<bool>,
) {
    let held_for = held_for.map(tracing::field::debug);
    match outcome {
        Ok(true) => tracing::debug!(key = %key, held_for, "lock released"),
        // The guard's own message: the TTL ran out, or another owner took the key.
        Ok(false) => tracing::warn!(key = %key, held_for, "lock was lost before release"),
        Err(error) => tracing::error!(
            key = %key,
            held_for,
            error = %error,
            "releasing lock failed; it stays until its TTL runs out"
        ),
    }
}

/// Why a claim is given back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GiveBack {
    /// Its future was dropped while it was in flight.
    Cancelled,
    /// It answered with an error (the store is likely down: the caller reports that).
    Failed,
}

/// Logs a give-back by outcome: a claim that never landed is not a warning, and a failed
/// claim's give-back failing too is only a debug event.
pub(crate) fn log_give_back(key: &str, why: GiveBack, outcome: CacheResult<bool>) {
    match (why, outcome) {
        (GiveBack::Cancelled, Ok(true)) => {
            tracing::debug!(key = %key, "lock claim cancelled in flight; given back")
        }
        (GiveBack::Cancelled, Ok(false)) => {
            tracing::trace!(key = %key, "lock claim cancelled before it landed")
        }
        (GiveBack::Cancelled, Err(error)) => tracing::warn!(
            key = %key,
            %error,
            "lock claim cancelled in flight; giving it back failed, it stays until its TTL runs out"
        ),
        (GiveBack::Failed, Ok(true)) => {
            tracing::debug!(key = %key, "lock claim failed after it landed; given back")
        }
        (GiveBack::Failed, Ok(false)) => {
            tracing::trace!(key = %key, "failed lock claim had not landed")
        }
        (GiveBack::Failed, Err(error)) => {
            tracing::debug!(key = %key, %error, "failed lock claim: giving it back failed too")
        }
    }
}
