//! Lock operations built from `get`/`set`/`delete` alone: the defaults of [`Cache`].
//!
//! See the trait docs for what they guarantee. In short: atomic within one process (a
//! process-wide mutex per key stripe), not atomic across processes (read, write, read back),
//! and the stored value carries its own deadline so a lock expires even in a cache that
//! ignores TTLs.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cache::{Cache, CacheResult};

const STRIPES: usize = 64;

/// Serializes the default lock operations of this process, per key stripe.
fn stripe(key: &str) -> MutexGuard<'static, ()> {
    static LOCKS: OnceLock<(std::collections::hash_map::RandomState, Vec<Mutex<()>>)> =
        OnceLock::new();
    let (state, locks) = LOCKS.get_or_init(|| {
        (
            std::collections::hash_map::RandomState::new(),
            (0..STRIPES).map(|_| Mutex::new(())).collect(),
        )
    });
    let index = (state.hash_one(key) % STRIPES as u64) as usize;
    // A panic inside a user's cache while holding the stripe must not disable the stripe:
    // the mutex guards no data, so a poisoned one is as good as a clean one.
    locks[index]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The next fencing token of the default `claim`: wall-clock microseconds since the Unix
/// epoch, made strictly increasing within the process (see the `Cache` docs).
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

/// Rounds up to whole milliseconds, never to zero.
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

fn encode(token: &str, ttl: Duration) -> String {
    format!("{token};{}", now_ms() + u128::from(ttl_ms(ttl)))
}

/// The state of a key as the default operations see it.
enum Slot {
    Free,
    Mine,
    Other,
}

fn inspect<C: Cache + ?Sized>(cache: &C, key: &str, token: &str) -> CacheResult<Slot> {
    let Some(value) = cache.get(key)? else {
        return Ok(Slot::Free);
    };
    // A value we cannot parse was not written by a lock: treat it as held by someone else
    // rather than overwrite it.
    let Some((owner, deadline)) = value.rsplit_once(';') else {
        return Ok(Slot::Other);
    };
    let Ok(deadline) = deadline.parse::<u128>() else {
        return Ok(Slot::Other);
    };
    if deadline <= now_ms() {
        return Ok(Slot::Free);
    }
    Ok(if crate::holder::token_of(owner) == token {
        Slot::Mine
    } else {
        Slot::Other
    })
}

pub(crate) fn claim<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
    token: &str,
    ttl: Duration,
) -> CacheResult<Option<u64>> {
    let _serial = stripe(key);
    if !matches!(inspect(cache, key, token)?, Slot::Free) {
        return Ok(None);
    }
    let value = encode(token, ttl);
    cache.set(key, &value, Some(ttl))?;
    // Read back: another process that wrote in between has replaced our value.
    Ok((cache.get(key)?.as_deref() == Some(value.as_str())).then(next_fence))
}

pub(crate) fn release<C: Cache + ?Sized>(cache: &C, key: &str, token: &str) -> CacheResult<bool> {
    let _serial = stripe(key);
    match inspect(cache, key, token)? {
        Slot::Mine => {
            cache.delete(key)?;
            Ok(true)
        }
        Slot::Free | Slot::Other => Ok(false),
    }
}

pub(crate) fn extend<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
    token: &str,
    ttl: Duration,
) -> CacheResult<bool> {
    let _serial = stripe(key);
    match inspect(cache, key, token)? {
        Slot::Mine => {
            cache.set(key, &encode(token, ttl), Some(ttl))?;
            Ok(true)
        }
        Slot::Free | Slot::Other => Ok(false),
    }
}

/// The default `get_with_ttl`: the value as `claim` stored it (without its deadline), and
/// the time left before that deadline; other values as they are, with no TTL.
pub(crate) fn get_with_ttl<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
) -> CacheResult<Option<(String, Option<Duration>)>> {
    let Some(value) = cache.get(key)? else {
        return Ok(None);
    };
    if let Some((owner, deadline)) = value.rsplit_once(';') {
        if let Ok(deadline) = deadline.parse::<u128>() {
            let now = now_ms();
            if deadline <= now {
                return Ok(None);
            }
            let left = u64::try_from(deadline - now).unwrap_or(u64::MAX);
            return Ok(Some((owner.to_owned(), Some(Duration::from_millis(left)))));
        }
    }
    Ok(Some((value, None)))
}

thread_local! {
    /// How long the lock being released was held, while the default `release_detached_held`
    /// runs `release_detached` on this thread (read by the default `release_detached`).
    static HELD_FOR: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` (a `release_detached` call) with `held_for` available to [`release_logged`] on
/// this thread; forgotten afterwards, also if `f` released elsewhere or panicked.
pub(crate) fn with_held_for(held_for: Duration, f: impl FnOnce()) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HELD_FOR.with(|h| h.set(None));
        }
    }
    HELD_FOR.with(|h| h.set(Some(held_for)));
    let _reset = Reset;
    f();
}

/// Releases (or, with `keep_for`, shortens the TTL to `keep_for`) and reports the outcome
/// through `tracing` only: for `Drop` paths, where nobody can be told.
pub(crate) fn release_logged<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
    token: &str,
    keep_for: Option<Duration>,
) {
    let outcome = match keep_for {
        Some(keep) => cache.extend(key, token, keep),
        None => cache.release(key, token),
    };
    let held_for = HELD_FOR.with(|h| h.take());
    log_detached_release(key, held_for, outcome);
}

/// Logs the outcome of a release nobody waits for, with how long the lock was held when
/// known: the same events as a guard's release.
pub(crate) fn log_detached_release(
    key: &str,
    held_for: Option<Duration>,
    outcome: CacheResult<bool>,
) {
    let held_for = held_for.map(tracing::field::debug);
    match outcome {
        Ok(true) => tracing::debug!(key, held_for, "lock released"),
        // The guard's own message: the TTL ran out, or another owner took the key.
        Ok(false) => tracing::warn!(key, held_for, "lock was lost before release"),
        Err(error) => tracing::error!(
            key,
            held_for,
            error = %error,
            "releasing lock failed; it stays until its TTL runs out"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::ttl_ms;
    use std::time::Duration;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_never_to_zero() {
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::from_millis(250)), 250);
        assert_eq!(ttl_ms(Duration::from_secs_f64(0.5)), 500);
    }
}
