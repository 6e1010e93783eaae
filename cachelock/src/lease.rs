//! [`Lease`]: what a guard holds, shared with the renewer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::claim::{Claimed, Handle};
use crate::overlap::Extends;
use crate::renew::Renewable;
use crate::result::CacheResult;
use crate::target::Target;
use crate::token::Token;

/// How a lease is kept: renewal and its bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Renew before the TTL lapses while the guard is held.
    pub(crate) renew: bool,
    /// Renewal never keeps the lock past `acquired_at + max_hold`.
    pub(crate) max_hold: Option<Duration>,
    /// A release before `acquired_at + hold_at_least` keeps the key until then.
    pub(crate) hold_at_least: Option<Duration>,
    /// How long before its local deadline the lock is declared lost; `None`: the default,
    /// [`default_lost_margin`].
    pub(crate) lost_margin: Option<Duration>,
}

/// The default lost margin of a lock with `ttl`: 1 % of the TTL + 20 ms, at most a quarter of
/// the TTL (see `Lock::lost_margin`).
pub(crate) fn default_lost_margin(ttl: Duration) -> Duration {
    (ttl / 100 + Duration::from_millis(20)).min(ttl / 4)
}

/// One held lock: the target (store and key), the owner token, and whether it is still
/// ours.
pub(crate) struct Lease<T> {
    pub(crate) target: T,
    pub(crate) token: Token,
    /// The fencing token the claim returned.
    pub(crate) fence: u64,
    /// The store's handle on the key, if it gave one (an in-process store): release and
    /// extend pass it back ([`Lease::release_now`], [`Lease::extend_now`]).
    pub(crate) handle: Option<Handle>,
    pub(crate) ttl: Duration,
    pub(crate) acquired_at: Instant,
    pub(crate) policy: Policy,
    /// Nanoseconds after `acquired_at` at which the lock runs out unless renewed.
    expires_after: AtomicU64,
    /// The extends in flight, for [`Lease::extended`] (see `overlap.rs`).
    extends: Extends,
    lost: AtomicBool,
    done: AtomicBool,
    lost_signal: Notify,
    /// What the guard's release did to the key, set under this lock when it lets go; a
    /// renewal that was under way meanwhile reads it when it returns (see [`Lease::finish`]).
    let_go: Mutex<LetGo>,
}

