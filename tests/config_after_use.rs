//! Setting the default cache after a lock was taken is refused. (Own test binary: own process.)

use cachelock::{set_default_cache, Error, Lock, MemoryCache};

#[test]
fn setting_the_default_cache_after_it_was_used_is_an_error_not_a_silent_replace() {
    let guard = Lock::new("job").try_acquire().unwrap();
    let err = set_default_cache(MemoryCache::new()).unwrap_err();
    assert!(matches!(err, Error::AlreadyConfigured { .. }), "{err:?}");
    // The lock taken before is still held in the one default cache.
    assert!(Lock::new("job").try_acquire().unwrap_err().is_locked());
    drop(guard);
    assert!(Lock::new("job").try_acquire().is_ok());
}
