//! [`held_locks`]: every live tree lock of a lock space, with its holder.

use super::store::{unsupported, TreeEntry, TreeStore};
use crate::error::Error;
use crate::owner::{parse, Holder};
use crate::store::LockStore;

/// Every live tree lock of the lock space `space` (a [`TreeLock`](super::TreeLock)'s
/// [`prefix`](super::TreeLock::prefix), e.g. `"cachelock:"`, the default), with its holder:
/// [`Holder::key`] is the **held path** (without the space, as [`TreeLock::holder`](super::TreeLock::holder) reports
/// it), with the holder's host, pid, [`label`](super::TreeLock::label) and the TTL left, sorted
/// by path. The owner token is never included. Expired locks are left out.
///
/// ```
/// use cachelock::tree::{held_locks, TreeLock};
/// use cachelock::MemoryCache;
///
/// let cache = MemoryCache::new();
/// let lock = |path: &str| TreeLock::new(path).cache(cache.clone()).prefix("printers:");
/// let _a = lock("/floor-2/a").label("ci-job-17").try_acquire()?;
/// let b = lock("/floor-3").try_acquire()?;
/// drop(b); // released: no longer listed
///
/// let held = held_locks(&cache, "printers:")?;
/// assert_eq!(held.len(), 1);
/// assert_eq!(held[0].key, "/floor-2/a");
/// assert_eq!(held[0].label.as_deref(), Some("ci-job-17"));
/// assert_eq!(held[0].pid, Some(std::process::id()));
/// assert!(held[0].ttl.is_some());
/// assert!(held_locks(&cache, "another-space:")?.is_empty());
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// An admin call, like [`cachelock::held_locks`](crate::held_locks) for plain locks (which
/// never lists tree locks): it reads the whole space at once (atomically: one mutex in
/// memory, one Lua script on Redis, on the node that holds the space on a Redis Cluster),
/// so it costs time proportional to the number of locks held in the space. A cache without
/// tree support returns [`Error::Backend`].
pub fn held_locks<S: LockStore + ?Sized>(store: &S, space: &str) -> Result<Vec<Holder>, Error> {
    let entries = trees(store, space)?
        .list(space)
        .map_err(|source| Error::backend(space, source))?;
    Ok(holders(entries))
}

/// Async twin of [`held_locks`], through [`TreeStore::list_async`] (native on Redis: no
/// runtime thread blocks).
pub async fn held_locks_async<S: LockStore + ?Sized>(
    store: &S,
    space: &str,
) -> Result<Vec<Holder>, Error> {
    let entries = trees(store, space)?
        .list_async(space)
        .await
        .map_err(|source| Error::backend(space, source))?;
    Ok(holders(entries))
}

fn trees<'s, S: LockStore + ?Sized>(store: &'s S, space: &str) -> Result<&'s dyn TreeStore, Error> {
    store
        .trees()
        .ok_or_else(|| Error::backend(space, unsupported()))
}

/// The holders of listed entries, by path; the owner token stays behind.
fn holders(mut entries: Vec<TreeEntry>) -> Vec<Holder> {
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    entries
        .iter()
        .map(|e| parse(&e.path, &e.value, e.ttl))
        .collect()
}
