//! The conformance suite: the checks every cache backend passes.
//!
//! Run it on your own [`Cache`] in one line, in a test:
//!
//! ```
//! use cachelock::{testing, MemoryCache};
//!
//! testing::conformance(MemoryCache::new()).expect("MemoryCache conforms");
//! ```
//!
//! and, inside a tokio runtime, the async twins with
//! [`conformance_async`]`(cache).await`.
//!
//! # What is checked
//!
//! 1. `get`/`set`/`delete`: a value set is read back, replaced, deleted; deleting an absent
//!    key is fine.
//! 2. One winner: 16 contenders claim one key at once, over 20 rounds; exactly one wins each
//!    round (threads for the sync suite, concurrent futures for the async one).
//! 3. TTL: a claimed key stays held within its TTL and is free after it runs out; an
//!    extended lock outlives its first TTL.
//! 4. Owner-only release and extend: a wrong token neither deletes nor extends; a release
//!    after the TTL ran out (and someone else claimed) deletes nothing.
//! 5. Fencing tokens: a claim returns a fence greater than every fence before it for the
//!    key, after releases, refused claims and expiry.
//! 6. Owner metadata: a value `<token>|<metadata>` is released and extended by its bare
//!    token, never by another token or a prefix of it.
//! 7. Unfenced claims ([`Cache::claim_unfenced`]): they exclude fenced and unfenced claims
//!    alike, are released and extended by their owner only, and expire with their TTL.
//! 8. Claims for a lock ([`Cache::claim_for_lock`]): one winner, fence 0 without fencing,
//!    and when the cache hands out a [`Handle`](crate::Handle), release and extend through
//!    it are owner-checked like `release` and `extend`.
//! 9. All of the above again through a `Box<dyn Cache>`, so a wrapper never loses an
//!    operation to a default.
//!
//! Tree locks ([`crate::tree`]) have their own suite, [`tree_conformance`] and
//! [`tree_conformance_async`], for the caches that support them.
//!
//! Every key lives under a fresh random prefix, so runs never collide on a shared server.
//! The TTL checks sleep (about 2 s per run in all); the suite makes no claim about speed.
//! Plain `set` with a TTL is not checked for expiry: a get/set/delete cache may ignore TTLs,
//! and cachelock's locks do not depend on it (the lock value carries its own deadline).

use std::sync::Barrier;
use std::time::Duration;

use futures_util::future::join_all;

use crate::cache::{Cache, CacheResult};
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
    /// `"sync"`, `"async"`, and whether it ran through `Box<dyn Cache>`.
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

/// Runs every check with the sync methods, on `cache` and on it boxed as `Box<dyn Cache>`.
///
/// Needs no async runtime.
pub fn conformance<C: Cache>(cache: C) -> Result<(), ConformanceError> {
    run_sync(Suite::new(&cache, Mode::Sync, "sync").run())?;
    let boxed: Box<dyn Cache + '_> = Box::new(&cache);
    run_sync(Suite::new(&boxed, Mode::Sync, "sync, Box<dyn Cache>").run())
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

/// Runs every check with the async methods, on `cache` and on it boxed as `Box<dyn Cache>`.
///
/// Must be awaited inside a tokio runtime (it sleeps with tokio's timer).
pub async fn conformance_async<C: Cache>(cache: C) -> Result<(), ConformanceError> {
    Suite::new(&cache, Mode::Async, "async").run().await?;
    let boxed: Box<dyn Cache + '_> = Box::new(&cache);
    Suite::new(&boxed, Mode::Async, "async, Box<dyn Cache>")
        .run()
        .await
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Sync,
    Async,
}

const CONTENDERS: usize = 16;
const ROUNDS: usize = 20;
const SHORT: Duration = Duration::from_millis(150);
const LONG: Duration = Duration::from_secs(30);
/// Comfortably past `SHORT`, even on a loaded machine (a late wake only makes it later).
const PAST_SHORT: Duration = Duration::from_millis(450);

struct Suite<'a, C: Cache + ?Sized> {
    cache: &'a C,
    mode: Mode,
    label: &'static str,
    prefix: String,
    check: &'static str,
}

fn token() -> String {
    Token::new().as_str().to_owned()
}

impl<'a, C: Cache + ?Sized> Suite<'a, C> {
    fn new(cache: &'a C, mode: Mode, label: &'static str) -> Self {
        Suite {
            cache,
            mode,
            label,
            prefix: format!("cachelock-conformance:{}:", &token()[..12]),
            check: "",
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

    async fn get(&self, key: &str) -> Result<Option<String>, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.get(key),
            Mode::Async => self.cache.get_async(key).await,
        };
        self.ok("get", r)
    }

