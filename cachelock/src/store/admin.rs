//! [`LockAdmin`]: holder lookup, listing and force-release, for the stores that can.

use std::time::Duration;

use crate::result::{BoxFuture, CacheResult};

/// The admin operations of a [`LockStore`](crate::LockStore): who holds a key
/// ([`Lock::holder`](crate::Lock::holder)), which keys are held
/// ([`held_locks`](crate::held_locks)), and deleting a key whoever holds it
/// ([`Lock::force_release`](crate::Lock::force_release)). Reached through
/// [`LockStore::admin`](crate::LockStore::admin).
pub trait LockAdmin: Send + Sync {
    /// The owner value stored under `key` (`<token>|<pid>|<host>|<label>`) and how long it
    /// has left (`None`: the store cannot tell); `None` if the key holds no live lock.
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>>;

    /// Async twin of [`holder`](LockAdmin::holder).
    #[allow(clippy::type_complexity)] // the sync method's type, in a future
    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>>;

    /// Every stored key that starts with `prefix` and holds a lock. A store that cannot
    /// list its keys fails with a message saying so.
    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>>;

    /// Async twin of [`keys`](LockAdmin::keys).
    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>>;

    /// Deletes `key` whoever holds it. Deleting an absent key is not an error.
    fn force_release(&self, key: &str) -> CacheResult<()>;

    /// Async twin of [`force_release`](LockAdmin::force_release).
    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>>;
}
