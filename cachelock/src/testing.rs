//! The conformance suites: the checks every store passes.
//!
//! Run it on your own [`LockStore`] in one line, in a test:
//!
//! ```
//! use cachelock::{testing, MemoryCache};
//!
//! testing::conformance(MemoryCache::new()).expect("MemoryCache conforms");
//! ```
//!
//! and, inside a tokio runtime, the async twins with [`conformance_async`]`(store).await`.
//! A get/set/delete [`Cache`] is checked through its adapter with [`cache_conformance`]
//! (and [`cache_conformance_async`]): its get/set/delete first, then every check below on
//! [`CacheStore`] around it.
//!
//! # What is checked
//!
//! 1. One winner: 16 contenders claim one key at once, over 20 rounds; exactly one wins each
//!    round (threads for the sync suite, concurrent futures for the async one).
//! 2. TTL: a claimed key stays held within its TTL and is free after it runs out; an
//!    extended lock outlives its first TTL.
//! 3. Owner-only release and extend: another token neither deletes nor extends; a release
//!    after the TTL ran out (and someone else claimed) deletes nothing.
//! 4. Fencing tokens: a claim returns a fence greater than every fence before it for the
//!    key, after releases, refused claims and expiry.
//! 5. Owner metadata: a claim with a label is released and extended by its token, never by
//!    another token or a prefix of it.
//! 6. Unfenced claims ([`Claim::with_fencing`]`(false)`): fence 0; they exclude fenced and
//!    unfenced claims alike, are released and extended by their owner only, and expire with
//!    their TTL.
//! 7. Handles: when the store hands out a [`Handle`](crate::Handle), release and extend
//!    through it are owner-checked like those without.
//! 8. Admin ([`LockAdmin`](crate::LockAdmin)), when the store has it: the holder lookup
//!    reports the owner value (token, pid, label) and the TTL, then nothing after a
//!    release; the listing (if the store can list) names a held key; a force-release frees
//!    a held key.
//! 9. All of the above again through a `Box<dyn LockStore>`, so a wrapper never loses an
//!    operation to a default.
//!
//! Tree locks ([`crate::tree`]) have their own suite, [`tree_conformance`] and
//! [`tree_conformance_async`], for the stores that have them.
//!
//! Every key lives under a fresh random prefix, so runs never collide on a shared server.
//! The TTL checks sleep (about 2 s per run in all); the suite makes no claim about speed.

use std::sync::Barrier;
use std::time::Duration;

use futures_util::future::join_all;

use crate::cache::Cache;
use crate::cache_store::CacheStore;
use crate::claim::{Claim, Claimed};
use crate::owner::{parse, token_of};
use crate::result::CacheResult;
use crate::store::LockStore;
use crate::token::Token;

mod tree;
pub use tree::{tree_conformance, tree_conformance_async};

/// A conformance check that failed.
#[derive(Debug)]
pub struct ConformanceError {
    /// Which check failed, e.g. `"one winner"`.
    pub check: &'static str,
    /// What was expected and what happened.
    pub detail: String,
    /// `"sync"`, `"async"`, and whether it ran through `Box<dyn LockStore>`.
    pub mode: String,
}

impl std::fmt::Display for ConformanceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "conformance check `{}` failed ({}): {}",
            self.check, self.mode, self.detail
        )
    }
}

impl std::error::Error for ConformanceError {}

/// Runs every check with the sync methods, on `store` and on it boxed as
/// `Box<dyn LockStore>`.
///
/// Needs no async runtime.
pub fn conformance<S: LockStore>(store: S) -> Result<(), ConformanceError> {
    run_sync(Suite::new(&store, Mode::Sync, "sync").run())?;
    let boxed: Box<dyn LockStore + '_> = Box::new(&store);
    run_sync(Suite::new(&boxed, Mode::Sync, "sync, Box<dyn LockStore>").run())
}

/// Checks a get/set/delete `cache`: its `get`, `set` and `delete`, then [`conformance`] on
/// [`CacheStore`] around it, and around it as a `Box<dyn Cache>`.
///
/// Needs no async runtime.
pub fn cache_conformance<C: Cache + 'static>(cache: C) -> Result<(), ConformanceError> {
    let cache = std::sync::Arc::new(cache);
    run_sync(basic(&*cache, Mode::Sync))?;
    conformance(CacheStore::from_arc(cache.clone()))?;
    let boxed: std::sync::Arc<dyn Cache> = std::sync::Arc::new(Box::new(cache) as Box<dyn Cache>);
    conformance(CacheStore::from_arc(boxed))
}

