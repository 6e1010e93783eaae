//! The tree-lock conformance suite: [`tree_conformance`] and [`tree_conformance_async`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{run_sync, short_ttls, ConformanceError, Mode, LONG};
use crate::error::Error;
use crate::store::LockStore;
use crate::token::Token;
use crate::tree::{conflicts, AsyncTreeGuard, TreeGuard, TreeLock, TreeScope};

/// Runs every tree-lock check with the sync API (threads for the contention check), on
/// `cache` and on it as an `Arc<dyn LockStore>`. Needs no async runtime.
///
/// # What is checked
///
/// 1. The rule: every pair of 7 paths (the root, a parent, a child, a grandchild, a
///    sibling, `/ab` beside `/a`, an unrelated path) × 4 scopes, held then tried, is
///    refused exactly when [`conflicts`] says so, and [`TreeLock::holder`] names the
///    held path then (and nothing otherwise).
/// 2. Many holders at once: siblings and cousins coexist, their common ancestors do not.
/// 3. Invalid paths: `InvalidKey` from acquire, holder, release_token and extend_token.
/// 4. Owner tokens: a claim kept with `into_claim` stays held; a wrong token neither
///    releases nor extends it; the right one does, once.
/// 5. Expiry: an unrenewed lock frees its path (and its ancestors) after its TTL, and its
///    guard reports it lost.
/// 6. The holder's label, pid and held path.
/// 7. Renewal keeps a lock past several TTLs; `max_hold` ends it.
/// 8. `hold_at_least`: a lock released (and, with the async API, dropped) within its window
///    keeps its path and its ancestors refused, then frees them within a few seconds (far
///    sooner than its TTL); one released after its window frees the path at once.
/// 9. Listing ([`tree::held_locks`](crate::tree::held_locks)): every live lock of the space,
///    by path, with its label, pid and TTL; released and expired locks are left out.
/// 10. Contention: 8 threads (tasks, in the async suite) take random paths of a small tree
///     with random scopes; a checker proves that no two conflicting holders are ever inside
///     at once.
///
/// Every run uses a fresh lock space. The TTL checks sleep (a few seconds in all).
pub fn tree_conformance<C: LockStore + Clone + 'static>(cache: C) -> Result<(), ConformanceError> {
    run_sync(Suite::new(cache.clone(), Mode::Sync, "tree, sync").run())?;
    let shared: Arc<dyn LockStore> = Arc::new(cache);
    run_sync(Suite::new(shared, Mode::Sync, "tree, sync, Arc<dyn LockStore>").run())
}

/// Async twin of [`tree_conformance`]: the async API, tokio tasks for contention. Must be
/// awaited inside a multi-threaded tokio runtime with its timer enabled.
pub async fn tree_conformance_async<C: LockStore + Clone + 'static>(
    cache: C,
) -> Result<(), ConformanceError> {
    Suite::new(cache.clone(), Mode::Async, "tree, async")
        .run()
        .await?;
    let shared: Arc<dyn LockStore> = Arc::new(cache);
    Suite::new(shared, Mode::Async, "tree, async, Arc<dyn LockStore>")
        .run()
        .await
}

/// Who is inside in the contention check: worker, path, scope.
type Inside = (usize, &'static str, TreeScope);

const PATHS: [&str; 7] = ["/", "/a", "/a/b", "/a/b/c", "/a/x", "/ab", "/b"];

fn scopes() -> [TreeScope; 4] {
    [(true, true), (true, false), (false, true), (false, false)].map(
        |(lock_parents, lock_children)| TreeScope {
            lock_parents,
            lock_children,
        },
    )
}

/// A guard of either API.
enum Held<C: LockStore + Clone + 'static> {
    Sync(TreeGuard<C>),
    Async(AsyncTreeGuard<C>),
}

impl<C: LockStore + Clone + 'static> Held<C> {
    async fn release(self) -> Result<(), Error> {
        match self {
            Held::Sync(guard) => guard.release(),
            Held::Async(guard) => guard.release().await,
        }
    }

    fn is_lost(&self) -> bool {
        match self {
            Held::Sync(guard) => guard.is_lost(),
            Held::Async(guard) => guard.is_lost(),
        }
    }

    fn into_claim(self) -> crate::tree::TreeClaim {
        match self {
            Held::Sync(guard) => guard.into_claim(),
            Held::Async(guard) => guard.into_claim(),
        }
    }
}

