//! [`Lease`]: what a guard holds, shared with the renewer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::cache::Cache;
use crate::renew::Renewable;
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
}

/// One held lock: the cache, the key, the owner token, and whether it is still ours.
pub(crate) struct Lease<C> {
    pub(crate) cache: C,
    pub(crate) key: String,
    pub(crate) token: Token,
    /// The fencing token the claim returned.
    pub(crate) fence: u64,
    pub(crate) ttl: Duration,
    pub(crate) acquired_at: Instant,
    pub(crate) policy: Policy,
    /// Nanoseconds after `acquired_at` at which the lock runs out unless renewed.
    expires_after: AtomicU64,
    lost: AtomicBool,
    done: AtomicBool,
    lost_signal: Notify,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<C: Cache> Lease<C> {
    pub(crate) fn new(
        cache: C,
        key: String,
        token: Token,
        fence: u64,
        ttl: Duration,
        acquired_at: Instant,
        policy: Policy,
    ) -> Self {
        Lease {
            cache,
            key,
            token,
            fence,
            ttl,
            acquired_at,
            policy,
            expires_after: AtomicU64::new(nanos(ttl)),
            lost: AtomicBool::new(false),
            done: AtomicBool::new(false),
            lost_signal: Notify::new(),
        }
    }

    /// When the renewer should first look at this lease.
    pub(crate) fn first_due(&self) -> Instant {
        if self.policy.renew {
            self.acquired_at + renew_interval(self.ttl)
        } else {
            self.expires_at()
        }
    }

    /// When the lock runs out unless renewed (as far as this process knows).
    pub(crate) fn expires_at(&self) -> Instant {
        self.acquired_at + Duration::from_nanos(self.expires_after.load(Ordering::Acquire))
    }

    /// Records a successful extend that started at `started` and set the TTL to `ttl`.
    pub(crate) fn extended(&self, started: Instant, ttl: Duration) {
        let after = started.saturating_duration_since(self.acquired_at) + ttl;
        self.expires_after.store(nanos(after), Ordering::Release);
    }

    /// `true` once the lock is known to be lost, or its TTL has run out unrenewed.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) || Instant::now() >= self.expires_at()
    }

    /// Declares the lock lost (once), wakes every waiter of [`Lease::lost`], and logs it.
    pub(crate) fn mark_lost(&self, why: &'static str) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        if !self.lost.swap(true, Ordering::AcqRel) {
            tracing::warn!(key = %self.key, held_for = ?self.acquired_at.elapsed(), why, "lock lost");
            self.lost_signal.notify_waiters();
        }
    }

    /// Completes when the lock is lost.
    pub(crate) async fn lost(&self) {
        loop {
            let mut notified = std::pin::pin!(self.lost_signal.notified());
            notified.as_mut().enable();
            if self.lost.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// The guard is letting go: the renewer stops looking after this lease.
    ///
    /// A renewal already under way when this is called still completes. It is owner-checked,
    /// so it can never touch another holder's key, and after a delete it finds nothing to
    /// extend; after a `hold_at_least` shortening it may restore the full TTL, so the key can
    /// then stay (ours, unused) up to one TTL longer than `hold_at_least` asked. Waiting for
    /// the renewal instead could block an async runtime thread for a network round trip.
    pub(crate) fn finish(&self) {
        self.done.store(true, Ordering::Release);
        crate::renew::unwatch(std::ptr::from_ref(self).cast());
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

impl<C: Cache> Renewable for Lease<C> {
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn step(&self, now: Instant) -> Option<Instant> {
        let expires_at = self.expires_at();
        if now >= expires_at {
            self.mark_lost("its TTL ran out before it could be renewed");
            return None;
        }
        let mut ttl = self.ttl;
        if let Some(max_hold) = self.policy.max_hold {
            let left = (self.acquired_at + max_hold).saturating_duration_since(now);
            if left.is_zero() {
                tracing::debug!(key = %self.key, ?max_hold, "max_hold reached; renewal stops");
                return Some(expires_at);
            }
            ttl = ttl.min(left);
        }
        if !self.policy.renew {
            return Some(expires_at);
        }
        match self.cache.extend(&self.key, self.token.as_str(), ttl) {
            Ok(true) => {
                self.extended(now, ttl);
                tracing::trace!(key = %self.key, ?ttl, held_for = ?self.acquired_at.elapsed(), "lock renewed");
                Some(now + renew_interval(ttl).max(Duration::from_millis(1)))
            }
            Ok(false) => {
                self.mark_lost("renewal found the key expired or held by another owner");
                None
            }
            Err(error) => {
                tracing::warn!(key = %self.key, %error, "renewing lock failed; retrying");
                Some((now + retry_interval(self.ttl)).min(expires_at))
            }
        }
    }
}
