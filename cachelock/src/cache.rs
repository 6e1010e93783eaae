//! The [`Cache`] trait: what a store must offer to hold locks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::basic;
use crate::claimed::{Claimed, Handle};
use crate::error::BoxError;

/// A boxed, `Send` future, as returned by the async methods of [`Cache`].
///
/// The futures are boxed so that `Cache` stays dyn-compatible: the process default cache
/// lives behind an `Arc<dyn Cache>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a [`Cache`] operation.
pub type CacheResult<T> = Result<T, BoxError>;

/// A store that can hold locks.
///
/// # The contract: `get`, `set`, `delete`
///
/// Like python-cachelock, cachelock plugs into any cache that can **get**, **set** and
/// **delete** a string value by key. Implement those three methods and the type is a
/// `Cache`; [`Lock`](crate::Lock) and `#[once]` accept it as it is.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use cachelock::{Cache, CacheResult, Lock};
///
/// #[derive(Default)]
/// struct MyCache(Mutex<HashMap<String, String>>);
///
/// impl Cache for MyCache {
///     fn get(&self, key: &str) -> CacheResult<Option<String>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
///         self.0.lock().unwrap().insert(key.to_owned(), value.to_owned());
///         Ok(())
///     }
///     fn delete(&self, key: &str) -> CacheResult<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// let cache = std::sync::Arc::new(MyCache::default());
/// let guard = Lock::new("report").cache(cache.clone()).try_acquire()?;
/// assert!(guard.fence() > 0);
/// assert!(Lock::new("report").cache(cache.clone()).try_acquire().unwrap_err().is_locked());
/// guard.release()?;
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// # The lock operations: `claim`, `release`, `extend`
///
/// A lock needs three operations that must each be **atomic**:
///
/// - [`claim`](Cache::claim): store `token` under `key` with a TTL, only if the key is absent;
/// - [`release`](Cache::release): delete `key` only if it still holds `token`;
/// - [`extend`](Cache::extend): reset the TTL of `key` only if it still holds `token`.
///
/// The value `claim` stores is the owner token followed by the holder's metadata:
/// `<token>|<pid>|<host>|<label>` (see [`Holder`](crate::Holder)). `release` and `extend`
/// are given the bare token and compare it with the part of the stored value before the
/// first `|` (or the whole value, if it has none).
///
/// A fourth, [`claim_unfenced`](Cache::claim_unfenced), is `claim` without the fencing
/// token, for [`Lock::fencing(false)`](crate::Lock::fencing); its default calls `claim`.
///
/// A [`Lock`](crate::Lock) claims through [`claim_for_lock`](Cache::claim_for_lock), whose
/// default calls `claim` or `claim_unfenced`; an in-process cache may override it to hand
/// the guard a [`Handle`] on the key, for a release and renewal without a lookup.
///
/// The built-in backends ([`MemoryCache`](crate::MemoryCache), and the Redis backend)
/// implement them atomically, so a key has at most one owner at any time, however many
/// threads, processes and machines share the store.
///
/// A cache that only has `get`/`set`/`delete` gets the **default** implementations, and they
/// are honest about what they can do:
///
/// - **Within one process** they are atomic: every default `claim`, `release` and `extend`
///   on a key runs under a process-wide mutex for that key, so two threads never both win.
/// - **Across processes they are not atomic.** `claim` reads, writes, then reads back to
///   check that its own value stuck; this catches most races, but two processes that
///   interleave exactly can both believe they hold the key. Use a backend with atomic
///   operations (Redis) to coordinate processes, or override the three methods with your
///   store's own compare-and-set.
/// - **Fencing tokens** from the default `claim` are the process's wall clock in
///   microseconds since the Unix epoch, made strictly increasing within the process (a
///   claim in the same microsecond as the one before, or after the clock stepped back, gets
///   the previous fence + 1). Within one process they strictly increase for every key.
///   Across processes they are only as ordered as the hosts' clocks: increasing if the
///   clocks agree to better than the time between two holders of a key. That is the same
///   "not atomic across processes" caveat as above.
/// - The lock value carries its own deadline (`<token>;<unix ms>`), so a lock expires even
///   in a cache that ignores the TTL passed to `set`: a crashed holder never blocks a key
///   forever.
///
/// # Tree locks
///
/// [`tree_claim`](Cache::tree_claim), [`tree_release`](Cache::tree_release),
/// [`tree_extend`](Cache::tree_extend), [`tree_holder`](Cache::tree_holder) and
/// [`tree_list`](Cache::tree_list) (and their async twins) carry
/// [hierarchical locks](crate::tree). Each must be atomic within its lock space. The
/// defaults fail with "this cache does not support tree locks": checking a whole subtree
/// cannot be built from get/set/delete. [`MemoryCache`](crate::MemoryCache)
/// and the Redis backend implement them; [`testing::tree_conformance`](crate::testing::tree_conformance)
/// checks an implementation of your own. [`tree_wait_for_release`](Cache::tree_wait_for_release)
/// (and its async twin) lets tree lock waiters wake on a release; its default sleeps the
/// backoff pause.
///
/// # Sync and async
///
/// Every operation has an async twin (`get_async`, `claim_async`, ...). The defaults call
/// the sync method inline, which is right for in-process stores that never wait on I/O. A
/// cache that does network I/O and is used from async code must override the async methods,
/// so that no runtime thread is ever blocked; the Redis backend does. Sync callers never need
/// a runtime.
///
/// # Values and TTLs
///
/// Values are UTF-8 strings. TTLs are rounded **up** to whole milliseconds by backends that
/// count in milliseconds, so a fractional TTL never becomes "no TTL".
pub trait Cache: Send + Sync {
    /// Returns the value stored under `key`, or `None` if it is absent or expired.
    fn get(&self, key: &str) -> CacheResult<Option<String>>;

