//! Which tree-lock releases concern a waiter: the recent releases of every lock space, as
//! the subscriber saw them.
//!
//! A tree release publishes its space's owner key and the released path on
//! [`TREE_RELEASED`]. The subscriber records it here, then wakes the space's waiters. A
//! woken waiter looks here before it tries its claim again: a release of a path that cannot
//! have blocked it (a sibling or a cousin, or an ancestor or descendant its scope ignores)
//! sends it back to waiting, so releases elsewhere in a busy space do not turn every waiter
//! into a claim script per release.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::tree::{is_ancestor, TreeScope};

/// The channel tree releases are published on: `<path>\n<space owner key>` (a path holds no
/// control characters, so the first `\n` ends it).
pub(crate) const TREE_RELEASED: &str = "cachelock:tree-released";

/// Releases remembered, for every space together; a waiter that missed more than this many
/// since it looked tries its claim (it cannot tell).
const KEPT: usize = 256;

/// The recent tree releases; see the module docs.
#[derive(Default)]
pub(crate) struct TreeLog {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Releases recorded so far.
    seq: u64,
    /// The last `KEPT` of them: (sequence number, space owner key, path).
    recent: VecDeque<(u64, String, String)>,
}

impl TreeLog {
    fn locked(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a published release; returns the space key to wake, or `None` if the
    /// message is not one.
    pub(crate) fn record<'a>(&self, message: &'a str) -> Option<&'a str> {
        let (path, key) = message.split_once('\n')?;
        let mut state = self.locked();
        state.seq += 1;
        let seq = state.seq;
        if state.recent.len() == KEPT {
            state.recent.pop_front();
        }
        state
            .recent
            .push_back((seq, key.to_owned(), path.to_owned()));
        Some(key)
    }

    /// Where a waiter starts looking from.
    pub(crate) fn seq(&self) -> u64 {
        self.locked().seq
    }

    /// Whether a release recorded after `since` may have unblocked `path` (wanted with
    /// `scope`) in the space of `key`; and where to look from next time.
    pub(crate) fn concerns(
        &self,
        key: &str,
        since: u64,
        path: &str,
        scope: TreeScope,
    ) -> (bool, u64) {
        let state = self.locked();
        let missed = state
            .recent
            .front()
            .is_some_and(|(oldest, _, _)| *oldest > since + 1);
        let relevant = state
            .recent
            .iter()
            .filter(|(seq, space, _)| *seq > since && space == key)
            .any(|(_, _, released)| {
                released == path
                    || (scope.lock_parents && is_ancestor(released, path))
                    || (scope.lock_children && is_ancestor(path, released))
            });
        (missed || relevant, state.seq)
    }
}

/// One tree wait, sync or async: how long is left of its pause, and whether what woke it
/// concerns it.
pub(crate) struct TreeWait<'a> {
    log: &'a TreeLog,
    key: &'a str,
    path: &'a str,
    scope: TreeScope,
    deadline: Instant,
    since: u64,
}

impl<'a> TreeWait<'a> {
    pub(crate) fn new(
        log: &'a TreeLog,
        key: &'a str,
        path: &'a str,
        scope: TreeScope,
        pause: Duration,
    ) -> Self {
        TreeWait {
            log,
            key,
            path,
            scope,
            deadline: Instant::now() + pause,
            since: log.seq(),
        }
    }

    /// What is left of the pause; `None` once it has passed.
    pub(crate) fn left(&self) -> Option<Duration> {
        Some(self.deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    /// After a wake-up: whether a release since the last look concerns the waiter (then it
    /// tries its claim); otherwise it waits again for what is left.
    pub(crate) fn concerned(&mut self) -> bool {
        let (concerns, seen) = self
            .log
            .concerns(self.key, self.since, self.path, self.scope);
        self.since = seen;
        concerns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACE: &str = "cachelock:{cachelock-tree}:own";

    #[test]
    fn only_a_release_that_could_have_blocked_the_path_concerns_it() {
        let log = TreeLog::default();
        let all = TreeScope::default();
        let since = log.seq();
        assert_eq!(log.record(&format!("/a/x\n{SPACE}")), Some(SPACE));
        assert_eq!(
            log.record("/a/b\nother:{cachelock-tree}:own"),
            Some("other:{cachelock-tree}:own")
        );
        let (concerns, next) = log.concerns(SPACE, since, "/a/b", all);
        assert!(!concerns, "a sibling, and the same path in another space");
        for released in ["/a/b", "/a", "/", "/a/b/c"] {
            let since = log.seq();
            log.record(&format!("{released}\n{SPACE}"));
            assert!(log.concerns(SPACE, since, "/a/b", all).0, "{released}");
        }
        let since = log.seq();
        log.record(&format!("/a\n{SPACE}"));
        let no_parents = TreeScope {
            lock_parents: false,
            lock_children: true,
        };
        assert!(!log.concerns(SPACE, since, "/a/b", no_parents).0);
        assert!(next < log.seq());
        assert_eq!(log.record("no newline"), None);
    }

    #[test]
    fn a_waiter_that_missed_releases_tries_again() {
        let log = TreeLog::default();
        let since = log.seq();
        for i in 0..KEPT + 1 {
            log.record(&format!("/elsewhere/{i}\n{SPACE}"));
        }
        assert!(log.concerns(SPACE, since, "/a", TreeScope::default()).0);
    }
}
