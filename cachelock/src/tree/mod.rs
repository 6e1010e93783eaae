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
//! turn every release into a retry by every waiter. A jittered backoff pause (2 ms doubling
//! to 100 ms) bounds each wait: an expired holder is noticed when it ends, and a store with
//! the default [`TreeStore::wait_for_release`] polls with it.
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
//! - [`NoopCache`](crate::NoopCache) grants everything; a get/set/delete
//!   [`CacheStore`](crate::CacheStore) refuses with [`Error::Backend`](crate::Error::Backend)
//!   (it cannot check a subtree atomically). A store of your own implements [`TreeStore`]
//!   and returns it from [`LockStore::trees`](crate::LockStore::trees), and checks itself
//!   with [`testing::tree_conformance`](crate::testing::tree_conformance).
//!
//! [Locker]: https://pypi.org/project/Locker/

mod guard;
mod list;
mod lock;
pub(crate) mod path;
mod store;
mod target;

pub use guard::{AsyncTreeGuard, TreeClaim, TreeGuard};
pub use list::{held_locks, held_locks_async};
pub use lock::TreeLock;
pub use path::{check_path, conflicts, is_ancestor, TreeScope};
pub use store::{TreeEntry, TreeStore};
