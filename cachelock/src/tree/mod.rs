//! Hierarchical locks: a lock on a path like `/printers/floor-2` also excludes locks on its
//! ancestors and descendants, not on its siblings (as [Locker] does over HTTP).
//!
//! ```
//! use cachelock::tree::TreeLock;
//! use cachelock::MemoryCache;
//!
//! let cache = MemoryCache::new();
//! let lock = |path: &str| TreeLock::new(path).cache(cache.clone());
//!
//! let bar = lock("/foo/bar").label("ci-job-17").try_acquire()?;
//! assert!(lock("/foo").try_acquire().unwrap_err().is_locked()); // a parent
//! assert!(lock("/foo/bar/baz").try_acquire().unwrap_err().is_locked()); // a child
//! let zip = lock("/foo/zip").try_acquire()?; // a sibling is free
//!
//! // Who is in the way of `/foo`? The holder of `/foo/bar`.
//! let holder = lock("/foo").holder()?.expect("held");
//! assert_eq!((holder.key.as_str(), holder.label.as_deref()), ("/foo/bar", Some("ci-job-17")));
//!
//! // A lock that leaves its parents alone: `/foo` is free again for it.
//! drop(zip);
//! let shallow = lock("/foo/bar").lock_parents(false);
//! drop(bar);
//! let _b = shallow.try_acquire()?;
//! let _f = lock("/foo").lock_children(true).try_acquire()?;
//! # Ok::<(), cachelock::Error>(())
//! ```
//!
//! # Paths
//!
//! A path starts with `/`; its segments are separated by `/`. The root `/` is a path (and
//! the ancestor of every other one). Refused with [`Error::InvalidKey`](crate::Error::InvalidKey)
//! (by every call that takes the path, never a panic): no leading `/`, a trailing `/`
//! (except the root), an empty segment (`//`), a `.` or `..` segment, a control character,
//! more than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes. `/a` is not an ancestor of `/ab`.
//!
//! # The conflict rule
//!
//! A lock A on path P conflicts with a held lock B on path Q when:
//!
//! | Q is | conflict when |
//! |---|---|
//! | P itself | always |
//! | an ancestor of P | A [`lock_parents`](TreeLock::lock_parents) and B [`lock_children`](TreeLock::lock_children) |
//! | a descendant of P | A `lock_children` and B `lock_parents` |
//! | neither (a sibling, a cousin) | never |
//!
//! Both flags default to `true`. The rule is symmetric (whichever comes first, the second is
//! refused), so a lock that sets a flag to `false` only stops excluding that direction when
//! the other lock agrees, and [`conflicts`] is the whole rule as a function.
//!
//! # Locks
//!
//! [`TreeLock`] is built like [`Lock`](crate::Lock): owner token, TTL, renewal by the shared
//! renewal thread, the lost signal, [`max_hold`](TreeLock::max_hold),
//! [`hold_at_least`](TreeLock::hold_at_least) (a release sooner keeps the path held until
//! then), a [`label`](TreeLock::label) stored with the holder's host and pid, and a
//! [`prefix`](TreeLock::prefix) that names the lock space (trees under different prefixes are
//! independent). [`TreeGuard`] and [`AsyncTreeGuard`] release on drop;
//! [`into_claim`](TreeGuard::into_claim) keeps the lock held past the guard (for a lock
//! service), to be released by its token with [`TreeLock::release_token`].
//!
//! # Who holds what
//!
//! [`TreeLock::holder`] names the holder in the way of one lock; [`held_locks`] (and
//! [`held_locks_async`]) lists every live lock of a lock space with its holder's host, pid,
//! label and TTL left, never its owner token.
//!
//! # Waiting
//!
//! [`acquire_timeout`](TreeLock::acquire_timeout) (and [`run`](TreeLock::run) with a
//! [`wait`](TreeLock::wait)) tries again the moment a lock of its space is released, as
//! [`Lock::acquire_timeout`](crate::Lock::acquire_timeout) does for its key: a release in
//! the space wakes the space's waiters, and each tries its claim again only if the released
//! path could have blocked it (the same path, an ancestor or a descendant its scope covers);
//! a release of a sibling or a cousin sends it back to waiting, so a busy space does not
//! turn every release into a retry by every waiter. A jittered backoff pause (2 ms doubling to 100 ms) bounds
//! each wait: an expired holder is noticed when it ends, and a cache with the default
//! [`Cache::tree_wait_for_release`](crate::Cache::tree_wait_for_release) polls with it.
//! [`MemoryCache`](crate::MemoryCache) wakes its waiters in process; the Redis backend
//! publishes the released path and space on `cachelock:tree-released`, which the cache's
//! one release subscriber (the one plain locks use) also listens to.
//!
//! # Backends
//!
//! Every claim, release, extend, holder lookup and listing is atomic within its lock space:
//!
//! - [`MemoryCache`](crate::MemoryCache): one mutex over an ordered map per lock space; a
//!   claim looks up the path and each ancestor and scans the range of descendants.
//! - `RedisCache`: one Lua script per operation, with deadlines taken from the server's
//!   `TIME`, so client clocks play no part. A space is three keys (owner hash, deadline
//!   sorted set, sorted set of the paths that lock their parents) and a fence counter.
//! - `RedisClusterCache`: every key of a lock space is
//!   `<cache prefix><space>{cachelock-tree}:<part>`, so they share one hash tag and one slot,
//!   and each script touches that one slot. The key builder refuses a space whose first
//!   `{` opens an empty tag (`{}`), which would spread them. All trees thus live on one
//!   node of the cluster.
//! - [`NoopCache`](crate::NoopCache) grants everything; a cache with only get/set/delete
//!   refuses with [`Error::Backend`](crate::Error::Backend) (it cannot check a subtree
//!   atomically). A cache of your own can implement [`Cache::tree_claim`](crate::Cache::tree_claim)
//!   and its siblings, and check itself with [`testing::tree_conformance`](crate::testing::tree_conformance).
//!
//! [Locker]: https://pypi.org/project/Locker/