    /// Stores `value` under `key`, replacing any value, expiring after `ttl` if given.
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()>;

    /// Removes `key`. Removing an absent key is not an error.
    fn delete(&self, key: &str) -> CacheResult<()>;

    /// Stores `token` under `key` with `ttl` if the key is absent (or expired).
    ///
    /// Returns `Some(fence)` if this call stored it (the caller now owns the key), `None` if
    /// the key is held. Must be atomic: among concurrent claims of one key, exactly one
    /// returns `Some`.
    ///
    /// The **fencing token** `fence` must be strictly greater than every fence this cache
    /// handed out before for `key`, also across expiry and (for a shared store) across
    /// processes. A store downstream can then refuse writes that carry a smaller fence than
    /// one it has already seen: see [`Guard::fence`](crate::Guard::fence). The built-in
    /// backends guarantee it ([`MemoryCache`](crate::MemoryCache): a process-wide counter;
    /// Redis: a counter bumped inside the claim script); the default implementation only
    /// within one process (see [the defaults](#the-lock-operations-claim-release-extend)).
    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        basic::claim(self, key, token, ttl)
    }

    /// Deletes `key` if it still holds `token` (and has not expired).
    ///
    /// Returns `true` if it deleted the key, `false` if the key was absent, expired or held
    /// another value; nothing is deleted then. Must be atomic (compare-and-delete).
    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        basic::release(self, key, token)
    }

    /// Resets the TTL of `key` to `ttl` if it still holds `token` (and has not expired).
    ///
    /// Returns `true` if it did, `false` otherwise. Must be atomic (compare-and-expire).
    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        basic::extend(self, key, token, ttl)
    }

    /// The value stored under `key` and how long it has left (`None`: no TTL, or the cache
    /// cannot tell). For admin calls ([`Lock::holder`](crate::Lock::holder)).
    ///
    /// The default reads the value with `get`; a value written by the default `claim`
    /// carries its deadline, which gives the TTL.
    fn get_with_ttl(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        basic::get_with_ttl(self, key)
    }

    /// Every stored key that starts with `prefix`. For admin calls
    /// ([`held_locks`](crate::held_locks)). The default fails: a get/set/delete cache
    /// cannot list its keys.
    fn keys_with_prefix(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let _ = prefix;
        Err("this cache cannot list its keys".into())
    }

    /// Waits until `key` may have been released, or `pause` has passed, whichever comes
    /// first. [`Lock::acquire_timeout`](crate::Lock::acquire_timeout) calls it between two
    /// attempts on a held key, with the backoff pause as `pause`.
    ///
    /// The default sleeps `pause` (pure polling with backoff). [`MemoryCache`](crate::MemoryCache)
    /// wakes its waiters the moment a key is released.
    fn wait_for_release(&self, key: &str, pause: Duration) {
        let _ = key;
        std::thread::sleep(pause);
    }

    /// Async twin of [`wait_for_release`](Cache::wait_for_release); the default sleeps with
    /// tokio's timer.
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(tokio::time::sleep(pause))
    }

    /// Lets go of `key` from a `Drop` in async code: must return at once, never block.
    ///
    /// Deletes `key` if it still holds `token` (like [`release`](Cache::release)); with
    /// `keep_for`, instead sets its TTL to `keep_for` if it still holds `token` (like
    /// [`extend`](Cache::extend); this is how `hold_at_least` keeps a key after release).
    ///
    /// The result is not reported to the caller; implementations log failures through
    /// `tracing`. The default runs the operation inline, which is right for in-process
    /// stores; a cache that does network I/O overrides it to work in the background.
    fn release_detached(&self, key: &str, token: &str, keep_for: Option<Duration>) {
        basic::release_logged(self, key, token, keep_for);
    }

    /// Async twin of [`get`](Cache::get).
    fn get_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<Option<String>>> {
        Box::pin(std::future::ready(self.get(key)))
    }

    /// Async twin of [`set`](Cache::set).
    fn set_async<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(std::future::ready(self.set(key, value, ttl)))
    }

    /// Async twin of [`delete`](Cache::delete).
    fn delete_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(std::future::ready(self.delete(key)))
    }

    /// Async twin of [`claim`](Cache::claim).
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
        Box::pin(std::future::ready(self.claim(key, token, ttl)))
    }

    /// Async twin of [`release`](Cache::release).
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(self.release(key, token)))
    }

    /// Async twin of [`extend`](Cache::extend).
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(self.extend(key, token, ttl)))
    }

    /// [`release_detached`](Cache::release_detached), told how long the lock was held, so
    /// that the `lock released` (or `lock was lost before release`) event it logs carries
    /// `held_for` like every other release. An [`AsyncGuard`](crate::AsyncGuard)'s `Drop`
    /// calls this one.
    ///
    /// The default calls `release_detached` (so a cache that overrides only that one keeps
    /// releasing its way, in the background); when that is the default too, its event carries
    /// `held_for`. A cache that overrides `release_detached` should override this as well
    /// and log `held_for`; the Redis backend does.
    fn release_detached_held(
        &self,
        key: &str,
        token: &str,
        keep_for: Option<Duration>,
        held_for: Duration,
    ) {
        basic::with_held_for(held_for, || self.release_detached(key, token, keep_for));
    }

    /// Async twin of [`get_with_ttl`](Cache::get_with_ttl). The default calls the sync
    /// method inline: right for in-process stores; a network cache overrides it (the Redis
    /// backend does).
    #[allow(clippy::type_complexity)] // the sync method's type, in a future
    fn get_with_ttl_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(std::future::ready(self.get_with_ttl(key)))
    }

    /// Async twin of [`keys_with_prefix`](Cache::keys_with_prefix). The default calls the
    /// sync method inline: right for in-process stores; a network cache overrides it (the
    /// Redis backend does).
    fn keys_with_prefix_async<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(std::future::ready(self.keys_with_prefix(prefix)))
    }

    // ----- Tree locks (`cachelock::tree`) -----
    //
    // A lock space `space` (a `TreeLock`'s prefix) holds paths (`/a/b`). Every operation
    // must be atomic within its space. The defaults refuse: a get/set/delete cache cannot
    // check a whole subtree atomically. See `crate::tree` for the conflict rule.

    /// Stores the owner value `value` for `path` in `space` with `ttl`, with scope `scope`,
    /// if no live lock of the space [conflicts](crate::tree::conflicts) with it.
    ///
    /// Returns `Some(fence)` if it stored it, `None` on a conflict. Expired entries count
    /// as free. The default fails: this cache does not support tree locks.
    fn tree_claim(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<u64>> {
        let _ = (space, path, value, ttl, scope);
        Err(crate::tree::unsupported())
    }

    /// Deletes the lock on `path` in `space` if it is live and held by `token` (compared
    /// like [`release`](Cache::release)). The default fails (no tree support).
    fn tree_release(&self, space: &str, path: &str, token: &str) -> CacheResult<bool> {
        let _ = (space, path, token);
        Err(crate::tree::unsupported())
    }

    /// Resets the TTL of the lock on `path` in `space` to `ttl` if it is live and held by
    /// `token`. The default fails (no tree support).
    fn tree_extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
    ) -> CacheResult<bool> {
        let _ = (space, path, token, ttl);
        Err(crate::tree::unsupported())
    }

    /// A live lock of `space` that conflicts with a lock on `path` with `scope` (the one a
    /// claim would hit): its path, its stored owner value and its remaining TTL; `None` if
    /// there is none. The default fails (no tree support).
    fn tree_holder(
        &self,
        space: &str,
        path: &str,
        scope: crate::tree::TreeScope,
    ) -> CacheResult<Option<crate::tree::TreeEntry>> {
        let _ = (space, path, scope);
        Err(crate::tree::unsupported())
    }

    /// Lets go of a tree lock from a `Drop` in async code: like
    /// [`release_detached`](Cache::release_detached), must never block. The default runs
    /// [`tree_release`](Cache::tree_release) inline and logs the outcome.
    fn tree_release_detached(&self, space: &str, path: &str, token: &str) {
        crate::tree::log_release(space, path, self.tree_release(space, path, token));
    }

    /// Keeps a tree lock released early for `keep` more, from a `Drop` in async code: sets
    /// its TTL to `keep` if it is live and held by `token` (like
    /// [`tree_extend`](Cache::tree_extend)). This is how a dropped
    /// [`AsyncTreeGuard`](crate::tree::AsyncTreeGuard) of a lock with
    /// [`hold_at_least`](crate::tree::TreeLock::hold_at_least) keeps its path. Like
    /// [`tree_release_detached`](Cache::tree_release_detached), must never block. The
    /// default runs `tree_extend` inline and logs the outcome.
    fn tree_extend_detached(&self, space: &str, path: &str, token: &str, keep: Duration) {
        let outcome = self.tree_extend(space, path, token, keep);
        crate::tree::log_kept(space, path, keep, outcome);
    }

    /// Every live lock of `space`: its path, its stored owner value and its remaining TTL,
    /// in any order; expired entries are left out. For the admin call
    /// [`tree::held_locks`](crate::tree::held_locks). The default fails (no tree support).
    /// A cache that implements the other tree operations should implement this one too:
    /// [`testing::tree_conformance`](crate::testing::tree_conformance) checks the listing.
    fn tree_list(&self, space: &str) -> CacheResult<Vec<crate::tree::TreeEntry>> {
        let _ = space;
        Err(crate::tree::unsupported())
    }

    /// Waits until a tree lock of `space` may have been released (one that may have
    /// conflicted with `path` and `scope`), or `pause` has passed, whichever comes first.
    /// [`TreeLock::acquire_timeout`](crate::tree::TreeLock::acquire_timeout) calls it
    /// between two attempts, with the backoff pause as `pause`; it tries again either way.
    ///
    /// The default sleeps `pause` (pure polling with backoff), so a cache that only
    /// implements the tree operations keeps working. [`MemoryCache`](crate::MemoryCache)
    /// and the Redis backend wake their waiters on a release in the space that could have
    /// blocked `path` (with `scope`), and keep them waiting on other releases.
    fn tree_wait_for_release(
        &self,
        space: &str,
        path: &str,
        scope: crate::tree::TreeScope,
        pause: Duration,
    ) {
        let _ = (space, path, scope);
        std::thread::sleep(pause);
    }

    /// Async twin of [`tree_wait_for_release`](Cache::tree_wait_for_release); the default
    /// sleeps with tokio's timer.
    fn tree_wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: crate::tree::TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        let _ = (space, path, scope);
        Box::pin(tokio::time::sleep(pause))
    }

    /// Async twin of [`tree_claim`](Cache::tree_claim).
    fn tree_claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        value: &'a str,
        ttl: Duration,
        scope: crate::tree::TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
        Box::pin(std::future::ready(
            self.tree_claim(space, path, value, ttl, scope),
        ))
    }

    /// Async twin of [`tree_release`](Cache::tree_release).
    fn tree_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(self.tree_release(space, path, token)))
    }

    /// Async twin of [`tree_extend`](Cache::tree_extend).
    fn tree_extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(
            self.tree_extend(space, path, token, ttl),
        ))
    }

    /// Async twin of [`tree_holder`](Cache::tree_holder).
    fn tree_holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: crate::tree::TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<crate::tree::TreeEntry>>> {
        Box::pin(std::future::ready(self.tree_holder(space, path, scope)))
    }

    /// Async twin of [`tree_list`](Cache::tree_list).
    fn tree_list_async<'a>(
        &'a self,
        space: &'a str,
    ) -> BoxFuture<'a, CacheResult<Vec<crate::tree::TreeEntry>>> {
        Box::pin(std::future::ready(self.tree_list(space)))
    }

    // ----- Claims without a fencing token (`Lock::fencing(false)`) -----

    /// Like [`claim`](Cache::claim), for a lock that does not want a fencing token
    /// ([`Lock::fencing(false)`](crate::Lock::fencing), and `#[once]` without `fence = ...`).
    ///
    /// Stores `token` under `key` with `ttl` if the key is absent (or expired); returns `true`
    /// if this call stored it, `false` if the key is held. Must be atomic, exactly like
    /// `claim`: among concurrent claims of one key (fenced or not), exactly one wins. It need
    /// not produce a fence, so a backend can make it cheaper than `claim`: the Redis backend
    /// sends a plain `SET key token NX PX ttl` instead of the claim script that also bumps the
    /// fence counter.
    ///
    /// A network cache that sends the claim again when a connection dies (the first send may
    /// have run, only its reply lost) must count the key holding exactly `token` as this
    /// claim's win, or the claim reports its own grant as someone else's and the key stays
    /// blocked, by nobody, for a whole TTL. Tokens are fresh and random, so no other claim
    /// matches. The Redis backend keeps its first send a plain `SET NX PX` and sends a script
    /// that checks only when it sends again (on Redis Cluster, whose client resends by
    /// itself, after a refusal).
    ///
    /// The default calls [`claim`](Cache::claim) and discards the fence, which is always
    /// correct.
    fn claim_unfenced(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        self.claim(key, token, ttl).map(|fence| fence.is_some())
    }

    /// Async twin of [`claim_unfenced`](Cache::claim_unfenced). The default calls
    /// [`claim_async`](Cache::claim_async) and discards the fence (not the sync
    /// `claim_unfenced`: a network cache written before this method existed overrides
    /// `claim_async` to stay off the runtime's threads, and keeps doing so). A cache that
    /// overrides `claim_unfenced` should override this one too.
    fn claim_unfenced_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            self.claim_async(key, token, ttl)
                .await
                .map(|fence| fence.is_some())
        })
    }

    /// The claim a [`Lock`](crate::Lock) makes: [`claim`](Cache::claim) when `fencing`, else
    /// [`claim_unfenced`](Cache::claim_unfenced) with fence 0; `Some` if this call won.
    ///
    /// The default calls `claim` or `claim_unfenced` and returns no [`Handle`]: correct for
    /// every cache, and the only choice for a network cache. An **in-process** cache may
    /// return a handle on the key instead ([`Claimed::with_handle`]); the guard keeps it and
    /// releases and extends through [`release_claimed`](Cache::release_claimed) and
    /// [`extend_claimed`](Cache::extend_claimed), with the handle, in place of `release`,
    /// `extend` and (when an [`AsyncGuard`](crate::AsyncGuard) is dropped)
    /// [`release_detached_held`](Cache::release_detached_held). Returning one promises:
    ///
    /// - `release_claimed` and `extend_claimed` with the handle never wait on I/O: an
    ///   `AsyncGuard` calls them on the runtime's thread;
    /// - the grant's TTL starts inside this call, when the key is stored, so a `Lock` skips
    ///   the check it makes on other caches (a grant that came back after the whole TTL is
    ///   given back, see [`Error::is_timeout`](crate::Error::is_timeout)): the guard's own
    ///   estimate of the expiry counts from before the call, so it is never late.
    ///
    /// A wrapper that forwards this method to an inner cache must forward `release_claimed`
    /// and `extend_claimed` too (the forwarding impls for `&T`, `Arc<T>` and `Box<T>` do).
    /// [`MemoryCache`](crate::MemoryCache) returns the key's slot, so a release or extend
    /// costs no lookup.
    fn claim_for_lock(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        fencing: bool,
    ) -> CacheResult<Option<Claimed>> {
        let fence = if fencing {
            self.claim(key, value, ttl)?
        } else {
            self.claim_unfenced(key, value, ttl)?.then_some(0)
        };
        Ok(fence.map(Claimed::new))
    }

    /// Async twin of [`claim_for_lock`](Cache::claim_for_lock). The default calls
    /// [`claim_async`](Cache::claim_async) or
    /// [`claim_unfenced_async`](Cache::claim_unfenced_async), with no handle.
    fn claim_for_lock_async<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
        fencing: bool,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            let fence = if fencing {
                self.claim_async(key, value, ttl).await?
            } else {
                self.claim_unfenced_async(key, value, ttl)
                    .await?
                    .then_some(0)
            };
            Ok(fence.map(Claimed::new))
        })
    }

    /// [`release`](Cache::release) with the [`Handle`] this cache's
    /// [`claim_for_lock`](Cache::claim_for_lock) returned for `key` (a guard always passes
    /// them together; a handle with another key or another cache is a caller's bug, and the
    /// cache may trust it). Must do what `release(key, token)` does, without I/O. The
    /// default calls `release`.
    fn release_claimed(&self, key: &str, token: &str, handle: &Handle) -> CacheResult<bool> {
        let _ = handle;
        self.release(key, token)
    }

    /// [`extend`](Cache::extend) with the [`Handle`] this cache's
    /// [`claim_for_lock`](Cache::claim_for_lock) returned for `key` (as for
    /// [`release_claimed`](Cache::release_claimed)). Must do what `extend(key, token, ttl)`
    /// does, without I/O. The default calls `extend`.
    fn extend_claimed(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: &Handle,
    ) -> CacheResult<bool> {
        let _ = handle;
        self.extend(key, token, ttl)
    }
}

