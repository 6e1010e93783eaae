//! [`TreeLock`]: the builder that names a path and takes it.

use crate::in_flight::InFlight;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::guard::{AsyncTreeGuard, TreeGuard};
use super::path::{check_path, TreeScope};
use super::target::TreeTarget;
use crate::backoff::Backoff;
use crate::cache::Cache;
use crate::config::key_prefix;
use crate::default_cache::DefaultCache;
use crate::error::{check_ttl, Error};
use crate::guard::{watched, AsyncGuard, Guard};
use crate::holder::Holder;
use crate::lease::{Lease, Policy};
use crate::token::Token;
use crate::DEFAULT_TTL;

/// A lock on one path of a tree of resources: build it, then take it.
///
/// See the [module docs](crate::tree) for paths, the conflict rule and the backends.
///
/// | setting | default | |
/// |---|---|---|
/// | [`cache`](TreeLock::cache) | the process default cache | must support tree locks |
/// | [`ttl`](TreeLock::ttl) | [`DEFAULT_TTL`] (60 s) | how long a holder that crashed keeps the path |
/// | [`wait`](TreeLock::wait) | zero | how long [`run`](TreeLock::run) waits for a conflicting holder |
/// | [`renew`](TreeLock::renew) | yes | renewed by the shared renewer while a guard holds it |
/// | [`max_hold`](TreeLock::max_hold) | none | renewal never keeps it longer |
/// | [`hold_at_least`](TreeLock::hold_at_least) | none | a release sooner keeps the path held until then |
/// | [`label`](TreeLock::label) | none | stored with the holder's host and pid (Locker's `id`) |
/// | [`prefix`](TreeLock::prefix) | the process prefix, `"cachelock:"` unless set | the lock space: trees under different prefixes never conflict |
/// | [`lock_parents`](TreeLock::lock_parents) | yes | excludes locks on ancestors |
/// | [`lock_children`](TreeLock::lock_children) | yes | excludes locks on descendants |
#[must_use = "a TreeLock does nothing until it is acquired"]
#[derive(Clone)]
pub struct TreeLock<C: Cache = DefaultCache> {
    path: String,
    prefix: Option<Cow<'static, str>>,
    ttl: Duration,
    wait: Duration,
    policy: Policy,
    label: Option<String>,
    scope: TreeScope,
    cache: C,
}

impl TreeLock<DefaultCache> {
    /// A lock on `path` (e.g. `"/printers/floor-2"`), with the default cache, TTL, prefix
    /// and scope. The path is checked when the lock is used.
    pub fn new(path: impl Into<String>) -> Self {
        TreeLock {
            path: path.into(),
            prefix: None,
            ttl: DEFAULT_TTL,
            wait: Duration::ZERO,
            policy: Policy {
                renew: true,
                max_hold: None,
                hold_at_least: None,
            },
            label: None,
            scope: TreeScope::default(),
            cache: DefaultCache,
        }
    }
}

impl<C: Cache> TreeLock<C> {
    /// Uses `cache` instead of the process default (a [`MemoryCache`](crate::MemoryCache),
    /// a Redis cache, a reference, an `Arc<dyn Cache>`...).
    pub fn cache<D: Cache>(self, cache: D) -> TreeLock<D> {
        TreeLock {
            path: self.path,
            prefix: self.prefix,
            ttl: self.ttl,
            wait: self.wait,
            policy: self.policy,
            label: self.label,
            scope: self.scope,
            cache,
        }
    }

    /// How long the lock lives if its holder never releases it (default [`DEFAULT_TTL`]).
    /// Greater than zero and at most [`MAX_TTL`](crate::MAX_TTL), else acquiring reports
    /// [`Error::InvalidSetting`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`run`](TreeLock::run) and [`run_async`](TreeLock::run_async) wait for a
    /// conflicting holder before giving up with [`Error::Locked`] (default: zero).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Whether to renew the lock in the background while a guard holds it (default: yes),
    /// as [`Lock::renew`](crate::Lock::renew) does, by the same shared renewal thread.
    pub fn renew(mut self, renew: bool) -> Self {
        self.policy.renew = renew;
        self
    }