/// Async twin of [`cache_conformance`]: the checks run through the async methods (the
/// adapter's run the cache on tokio's blocking pool). Must be awaited inside a tokio
/// runtime.
pub async fn cache_conformance_async<C: Cache + 'static>(cache: C) -> Result<(), ConformanceError> {
    let cache = std::sync::Arc::new(cache);
    basic(&*cache, Mode::Async).await?;
    conformance_async(CacheStore::from_arc(cache.clone())).await?;
    let boxed: std::sync::Arc<dyn Cache> = std::sync::Arc::new(Box::new(cache) as Box<dyn Cache>);
    conformance_async(CacheStore::from_arc(boxed)).await
}

/// Drives a suite in sync mode. Every step of it calls a sync method or sleeps the thread,
/// so the future is complete after a single poll: no executor is needed.
fn run_sync(
    suite: impl std::future::Future<Output = Result<(), ConformanceError>>,
) -> Result<(), ConformanceError> {
    let mut suite = std::pin::pin!(suite);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match suite.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(ConformanceError {
            check: "harness",
            detail: "the sync suite awaited a future that was not ready".to_owned(),
            mode: "sync".to_owned(),
        }),
    }
}

/// Runs every check with the async methods, on `store` and on it boxed as
/// `Box<dyn LockStore>`.
///
/// Must be awaited inside a tokio runtime (it sleeps with tokio's timer).
pub async fn conformance_async<S: LockStore>(store: S) -> Result<(), ConformanceError> {
    Suite::new(&store, Mode::Async, "async").run().await?;
    let boxed: Box<dyn LockStore + '_> = Box::new(&store);
    Suite::new(&boxed, Mode::Async, "async, Box<dyn LockStore>")
        .run()
        .await
}

/// The get/set/delete check of a cache: a value set is read back, replaced, deleted;
/// deleting an absent key is fine.
async fn basic<C: Cache + ?Sized>(cache: &C, mode: Mode) -> Result<(), ConformanceError> {
    let label = match mode {
        Mode::Sync => "sync",
        Mode::Async => "async",
    };
    let fail = |detail: String| ConformanceError {
        check: "get/set/delete",
        detail,
        mode: label.to_owned(),
    };
    let ok = |what: &str, r: CacheResult<()>| {
        r.map_err(|e| fail(format!("{what} returned an error: {e}")))
    };
    let get = |key: &str| {
        cache
            .get(key)
            .map_err(|e| fail(format!("get returned an error: {e}")))
    };
    let k = format!(
        "cachelock-conformance:{}:basic",
        &Token::new().as_str()[..12]
    );
    if get(&k)?.is_some() {
        return Err(fail("get of a key never set returned a value".to_owned()));
    }
    ok("set", cache.set(&k, "one", Some(LONG)))?;
    let got = get(&k)?;
    if got.as_deref() != Some("one") {
        return Err(fail(format!("get after set(\"one\") returned {got:?}")));
    }
    ok("set", cache.set(&k, "two", Some(LONG)))?;
    let got = get(&k)?;
    if got.as_deref() != Some("two") {
        return Err(fail(format!("get after set(\"two\") returned {got:?}")));
    }
    ok("delete", cache.delete(&k))?;
    let got = get(&k)?;
    if got.is_some() {
        return Err(fail(format!("get after delete returned {got:?}")));
    }
    ok("delete of an absent key", cache.delete(&k))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Sync,
    Async,
}

const CONTENDERS: usize = 16;
const ROUNDS: usize = 20;
/// The short TTL of the expiry checks, on a store that keeps millisecond TTLs (see
/// [`short_ttls`]).
const SHORT: Duration = Duration::from_millis(150);
const LONG: Duration = Duration::from_secs(30);
/// Comfortably past `SHORT`, even on a loaded machine (a late wake only makes it later).
const PAST_SHORT: Duration = Duration::from_millis(450);

/// The short TTL of the expiry checks on `store`, and how long to sleep for a lock with it to
/// be surely gone: [`SHORT`] and [`PAST_SHORT`], or, on a store whose
/// [`min_ttl`](LockStore::min_ttl) is longer than `SHORT`, that minimum and twice it (the
/// store may free a key up to about `min_ttl` late).
fn short_ttls<S: LockStore + ?Sized>(store: &S) -> (Duration, Duration) {
    let min = store.min_ttl();
    if min <= SHORT {
        (SHORT, PAST_SHORT)
    } else {
        (min, min * 2)
    }
}