    async fn set(&self, key: &str, value: &str) -> Result<(), ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.set(key, value, Some(LONG)),
            Mode::Async => self.cache.set_async(key, value, Some(LONG)).await,
        };
        self.ok("set", r)
    }

    async fn delete(&self, key: &str) -> Result<(), ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.delete(key),
            Mode::Async => self.cache.delete_async(key).await,
        };
        self.ok("delete", r)
    }

    async fn claim(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, ConformanceError> {
        Ok(self.claim_fence(key, token, ttl).await?.is_some())
    }

    async fn claim_fence(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.claim(key, token, ttl),
            Mode::Async => self.cache.claim_async(key, token, ttl).await,
        };
        self.ok("claim", r)
    }

    async fn claim_unfenced(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.claim_unfenced(key, token, ttl),
            Mode::Async => self.cache.claim_unfenced_async(key, token, ttl).await,
        };
        self.ok("claim_unfenced", r)
    }

    async fn release(&self, key: &str, token: &str) -> Result<bool, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.release(key, token),
            Mode::Async => self.cache.release_async(key, token).await,
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
            Mode::Sync => self.cache.extend(key, token, ttl),
            Mode::Async => self.cache.extend_async(key, token, ttl).await,
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
        self.check = "get/set/delete";
        self.basic().await?;
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
        self.check = "claims for a lock";
        self.for_lock().await
    }

    async fn claim_for_lock(
        &self,
        key: &str,
        value: &str,
        fencing: bool,
    ) -> Result<Option<crate::Claimed>, ConformanceError> {
        let r = match self.mode {
            Mode::Sync => self.cache.claim_for_lock(key, value, LONG, fencing),
            Mode::Async => {
                self.cache
                    .claim_for_lock_async(key, value, LONG, fencing)
                    .await
            }
        };
        self.ok("claim_for_lock", r)
    }

    /// `claim_for_lock` is a claim (fenced or not); a handle it gives releases and extends
    /// for its owner only.
    async fn for_lock(&self) -> Result<(), ConformanceError> {
        let k = self.key("for-lock");
        let (a, b) = (token(), token());
        let before = self.claim_fence(&k, &b, LONG).await?.unwrap_or(0);
        self.expect(
            "release of the first hold",
            self.release(&k, &b).await?,
            true,
        )?;
        let Some(won) = self
            .claim_for_lock(&k, &format!("{a}|1|host|"), true)
            .await?
        else {
            return Err(self.fail("claim_for_lock of a free key was refused"));
        };
        if won.fence <= before {
            return Err(self.fail(format!(
                "claim_for_lock returned fence {} after fence {before}",
                won.fence
            )));
        }
        self.expect(
            "claim_for_lock of a held key",
            self.claim_for_lock(&k, &b, true).await?.is_some(),
            false,
        )?;
        self.expect(
            "claim of a key held for a lock",
            self.claim(&k, &b, LONG).await?,
            false,
        )?;
        match &won.handle {
            Some(handle) => {
                let (release_other, extend_own, release_own) = (
                    self.cache.release_claimed(&k, &b, handle),
                    self.cache.extend_claimed(&k, &a, LONG, handle),
                    self.cache.release_claimed(&k, &a, handle),
                );
                self.expect(
                    "release_claimed by another token",
                    self.ok("release_claimed", release_other)?,
                    false,
                )?;
                self.expect(
                    "extend_claimed by the owner",
                    self.ok("extend_claimed", extend_own)?,
                    true,
                )?;
                self.expect(
                    "release_claimed by the owner",
                    self.ok("release_claimed", release_own)?,
                    true,
                )?;
            }
            None => self.expect("release by the owner", self.release(&k, &a).await?, true)?,
        }
        let Some(unfenced) = self.claim_for_lock(&k, &b, false).await? else {
            return Err(self.fail("claim_for_lock without fencing of a released key was refused"));
        };
        if unfenced.fence != 0 {
            return Err(self.fail(format!(
                "claim_for_lock without fencing returned fence {}, not 0",
                unfenced.fence
            )));
        }
        self.expect(
            "release of the unfenced hold",
            self.release(&k, &b).await?,
            true,
        )
    }

    /// `claim_unfenced` excludes like `claim`: refused while the key is held (fenced or not),
    /// released and extended by its owner only, free after its TTL.
    async fn unfenced(&self) -> Result<(), ConformanceError> {
        let k = self.key("unfenced");
        let (a, b) = (token(), token());
        self.expect(
            "unfenced claim of a free key",
            self.claim_unfenced(&k, &a, LONG).await?,
            true,
        )?;
        self.expect(
            "unfenced claim of a held key",
            self.claim_unfenced(&k, &b, LONG).await?,
            false,
        )?;
        self.expect(
            "fenced claim of a key held unfenced",
            self.claim(&k, &b, LONG).await?,
            false,
        )?;
        self.expect(
            "release by another token",
            self.release(&k, &b).await?,
            false,
        )?;
        self.expect(
            "extend by another token",
            self.extend(&k, &b, LONG).await?,
            false,
        )?;
        self.expect(
            "extend by the owner",
            self.extend(&k, &a, LONG).await?,
            true,
        )?;
        self.expect("release by the owner", self.release(&k, &a).await?, true)?;
        self.expect(
            "fenced claim after release",
            self.claim(&k, &b, LONG).await?,
            true,
        )?;
        self.expect(
            "unfenced claim of a key held fenced",
            self.claim_unfenced(&k, &a, LONG).await?,
            false,
        )?;
        self.expect("release", self.release(&k, &b).await?, true)?;
        self.expect(
            "unfenced claim with a short TTL",
            self.claim_unfenced(&k, &a, SHORT).await?,
            true,
        )?;
        self.sleep(PAST_SHORT).await;
        self.expect(
            "unfenced claim after expiry",
            self.claim_unfenced(&k, &b, LONG).await?,
            true,
        )?;
        self.expect(
            "release after expiry by the old owner",
            self.release(&k, &a).await?,
            false,
        )?;
        self.expect("release", self.release(&k, &b).await?, true)
    }

    /// A claim stores the token with holder metadata (`<token>|...`); release and extend
    /// compare the token alone.
    async fn owner_metadata(&self) -> Result<(), ConformanceError> {
        let k = self.key("metadata");
        let (a, b) = (token(), token());
        let value = format!("{a}|4242|host-1|a label; with | and ;");
        self.expect(
            "claim with metadata",
            self.claim(&k, &value, LONG).await?,
            true,
        )?;
        self.expect(
            "extend by another token",
            self.extend(&k, &b, LONG).await?,
            false,
        )?;
        self.expect(
            "release by the token's prefix",
            self.release(&k, &a[..31]).await?,
            false,
        )?;
        self.expect(
            "extend by the bare token",
            self.extend(&k, &a, LONG).await?,
            true,
        )?;
        self.expect(
            "release by the bare token",
            self.release(&k, &a).await?,
            true,
        )?;
        self.expect("claim after release", self.claim(&k, &b, LONG).await?, true)?;
        self.expect("release", self.release(&k, &b).await?, true)
    }

    /// Fencing tokens strictly increase across claims of one key: after a release, after a
    /// refused claim, and after expiry.
    async fn fences(&self) -> Result<(), ConformanceError> {
        let k = self.key("fences");
        let (a, b) = (token(), token());
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
            next(
                &format!("claim {round} after a release"),
                self.claim_fence(&k, &a, LONG).await?,
            )?;
            if self.claim_fence(&k, &b, LONG).await?.is_some() {
                return Err(self.fail("a held key was claimed again"));
            }
            self.expect("release", self.release(&k, &a).await?, true)?;
        }
        next(
            "claim with a short TTL",
            self.claim_fence(&k, &a, SHORT).await?,
        )?;
        self.sleep(PAST_SHORT).await;
        next(
            "claim after the previous holder expired",
            self.claim_fence(&k, &b, LONG).await?,
        )?;
        self.expect("release", self.release(&k, &b).await?, true)
    }

    async fn basic(&self) -> Result<(), ConformanceError> {
        let k = self.key("basic");
        if self.get(&k).await?.is_some() {
            return Err(self.fail("get of a key never set returned a value"));
        }
        self.set(&k, "one").await?;
        let got = self.get(&k).await?;
        if got.as_deref() != Some("one") {
            return Err(self.fail(format!("get after set(\"one\") returned {got:?}")));
        }
        self.set(&k, "two").await?;
        let got = self.get(&k).await?;
        if got.as_deref() != Some("two") {
            return Err(self.fail(format!("get after set(\"two\") returned {got:?}")));
        }
        self.delete(&k).await?;
        let got = self.get(&k).await?;
        if got.is_some() {
            return Err(self.fail(format!("get after delete returned {got:?}")));
        }
        self.delete(&k).await
    }

    async fn one_winner(&self) -> Result<(), ConformanceError> {
        for round in 0..ROUNDS {
            let k = self.key(&format!("contended-{round}"));
            let tokens: Vec<String> = (0..CONTENDERS).map(|_| token()).collect();
            let outcomes: Vec<CacheResult<Option<u64>>> = match self.mode {
                Mode::Sync => {
                    let barrier = Barrier::new(CONTENDERS);
                    std::thread::scope(|s| {
                        let handles: Vec<_> = tokens
                            .iter()
                            .map(|t| {
                                let (barrier, k) = (&barrier, &k);
                                s.spawn(move || {
                                    barrier.wait();
                                    self.cache.claim(k, t, LONG)
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().unwrap_or_else(|_| Err("claim panicked".into())))
                            .collect()
                    })
                }
                Mode::Async => {
                    join_all(tokens.iter().map(|t| self.cache.claim_async(&k, t, LONG))).await
                }
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
            let winner = &tokens[winners[0]];
            self.expect(
                "release by the winner",
                self.release(&k, winner).await?,
                true,
            )?;
        }
        Ok(())
    }

    async fn ttl(&self) -> Result<(), ConformanceError> {
        let (a, b) = (token(), token());
        let k = self.key("ttl-held");
        self.expect("first claim", self.claim(&k, &a, LONG).await?, true)?;
        self.expect(
            "second claim within the TTL",
            self.claim(&k, &b, LONG).await?,
            false,
        )?;
        self.expect("release", self.release(&k, &a).await?, true)?;
        self.expect("claim after release", self.claim(&k, &b, LONG).await?, true)?;
        self.release(&k, &b).await?;

        let k = self.key("ttl-expires");
        self.expect(
            "claim with a short TTL",
            self.claim(&k, &a, SHORT).await?,
            true,
        )?;
        self.sleep(PAST_SHORT).await;
        self.expect(
            "claim after the TTL ran out",
            self.claim(&k, &b, LONG).await?,
            true,
        )?;
        self.release(&k, &b).await?;

        let k = self.key("ttl-extended");
        self.expect(
            "claim with a short TTL",
            self.claim(&k, &a, SHORT).await?,
            true,
        )?;
        self.expect(
            "extend by the owner",
            self.extend(&k, &a, LONG).await?,
            true,
        )?;
        self.sleep(PAST_SHORT).await;
        self.expect(
            "claim after the first TTL of an extended lock",
            self.claim(&k, &b, LONG).await?,
            false,
        )?;
        self.expect(
            "release of the extended lock",
            self.release(&k, &a).await?,
            true,
        )?;
        Ok(())
    }

    async fn owner_release(&self) -> Result<(), ConformanceError> {
        let (a, b) = (token(), token());
        let k = self.key("release");
        self.expect("claim", self.claim(&k, &a, LONG).await?, true)?;
        self.expect(
            "release with another token",
            self.release(&k, &b).await?,
            false,
        )?;
        self.expect(
            "claim after a refused release (key must still be held)",
            self.claim(&k, &b, LONG).await?,
            false,
        )?;
        self.expect("release by the owner", self.release(&k, &a).await?, true)?;
        self.expect(
            "second release by the owner",
            self.release(&k, &a).await?,
            false,
        )?;

        let k = self.key("release-after-expiry");
        self.expect(
            "claim with a short TTL",
            self.claim(&k, &a, SHORT).await?,
            true,
        )?;
        self.sleep(PAST_SHORT).await;
        self.expect(
            "claim by another after expiry",
            self.claim(&k, &b, LONG).await?,
            true,
        )?;
        self.expect(
            "release by the expired owner",
            self.release(&k, &a).await?,
            false,
        )?;
        self.expect(
            "claim after the expired owner's release (new owner must keep the key)",
            self.claim(&k, &a, LONG).await?,
            false,
        )?;
        self.expect(
            "release by the new owner",
            self.release(&k, &b).await?,
            true,
        )?;
        Ok(())
    }

    async fn owner_extend(&self) -> Result<(), ConformanceError> {
        let (a, b) = (token(), token());
        let k = self.key("extend");
        self.expect(
            "claim with a short TTL",
            self.claim(&k, &a, SHORT).await?,
            true,
        )?;
        self.expect(
            "extend with another token",
            self.extend(&k, &b, LONG).await?,
            false,
        )?;
        self.sleep(PAST_SHORT).await;
        self.expect(
            "claim after a refused extend and the TTL (key must be free)",
            self.claim(&k, &b, LONG).await?,
            true,
        )?;
        self.expect(
            "extend by the expired owner",
            self.extend(&k, &a, LONG).await?,
            false,
        )?;
        self.expect(
            "release by the new owner",
            self.release(&k, &b).await?,
            true,
        )?;
        self.expect(
            "extend of an absent key",
            self.extend(&k, &a, LONG).await?,
            false,
        )?;
        Ok(())
    }
}