    /// Renewal never keeps the lock past `max_hold` after acquiring, as
    /// [`Lock::max_hold`](crate::Lock::max_hold).
    pub fn max_hold(mut self, max_hold: Duration) -> Self {
        self.policy.max_hold = Some(max_hold);
        self
    }

    /// Keeps the path held at least this long after acquiring, even if released sooner, as
    /// [`Lock::hold_at_least`](crate::Lock::hold_at_least) does for a key (ShedLock's
    /// `lockAtLeastFor`).
    ///
    /// A guard's release (its [`release`](super::TreeGuard::release), its drop, the end of
    /// [`run`](TreeLock::run)) before then does not delete the lock: it sets the lock's TTL
    /// to the time left (owner-checked), so the path, with its scope, keeps every conflicting
    /// claim out until `hold_at_least` has passed, then frees itself. A release after that
    /// deletes the lock at once. A job under `/reports/daily` that takes 2 s with
    /// `hold_at_least(5 min)` runs at most once per 5 minutes across every replica that
    /// shares the cache. Greater than zero and at most [`MAX_TTL`](crate::MAX_TTL), else
    /// acquiring reports [`Error::InvalidSetting`]. Default: none.
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
    pub fn hold_at_least(mut self, hold_at_least: Duration) -> Self {
        self.policy.hold_at_least = Some(hold_at_least);
        self
    }

    /// A label stored with the lock beside this process's host name and pid; reported by
    /// [`holder`](TreeLock::holder) (Locker's `id`, shown as `lockedBy`). Not secret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The lock space: trees under different prefixes are independent (default: the
    /// process prefix, [`key_prefix`](crate::key_prefix)).
    pub fn prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

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
        match &self.prefix {
            Some(prefix) => prefix,
            None => key_prefix(),
        }
    }

    /// The path with its lock space in front, as errors and logs name it.
    pub fn full_key(&self) -> String {
        format!("{}{}", self.space(), self.path)
    }

    /// Checks the path and the settings; returns the full key.
    fn checked(&self) -> Result<String, Error> {
        check_path(&self.path)?;
        let full = self.full_key();
        check_ttl(&full, "ttl", self.ttl)?;
        if let Some(max_hold) = self.policy.max_hold {
            check_ttl(&full, "max_hold", max_hold)?;
        }
        if let Some(hold_at_least) = self.policy.hold_at_least {
            check_ttl(&full, "hold_at_least", hold_at_least)?;
        }
        Ok(full)
    }

    /// The holder of a live lock that conflicts with this one (the one
    /// [`try_acquire`](TreeLock::try_acquire) would hit), `None` if there is none.
    ///
    /// [`Holder::key`] is the **held path** (without the prefix), which may be an ancestor
    /// or a descendant of this lock's path; [`Holder::label`] its label.
    pub fn holder(&self) -> Result<Option<Holder>, Error> {
        check_path(&self.path)?;
        let found = self
            .cache
            .tree_holder(self.space(), &self.path, self.scope)
            .map_err(|source| Error::backend(self.full_key(), source))?;
        Ok(found.map(|e| crate::holder::parse(&e.path, &e.value, e.ttl)))
    }

    /// Async twin of [`holder`](TreeLock::holder).
    pub async fn holder_async(&self) -> Result<Option<Holder>, Error> {
        check_path(&self.path)?;
        let found = self
            .cache
            .tree_holder_async(self.space(), &self.path, self.scope)
            .await
            .map_err(|source| Error::backend(self.full_key(), source))?;
        Ok(found.map(|e| crate::holder::parse(&e.path, &e.value, e.ttl)))
    }

    /// Releases the lock on this path if `token` owns it (Locker's `nowant`): `true` if
    /// it released it, `false` if the path is not held, expired, or held by another token.
    /// The scope and TTL of this `TreeLock` play no part.
    pub fn release_token(&self, token: &str) -> Result<bool, Error> {
        check_path(&self.path)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.cache
            .tree_release(self.space(), &self.path, token)
            .map_err(|source| Error::backend(self.full_key(), source))
    }

    /// Async twin of [`release_token`](TreeLock::release_token).
    pub async fn release_token_async(&self, token: &str) -> Result<bool, Error> {
        check_path(&self.path)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.cache
            .tree_release_async(self.space(), &self.path, token)
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
        self.cache
            .tree_extend(self.space(), &self.path, token, ttl)
            .map_err(|source| Error::backend(self.full_key(), source))
    }

    /// Async twin of [`extend_token`](TreeLock::extend_token).
    pub async fn extend_token_async(&self, token: &str, ttl: Duration) -> Result<bool, Error> {
        check_path(&self.path)?;
        check_ttl(&self.full_key(), "ttl", ttl)?;
        if !plausible(token) {
            return Ok(false);
        }
        self.cache
            .tree_extend_async(self.space(), &self.path, token, ttl)
            .await
            .map_err(|source| Error::backend(self.full_key(), source))
    }
}

