//! Lock operations built from `get`/`set`/`delete` alone: what [`CacheStore`] runs.
//!
//! See [`CacheStore`] for what they guarantee. In short: atomic within one process (a
//! process-wide mutex per key stripe), not atomic across processes (read, write, read back),
//! and the stored value carries its own deadline so a lock expires even in a cache that
//! ignores TTLs.
//!
//! [`CacheStore`]: crate::CacheStore

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::cache::Cache;
use crate::clock::{next_fence, ttl_ms, unix_ms};
use crate::owner::is_owned_by;
use crate::result::CacheResult;

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

fn encode(value: &str, ttl: Duration) -> String {
    format!("{value};{}", unix_ms() + u128::from(ttl_ms(ttl)))
}

/// The state of a key as the default operations see it.
enum Slot {
    Free,
    /// Ours, with the stored owner value (without its deadline).
    Mine(String),
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
    if deadline <= unix_ms() {
        return Ok(Slot::Free);
    }
    Ok(if is_owned_by(owner, token) {
        Slot::Mine(owner.to_owned())
    } else {
        Slot::Other
    })
}

/// Stores the owner `value` (whose token is `token`) under `key` for `ttl` if the key is
/// free; the fence (0 without `fencing`) if this call stored it.
pub(crate) fn claim<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
    value: &str,
    token: &str,
    ttl: Duration,
    fencing: bool,
) -> CacheResult<Option<u64>> {
    let _serial = stripe(key);
    if !matches!(inspect(cache, key, token)?, Slot::Free) {
        return Ok(None);
    }
    let stored = encode(value, ttl);
    cache.set(key, &stored, Some(ttl))?;
    // Read back: another process that wrote in between has replaced our value.
    let won = cache.get(key)?.as_deref() == Some(stored.as_str());
    Ok(won.then(|| if fencing { next_fence() } else { 0 }))
}

pub(crate) fn release<C: Cache + ?Sized>(cache: &C, key: &str, token: &str) -> CacheResult<bool> {
    let _serial = stripe(key);
    match inspect(cache, key, token)? {
        Slot::Mine(_) => {
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
        Slot::Mine(owner) => {
            cache.set(key, &encode(&owner, ttl), Some(ttl))?;
            Ok(true)
        }
        Slot::Free | Slot::Other => Ok(false),
    }
}

/// The holder lookup: the value as `claim` stored it (without its deadline), and
/// the time left before that deadline; other values as they are, with no TTL.
pub(crate) fn holder<C: Cache + ?Sized>(
    cache: &C,
    key: &str,
) -> CacheResult<Option<(String, Option<Duration>)>> {
    let Some(value) = cache.get(key)? else {
        return Ok(None);
    };
    if let Some((owner, deadline)) = value.rsplit_once(';') {
        if let Ok(deadline) = deadline.parse::<u128>() {
            let now = unix_ms();
            if deadline <= now {
                return Ok(None);
            }
            let left = u64::try_from(deadline - now).unwrap_or(u64::MAX);
            return Ok(Some((owner.to_owned(), Some(Duration::from_millis(left)))));
        }
    }
    Ok(Some((value, None)))
}
