//! [`TreeLock`]: the builder that names a path and takes it.

use std::future::Future;
use std::time::Duration;

use super::guard::{AsyncTreeGuard, TreeGuard};
use super::path::{check_path, TreeScope};
use super::store::{unsupported, TreeStore};
use super::target::TreeTarget;
use crate::acquire::{self, acquire, acquire_async};
use crate::default_cache::DefaultCache;
use crate::error::{check_ttl, Error};
use crate::owner::{parse, Holder};
use crate::settings::{settings_setters, Settings};
use crate::store::LockStore;

/// A lock on one path of a tree of resources: build it, then take it.
///
/// See the [module docs](crate::tree) for paths, the conflict rule and the backends.
///
/// | setting | default | |
/// |---|---|---|
/// | [`cache`](TreeLock::cache) | the process default store | must have tree locks ([`LockStore::trees`](crate::LockStore::trees)) |
/// | [`ttl`](TreeLock::ttl) | [`DEFAULT_TTL`](crate::DEFAULT_TTL) (60 s) | how long a holder that crashed keeps the path |
/// | [`wait`](TreeLock::wait) | zero | how long [`run`](TreeLock::run) waits for a conflicting holder |
/// | [`renew`](TreeLock::renew) | yes | renewed by the shared renewer while a guard holds it |
/// | [`max_hold`](TreeLock::max_hold) | none | renewal never keeps it longer |
/// | [`hold_at_least`](TreeLock::hold_at_least) | none | a release sooner keeps the path held until then |
/// | [`label`](TreeLock::label) | none | stored with the holder's host and pid (Locker's `id`) |
/// | [`prefix`](TreeLock::prefix) | the process prefix, `"cachelock:"` unless set | the lock space: trees under different prefixes never conflict |
/// | [`lock_parents`](TreeLock::lock_parents) | yes | excludes locks on ancestors |
/// | [`lock_children`](TreeLock::lock_children) | yes | excludes locks on descendants |
///
/// [`hold_at_least`](TreeLock::hold_at_least) keeps a path (with its scope) held after a
/// quick job, so it runs at most once per window across replicas:
///
/// ```
/// use std::time::Duration;
/// use cachelock::tree::TreeLock;
/// use cachelock::MemoryCache;
///
/// let cache = MemoryCache::new();
/// let daily = TreeLock::new("/reports/daily")
///     .cache(cache.clone())
///     .hold_at_least(Duration::from_secs(300));
/// daily.run(|| { /* a job that ends at once */ })?;
/// // Released, but kept: another replica does not run it again now.
/// assert!(daily.run(|| ()).unwrap_err().is_locked());
/// assert!(TreeLock::new("/reports").cache(cache).try_acquire().unwrap_err().is_locked());
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// It applies to releases by the guard: a lock given up with
/// [`into_claim`](super::TreeGuard::into_claim) stays held for its TTL, and
/// [`release_token`](TreeLock::release_token) deletes it at once.
#[must_use = "a TreeLock does nothing until it is acquired"]
#[derive(Clone)]
pub struct TreeLock<C = DefaultCache> {
    path: String,
    settings: Settings,
    scope: TreeScope,
    cache: C,
}

impl TreeLock<DefaultCache> {
    /// A lock on `path` (e.g. `"/printers/floor-2"`), with the default store, TTL, prefix
    /// and scope. The path is checked when the lock is used.
    pub fn new(path: impl Into<String>) -> Self {
        TreeLock {
            path: path.into(),
            settings: Settings::default(),
            scope: TreeScope::default(),
            cache: DefaultCache,
        }
    }
}

impl<C> TreeLock<C> {
    /// Uses `cache` instead of the process default (a [`MemoryCache`](crate::MemoryCache),
    /// a Redis store, a reference, an `Arc<dyn LockStore>`...): any [`LockStore`] with tree
    /// locks.
    pub fn cache<D: LockStore>(self, cache: D) -> TreeLock<D> {
        TreeLock {
            path: self.path,
            settings: self.settings,
            scope: self.scope,
            cache,
        }
    }

    settings_setters!();

    /// Whether this lock excludes locks on its ancestors (default: yes; Locker's
    /// `lockParents`). With `false`, a lock on `/a` can be taken while this lock holds
    /// `/a/b`, even if that lock locks its children (the rule needs both sides; see
    /// [`conflicts`](super::conflicts)).
    pub fn lock_parents(mut self, lock_parents: bool) -> Self {
        self.scope.lock_parents = lock_parents;
        self
    }

    /// Whether this lock excludes locks on its descendants (default: yes; Locker's
    /// `lockChildren`).
    pub fn lock_children(mut self, lock_children: bool) -> Self {
        self.scope.lock_children = lock_children;
        self
    }

    /// The path, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The scope (`lock_parents`, `lock_children`).
    pub fn scope(&self) -> TreeScope {
        self.scope
    }

    /// The lock space (the prefix).
    pub fn space(&self) -> &str {
        self.settings.prefix()
    }

    /// The path with its lock space in front, as errors and logs name it.
    pub fn full_key(&self) -> String {
        format!("{}{}", self.space(), self.path)
    }

    /// Checks the path and the settings; returns the full key.
    fn checked(&self) -> Result<String, Error> {
        check_path(&self.path)?;
        let full = self.full_key();
        self.settings.check(&full)?;
        Ok(full)
    }
}

impl<C: LockStore> TreeLock<C> {
    fn trees(&self) -> Result<&dyn TreeStore, Error> {
        self.cache
            .trees()
            .ok_or_else(|| Error::backend(self.full_key(), unsupported()))
    }

