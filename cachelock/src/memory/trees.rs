//! Tree locks in process memory ([`TreeStore`] of [`MemoryCache`](crate::MemoryCache)): one mutex over an ordered map per lock space.
//!
//! A claim checks the path itself and each of its ancestors (one map lookup each), then
//! the range of its descendants (an ordered-map range scan), all under the space's mutex,
//! so claims, releases and extends of one space are atomic with respect to each other.
//! Expired entries count as free; they are dropped when a claim meets them, and by a sweep
//! of the whole space whenever it has doubled in size since the last sweep.
//!
//! A released lock's entry is removed at once, and the release wakes the waiters of its
//! space (a [`Board`] of the trees' own, keyed by the space name): they try their claim
//! again. An expiry wakes nobody; the waiter's backoff pause bounds that wait.
//!
//! The (empty) map of a lock space is kept for the life of the cache: removing it could let
//! a claim that already looked it up insert into a map nobody else sees. That is one small
//! entry per prefix ever used.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::claim::{Claim, Claimed, Handle};
use crate::clock::{deadline_after, next_fence};
use crate::owner::is_owned_by;
use crate::result::{BoxFuture, CacheResult};
use crate::tree::path::{ancestors, child_prefix, conflicts, TreeScope};
use crate::tree::{TreeEntry, TreeStore};
use crate::wake::Board;

const MIN_SWEEP: usize = 64;

/// One held path.
struct Entry {
    /// The owner value (`<token>|<pid>|<host>|<label>`).
    value: String,
    deadline: Instant,
    scope: TreeScope,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now < self.deadline
    }

    fn owned_by(&self, token: &str) -> bool {
        is_owned_by(&self.value, token)
    }
}

/// The locks of one space, by path.
#[derive(Default)]
struct Space {
    paths: BTreeMap<String, Entry>,
    sweep_at: usize,
}

impl Space {
    /// The first live entry that conflicts with `path`/`scope`: the path itself, then its
    /// ancestors root first, then its descendants in order.
    fn conflict(&self, path: &str, scope: TreeScope, now: Instant) -> Option<(&str, &Entry)> {
        let hit = |p: &str| {
            self.paths
                .get_key_value(p)
                .filter(|(q, e)| e.live(now) && conflicts(path, scope, q, e.scope))
                .map(|(q, e)| (q.as_str(), e))
        };
        if let Some(found) = hit(path) {
            return Some(found);
        }
        if scope.lock_parents {
            if let Some(found) = ancestors(path).find_map(hit) {
                return Some(found);
            }
        }
        if scope.lock_children {
            let prefix = child_prefix(path);
            return self
                .paths
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .take_while(|(q, _)| q.starts_with(&prefix))
                .find(|(q, e)| e.live(now) && q.as_str() != path && e.scope.lock_parents)
                .map(|(q, e)| (q.as_str(), e));
        }
        None
    }

    fn sweep_if_due(&mut self, now: Instant) {
        if self.paths.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.paths.retain(|_, e| e.live(now));
            self.sweep_at = self.paths.len() * 2;
        }
    }
}

/// Every lock space of one [`MemoryCache`](crate::MemoryCache) (its clones share it).
pub(crate) struct MemoryTrees {
    spaces: Mutex<HashMap<String, Arc<Mutex<Space>>>>,
    /// Waiters for a release, by space name.
    board: Board,
}

