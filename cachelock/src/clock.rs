//! Small time helpers shared by the stores: TTLs in milliseconds, deadlines, and the fence
//! clock of the stores that have no counter of their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Rounds up to whole milliseconds, never to zero: a fractional TTL never becomes "no TTL".
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// `now + ttl`, saturating instead of panicking (`MAX_TTL` keeps real TTLs far from
/// overflow).
pub(crate) fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl).unwrap_or_else(|| now + crate::MAX_TTL)
}

/// Milliseconds since the Unix epoch by this host's wall clock.
pub(crate) fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The next fencing token of a store without a counter of its own ([`CacheStore`], the
/// [`NoopCache`]): wall-clock microseconds since the Unix epoch, made strictly increasing
/// within the process (a claim in the same microsecond as the one before, or after the
/// clock stepped back, gets the previous fence + 1).
///
/// [`CacheStore`]: crate::CacheStore
/// [`NoopCache`]: crate::NoopCache
pub(crate) fn next_fence() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_never_to_zero() {
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::from_millis(250)), 250);
        assert_eq!(ttl_ms(Duration::from_secs_f64(0.5)), 500);
    }

    #[test]
    fn fences_strictly_increase() {
        let mut last = 0;
        for _ in 0..10_000 {
            let fence = next_fence();
            assert!(fence > last);
            last = fence;
        }
    }
}