/// What the guard's release does to the key.
#[derive(Debug, Clone, Copy)]
enum LetGo {
    /// Not released yet.
    Held,
    /// Deleted (owner-checked), or found lost.
    Deleted,
    /// Kept until then (`hold_at_least`), by shortening its TTL.
    KeptUntil(Instant),
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<T: Target> Lease<T> {
    pub(crate) fn new(
        target: T,
        token: Token,
        claimed: Claimed,
        ttl: Duration,
        acquired_at: Instant,
        policy: Policy,
    ) -> Self {
        Lease {
            target,
            token,
            fence: claimed.fence,
            handle: claimed.handle,
            ttl,
            acquired_at,
            policy,
            expires_after: AtomicU64::new(nanos(ttl)),
            extends: Extends::default(),
            lost: AtomicBool::new(false),
            done: AtomicBool::new(false),
            lost_signal: Notify::new(),
            let_go: Mutex::new(LetGo::Held),
        }
    }

    /// Starts looking after this lease (renewal, lost detection) and returns it shared.
    pub(crate) fn watched(self) -> std::sync::Arc<Self> {
        let lease = std::sync::Arc::new(self);
        let first_due = lease.first_due();
        crate::renew::watch(lease.clone(), first_due);
        lease
    }

    /// The key as errors and logs name it.
    pub(crate) fn key(&self) -> &str {
        self.target.key()
    }

    /// Deletes the key if it still holds this lease's token (passing the store's handle
    /// back, if it gave one).
    pub(crate) fn release_now(&self) -> CacheResult<bool> {
        self.target
            .release(self.token.as_str(), self.handle.as_ref())
    }

    /// Sets the key's TTL to `ttl` if it still holds this lease's token.
    pub(crate) fn extend_now(&self, ttl: Duration) -> CacheResult<bool> {
        self.target
            .extend(self.token.as_str(), ttl, self.handle.as_ref())
    }

    /// Async twin of [`Lease::release_now`]: with a handle, the store is in-process and
    /// answers inline.
    pub(crate) async fn release_now_async(&self) -> CacheResult<bool> {
        match &self.handle {
            Some(_) => self.release_now(),
            None => self.target.release_async(self.token.as_str(), None).await,
        }
    }

    /// Async twin of [`Lease::extend_now`].
    pub(crate) async fn extend_now_async(&self, ttl: Duration) -> CacheResult<bool> {
        match &self.handle {
            Some(_) => self.extend_now(ttl),
            None => {
                self.target
                    .extend_async(self.token.as_str(), ttl, None)
                    .await
            }
        }
    }

    /// [`Lease::extend_now`], and on success records the new end ([`Lease::extended`]).
    pub(crate) fn renew(&self, ttl: Duration) -> CacheResult<bool> {
        let in_flight = self.extends.begin();
        let started = Instant::now();
        let outcome = self.extend_now(ttl);
        if matches!(outcome, Ok(true)) {
            self.extended(started, ttl, in_flight.overlapped());
        }
        outcome
    }

    /// Async twin of [`Lease::renew`].
    pub(crate) async fn renew_async(&self, ttl: Duration) -> CacheResult<bool> {
        let in_flight = self.extends.begin();
        let started = Instant::now();
        let outcome = self.extend_now_async(ttl).await;
        if matches!(outcome, Ok(true)) {
            self.extended(started, ttl, in_flight.overlapped());
        }
        outcome
    }

    /// When the renewer should first look at this lease.
    pub(crate) fn first_due(&self) -> Instant {
        if self.policy.renew {
            self.acquired_at + renew_interval(self.ttl)
        } else {
            self.lost_at()
        }
    }

    /// When the lock is declared lost unless renewed: its local deadline less the lost
    /// margin, so that the holder is told before the store can let another holder in (the
    /// local deadline counts from before the claim was sent, and the margin covers the time
    /// the signal takes to reach the work, and a local clock slightly faster than the
    /// store's).
    pub(crate) fn lost_at(&self) -> Instant {
        let margin = self
            .policy
            .lost_margin
            .unwrap_or_else(|| default_lost_margin(self.ttl));
        self.expires_at()
            .checked_sub(margin)
            .unwrap_or(self.acquired_at)
            .max(self.acquired_at)
    }

    /// When the lock runs out unless renewed (as far as this process knows).
    pub(crate) fn expires_at(&self) -> Instant {
        self.acquired_at + Duration::from_nanos(self.expires_after.load(Ordering::Acquire))
    }

    /// Records a successful extend that started at `started` and set the TTL to `ttl`. One
    /// that `overlapped` another extend of this lease (see `overlap.rs`) may have been run
    /// by the store before it, so it only ever moves the end earlier.
    fn extended(&self, started: Instant, ttl: Duration, overlapped: bool) {
        let after = nanos(started.saturating_duration_since(self.acquired_at) + ttl);
        if overlapped {
            self.expires_after.fetch_min(after, Ordering::AcqRel);
        } else {
            self.expires_after.store(after, Ordering::Release);
        }
    }

    /// `true` once the lock is known to be lost, or its TTL (less the lost margin) has run
    /// out unrenewed.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) || Instant::now() >= self.lost_at()
    }

