//! Tree locks in process memory: one mutex over an ordered map per lock space.
//!
//! A claim checks the path itself and each of its ancestors (one map lookup each), then
//! the range of its descendants (an ordered-map range scan), all under the space's mutex,
//! so claims, releases and extends of one space are atomic with respect to each other.
//! Expired entries count as free; they are dropped when a claim meets them, and by a sweep
//! of the whole space whenever it has doubled in size since the last sweep.
//!
//! A released lock's entry is removed at once. The (empty) map of a lock space is kept for
//! the life of the cache: removing it could let a claim that already looked it up insert
//! into a map nobody else sees. That is one small entry per prefix ever used.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::path::{ancestors, child_prefix, conflicts, TreeScope};
use crate::holder::token_of;

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
        !token.is_empty() && token_of(&self.value) == token
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
#[derive(Default)]
pub(crate) struct MemoryTrees {
    spaces: Mutex<HashMap<String, Arc<Mutex<Space>>>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here panics while holding a lock; a poisoned one still holds a consistent map.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn deadline_after(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl).unwrap_or_else(|| now + crate::MAX_TTL)
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

    pub(crate) fn claim(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: TreeScope,
    ) -> Option<u64> {
        let shared = self.space_or_new(space);
        let mut space = locked(&shared);
        let now = Instant::now();
        if space.conflict(path, scope, now).is_some() {
            return None;
        }
        space.sweep_if_due(now);
        space.paths.insert(
            path.to_owned(),
            Entry {
                value: value.to_owned(),
                deadline: deadline_after(now, ttl),
                scope,
            },
        );
        Some(crate::basic::next_fence())
    }

    pub(crate) fn release(&self, space: &str, path: &str, token: &str) -> bool {
        let Some(shared) = self.space(space) else {
            return false;
        };
        let mut space = locked(&shared);
        let now = Instant::now();
        let mine = space
            .paths
            .get(path)
            .is_some_and(|e| e.live(now) && e.owned_by(token));
        if mine {
            space.paths.remove(path);
        }
        mine
    }

    pub(crate) fn extend(&self, space: &str, path: &str, token: &str, ttl: Duration) -> bool {
        let Some(shared) = self.space(space) else {
            return false;
        };
        let mut space = locked(&shared);
        let now = Instant::now();
        match space.paths.get_mut(path) {
            Some(entry) if entry.live(now) && entry.owned_by(token) => {
                entry.deadline = deadline_after(now, ttl);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn holder(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
    ) -> Option<crate::tree::TreeEntry> {
        let shared = self.space(space)?;
        let space = locked(&shared);
        let now = Instant::now();
        space
            .conflict(path, scope, now)
            .map(|(q, e)| crate::tree::TreeEntry {
                path: q.to_owned(),
                value: e.value.clone(),
                ttl: Some(e.deadline.saturating_duration_since(now)),
            })
    }
}