struct Suite<'a, S: LockStore + ?Sized> {
    store: &'a S,
    mode: Mode,
    label: &'static str,
    prefix: String,
    check: &'static str,
    /// The short TTL of the expiry checks, and a sleep surely past it ([`short_ttls`]).
    short: Duration,
    past_short: Duration,
}

/// A fresh claim for `ttl`.
fn claim(ttl: Duration) -> Claim<'static> {
    Claim::new(ttl)
}

impl<'a, S: LockStore + ?Sized> Suite<'a, S> {
    fn new(store: &'a S, mode: Mode, label: &'static str) -> Self {
        let (short, past_short) = short_ttls(store);
        Suite {
            store,
            mode,
            label,
            prefix: format!("cachelock-conformance:{}:", &Token::new().as_str()[..12]),
            check: "",
            short,
            past_short,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    fn fail(&self, detail: impl Into<String>) -> ConformanceError {
        ConformanceError {
            check: self.check,
            detail: detail.into(),
            mode: self.label.to_owned(),
        }
    }

    fn ok<T>(&self, what: &str, result: CacheResult<T>) -> Result<T, ConformanceError> {
        result.map_err(|e| self.fail(format!("{what} returned an error: {e}")))
    }

    fn expect(&self, what: &str, got: bool, want: bool) -> Result<(), ConformanceError> {
        if got == want {
            Ok(())
        } else {
            Err(self.fail(format!("{what}: expected {want}, got {got}")))
        }
    }

    async fn claimed(&self, key: &str, c: &Claim<'_>) -> Result<Option<Claimed>, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.store.claim(key, c),
            Mode::Async => self.store.claim_async(key, c).await,
        };
        self.ok("claim", r)
    }

    async fn won(&self, key: &str, c: &Claim<'_>) -> Result<bool, ConformanceError> {
        Ok(self.claimed(key, c).await?.is_some())
    }

    async fn fence(&self, key: &str, c: &Claim<'_>) -> Result<Option<u64>, ConformanceError> {
        Ok(self.claimed(key, c).await?.map(|won| won.fence))
    }

    async fn release(&self, key: &str, token: &str) -> Result<bool, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.store.release(key, token, None),
            Mode::Async => self.store.release_async(key, token, None).await,
        };
        self.ok("release", r)
    }

    async fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.store.extend(key, token, ttl, None),
            Mode::Async => self.store.extend_async(key, token, ttl, None).await,
        };
        self.ok("extend", r)
    }

    async fn sleep(&self, d: Duration) {
        match self.mode {
            Mode::Sync => std::thread::sleep(d),
            Mode::Async => tokio::time::sleep(d).await,
        }
    }

    async fn run(mut self) -> Result<(), ConformanceError> {
        self.check = "one winner";
        self.one_winner().await?;
        self.check = "ttl";
        self.ttl().await?;
        self.check = "owner-only release";
        self.owner_release().await?;
        self.check = "owner-only extend";
        self.owner_extend().await?;
        self.check = "fences increase";
        self.fences().await?;
        self.check = "owner metadata";
        self.owner_metadata().await?;
        self.check = "unfenced claims";
        self.unfenced().await?;
        self.check = "handles";
        self.handles().await?;
        self.check = "admin";
        self.admin().await
    }

    /// A handle the store gives releases and extends for its owner only.
    async fn handles(&self) -> Result<(), ConformanceError> {
        let k = self.key("handles");
        let (a, b) = (claim(LONG), claim(LONG));
        let Some(won) = self.claimed(&k, &a).await? else {
            return Err(self.fail("claim of a free key was refused"));
        };
        let Some(handle) = &won.handle else {
            // A store without handles: nothing more to check here.
            return self.expect(
                "release by the owner",
                self.release(&k, a.token()).await?,
                true,
            );
        };
        let (release_other, extend_own, release_own, release_again) = match self.mode {
            Mode::Sync => (
                self.store.release(&k, b.token(), Some(handle)),
                self.store.extend(&k, a.token(), LONG, Some(handle)),
                self.store.release(&k, a.token(), Some(handle)),
                self.store.release(&k, a.token(), Some(handle)),
            ),
            Mode::Async => (
                self.store.release_async(&k, b.token(), Some(handle)).await,
                self.store
                    .extend_async(&k, a.token(), LONG, Some(handle))
                    .await,
                self.store.release_async(&k, a.token(), Some(handle)).await,
                self.store.release_async(&k, a.token(), Some(handle)).await,
            ),
        };
        self.expect(
            "release through the handle by another token",
            self.ok("release", release_other)?,
            false,
        )?;
        self.expect(
            "extend through the handle by the owner",
            self.ok("extend", extend_own)?,
            true,
        )?;
        self.expect(
            "release through the handle by the owner",
            self.ok("release", release_own)?,
            true,
        )?;
        self.expect(
            "second release through the handle",
            self.ok("release", release_again)?,
            false,
        )?;
        self.expect(
            "claim after the release through the handle",
            self.won(&k, &b).await?,
            true,
        )?;
        self.expect("release", self.release(&k, b.token()).await?, true)
    }

    /// The holder lookup, the listing and force-release, when the store has them.
    async fn admin(&self) -> Result<(), ConformanceError> {
        let Some(admin) = self.store.admin() else {
            return Ok(());
        };
        let k = self.key("admin");
        let a = claim(LONG).with_label("conformance label");
        self.expect("claim", self.won(&k, &a).await?, true)?;
        let found = match self.mode {
            Mode::Sync => admin.holder(&k),
            Mode::Async => admin.holder_async(&k).await,
        };
        let Some((value, ttl)) = self.ok("holder", found)? else {
            return Err(self.fail("holder of a held key found nobody"));
        };
        if token_of(&value) != a.token() {
            return Err(self.fail("holder's value does not carry the owner's token"));
        }
        let holder = parse(&k, &value, ttl);
        if holder.label.as_deref() != Some("conformance label")
            || holder.pid != Some(std::process::id())
        {
            return Err(self.fail(format!(
                "holder reported {holder:?}, not this process and label"
            )));
        }
        if ttl.is_some_and(|ttl| ttl > LONG) {
            return Err(self.fail(format!(
                "holder reported a TTL of {ttl:?}, more than {LONG:?}"
            )));
        }
        let listed = match self.mode {
            Mode::Sync => admin.keys(&self.prefix),
            Mode::Async => admin.keys_async(&self.prefix).await,
        };
        // A store that cannot list says so with an error; one that can must name the key.
        if let Ok(listed) = listed {
            if !listed.contains(&k) {
                return Err(self.fail(format!("the listing of a held key's prefix is {listed:?}")));
            }
        }
        let forced = match self.mode {
            Mode::Sync => admin.force_release(&k),
            Mode::Async => admin.force_release_async(&k).await,
        };
        self.ok("force_release", forced)?;
        let b = claim(LONG);
        self.expect("claim after a force-release", self.won(&k, &b).await?, true)?;
        self.expect(
            "release by the force-released owner",
            self.release(&k, a.token()).await?,
            false,
        )?;
        self.expect("release", self.release(&k, b.token()).await?, true)?;
        let found = match self.mode {
            Mode::Sync => admin.holder(&k),
            Mode::Async => admin.holder_async(&k).await,
        };
        if self.ok("holder", found)?.is_some() {
            return Err(self.fail("holder of a released key found somebody"));
        }
        Ok(())
    }

    /// An unfenced claim excludes like a fenced one: refused while the key is held (fenced or
    /// not), released and extended by its owner only, free after its TTL; its fence is 0.
    async fn unfenced(&self) -> Result<(), ConformanceError> {
        let k = self.key("unfenced");
        let (a, b) = (
            claim(LONG).with_fencing(false),
            claim(LONG).with_fencing(false),
        );
        match self.fence(&k, &a).await? {
            Some(0) => {}
            Some(fence) => {
                return Err(self.fail(format!("an unfenced claim returned fence {fence}, not 0")))
            }
            None => return Err(self.fail("unfenced claim of a free key was refused")),
        }
        self.expect(
            "unfenced claim of a held key",
            self.won(&k, &b).await?,
            false,
        )?;
        let fenced = claim(LONG);
        self.expect(
            "fenced claim of a key held unfenced",
            self.won(&k, &fenced).await?,
            false,
        )?;
        self.expect(
            "release by another token",
            self.release(&k, b.token()).await?,
            false,
        )?;
        self.expect(
            "extend by another token",
            self.extend(&k, b.token(), LONG).await?,
            false,
        )?;
        self.expect(
            "extend by the owner",
            self.extend(&k, a.token(), LONG).await?,
            true,
        )?;
        self.expect(
            "release by the owner",
            self.release(&k, a.token()).await?,
            true,
        )?;
        self.expect(
            "fenced claim after release",
            self.won(&k, &fenced).await?,
            true,
        )?;
        self.expect(
            "unfenced claim of a key held fenced",
            self.won(&k, &b).await?,
            false,
        )?;
        self.expect("release", self.release(&k, fenced.token()).await?, true)?;
        let short = claim(self.short).with_fencing(false);
        self.expect(
            "unfenced claim with a short TTL",
            self.won(&k, &short).await?,
            true,
        )?;
        self.sleep(self.past_short).await;
        self.expect("unfenced claim after expiry", self.won(&k, &b).await?, true)?;
        self.expect(
            "release after expiry by the old owner",
            self.release(&k, short.token()).await?,
            false,
        )?;
        self.expect("release", self.release(&k, b.token()).await?, true)
    }

    /// A claim with a label stores the owner with its metadata; release and extend compare
    /// the token alone, never a prefix of it.
    async fn owner_metadata(&self) -> Result<(), ConformanceError> {
        let k = self.key("metadata");
        let a = claim(LONG).with_label("a label; with | and ;");
        let b = claim(LONG);
        self.expect("claim with metadata", self.won(&k, &a).await?, true)?;
        self.expect(
            "extend by another token",
            self.extend(&k, b.token(), LONG).await?,
            false,
        )?;
        self.expect(
            "release by the token's prefix",
            self.release(&k, &a.token()[..31]).await?,
            false,
        )?;
        self.expect(
            "release by an empty token",
            self.release(&k, "").await?,
            false,
        )?;
        self.expect(
            "extend by the token",
            self.extend(&k, a.token(), LONG).await?,
            true,
        )?;
        self.expect(
            "release by the token",
            self.release(&k, a.token()).await?,
            true,
        )?;
        self.expect("claim after release", self.won(&k, &b).await?, true)?;
        self.expect("release", self.release(&k, b.token()).await?, true)
    }

    /// Fencing tokens strictly increase across claims of one key: after a release, after a
    /// refused claim, and after expiry.
    async fn fences(&self) -> Result<(), ConformanceError> {
        let k = self.key("fences");
        let mut last = None::<u64>;
        let mut next = |what: &str, fence: Option<u64>| -> Result<(), ConformanceError> {
            let Some(fence) = fence else {
                return Err(self.fail(format!("{what}: the claim of a free key was refused")));
            };
            if let Some(last) = last {
                if fence <= last {
                    return Err(self.fail(format!(
                        "{what}: fence {fence} is not greater than the previous fence {last}"
                    )));
                }
            }
            last = Some(fence);
            Ok(())
        };
        for round in 0..5 {
            let (a, b) = (claim(LONG), claim(LONG));
            next(
                &format!("claim {round} after a release"),
                self.fence(&k, &a).await?,
            )?;
            if self.won(&k, &b).await? {
                return Err(self.fail("a held key was claimed again"));
            }
            self.expect("release", self.release(&k, a.token()).await?, true)?;
        }
        let short = claim(self.short);
        next("claim with a short TTL", self.fence(&k, &short).await?)?;
        self.sleep(self.past_short).await;
        let b = claim(LONG);
        next(
            "claim after the previous holder expired",
            self.fence(&k, &b).await?,
        )?;
        self.expect("release", self.release(&k, b.token()).await?, true)
    }

    async fn one_winner(&self) -> Result<(), ConformanceError> {
        for round in 0..ROUNDS {
            let k = self.key(&format!("contended-{round}"));
            let claims: Vec<Claim<'static>> = (0..CONTENDERS).map(|_| claim(LONG)).collect();
            let outcomes: Vec<CacheResult<Option<Claimed>>> = match self.mode {
                Mode::Sync => {
                    let barrier = Barrier::new(CONTENDERS);
                    std::thread::scope(|s| {
                        let handles: Vec<_> = claims
                            .iter()
                            .map(|c| {
                                let (barrier, k) = (&barrier, &k);
                                s.spawn(move || {
                                    barrier.wait();
                                    self.store.claim(k, c)
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().unwrap_or_else(|_| Err("claim panicked".into())))
                            .collect()
                    })
                }
                Mode::Async => join_all(claims.iter().map(|c| self.store.claim_async(&k, c))).await,
            };
            let mut winners = Vec::new();
            for (i, outcome) in outcomes.into_iter().enumerate() {
                if self.ok("claim", outcome)?.is_some() {
                    winners.push(i);
                }
            }
            if winners.len() != 1 {
                return Err(self.fail(format!(
                    "round {round}: {} of {CONTENDERS} concurrent claims won, expected exactly 1",
                    winners.len()
                )));
            }
            let winner = claims[winners[0]].token();
            self.expect(
                "release by the winner",
                self.release(&k, winner).await?,
                true,
            )?;
        }
        Ok(())
    }

    async fn ttl(&self) -> Result<(), ConformanceError> {
        let (a, b) = (claim(LONG), claim(LONG));
        let k = self.key("ttl-held");
        self.expect("first claim", self.won(&k, &a).await?, true)?;
        self.expect(
            "second claim within the TTL",
            self.won(&k, &b).await?,
            false,
        )?;
        self.expect("release", self.release(&k, a.token()).await?, true)?;
        self.expect("claim after release", self.won(&k, &b).await?, true)?;
        self.release(&k, b.token()).await?;

        let k = self.key("ttl-expires");
        let short = claim(self.short);
        self.expect("claim with a short TTL", self.won(&k, &short).await?, true)?;
        self.sleep(self.past_short).await;
        self.expect("claim after the TTL ran out", self.won(&k, &b).await?, true)?;
        self.release(&k, b.token()).await?;

        let k = self.key("ttl-extended");
        let short = claim(self.short);
        self.expect("claim with a short TTL", self.won(&k, &short).await?, true)?;
        self.expect(
            "extend by the owner",
            self.extend(&k, short.token(), LONG).await?,
            true,
        )?;
        self.sleep(self.past_short).await;
        self.expect(
            "claim after the first TTL of an extended lock",
            self.won(&k, &b).await?,
            false,
        )?;
        self.expect(
            "release of the extended lock",
            self.release(&k, short.token()).await?,
            true,
        )?;
        Ok(())
    }

    async fn owner_release(&self) -> Result<(), ConformanceError> {
        let (a, b) = (claim(LONG), claim(LONG));
        let k = self.key("release");
        self.expect("claim", self.won(&k, &a).await?, true)?;
        self.expect(
            "release with another token",
            self.release(&k, b.token()).await?,
            false,
        )?;
        self.expect(
            "claim after a refused release (key must still be held)",
            self.won(&k, &b).await?,
            false,
        )?;
        self.expect(
            "release by the owner",
            self.release(&k, a.token()).await?,
            true,
        )?;
        self.expect(
            "second release by the owner",
            self.release(&k, a.token()).await?,
            false,
        )?;

        let k = self.key("release-after-expiry");
        let short = claim(self.short);
        self.expect("claim with a short TTL", self.won(&k, &short).await?, true)?;
        self.sleep(self.past_short).await;
        self.expect(
            "claim by another after expiry",
            self.won(&k, &b).await?,
            true,
        )?;
        self.expect(
            "release by the expired owner",
            self.release(&k, short.token()).await?,
            false,
        )?;
        self.expect(
            "claim after the expired owner's release (new owner must keep the key)",
            self.won(&k, &a).await?,
            false,
        )?;
        self.expect(
            "release by the new owner",
            self.release(&k, b.token()).await?,
            true,
        )?;
        Ok(())
    }

    async fn owner_extend(&self) -> Result<(), ConformanceError> {
        let b = claim(LONG);
        let k = self.key("extend");
        let short = claim(self.short);
        self.expect("claim with a short TTL", self.won(&k, &short).await?, true)?;
        self.expect(
            "extend with another token",
            self.extend(&k, b.token(), LONG).await?,
            false,
        )?;
        self.sleep(self.past_short).await;
        self.expect(
            "claim after a refused extend and the TTL (key must be free)",
            self.won(&k, &b).await?,
            true,
        )?;
        self.expect(
            "extend by the expired owner",
            self.extend(&k, short.token(), LONG).await?,
            false,
        )?;
        self.expect(
            "release by the new owner",
            self.release(&k, b.token()).await?,
            true,
        )?;
        self.expect(
            "extend of an absent key",
            self.extend(&k, short.token(), LONG).await?,
            false,
        )?;
        Ok(())
    }
}