impl Default for MemoryTrees {
    fn default() -> Self {
        MemoryTrees {
            spaces: Mutex::default(),
            board: Board::new(),
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock; a poisoned one still holds a consistent map.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryTrees {
    fn space(&self, name: &str) -> Option<Arc<Mutex<Space>>> {
        locked(&self.spaces).get(name).cloned()
    }

    fn space_or_new(&self, name: &str) -> Arc<Mutex<Space>> {
        locked(&self.spaces)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Claims `path`; the fence and the space's map (kept for the life of the cache, so the
    /// guard's handle on it stays the map every claim of the space uses).
    fn claim_value(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: TreeScope,
    ) -> Option<(u64, Arc<Mutex<Space>>)> {
        let shared = self.space_or_new(space);
        let mut entries = locked(&shared);
        let now = Instant::now();
        if entries.conflict(path, scope, now).is_some() {
            return None;
        }
        entries.sweep_if_due(now);
        entries.paths.insert(
            path.to_owned(),
            Entry {
                value: value.to_owned(),
                deadline: deadline_after(now, ttl),
                scope,
            },
        );
        drop(entries);
        Some((next_fence(), shared))
    }

    /// Runs `f` on the map of `space`: the claim's handle when there is one (no lookup).
    fn with_space<R>(
        &self,
        space: &str,
        handle: Option<&Handle>,
        f: impl FnOnce(&mut Space) -> R,
    ) -> Option<R> {
        if let Some(map) = handle.and_then(|h| h.downcast_ref::<Mutex<Space>>()) {
            return Some(f(&mut locked(map)));
        }
        let shared = self.space(space)?;
        let mut entries = locked(&shared);
        Some(f(&mut entries))
    }

    fn release_now(&self, space: &str, path: &str, token: &str, handle: Option<&Handle>) -> bool {
        let mine = self
            .with_space(space, handle, |entries| {
                let now = Instant::now();
                let mine = entries
                    .paths
                    .get(path)
                    .is_some_and(|e| e.live(now) && e.owned_by(token));
                if mine {
                    entries.paths.remove(path);
                }
                mine
            })
            .unwrap_or(false);
        // Woken after letting go of the space: a waiter checks the space while registered.
        if mine {
            self.board.released(space);
        }
        mine
    }

    fn extend_now(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> bool {
        self.with_space(space, handle, |entries| {
            let now = Instant::now();
            match entries.paths.get_mut(path) {
                Some(entry) if entry.live(now) && entry.owned_by(token) => {
                    entry.deadline = deadline_after(now, ttl);
                    true
                }
                _ => false,
            }
        })
        .unwrap_or(false)
    }

    /// Whether a live lock of `space` conflicts with `path`/`scope` right now.
    fn blocked(&self, space: &str, path: &str, scope: TreeScope) -> bool {
        self.space(space).is_some_and(|shared| {
            locked(&shared)
                .conflict(path, scope, Instant::now())
                .is_some()
        })
    }

    /// Waits until `path` is no longer blocked in `space` (a release wakes the space's
    /// waiters, and each checks its own path under the space's mutex: a release of an
    /// unrelated path sends it back to waiting) or `pause` has passed. A release between
    /// the waiter's failed claim and its registration is seen by the check that follows
    /// the registration; one after it wakes the wait.
    fn wait_now(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        let deadline = Instant::now() + pause;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.blocked(space, path, scope) {
                return;
            }
            self.board
                .wait(space, left, || self.blocked(space, path, scope));
        }
    }

    /// Async twin of [`MemoryTrees::wait_now`].
    async fn wait_now_async(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        let deadline = Instant::now() + pause;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.blocked(space, path, scope) {
                return;
            }
            self.board
                .wait_async(space, left, || self.blocked(space, path, scope))
                .await;
        }
    }

    fn holder_now(&self, space: &str, path: &str, scope: TreeScope) -> Option<TreeEntry> {
        let shared = self.space(space)?;
        let space = locked(&shared);
        let now = Instant::now();
        space.conflict(path, scope, now).map(|(q, e)| TreeEntry {
            path: q.to_owned(),
            value: e.value.clone(),
            ttl: Some(e.deadline.saturating_duration_since(now)),
        })
    }

    /// Every live lock of `space`, by path (expired entries are left out, not removed).
    fn list_now(&self, space: &str) -> Vec<TreeEntry> {
        let Some(shared) = self.space(space) else {
            return Vec::new();
        };
        let space = locked(&shared);
        let now = Instant::now();
        space
            .paths
            .iter()
            .filter(|(_, e)| e.live(now))
            .map(|(path, e)| TreeEntry {
                path: path.clone(),
                value: e.value.clone(),
                ttl: Some(e.deadline.saturating_duration_since(now)),
            })
            .collect()
    }
}

/// Tree locks in memory answer inline: nothing here waits on I/O.
impl TreeStore for MemoryTrees {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        let value = claim.owner_value();
        let won = self.claim_value(space, path, &value, claim.ttl(), scope);
        Ok(won.map(|(fence, map)| {
            let handle: Handle = map;
            Claimed::with_handle(fence, handle)
        }))
    }

    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(std::future::ready(self.claim(space, path, scope, claim)))
    }

    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self.release_now(space, path, token, handle))
    }

    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(Ok(
            self.release_now(space, path, token, handle)
        )))
    }

    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self.extend_now(space, path, token, ttl, handle))
    }

    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(std::future::ready(Ok(
            self.extend_now(space, path, token, ttl, handle)
        )))
    }

    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        Ok(self.holder_now(space, path, scope))
    }

    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        Box::pin(std::future::ready(Ok(self.holder_now(space, path, scope))))
    }

    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        Ok(self.list_now(space))
    }

    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        Box::pin(std::future::ready(Ok(self.list_now(space))))
    }

    /// Wakes on a release in `space` that unblocked `path` (or after `pause`).
    fn wait_for_release(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        self.wait_now(space, path, scope, pause);
    }

    fn wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.wait_now_async(space, path, scope, pause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough that a waiter that was not woken cannot pass for one that was.
    const LONG: Duration = Duration::from_secs(30);
    const BOTH: TreeScope = TreeScope {
        lock_parents: true,
        lock_children: true,
    };

    fn until_registered(trees: &MemoryTrees, n: usize) {
        while trees.board.waiting() < n {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_release_wakes_a_registered_waiter_of_its_space_only_if_it_owned_the_path() {
        let trees = MemoryTrees::default();
        let ttl = Duration::from_secs(60);
        assert!(trees.claim_value("s:", "/a", "t1|x", ttl, BOTH).is_some());
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let started = Instant::now();
                trees.wait_now("s:", "/a/b", BOTH, LONG);
                started.elapsed()
            });
            until_registered(&trees, 1);
            // A release by a token that does not own the path changes nothing and wakes
            // nobody: the waiter stays registered.
            assert!(!trees.release_now("s:", "/a", "t2", None));
            assert_eq!(trees.board.waiting(), 1);
            assert!(trees.release_now("s:", "/a", "t1", None));
            assert!(waiter.join().unwrap() < LONG, "woken, not timed out");
        });
        assert_eq!(trees.board.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_wakes_a_registered_async_waiter() {
        let trees = Arc::new(MemoryTrees::default());
        let ttl = Duration::from_secs(60);
        assert!(trees.claim_value("s:", "/a/b", "t1", ttl, BOTH).is_some());
        let waiter = {
            let trees = trees.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                trees.wait_now_async("s:", "/a", BOTH, LONG).await;
                started.elapsed()
            })
        };
        until_registered(&trees, 1);
        assert!(trees.release_now("s:", "/a/b", "t1", None));
        assert!(waiter.await.unwrap() < LONG, "woken, not timed out");
        assert_eq!(trees.board.waiting(), 0);
    }

    #[test]
    fn a_waiter_that_finds_nothing_in_its_way_returns_at_once() {
        let trees = MemoryTrees::default();
        let ttl = Duration::from_secs(60);
        // A sibling is no conflict; neither is a lock of another space.
        assert!(trees.claim_value("s:", "/a/c", "t1", ttl, BOTH).is_some());
        assert!(trees.claim_value("other:", "/a", "t1", ttl, BOTH).is_some());
        let started = Instant::now();
        trees.wait_now("s:", "/a/b", BOTH, LONG);
        trees.wait_now("never-used:", "/a/b", BOTH, LONG);
        assert!(started.elapsed() < LONG);
        assert_eq!(trees.board.waiting(), 0);
    }
}