struct Suite<C> {
    cache: C,
    mode: Mode,
    label: &'static str,
    space: String,
    check: &'static str,
    /// The short TTL of the expiry checks, and a sleep surely past it
    /// ([`short_ttls`](super::short_ttls)).
    short: Duration,
    past_short: Duration,
}

impl<C: LockStore + Clone + 'static> Suite<C> {
    fn new(cache: C, mode: Mode, label: &'static str) -> Self {
        let (short, past_short) = short_ttls(&cache);
        Suite {
            short,
            past_short,
            cache,
            mode,
            label,
            space: format!(
                "cachelock-tree-conformance:{}:",
                &Token::new().as_str()[..12]
            ),
            check: "",
        }
    }

    fn fail(&self, detail: impl Into<String>) -> ConformanceError {
        ConformanceError {
            check: self.check,
            detail: detail.into(),
            mode: self.label.to_owned(),
        }
    }

    fn lock(&self, path: &str, scope: TreeScope) -> TreeLock<C> {
        TreeLock::new(path)
            .cache(self.cache.clone())
            .prefix(self.space.clone())
            .ttl(LONG)
            .lock_parents(scope.lock_parents)
            .lock_children(scope.lock_children)
    }

    async fn try_acquire(&self, lock: &TreeLock<C>) -> Result<Option<Held<C>>, ConformanceError> {
        let outcome = match self.mode {
            Mode::Sync => lock.try_acquire().map(Held::Sync),
            Mode::Async => lock.try_acquire_async().await.map(Held::Async),
        };
        match outcome {
            Ok(held) => Ok(Some(held)),
            Err(error) if error.is_locked() => Ok(None),
            Err(error) => Err(self.fail(format!("acquiring {} failed: {error}", lock.path()))),
        }
    }

    async fn must_acquire(
        &self,
        lock: &TreeLock<C>,
        why: &str,
    ) -> Result<Held<C>, ConformanceError> {
        self.try_acquire(lock).await?.ok_or_else(|| {
            self.fail(format!(
                "{}: refused, expected granted ({why})",
                lock.path()
            ))
        })
    }

    async fn must_refuse(&self, lock: &TreeLock<C>, why: &str) -> Result<(), ConformanceError> {
        match self.try_acquire(lock).await? {
            None => Ok(()),
            Some(_held) => Err(self.fail(format!(
                "{}: granted, expected refused ({why})",
                lock.path()
            ))),
        }
    }

    async fn release(&self, held: Held<C>, what: &str) -> Result<(), ConformanceError> {
        held.release()
            .await
            .map_err(|e| self.fail(format!("release of {what}: {e}")))
    }

    async fn holder(&self, lock: &TreeLock<C>) -> Result<Option<crate::Holder>, Error> {
        match self.mode {
            Mode::Sync => lock.holder(),
            Mode::Async => lock.holder_async().await,
        }
    }

    async fn release_token(&self, lock: &TreeLock<C>, token: &str) -> Result<bool, Error> {
        match self.mode {
            Mode::Sync => lock.release_token(token),
            Mode::Async => lock.release_token_async(token).await,
        }
    }

    async fn extend_token(
        &self,
        lock: &TreeLock<C>,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        match self.mode {
            Mode::Sync => lock.extend_token(token, ttl),
            Mode::Async => lock.extend_token_async(token, ttl).await,
        }
    }

    async fn sleep(&self, d: Duration) {
        match self.mode {
            Mode::Sync => std::thread::sleep(d),
            Mode::Async => tokio::time::sleep(d).await,
        }
    }

    fn expect<T: std::fmt::Debug + PartialEq>(
        &self,
        what: &str,
        got: T,
        want: T,
    ) -> Result<(), ConformanceError> {
        if got == want {
            Ok(())
        } else {
            Err(self.fail(format!("{what}: expected {want:?}, got {got:?}")))
        }
    }

    async fn run(mut self) -> Result<(), ConformanceError> {
        self.check = "conflict rule";
        self.rule().await?;
        self.check = "many holders";
        self.many_holders().await?;
        self.check = "invalid paths";
        self.invalid_paths().await?;
        self.check = "owner tokens";
        self.owner_tokens().await?;
        self.check = "expiry";
        self.expiry().await?;
        self.check = "holder";
        self.holder_metadata().await?;
        self.check = "renewal and max_hold";
        self.renewal().await?;
        self.check = "hold_at_least";
        self.hold_at_least().await?;
        self.check = "listing";
        self.listing().await?;
        self.check = "contention";
        self.contention().await
    }

    /// Tries `lock` every 20 ms until it is granted (then releases it) or `bound` has passed.
    async fn acquire_within(
        &self,
        lock: &TreeLock<C>,
        bound: Duration,
        why: &str,
    ) -> Result<(), ConformanceError> {
        let start = Instant::now();
        loop {
            match self.try_acquire(lock).await? {
                Some(held) => return self.release(held, lock.path()).await,
                None if start.elapsed() < bound => self.sleep(Duration::from_millis(20)).await,
                None => {
                    return Err(self.fail(format!(
                        "{}: still refused after {bound:?} ({why})",
                        lock.path()
                    )))
                }
            }
        }
    }

    async fn hold_at_least(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        // Far below the TTL (`LONG`), so a path freed within `bound` was freed by the hold
        // window running out, not by the TTL; long enough for the round trips made inside
        // it on a slow network or a loaded machine.
        let hold = Duration::from_secs(2);
        let bound = Duration::from_secs(10);
        let job = self.lock("/hold/job", all).hold_at_least(hold);
        // Released (sync: `release`; async: `release().await`) within the window.
        let held = self.must_acquire(&job, "free").await?;
        self.release(held, "/hold/job").await?;
        self.must_refuse(&job, "released within hold_at_least")
            .await?;
        self.must_refuse(&self.lock("/hold", all), "its child is kept")
            .await?;
        self.acquire_within(&self.lock("/hold", all), bound, "the hold window ran out")
            .await?;
        // Dropped within the window: the drop keeps it too (in the background, for the
        // async guard of a network cache, so it may take a moment to shorten the TTL).
        let held = self.must_acquire(&job, "the window ran out").await?;
        drop(held);
        self.must_refuse(&job, "dropped within hold_at_least")
            .await?;
        // (Probed by a lock without `hold_at_least`, whose release frees the path at once.)
        let probe = self.lock("/hold/job", all);
        self.acquire_within(&probe, bound, "the hold window ran out after a drop")
            .await?;
        // Released after the window: deleted at once.
        let short = self
            .lock("/hold/late", all)
            .hold_at_least(Duration::from_millis(50));
        let held = self.must_acquire(&short, "free").await?;
        self.sleep(Duration::from_millis(150)).await;
        self.release(held, "/hold/late").await?;
        let parent = self
            .must_acquire(&self.lock("/hold", all), "released after the window")
            .await?;
        self.release(parent, "/hold").await
    }

    async fn listing(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        let space = format!("{}list:", self.space);
        let lock = |path: &str| self.lock(path, all).prefix(space.clone());
        let list = || async {
            match self.mode {
                Mode::Sync => crate::tree::held_locks(&self.cache, &space),
                Mode::Async => crate::tree::held_locks_async(&self.cache, &space).await,
            }
            .map_err(|e| self.fail(format!("held_locks: {e}")))
        };
        self.expect("an unused space", list().await?, Vec::new())?;
        let a = self
            .must_acquire(&lock("/b/a").label("job-a"), "free")
            .await?;
        let c = self.must_acquire(&lock("/a/c"), "free").await?;
        let released = self.must_acquire(&lock("/z"), "free").await?;
        self.release(released, "/z").await?;
        // Long enough to be listed after a few round trips, then waited out.
        let short_ttl = Duration::from_secs(1).max(self.short);
        let short = self
            .must_acquire(&lock("/short").ttl(short_ttl).renew(false), "free")
            .await?
            .into_claim();
        let held = list().await?;
        let paths: Vec<&str> = held.iter().map(|h| h.key.as_str()).collect();
        self.expect("listed paths", paths, vec!["/a/c", "/b/a", "/short"])?;
        let labels: Vec<Option<&str>> = held.iter().map(|h| h.label.as_deref()).collect();
        self.expect("listed labels", labels, vec![None, Some("job-a"), None])?;
        for holder in &held {
            self.expect("listed pid", holder.pid, Some(std::process::id()))?;
            let ttl = holder
                .ttl
                .ok_or_else(|| self.fail(format!("{}: no TTL listed", holder.key)))?;
            if ttl > LONG {
                return Err(self.fail(format!("{}: TTL {ttl:?} over {LONG:?}", holder.key)));
            }
            if format!("{holder:?}").contains(&short.token) {
                return Err(self.fail("a listed holder carries an owner token"));
            }
        }
        self.sleep(short_ttl + self.past_short).await;
        self.release(a, "/b/a").await?;
        let held = list().await?;
        let paths: Vec<&str> = held.iter().map(|h| h.key.as_str()).collect();
        self.expect("paths after a release and an expiry", paths, vec!["/a/c"])?;
        self.release(c, "/a/c").await?;
        self.expect("a space emptied", list().await?, Vec::new())
    }

    async fn rule(&self) -> Result<(), ConformanceError> {
        for held_path in PATHS {
            for held_scope in scopes() {
                for path in PATHS {
                    for scope in scopes() {
                        let case =
                            format!("{path} {scope:?} while {held_path} {held_scope:?} is held");
                        let first = self
                            .must_acquire(&self.lock(held_path, held_scope), "a free space")
                            .await?;
                        let lock = self.lock(path, scope);
                        let want = conflicts(path, scope, held_path, held_scope);
                        let got = self.try_acquire(&lock).await?;
                        self.expect(&format!("{case}: refused"), got.is_none(), want)?;
                        if let Some(second) = got {
                            self.release(second, &case).await?;
                        }
                        let holder = self
                            .holder(&lock)
                            .await
                            .map_err(|e| self.fail(format!("{case}: holder: {e}")))?;
                        self.expect(
                            &format!("{case}: holder"),
                            holder.map(|h| h.key),
                            want.then(|| held_path.to_owned()),
                        )?;
                        self.release(first, held_path).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn many_holders(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        let mut held = Vec::new();
        for path in ["/a/b", "/a/c", "/x/y/z", "/x/w", "/ab"] {
            held.push(
                self.must_acquire(&self.lock(path, all), "siblings and cousins coexist")
                    .await?,
            );
        }
        for path in ["/", "/a", "/x", "/x/y", "/a/b/q", "/x/y/z/deep"] {
            self.must_refuse(
                &self.lock(path, all),
                "an ancestor or descendant of a held path",
            )
            .await?;
        }
        held.push(
            self.must_acquire(&self.lock("/a/d", all), "a sibling")
                .await?,
        );
        held.push(
            self.must_acquire(&self.lock("/x/y/q", all), "a cousin")
                .await?,
        );
        for guard in held {
            self.release(guard, "a holder").await?;
        }
        let root = self
            .must_acquire(&self.lock("/", all), "every holder released")
            .await?;
        self.must_refuse(&self.lock("/a", all), "the root is held")
            .await?;
        self.release(root, "/").await
    }

    async fn invalid_paths(&self) -> Result<(), ConformanceError> {
        let long = format!("/{}", "x".repeat(crate::MAX_KEY_LEN));
        let cases = [
            "",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/.",
            "/a\nb",
            "/a\0",
            long.as_str(),
        ];
        for path in cases {
            let lock = self.lock(path, TreeScope::default());
            let invalid = |what: &str, outcome: Result<(), Error>| match outcome {
                Err(Error::InvalidKey { .. }) => Ok(()),
                other => Err(self.fail(format!(
                    "{path:?}: {what}: expected InvalidKey, got {other:?}"
                ))),
            };
            let acquired = match self.mode {
                Mode::Sync => lock.try_acquire().map(drop),
                Mode::Async => lock.try_acquire_async().await.map(drop),
            };
            invalid("acquire", acquired)?;
            invalid("holder", self.holder(&lock).await.map(drop))?;
            invalid(
                "release_token",
                self.release_token(&lock, "t").await.map(drop),
            )?;
            invalid(
                "extend_token",
                self.extend_token(&lock, "t", LONG).await.map(drop),
            )?;
        }
        Ok(())
    }

    async fn owner_tokens(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        let lock = self.lock("/tokens/job", all);
        let claim = self.must_acquire(&lock, "free").await?.into_claim();
        self.expect("the claim's path", claim.path.as_str(), "/tokens/job")?;
        let parent = self.lock("/tokens", all);
        self.must_refuse(&parent, "a kept claim stays held").await?;
        let wrong = Token::new().as_str().to_owned();
        let ok = |r: Result<bool, Error>| r.map_err(|e| self.fail(e.to_string()));
        for bad in [wrong.as_str(), "", &claim.token[..31], "x|y"] {
            self.expect(
                &format!("release_token({bad:?})"),
                ok(self.release_token(&lock, bad).await)?,
                false,
            )?;
            self.expect(
                &format!("extend_token({bad:?})"),
                ok(self.extend_token(&lock, bad, LONG).await)?,
                false,
            )?;
        }
        self.expect(
            "release_token on the parent path",
            ok(self.release_token(&parent, &claim.token).await)?,
            false,
        )?;
        self.must_refuse(&parent, "refused releases left it held")
            .await?;
        self.expect(
            "extend_token by the owner",
            ok(self.extend_token(&lock, &claim.token, LONG).await)?,
            true,
        )?;
        self.expect(
            "release_token by the owner",
            ok(self.release_token(&lock, &claim.token).await)?,
            true,
        )?;
        self.expect(
            "second release_token",
            ok(self.release_token(&lock, &claim.token).await)?,
            false,
        )?;
        let p = self.must_acquire(&parent, "released by its token").await?;
        self.release(p, "/tokens").await
    }

    async fn expiry(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        let short = self.lock("/expiry/child", all).ttl(self.short).renew(false);
        let guard = self.must_acquire(&short, "free").await?;
        let kept = self
            .must_acquire(&self.lock("/expiry2/child", all).ttl(self.short), "free")
            .await?
            .into_claim();
        self.must_refuse(&self.lock("/expiry", all), "within the TTL")
            .await?;
        self.sleep(self.past_short).await;
        self.expect(
            "guard reports the lock lost after its TTL",
            guard.is_lost(),
            true,
        )?;
        let parent = self
            .must_acquire(&self.lock("/expiry", all), "the child expired")
            .await?;
        let other = self
            .must_acquire(&self.lock("/expiry2", all), "the kept child expired")
            .await?;
        let lost = guard.release().await;
        if !matches!(lost, Err(Error::LockLost { .. })) {
            return Err(self.fail(format!(
                "release after expiry: expected LockLost, got {lost:?}"
            )));
        }
        let stale = self
            .release_token(&self.lock("/expiry2/child", all), &kept.token)
            .await;
        self.expect(
            "release_token after expiry",
            stale.map_err(|e| self.fail(e.to_string()))?,
            false,
        )?;
        self.release(parent, "/expiry").await?;
        self.release(other, "/expiry2").await
    }

    async fn holder_metadata(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        let guard = self
            .must_acquire(&self.lock("/who/is/it", all).label("timmy"), "free")
            .await?;
        let holder = self
            .holder(&self.lock("/who", all))
            .await
            .map_err(|e| self.fail(e.to_string()))?
            .ok_or_else(|| self.fail("holder of an ancestor of a held path: None"))?;
        self.expect("held path", holder.key.as_str(), "/who/is/it")?;
        self.expect("label", holder.label.as_deref(), Some("timmy"))?;
        self.expect("pid", holder.pid, Some(std::process::id()))?;
        let ttl = holder.ttl.ok_or_else(|| self.fail("no TTL reported"))?;
        if ttl > LONG {
            return Err(self.fail(format!("TTL {ttl:?} is longer than the lock's {LONG:?}")));
        }
        let unrelated = self
            .holder(&self.lock("/whom", all))
            .await
            .map_err(|e| self.fail(e.to_string()))?;
        self.expect("holder of a sibling", unrelated, None)?;
        self.release(guard, "/who/is/it").await
    }

    async fn renewal(&self) -> Result<(), ConformanceError> {
        let all = TreeScope::default();
        let ttl = Duration::from_millis(600);
        let guard = self
            .must_acquire(&self.lock("/renewed", all).ttl(ttl), "free")
            .await?;
        let start = Instant::now();
        while start.elapsed() < ttl * 3 {
            self.must_refuse(&self.lock("/renewed/child", all), "renewal keeps it held")
                .await?;
            self.expect("renewed guard lost", guard.is_lost(), false)?;
            self.sleep(ttl / 4).await;
        }
        self.release(guard, "/renewed").await?;

        let bounded = self
            .lock("/bounded", all)
            .ttl(Duration::from_millis(200))
            .max_hold(Duration::from_millis(400));
        let guard = self.must_acquire(&bounded, "free").await?;
        let start = Instant::now();
        while !guard.is_lost() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(self.fail("a lock with max_hold 400 ms was still held after 30 s"));
            }
            self.sleep(Duration::from_millis(50)).await;
        }
        // The lost signal may come from the local deadline a moment before the store lets go.
        let start = Instant::now();
        loop {
            match self.try_acquire(&self.lock("/bounded", all)).await? {
                Some(next) => return self.release(next, "/bounded").await,
                None if start.elapsed() < Duration::from_secs(30) => {
                    self.sleep(Duration::from_millis(50)).await
                }
                None => return Err(self.fail("the path stayed held after max_hold")),
            }
        }
    }

    async fn contention(&self) -> Result<(), ConformanceError> {
        const WORKERS: usize = 8;
        const ROUNDS: usize = 150;
        const TREE: [&str; 8] = ["/", "/a", "/a/b", "/a/c", "/a/b/d", "/b", "/b/e", "/ab"];
        let inside: Arc<Mutex<Vec<Inside>>> = Arc::default();
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let granted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let worker = {
            let (inside, violations, granted) =
                (inside.clone(), violations.clone(), granted.clone());
            move |id: usize, path: &'static str, scope: TreeScope| {
                let mut inside = inside.lock().unwrap_or_else(|p| p.into_inner());
                for &(other, q, q_scope) in inside.iter() {
                    if conflicts(path, scope, q, q_scope) {
                        violations.lock().unwrap_or_else(|p| p.into_inner()).push(format!(
                            "worker {id} holds {path} {scope:?} while worker {other} holds {q} {q_scope:?}"
                        ));
                    }
                }
                inside.push((id, path, scope));
                granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let leave = {
            let inside = inside.clone();
            move |id: usize| {
                inside
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(who, _, _)| *who != id);
            }
        };
        let pick = || {
            let mut rng = rand::rng();
            let path = TREE[rng.random_range(0..TREE.len())];
            let scope = scopes()[rng.random_range(0..4)];
            (path, scope)
        };
        let mut errors: Vec<String> = Vec::new();
        match self.mode {
            Mode::Sync => std::thread::scope(|s| {
                let handles: Vec<_> = (0..WORKERS)
                    .map(|id| {
                        let (worker, leave) = (worker.clone(), leave.clone());
                        s.spawn(move || -> Result<(), String> {
                            for _ in 0..ROUNDS {
                                let (path, scope) = pick();
                                match self.lock(path, scope).try_acquire() {
                                    Ok(guard) => {
                                        worker(id, path, scope);
                                        std::thread::yield_now();
                                        leave(id);
                                        guard.release().map_err(|e| e.to_string())?;
                                    }
                                    Err(e) if e.is_locked() => {}
                                    Err(e) => return Err(e.to_string()),
                                }
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for handle in handles {
                    match handle.join() {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => errors.push(e),
                        Err(_) => errors.push("a worker panicked".to_owned()),
                    }
                }
            }),
            Mode::Async => {
                // Concurrent futures on this task: they interleave at every await (every
                // Redis round trip, and the yield while inside), with no runtime feature.
                let tasks = (0..WORKERS).map(|id| {
                    let (worker, leave) = (worker.clone(), leave.clone());
                    let picks: Vec<_> = (0..ROUNDS).map(|_| pick()).collect();
                    async move {
                        for (path, scope) in picks {
                            match self.lock(path, scope).try_acquire_async().await {
                                Ok(guard) => {
                                    worker(id, path, scope);
                                    YieldNow(false).await;
                                    leave(id);
                                    guard.release().await.map_err(|e| e.to_string())?;
                                }
                                Err(e) if e.is_locked() => {}
                                Err(e) => return Err(e.to_string()),
                            }
                            YieldNow(false).await;
                        }
                        Ok::<(), String>(())
                    }
                });
                for outcome in futures_util::future::join_all(tasks).await {
                    if let Err(e) = outcome {
                        errors.push(e);
                    }
                }
            }
        }
        if let Some(error) = errors.first() {
            return Err(self.fail(format!("a worker failed: {error}")));
        }
        let violations = violations.lock().unwrap_or_else(|p| p.into_inner());
        if !violations.is_empty() {
            return Err(self.fail(format!(
                "{} violations, first: {}",
                violations.len(),
                violations[0]
            )));
        }
        if granted.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return Err(self.fail("no worker ever got a lock"));
        }
        Ok(())
    }
}

/// Returns `Pending` once (waking itself), so that other futures of a `join_all` run.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}