/// Forwards every method, including the async twins and overridden lock operations, so a
/// wrapper never downgrades an atomic backend to the get/set/delete defaults.
macro_rules! forward_cache {
    ($($impl_head:tt)*) => {
        $($impl_head)* {
            fn get(&self, key: &str) -> CacheResult<Option<String>> {
                (**self).get(key)
            }
            fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
                (**self).set(key, value, ttl)
            }
            fn delete(&self, key: &str) -> CacheResult<()> {
                (**self).delete(key)
            }
            fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
                (**self).claim(key, token, ttl)
            }
            fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
                (**self).release(key, token)
            }
            fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
                (**self).extend(key, token, ttl)
            }
            fn get_with_ttl(
                &self,
                key: &str,
            ) -> CacheResult<Option<(String, Option<Duration>)>> {
                (**self).get_with_ttl(key)
            }
            fn keys_with_prefix(&self, prefix: &str) -> CacheResult<Vec<String>> {
                (**self).keys_with_prefix(prefix)
            }
            fn wait_for_release(&self, key: &str, pause: Duration) {
                (**self).wait_for_release(key, pause)
            }
            fn wait_for_release_async<'a>(
                &'a self,
                key: &'a str,
                pause: Duration,
            ) -> BoxFuture<'a, ()> {
                (**self).wait_for_release_async(key, pause)
            }
            fn release_detached(&self, key: &str, token: &str, keep_for: Option<Duration>) {
                (**self).release_detached(key, token, keep_for)
            }
            fn get_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<Option<String>>> {
                (**self).get_async(key)
            }
            fn set_async<'a>(
                &'a self,
                key: &'a str,
                value: &'a str,
                ttl: Option<Duration>,
            ) -> BoxFuture<'a, CacheResult<()>> {
                (**self).set_async(key, value, ttl)
            }
            fn delete_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
                (**self).delete_async(key)
            }
            fn claim_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
                ttl: Duration,
            ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
                (**self).claim_async(key, token, ttl)
            }
            fn release_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
            ) -> BoxFuture<'a, CacheResult<bool>> {
                (**self).release_async(key, token)
            }
            fn extend_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
                ttl: Duration,
            ) -> BoxFuture<'a, CacheResult<bool>> {
                (**self).extend_async(key, token, ttl)
            }
            fn release_detached_held(
                &self,
                key: &str,
                token: &str,
                keep_for: Option<Duration>,
                held_for: Duration,
            ) {
                (**self).release_detached_held(key, token, keep_for, held_for)
            }
            fn get_with_ttl_async<'a>(
                &'a self,
                key: &'a str,
            ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
                (**self).get_with_ttl_async(key)
            }
            fn keys_with_prefix_async<'a>(
                &'a self,
                prefix: &'a str,
            ) -> BoxFuture<'a, CacheResult<Vec<String>>> {
                (**self).keys_with_prefix_async(prefix)
            }
            fn tree_claim(
                &self,
                space: &str,
                path: &str,
                value: &str,
                ttl: Duration,
                scope: $crate::tree::TreeScope,
            ) -> CacheResult<Option<u64>> {
                (**self).tree_claim(space, path, value, ttl, scope)
            }
            fn tree_release(&self, space: &str, path: &str, token: &str) -> CacheResult<bool> {
                (**self).tree_release(space, path, token)
            }
            fn tree_extend(
                &self,
                space: &str,
                path: &str,
                token: &str,
                ttl: Duration,
            ) -> CacheResult<bool> {
                (**self).tree_extend(space, path, token, ttl)
            }
            fn tree_holder(
                &self,
                space: &str,
                path: &str,
                scope: $crate::tree::TreeScope,
            ) -> CacheResult<Option<crate::tree::TreeEntry>> {
                (**self).tree_holder(space, path, scope)
            }
            fn tree_release_detached(&self, space: &str, path: &str, token: &str) {
                (**self).tree_release_detached(space, path, token)
            }
            fn tree_extend_detached(&self, space: &str, path: &str, token: &str, keep: Duration) {
                (**self).tree_extend_detached(space, path, token, keep)
            }
            fn tree_list(&self, space: &str) -> CacheResult<Vec<crate::tree::TreeEntry>> {
                (**self).tree_list(space)
            }
            fn tree_wait_for_release(
                &self,
                space: &str,
                path: &str,
                scope: $crate::tree::TreeScope,
                pause: Duration,
            ) {
                (**self).tree_wait_for_release(space, path, scope, pause)
            }
            fn tree_wait_for_release_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                scope: $crate::tree::TreeScope,
                pause: Duration,
            ) -> BoxFuture<'a, ()> {
                (**self).tree_wait_for_release_async(space, path, scope, pause)
            }
            fn tree_claim_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                value: &'a str,
                ttl: Duration,
                scope: $crate::tree::TreeScope,
            ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
                (**self).tree_claim_async(space, path, value, ttl, scope)
            }
            fn tree_release_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                token: &'a str,
            ) -> BoxFuture<'a, CacheResult<bool>> {
                (**self).tree_release_async(space, path, token)
            }
            fn tree_extend_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                token: &'a str,
                ttl: Duration,
            ) -> BoxFuture<'a, CacheResult<bool>> {
                (**self).tree_extend_async(space, path, token, ttl)
            }
            fn tree_holder_async<'a>(
                &'a self,
                space: &'a str,
                path: &'a str,
                scope: $crate::tree::TreeScope,
            ) -> BoxFuture<'a, CacheResult<Option<crate::tree::TreeEntry>>> {
                (**self).tree_holder_async(space, path, scope)
            }
            fn tree_list_async<'a>(
                &'a self,
                space: &'a str,
            ) -> BoxFuture<'a, CacheResult<Vec<crate::tree::TreeEntry>>> {
                (**self).tree_list_async(space)
            }
            fn claim_unfenced(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
                (**self).claim_unfenced(key, token, ttl)
            }
            fn claim_unfenced_async<'a>(
                &'a self,
                key: &'a str,
                token: &'a str,
                ttl: Duration,
            ) -> BoxFuture<'a, CacheResult<bool>> {
                (**self).claim_unfenced_async(key, token, ttl)
            }
            fn claim_for_lock(
                &self,
                key: &str,
                value: &str,
                ttl: Duration,
                fencing: bool,
            ) -> CacheResult<Option<$crate::Claimed>> {
                (**self).claim_for_lock(key, value, ttl, fencing)
            }
            fn claim_for_lock_async<'a>(
                &'a self,
                key: &'a str,
                value: &'a str,
                ttl: Duration,
                fencing: bool,
            ) -> BoxFuture<'a, CacheResult<Option<$crate::Claimed>>> {
                (**self).claim_for_lock_async(key, value, ttl, fencing)
            }
            fn release_claimed(
                &self,
                key: &str,
                token: &str,
                handle: &$crate::Handle,
            ) -> CacheResult<bool> {
                (**self).release_claimed(key, token, handle)
            }
            fn extend_claimed(
                &self,
                key: &str,
                token: &str,
                ttl: Duration,
                handle: &$crate::Handle,
            ) -> CacheResult<bool> {
                (**self).extend_claimed(key, token, ttl, handle)
            }
        }
    };
}

pub(crate) use forward_cache;

forward_cache!(impl<T: Cache + ?Sized> Cache for &T);
forward_cache!(impl<T: Cache + ?Sized> Cache for Arc<T>);
forward_cache!(impl<T: Cache + ?Sized> Cache for Box<T>);
