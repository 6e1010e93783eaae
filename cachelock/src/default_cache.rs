//! [`DefaultCache`]: a handle that stands for the process default cache.

use std::ops::Deref;
use std::time::Duration;

use crate::cache::{forward_cache, BoxFuture, Cache, CacheResult};
use crate::config::default_cache;

/// Stands for the process default cache, looked up on each use.
///
/// It is the cache of a [`Lock`](crate::Lock) unless [`Lock::cache`](crate::Lock::cache)
/// names another. Looking the default up on use (not when the `Lock` is built) means that
/// building a `Lock` never fixes the default, so [`set_default_cache`](crate::set_default_cache)
/// still works after locks were *built*, as long as none was *taken*.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultCache;

impl Deref for DefaultCache {
    type Target = dyn Cache;

    fn deref(&self) -> &(dyn Cache + 'static) {
        default_cache()
    }
}

forward_cache!(impl Cache for DefaultCache);