mod guard;
mod lock;
pub(crate) mod memory;
mod path;
mod target;

pub use guard::{AsyncTreeGuard, TreeClaim, TreeGuard};
pub use lock::TreeLock;
pub(crate) use memory::MemoryTrees;
pub use path::{check_path, conflicts, is_ancestor, TreeScope};

use std::time::Duration;

use crate::error::BoxError;
use crate::holder::Holder;
// (`Cache` and `Error` are named by path: the module docs link them by path.)

/// A held tree lock as a cache reports it from
/// [`Cache::tree_holder`](crate::Cache::tree_holder) and
/// [`Cache::tree_list`](crate::Cache::tree_list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The held path (without the lock space).
    pub path: String,
    /// The stored owner value (`<token>|<pid>|<host>|<label>`).
    pub value: String,
    /// How long it has left, if the cache can tell.
    pub ttl: Option<Duration>,
}

/// Every live tree lock of the lock space `space` (a [`TreeLock`]'s
/// [`prefix`](TreeLock::prefix), e.g. `"cachelock:"`, the default), with its holder:
/// [`Holder::key`] is the **held path** (without the space, as [`TreeLock::holder`] reports
/// it), with the holder's host, pid, [`label`](TreeLock::label) and the TTL left, sorted
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
/// tree support returns [`Error::Backend`](crate::Error::Backend).
pub fn held_locks<C: crate::Cache + ?Sized>(
    cache: &C,
    space: &str,
) -> Result<Vec<Holder>, crate::Error> {
    let entries = cache
        .tree_list(space)
        .map_err(|source| crate::Error::backend(space, source))?;
    Ok(holders(entries))
}

/// Async twin of [`held_locks`], through
/// [`Cache::tree_list_async`](crate::Cache::tree_list_async) (native on Redis: no
/// runtime thread blocks).
pub async fn held_locks_async<C: crate::Cache + ?Sized>(
    cache: &C,
    space: &str,
) -> Result<Vec<Holder>, crate::Error> {
    let entries = cache
        .tree_list_async(space)
        .await
        .map_err(|source| crate::Error::backend(space, source))?;
    Ok(holders(entries))
}

/// The holders of listed entries, by path; the owner token stays behind.
fn holders(mut entries: Vec<TreeEntry>) -> Vec<Holder> {
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    entries
        .iter()
        .map(|e| crate::holder::parse(&e.path, &e.value, e.ttl))
        .collect()
}

/// The error of a cache without tree support.
pub(crate) fn unsupported() -> BoxError {
    "this cache does not support tree locks (use MemoryCache, RedisCache or RedisClusterCache)"
        .into()
}

/// Logs the outcome of a `hold_at_least` keep nobody waits for (a dropped async guard).
pub(crate) fn log_kept(space: &str, path: &str, keep: Duration, outcome: Result<bool, BoxError>) {
    match outcome {
        Ok(true) => tracing::debug!(
            space,
            path,
            ?keep,
            "tree lock released; kept until hold_at_least has passed"
        ),
        other => log_release(space, path, other),
    }
}

/// Logs the outcome of a tree release nobody waits for.
pub(crate) fn log_release(space: &str, path: &str, outcome: Result<bool, BoxError>) {
    match outcome {
        Ok(true) => tracing::debug!(space, path, "tree lock released"),
        Ok(false) => tracing::warn!(
            space,
            path,
            "tree lock was lost before release: TTL ran out or another owner took it"
        ),
        Err(error) => tracing::error!(
            space,
            path,
            error = %error,
            "releasing tree lock failed; it stays until its TTL runs out"
        ),
    }
}