/// A token that could own a lock: not empty, no `|` (the separator of the owner value).
fn plausible(token: &str) -> bool {
    !token.is_empty() && !token.contains('|')
}

impl<C: Cache + Clone + 'static> TreeLock<C> {
    /// Takes the lock if nothing conflicts, or fails at once with [`Error::Locked`].
    pub fn try_acquire(&self) -> Result<TreeGuard<C>, Error> {
        self.claim(self.checked()?).into_result()
    }

    /// Takes the lock, waiting up to `timeout` for conflicting holders to let go; then
    /// [`Error::Locked`]. A backend error ends the wait at once.
    ///
    /// Between attempts it waits with [`Cache::tree_wait_for_release`], at most a jittered
    /// backoff pause (2 ms doubling to 100 ms): on a [`MemoryCache`](crate::MemoryCache) or a
    /// Redis cache any release in the lock space wakes it to try again at once; an expiry
    /// (a holder that crashed) is noticed when the pause ends. A cache with the default
    /// `tree_wait_for_release` polls.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<TreeGuard<C>, Error> {
        let mut backoff = Backoff::until(Instant::now() + timeout.min(crate::MAX_TTL));
        let key = self.checked()?;
        loop {
            match self.claim(key.clone()) {
                Attempt::Won(guard) => return Ok(guard),
                Attempt::Held(_) => match backoff.next_pause() {
                    Some(pause) => {
                        tracing::trace!(key = %key, ?pause, "tree lock held; waiting");
                        self.cache.tree_wait_for_release(
                            self.space(),
                            &self.path,
                            self.scope,
                            pause,
                        );
                    }
                    None => return Err(Error::Locked { key }),
                },
                Attempt::Failed(error) => return Err(error),
            }
        }
    }

    /// Async twin of [`try_acquire`](TreeLock::try_acquire).
    pub async fn try_acquire_async(&self) -> Result<AsyncTreeGuard<C>, Error> {
        self.claim_async(self.checked()?).await.into_result()
    }

    /// Async twin of [`acquire_timeout`](TreeLock::acquire_timeout); waits with
    /// [`Cache::tree_wait_for_release_async`] (tokio's timer), never blocking a runtime
    /// thread.
    pub async fn acquire_timeout_async(
        &self,
        timeout: Duration,
    ) -> Result<AsyncTreeGuard<C>, Error> {
        let mut backoff = Backoff::until(Instant::now() + timeout.min(crate::MAX_TTL));
        let key = self.checked()?;
        loop {
            match self.claim_async(key.clone()).await {
                Attempt::Won(guard) => return Ok(guard),
                Attempt::Held(_) => match backoff.next_pause() {
                    Some(pause) => {
                        tracing::trace!(key = %key, ?pause, "tree lock held; waiting");
                        self.cache
                            .tree_wait_for_release_async(
                                self.space(),
                                &self.path,
                                self.scope,
                                pause,
                            )
                            .await;
                    }
                    None => return Err(Error::Locked { key }),
                },
                Attempt::Failed(error) => return Err(error),
            }
        }
    }

    /// Runs `f` while holding the lock, then releases it (also when `f` panics); waits up
    /// to [`wait`](TreeLock::wait) first. As [`Lock::run`](crate::Lock::run).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, Error> {
        let guard = if self.wait.is_zero() {
            self.try_acquire()?
        } else {
            self.acquire_timeout(self.wait)?
        };
        let out = f();
        guard.release_logged();
        Ok(out)
    }

    /// Async twin of [`run`](TreeLock::run).
    pub async fn run_async<F: Future>(&self, fut: F) -> Result<F::Output, Error> {
        let guard = if self.wait.is_zero() {
            self.try_acquire_async().await?
        } else {
            self.acquire_timeout_async(self.wait).await?
        };
        let out = AssertUnwindSafe(fut).catch_unwind().await;
        guard.release_logged().await;
        match out {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn target(&self) -> TreeTarget<C> {
        TreeTarget {
            cache: self.cache.clone(),
            space: Arc::from(self.space()),
            scope: self.scope,
        }
    }

    fn claim(&self, key: String) -> Attempt<TreeGuard<C>> {
        let token = Token::new();
        let started = Instant::now();
        let value = crate::holder::owner_value(token.as_str(), self.label.as_deref());
        let target = self.target();
        match target.claim(&key, value.as_str(), self.ttl) {
            Ok(Some(fence)) => {
                tracing::debug!(key = %key, fence, "tree lock acquired");
                let lease = self.lease(target, key, token, fence, started);
                Attempt::Won(TreeGuard::new(Guard::new(lease), self.space().len()))
            }
            Ok(None) => {
                tracing::debug!(key = %key, "tree lock contended");
                Attempt::Held(key)
            }
            Err(source) => {
                // The error may have come after the claim landed: give it back.
                crate::in_flight::give_back_failed(&target, &key, token.as_str());
                Attempt::Failed(Error::backend(key, source))
            }
        }
    }

    async fn claim_async(&self, key: String) -> Attempt<AsyncTreeGuard<C>> {
        let token = Token::new();
        let started = Instant::now();
        let value = crate::holder::owner_value(token.as_str(), self.label.as_deref());
        let target = self.target();
        let in_flight = InFlight::new(&target, &key, token.as_str());
        let claimed = target.claim_async(&key, value.as_str(), self.ttl).await;
        in_flight.disarm();
        if claimed.is_err() {
            // The error may have come after the claim landed: give it back.
            crate::in_flight::give_back_failed(&target, &key, token.as_str());
        }
        match claimed {
            Ok(Some(fence)) => {
                tracing::debug!(key = %key, fence, "tree lock acquired");
                let lease = self.lease(target, key, token, fence, started);
                Attempt::Won(AsyncTreeGuard::new(
                    AsyncGuard::new(lease),
                    self.space().len(),
                ))
            }
            Ok(None) => {
                tracing::debug!(key = %key, "tree lock contended");
                Attempt::Held(key)
            }
            Err(source) => Attempt::Failed(Error::backend(key, source)),
        }
    }

    fn lease(
        &self,
        target: TreeTarget<C>,
        key: String,
        token: Token,
        fence: u64,
        started: Instant,
    ) -> Arc<Lease<TreeTarget<C>>> {
        watched(Lease::new(
            target,
            key,
            token,
            crate::Claimed::new(fence),
            self.ttl,
            started,
            self.policy,
        ))
    }
}

enum Attempt<G> {
    Won(G),
    /// A conflicting lock is held; the full key comes back for the error.
    Held(String),
    Failed(Error),
}

impl<G> Attempt<G> {
    fn into_result(self) -> Result<G, Error> {
        match self {
            Attempt::Won(guard) => Ok(guard),
            Attempt::Held(key) => Err(Error::Locked { key }),
            Attempt::Failed(error) => Err(error),
        }
    }
}

impl<C: Cache> std::fmt::Debug for TreeLock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeLock")
            .field("path", &self.path)
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .field("wait", &self.wait)
            .field("hold_at_least", &self.policy.hold_at_least)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