    /// Declares the lock lost (once), wakes every waiter of [`Lease::lost`], and logs it.
    pub(crate) fn mark_lost(&self, why: &'static str) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::warn!(key = %self.key(), held_for = ?self.acquired_at.elapsed(), why, "lock lost");
            self.lost_signal.notify_waiters();
        }
    }

    /// Completes when the lock is lost: declared so by the renewer (a refused renewal), or
    /// [`lost_at`](Lease::lost_at) reached without a renewal.
    ///
    /// On a Tokio runtime it wakes for `lost_at` on its own timer instead of waiting for the
    /// renewer to declare it: the renewer is one thread for every lease, and while it waits
    /// for a renewal's reply from a store that does not answer (a network partition: up to
    /// the store's response timeout) it declares nothing. The partition test
    /// (`tests/partition.rs`) caught `lost()` firing at the deadline instead of the margin
    /// before it, for that reason.
    pub(crate) async fn lost(&self) {
        loop {
            let mut notified = std::pin::pin!(self.lost_signal.notified());
            notified.as_mut().enable();
            if self.lost.load(Ordering::Acquire) {
                return;
            }
            // Read again on every turn: a renewal moves it.
            let lost_at = self.lost_at();
            if Instant::now() >= lost_at {
                self.mark_lost("its TTL (less the lost margin) ran out before it could be renewed");
                return;
            }
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = tokio::time::timeout_at(lost_at.into(), notified).await;
            } else {
                // No timer to arm outside Tokio: the renewer declares it.
                notified.await;
            }
        }
    }

    /// The guard is letting go: the renewer stops looking after this lease.
    ///
    /// A renewal already under way when this is called still completes. It is owner-checked,
    /// so it can never touch another holder's key, and after a delete it finds nothing to
    /// extend. After a `hold_at_least` shortening, though, it could land last and set the
    /// TTL back to the full TTL (longer, or shorter, than the hold asked). So the renewer
    /// reads what the release did once its extend returns ([`Lease::after_renewal`]) and,
    /// if the key is being kept, sets its TTL back to the end of the hold window. The
    /// release itself never waits for the renewal: that could block an async runtime thread
    /// for a network round trip.
    pub(crate) fn finish(&self) {
        // Without `hold_at_least` a release always deletes, and `done` says all the renewer
        // needs (`after_renewal`): no mutex on the common path.
        if let Some(hold) = self.policy.hold_at_least {
            let mut let_go = self.let_go_state();
            *let_go = match self.keep_for() {
                Some(_) => LetGo::KeptUntil(self.acquired_at + hold),
                None => LetGo::Deleted,
            };
        }
        self.done.store(true, Ordering::Release);
        crate::renew::unwatch(std::ptr::from_ref(self).cast());
    }

    fn let_go_state(&self) -> MutexGuard<'_, LetGo> {
        // A plain value: consistent even if a holder of the lock panicked.
        self.let_go.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the renewer after each extend returns: if the guard released meanwhile and
    /// keeps the key (`hold_at_least`), the extend may have landed after the release's own
    /// shortening, so the TTL is set back to the end of the hold window (or the key deleted,
    /// owner-checked, if that has passed). `true` if the guard had released.
    fn after_renewal(&self) -> bool {
        if self.policy.hold_at_least.is_none() {
            // Released means deleted (see `finish`).
            return self.done.load(Ordering::Acquire);
        }
        let let_go = *self.let_go_state();
        match let_go {
            LetGo::Held => false,
            LetGo::Deleted => true,
            LetGo::KeptUntil(until) => {
                let left = until.saturating_duration_since(Instant::now());
                let outcome = if left.is_zero() {
                    self.release_now()
                } else {
                    self.extend_now(left)
                };
                match outcome {
                    Ok(_) => {
                        tracing::debug!(key = %self.key(), ?left, "a renewal crossed the release; the hold_at_least TTL is set again")
                    }
                    Err(error) => {
                        tracing::warn!(key = %self.key(), %error, "a renewal crossed the release and setting the hold_at_least TTL again failed; the key may stay up to one TTL")
                    }
                }
                true
            }
        }
    }

    /// If a release now must keep the key alive (`hold_at_least`), for how much longer.
    pub(crate) fn keep_for(&self) -> Option<Duration> {
        let hold = self.policy.hold_at_least?;
        let left = hold.checked_sub(self.acquired_at.elapsed())?;
        (!left.is_zero()).then_some(left)
    }
}

/// Renew when a third of the TTL has passed: two more attempts fit before it runs out.
fn renew_interval(ttl: Duration) -> Duration {
    ttl / 3
}

/// After a failed renewal, try again this soon (but never after the lock runs out).
fn retry_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

impl<T: Target> Renewable for Lease<T> {
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn step(&self, now: Instant) -> Option<Instant> {
        let lost_at = self.lost_at();
        if now >= lost_at {
            self.mark_lost("its TTL (less the lost margin) ran out before it could be renewed");
            return None;
        }
        let mut ttl = self.ttl;
        if let Some(max_hold) = self.policy.max_hold {
            let left = (self.acquired_at + max_hold).saturating_duration_since(now);
            if left.is_zero() {
                tracing::debug!(key = %self.key(), ?max_hold, "max_hold reached; renewal stops");
                return Some(lost_at);
            }
            ttl = ttl.min(left);
        }
        if !self.policy.renew {
            return Some(lost_at);
        }
        let outcome = self.renew(ttl);
        if self.after_renewal() {
            return None;
        }
        match outcome {
            Ok(true) => {
                tracing::trace!(key = %self.key(), ?ttl, held_for = ?self.acquired_at.elapsed(), "lock renewed");
                Some(now + renew_interval(ttl).max(Duration::from_millis(1)))
            }
            Ok(false) => {
                self.mark_lost("renewal found the key expired or held by another owner");
                None
            }
            Err(error) => {
                tracing::warn!(key = %self.key(), %error, "renewing lock failed; retrying");
                Some((now + retry_interval(self.ttl)).min(self.lost_at()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_lost_margin;
    use std::time::Duration;

    #[test]
    fn the_default_margin_is_one_percent_and_20_ms_at_most_a_quarter_of_the_ttl() {
        assert_eq!(
            default_lost_margin(Duration::from_secs(60)),
            Duration::from_millis(620)
        );
        assert_eq!(
            default_lost_margin(Duration::from_millis(150)),
            Duration::from_micros(21_500)
        );
        assert_eq!(
            default_lost_margin(Duration::from_millis(40)),
            Duration::from_millis(10)
        );
    }
}