    /// The holder of a live lock that conflicts with this one (the one
    /// [`try_acquire`](TreeLock::try_acquire) would hit), `None` if there is none.
    ///
    /// [`Holder::key`] is the **held path** (without the prefix), which may be an ancestor
    /// or a descendant of this lock's path; [`Holder::label`] its label.
    pub fn holder(&self) -> Result<Option<Holder>, Error> {
        check_path(&self.path)?;
        let found = self
            .trees()?
            .holder(self.space(), &self.path, self.scope)
            .map_err(|source| Error::backend(self.full_key(), source))?;
        Ok(found.map(|e| parse(&e.path, &e.value, e.ttl)))
    }

    /// Async twin of [`holder`](TreeLock::holder).
    pub async fn holder_async(&self) -> Result<Option<Holder>, Error> {
        check_path(&self.path)?;
        let found = self
            .trees()?
            .holder_async(self.space(), &self.path, self.scope)
            .await
            .map_err(|source| Error::backend(self.full_key(), source))?;
        Ok(found.map(|e| parse(&e.path, &e.value, e.ttl)))
    }

    /// Releases the lock on this path if `token` owns it (Locker's `nowant`): `true` if
    /// it released it, `false` if the path is not held, expired, or held by another token.
    /// The scope and TTL of this `TreeLock` play no part.
    pub fn release_token(&self, token: &str) -> Result<bool, Error> {
        check_path(&self.path)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.trees()?
            .release(self.space(), &self.path, token, None)
            .map_err(|source| Error::backend(self.full_key(), source))
    }

    /// Async twin of [`release_token`](TreeLock::release_token).
    pub async fn release_token_async(&self, token: &str) -> Result<bool, Error> {
        check_path(&self.path)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.trees()?
            .release_async(self.space(), &self.path, token, None)
            .await
            .map_err(|source| Error::backend(self.full_key(), source))
    }

    /// Sets the remaining TTL of the lock on this path to `ttl` if `token` owns it: `true`
    /// if it did, `false` if the path is not held by `token`.
    pub fn extend_token(&self, token: &str, ttl: Duration) -> Result<bool, Error> {
        check_path(&self.path)?;
        check_ttl(&self.full_key(), "ttl", ttl)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.trees()?
            .extend(self.space(), &self.path, token, ttl, None)
            .map_err(|source| Error::backend(self.full_key(), source))
    }

    /// Async twin of [`extend_token`](TreeLock::extend_token).
    pub async fn extend_token_async(&self, token: &str, ttl: Duration) -> Result<bool, Error> {
        check_path(&self.path)?;
        check_ttl(&self.full_key(), "ttl", ttl)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.trees()?
            .extend_async(self.space(), &self.path, token, ttl, None)
            .await
            .map_err(|source| Error::backend(self.full_key(), source))
    }
}

/// A token that could own a lock: not empty, no `|` (the separator of the owner value).
fn plausible(token: &str) -> bool {
    !token.is_empty() && !token.contains('|')
}

impl<C: LockStore + Clone + 'static> TreeLock<C> {
    fn target(&self) -> Result<TreeTarget<C>, Error> {
        Ok(TreeTarget {
            key: self.checked()?,
            space_len: self.space().len(),
            scope: self.scope,
            store: self.cache.clone(),
        })
    }

    /// Takes the lock if nothing conflicts, or fails at once with [`Error::Locked`].
    pub fn try_acquire(&self) -> Result<TreeGuard<C>, Error> {
        acquire(self.target()?, &self.settings, None).map(TreeGuard::new)
    }

    /// Takes the lock, waiting up to `timeout` for conflicting holders to let go; then
    /// [`Error::Locked`]. A backend error ends the wait at once.
    ///
    /// Between attempts it waits with [`TreeStore::wait_for_release`], at most a jittered
    /// backoff pause (2 ms doubling to 100 ms): on a [`MemoryCache`](crate::MemoryCache) or a
    /// Redis store a release in the lock space that could have blocked this path wakes it to
    /// try again at once; an expiry (a holder that crashed) is noticed when the pause ends.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<TreeGuard<C>, Error> {
        acquire(self.target()?, &self.settings, Some(timeout)).map(TreeGuard::new)
    }

    /// Async twin of [`try_acquire`](TreeLock::try_acquire).
    pub async fn try_acquire_async(&self) -> Result<AsyncTreeGuard<C>, Error> {
        acquire_async(self.target()?, &self.settings, None)
            .await
            .map(AsyncTreeGuard::new)
    }

    /// Async twin of [`acquire_timeout`](TreeLock::acquire_timeout); never blocks a runtime
    /// thread.
    pub async fn acquire_timeout_async(
        &self,
        timeout: Duration,
    ) -> Result<AsyncTreeGuard<C>, Error> {
        acquire_async(self.target()?, &self.settings, Some(timeout))
            .await
            .map(AsyncTreeGuard::new)
    }

    /// Runs `f` while holding the lock, then releases it (also when `f` panics); waits up
    /// to [`wait`](TreeLock::wait) first. As [`Lock::run`](crate::Lock::run).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Error> {
        acquire::run(self.target()?, &self.settings, f)
    }

    /// Async twin of [`run`](TreeLock::run).
    pub async fn run_async<F: Future>(&self, fut: F) -> Result<F::Output, Error> {
        acquire::run_async(self.target()?, &self.settings, fut).await
    }
}

impl<C> std::fmt::Debug for TreeLock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeLock")
            .field("path", &self.path)
            .field("prefix", &self.settings.prefix)
            .field("ttl", &self.settings.ttl)
            .field("wait", &self.settings.wait)
            .field("hold_at_least", &self.settings.policy.hold_at_least)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
