//! The store traits on the Redis core: each operation builds its [`Op`] and runs it, sync or
//! async, through the one executor (`core.rs`).

use std::time::{Duration, Instant};

use super::command::Reply;
use super::core::{unexpected, Backend, Core};
use super::listing;
use super::ops::Op;
use super::tree::{keys, TreeOp};
use super::tree_wake::TreeWait;
use crate::claim::{Claim, Claimed, Handle};
use crate::overlap::{Extends, InFlight};
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::{TreeEntry, TreeScope, TreeStore};

fn fence(op: Op<'_>, reply: Reply) -> CacheResult<Option<u64>> {
    match reply {
        Reply::Fence(fence) => Ok(fence),
        // An unfenced claim: won or not, fence 0.
        Reply::Flag(won) if matches!(op, Op::ClaimUnfenced(..)) => Ok(won.then_some(0)),
        other => Err(unexpected(op, other)),
    }
}

fn flag(op: Op<'_>, reply: Reply) -> CacheResult<bool> {
    match reply {
        Reply::Flag(flag) => Ok(flag),
        other => Err(unexpected(op, other)),
    }
}

/// The claim of `claim` on the prefixed `key`: the fenced script, or a plain `SET NX PX`.
fn claim_op<'a>(key: &'a str, counter: &'a str, value: &'a str, claim: &Claim<'_>) -> Op<'a> {
    if claim.fencing() {
        Op::Claim(key, counter, value, claim.ttl())
    } else {
        Op::ClaimUnfenced(key, value, claim.ttl())
    }
}

impl<B: Backend> LockStore for Core<B> {
    /// The claim script (`SET NX PX`, then the fence counter bumped in the same script);
    /// without fencing a plain `SET key value NX PX ttl`, sent again after a lost reply as a
    /// script that recognises its own value (see [`Op::resent`]). Through the handle's gate
    /// (`gate.rs`): a key this handle holds is refused, and a claim of a key this handle is
    /// claiming right now waits for that claim's answer, without a command.
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let wait = self.settings().reply_timeout(Some(claim.ttl()));
        self.inner.gate.claim(key, claim, wait, || {
            let key = self.key(key);
            let (counter, value) = (self.counter(&key), claim.owner_value());
            let op = claim_op(&key, &counter, &value, claim);
            Ok(fence(op, self.run(op)?)?.map(Claimed::new))
        })
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let wait = self.settings().operation_timeout(Some(claim.ttl()));
        Box::pin(
            self.inner
                .gate
                .claim_async(key, claim, wait, move || async move {
                    let key = self.key(key);
                    let (counter, value) = (self.counter(&key), claim.owner_value());
                    let op = claim_op(&key, &counter, &value, claim);
                    Ok(fence(op, self.run_async(op).await?)?.map(Claimed::new))
                }),
        )
    }

    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        self.inner.gate.release(key, token);
        let key = self.key(key);
        let op = Op::Release(&key, token);
        flag(op, self.run(op)?)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            self.inner.gate.release(key, token);
            let key = self.key(key);
            let op = Op::Release(&key, token);
            flag(op, self.run_async(op).await?)
        })
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        let extends = self.inner.gate.extends(key, token);
        let in_flight = extends.as_deref().map(Extends::begin);
        let started = Instant::now();
        let stored = self.key(key);
        let op = Op::Extend(&stored, token, ttl);
        let result = self.run(op).and_then(|reply| flag(op, reply));
        let overlapped = in_flight.as_ref().is_some_and(InFlight::overlapped);
        self.inner
            .gate
            .extended(key, token, ttl, started, overlapped, &result);
        result
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let extends = self.inner.gate.extends(key, token);
            let in_flight = extends.as_deref().map(Extends::begin);
            let started = Instant::now();
            let stored = self.key(key);
            let op = Op::Extend(&stored, token, ttl);
            let result = self.run_async(op).await.and_then(|reply| flag(op, reply));
            let overlapped = in_flight.as_ref().is_some_and(InFlight::overlapped);
            self.inner
                .gate
                .extended(key, token, ttl, started, overlapped, &result);
            result
        })
    }

    /// Waits for the key's release message on the `cachelock:released` channel (the
    /// release script publishes it; on Redis Cluster, every node relays it), or `pause`,
    /// whichever comes first. Without a subscription (a cluster store made `from_client`):
    /// `pause` (polling).
    fn wait_for_release(&self, key: &str, pause: Duration) {
        if !self.inner.backend.subscribes() {
            std::thread::sleep(pause);
            return;
        }
        self.ensure_subscriber();
        self.inner.board.wait(&self.key(key), pause, || true);
    }

    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.inner.backend.subscribes() {
                tokio::time::sleep(pause).await;
                return;
            }
            self.ensure_subscriber();
            self.inner
                .board
                .wait_async(&self.key(key), pause, || true)
                .await;
        })
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(self)
    }
}

fn value(op: Op<'_>, reply: Reply) -> CacheResult<Option<(String, Option<Duration>)>> {
    match reply {
        Reply::Value(value) => Ok(value),
        other => Err(unexpected(op, other)),
    }
}

impl<B: Backend> LockAdmin for Core<B> {
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        let key = self.key(key);
        let op = Op::Holder(&key);
        value(op, self.run(op)?)
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        Box::pin(async move {
            let key = self.key(key);
            let op = Op::Holder(&key);
            value(op, self.run_async(op).await?)
        })
    }

    /// `SCAN` with `MATCH <prefix>*` (never `KEYS`); on Redis Cluster, on every primary.
    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        let pattern = listing::pattern(&self.key(prefix));
        let keys = self.scan(&pattern)?;
        Ok(listing::without_own_prefix(
            keys,
            &self.settings().key_prefix,
        ))
    }

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        Box::pin(async move {
            let pattern = listing::pattern(&self.key(prefix));
            let keys = self.scan_async(&pattern).await?;
            Ok(listing::without_own_prefix(
                keys,
                &self.settings().key_prefix,
            ))
        })
    }

    fn force_release(&self, key: &str) -> CacheResult<()> {
        self.inner.gate.forget(key);
        let key = self.key(key);
        self.run(Op::Delete(&key)).map(drop)
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        Box::pin(async move {
            self.inner.gate.forget(key);
            let key = self.key(key);
            self.run_async(Op::Delete(&key)).await.map(drop)
        })
    }
}

/// Tree locks: one script per operation on the keys of the lock space (`tree.rs`), through
/// the same executor as plain locks.
impl<B: Backend> Core<B> {
    fn tree_run(&self, space: &str, op: TreeOp<'_>) -> CacheResult<Reply> {
        let keys = keys(&self.settings().key_prefix, space)?;
        self.run(Op::Tree(&keys, op))
    }

    async fn tree_run_async(&self, space: &str, op: TreeOp<'_>) -> CacheResult<Reply> {
        let keys = keys(&self.settings().key_prefix, space)?;
        self.run_async(Op::Tree(&keys, op)).await
    }
}

fn tree_fence(reply: Reply) -> CacheResult<Option<Claimed>> {
    match reply {
        Reply::Fence(fence) => Ok(fence.map(Claimed::new)),
        other => Err(format!("unexpected reply to a Redis tree claim: {other:?}").into()),
    }
}

fn tree_flag(reply: Reply) -> CacheResult<bool> {
    match reply {
        Reply::Flag(flag) => Ok(flag),
        other => Err(format!("unexpected reply to a Redis tree operation: {other:?}").into()),
    }
}

fn tree_entry(reply: Reply) -> CacheResult<Option<TreeEntry>> {
    match reply {
        Reply::Entry(entry) => Ok(entry),
        other => Err(format!("unexpected reply to a Redis tree holder: {other:?}").into()),
    }
}

fn tree_entries(reply: Reply) -> CacheResult<Vec<TreeEntry>> {
    match reply {
        Reply::Entries(entries) => Ok(entries),
        other => Err(format!("unexpected reply to a Redis tree listing: {other:?}").into()),
    }
}

impl<B: Backend> TreeStore for Core<B> {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        let value = claim.owner_value();
        let op = TreeOp::Claim {
            path,
            value: &value,
            ttl: claim.ttl(),
            scope,
        };
        tree_fence(self.tree_run(space, op)?)
    }

    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move {
            let value = claim.owner_value();
            let op = TreeOp::Claim {
                path,
                value: &value,
                ttl: claim.ttl(),
                scope,
            };
            tree_fence(self.tree_run_async(space, op).await?)
        })
    }

    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        tree_flag(self.tree_run(space, TreeOp::Release { path, token })?)
    }

    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            tree_flag(
                self.tree_run_async(space, TreeOp::Release { path, token })
                    .await?,
            )
        })
    }

    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        tree_flag(self.tree_run(space, TreeOp::Extend { path, token, ttl })?)
    }

    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let op = TreeOp::Extend { path, token, ttl };
            tree_flag(self.tree_run_async(space, op).await?)
        })
    }

    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        tree_entry(self.tree_run(space, TreeOp::Holder { path, scope })?)
    }

    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        Box::pin(async move {
            tree_entry(
                self.tree_run_async(space, TreeOp::Holder { path, scope })
                    .await?,
            )
        })
    }

    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        tree_entries(self.tree_run(space, TreeOp::List)?)
    }

    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        Box::pin(async move { tree_entries(self.tree_run_async(space, TreeOp::List).await?) })
    }

    /// Like `wait_for_release`, for a release in the tree lock space `space` that could
    /// have blocked `path` (see `tree_wake.rs`): the tree release script publishes the
    /// released path and the space's owner hash key; releases of unrelated paths of the
    /// space wake the wait only to send it back to waiting, until `pause` has passed.
    fn wait_for_release(&self, space: &str, path: &str, scope: TreeScope, pause: Duration) {
        match keys(&self.settings().key_prefix, space) {
            Ok(keys) if self.inner.backend.subscribes() => {
                self.ensure_subscriber();
                let key = keys.released_key();
                let mut wait = TreeWait::new(&self.inner.tree_log, key, path, scope, pause);
                while let Some(left) = wait.left() {
                    self.inner.board.wait(key, left, || true);
                    if wait.concerned() {
                        return;
                    }
                }
            }
            _ => std::thread::sleep(pause),
        }
    }

    fn wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        pause: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match keys(&self.settings().key_prefix, space) {
                Ok(keys) if self.inner.backend.subscribes() => {
                    self.ensure_subscriber();
                    let key = keys.released_key();
                    let mut wait = TreeWait::new(&self.inner.tree_log, key, path, scope, pause);
                    while let Some(left) = wait.left() {
                        self.inner.board.wait_async(key, left, || true).await;
                        if wait.concerned() {
                            return;
                        }
                    }
                }
                _ => tokio::time::sleep(pause).await,
            }
        })
    }
}
