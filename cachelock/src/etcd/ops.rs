//! The operations of plain locks and of the admin calls, as futures that run on the private
//! runtime (they own their arguments). The tree locks share `grant_then`, `release_keys`
//! and `extend_keys`.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, TxnResponse, WatchFilterType, WatchOptions,
};

use super::core::{failed, owned_by, resend_once, timed, Core, MARK};
use crate::claim::Claim;
use crate::owner::is_owned_by;
use crate::result::CacheResult;

/// What a claim needs, owned.
pub(crate) struct ClaimArgs {
    pub(crate) value: String,
    pub(crate) token: String,
    pub(crate) ttl: Duration,
    pub(crate) fencing: bool,
}

impl ClaimArgs {
    pub(crate) fn new(claim: &Claim<'_>) -> Self {
        ClaimArgs {
            value: claim.owner_value().as_str().to_owned(),
            token: claim.token().to_owned(),
            ttl: claim.ttl(),
            fencing: claim.fencing(),
        }
    }
}

/// The revision a response was applied at.
fn revision(resp: &TxnResponse) -> i64 {
    resp.header().map_or(0, |h| h.revision())
}

/// The first key-value of the `at`-th answer of a transaction, if it is a get that found one.
fn got(resp: &TxnResponse, at: usize) -> Option<KeyValue> {
    match resp.op_responses().into_iter().nth(at) {
        Some(TxnOpResponse::Get(get)) => get.kvs().first().cloned(),
        _ => None,
    }
}

/// A fence from a revision (revisions start at 1, so a granted one is positive).
fn fence(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

impl Core {
    /// Grants a lease of `secs`, then runs the claim transaction `txn(lease)`, whose
    /// comparisons say the path is free, whose success puts the value with the lease and
    /// whose failure gets the lock's (main) key as it is. Answers the fence (the
    /// transaction's revision, which is the key's create revision) if it stored the value, or
    /// if the key holds `token`'s value already (this claim's own, sent before over a connection
    /// that died: its create revision); `None` else, remembering the revision the key was
    /// seen held at under `seen_as`.
    pub(crate) async fn grant_then(
        &self,
        client: &Client,
        secs: i64,
        token: &str,
        seen_as: &str,
        txn: impl Fn(i64) -> Txn,
    ) -> CacheResult<Option<u64>> {
        let lease = self.grant(client, secs).await?;
        let sent = resend_once("claim", || {
            let mut kv = client.kv_client();
            let txn = txn(lease);
            async move { kv.txn(txn).await }
        })
        .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(error) => {
                self.revoke_later(client, lease);
                return Err(failed("claim", error));
            }
        };
        if resp.succeeded() {
            return Ok(Some(fence(revision(&resp))));
        }
        self.revoke_later(client, lease);
        match got(&resp, 0) {
            Some(kv) if is_owned_by(kv.value_str().unwrap_or_default(), token) => {
                Ok(Some(fence(kv.create_revision())))
            }
            _ => {
                self.saw_held(seen_as, revision(&resp));
                Ok(None)
            }
        }
    }

    /// Deletes `key` (and `companions`) if `key` holds `token`; revokes its lease in the
    /// background. `true` if it deleted.
    pub(crate) async fn release_keys(
        &self,
        key: String,
        companions: Vec<String>,
        token: String,
    ) -> CacheResult<bool> {
        let Some(owned) = owned_by(&key, &token) else {
            return Ok(false);
        };
        let client = self.client().await?;
        let resp = resend_once("release", || {
            let mut kv = client.kv_client();
            let mut deletes = vec![TxnOp::delete(
                key.as_str(),
                Some(DeleteOptions::new().with_prev_key()),
            )];
            deletes.extend(companions.iter().map(|c| TxnOp::delete(c.as_str(), None)));
            let txn = Txn::new().when(owned.clone()).and_then(deletes);
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|e| failed("release", e))?;
        if !resp.succeeded() {
            return Ok(false);
        }
        if let Some(TxnOpResponse::Delete(deleted)) = resp.op_responses().first() {
            if let Some(prev) = deleted.prev_kvs().first() {
                self.revoke_later(&client, prev.lease());
            }
        }
        Ok(true)
    }

    /// Sets the TTL of `key` (and of `companions`, which share its lease) to `ttl` if `key`
    /// holds `token`. Reads the key (its owner and lease); a lease granted for the same TTL
    /// is renewed with a keep-alive; otherwise a new lease is granted and put on the keys in
    /// a transaction that compares the owner again, and the old one revoked.
    pub(crate) async fn extend_keys(
        &self,
        key: String,
        companions: Vec<String>,
        token: String,
        ttl: Duration,
    ) -> CacheResult<bool> {
        let Some(owned) = owned_by(&key, &token) else {
            return Ok(false);
        };
        let client = self.client().await?;
        let secs = self.lease_secs(ttl);
        // The key, and which companions exist (a tree lock has those of its scope).
        let held = resend_once("extend", || {
            let mut kv = client.kv_client();
            let mut reads = vec![TxnOp::get(key.as_str(), None)];
            reads.extend(
                companions
                    .iter()
                    .map(|c| TxnOp::get(c.as_str(), Some(GetOptions::new().with_keys_only()))),
            );
            let txn = Txn::new().and_then(reads);
            async move { kv.txn(txn).await }
        })
        .await
        .map_err(|e| failed("extend", e))?;
        let Some(kv) = got(&held, 0) else {
            return Ok(false);
        };
        if !is_owned_by(kv.value_str().unwrap_or_default(), &token) {
            return Ok(false);
        }
        let companions: Vec<&String> = companions
            .iter()
            .enumerate()
            .filter(|(i, _)| got(&held, i + 1).is_some())
            .map(|(_, c)| c)
            .collect();
        let old = kv.lease();
        if self.renews_for(old, secs) {
            // The lease is this lock's alone: renewing it cannot keep anyone else's key.
            let renewed = resend_once("extend", || {
                let mut leases = client.lease_client();
                async move { leases.keep_alive(old).await }
            })
            .await;
            return match renewed {
                Ok(_) => Ok(true),
                Err(etcd_client::Error::LeaseKeepAliveError(_)) => Ok(false),
                Err(error) => Err(failed("extend", error)),
            };
        }
        let lease = self.grant(&client, secs).await?;
        let resp = resend_once("extend", || {
            let mut kv = client.kv_client();
            let put = || Some(PutOptions::new().with_lease(lease).with_ignore_value());
            let mut compares = owned.to_vec();
            compares.extend(
                companions
                    .iter()
                    .map(|c| Compare::create_revision(c.as_str(), CompareOp::NotEqual, 0)),
            );
            let mut puts = vec![TxnOp::put(key.as_str(), "", put())];
            puts.extend(companions.iter().map(|c| TxnOp::put(c.as_str(), "", put())));
            let txn = Txn::new().when(compares).and_then(puts);
            async move { kv.txn(txn).await }
        })
        .await;
        match resp {
            Ok(resp) if resp.succeeded() => {
                self.revoke_later(&client, old);
                Ok(true)
            }
            Ok(_) => {
                self.revoke_later(&client, lease);
                Ok(false)
            }
            Err(error) => {
                self.revoke_later(&client, lease);
                Err(failed("extend", error))
            }
        }
    }

    /// The value under `key` and the time its lease has left (`None` if it has none).
    pub(crate) async fn value_and_ttl(
        &self,
        client: &Client,
        kv: &KeyValue,
    ) -> CacheResult<Option<(String, Option<Duration>)>> {
        let value = kv.value_str().unwrap_or_default().to_owned();
        let lease = kv.lease();
        if lease == 0 {
            return Ok(Some((value, None)));
        }
        let left = resend_once("holder", || {
            let mut leases = client.lease_client();
            async move { leases.time_to_live(lease, None).await }
        })
        .await
        .map_err(|e| failed("holder", e))?;
        if left.ttl() < 0 {
            // The lease ran out (or was revoked) since the read: the key is gone.
            return Ok(None);
        }
        Ok(Some((
            value,
            Some(Duration::from_secs(left.ttl().unsigned_abs())),
        )))
    }

    /// Waits for a delete of `key` (or of a key under it, with `prefix`) after the revision
    /// it was last seen held at (so a release between that claim and this watch counts), or
    /// `pause`. Errors end the wait quietly after `pause`: the caller polls.
    pub(crate) async fn wait_for_delete(&self, key: String, prefix: bool, pause: Duration) {
        let start = tokio::time::Instant::now();
        let seen = self.take_seen(&key);
        let watched = async {
            let client = self.client().await?;
            let mut options = WatchOptions::new().with_filters([WatchFilterType::NoPut]);
            if prefix {
                options = options.with_prefix();
            }
            if let Some(seen) = seen {
                options = options.with_start_revision(seen + 1);
            }
            let mut stream = client
                .watch_client()
                .watch(key.as_str(), Some(options))
                .await
                .map_err(|e| failed("watch", e))?;
            loop {
                match stream.message().await.map_err(|e| failed("watch", e))? {
                    // Cancelled (its start revision was compacted away): try the claim.
                    Some(resp) if resp.canceled() => return Ok(()),
                    Some(resp)
                        if resp
                            .events()
                            .iter()
                            .any(|e| e.event_type() == EventType::Delete) =>
                    {
                        return Ok(())
                    }
                    Some(_) => {}
                    None => return Err::<(), crate::error::BoxError>("watch ended".into()),
                }
            }
        };
        if let Ok(Err(error)) = tokio::time::timeout(pause, watched).await {
            tracing::debug!(%error, "etcd watch for a release failed; polling");
            tokio::time::sleep_until(start + pause).await;
        }
    }
}

/// The plain lock operations.
impl Core {
    /// Claims `key`: grants a lease, then `create_revision(key) == 0 ? put : get`.
    pub(crate) async fn claim(self, key: String, claim: ClaimArgs) -> CacheResult<Option<u64>> {
        let secs = self.lease_secs(claim.ttl);
        timed("claim", self.lease_timeout(secs), async {
            let client = self.client().await?;
            let won = self
                .grant_then(&client, secs, &claim.token, &key, |lease| {
                    Txn::new()
                        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(
                            key.as_str(),
                            claim.value.as_str(),
                            Some(PutOptions::new().with_lease(lease)),
                        )])
                        .or_else([TxnOp::get(key.as_str(), None)])
                })
                .await?;
            Ok(won.map(|fence| if claim.fencing { fence } else { 0 }))
        })
        .await
    }

    pub(crate) async fn release(self, key: String, token: String) -> CacheResult<bool> {
        timed(
            "release",
            self.timeout(),
            self.release_keys(key, Vec::new(), token),
        )
        .await
    }

    pub(crate) async fn extend(
        self,
        key: String,
        token: String,
        ttl: Duration,
    ) -> CacheResult<bool> {
        let limit = self.lease_timeout(self.lease_secs(ttl));
        timed(
            "extend",
            limit,
            self.extend_keys(key, Vec::new(), token, ttl),
        )
        .await
    }

    pub(crate) async fn holder(
        self,
        key: String,
    ) -> CacheResult<Option<(String, Option<Duration>)>> {
        timed("holder", self.timeout(), async {
            let client = self.client().await?;
            let resp = resend_once("holder", || {
                let mut kv = client.kv_client();
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await
            .map_err(|e| failed("holder", e))?;
            match resp.kvs().first() {
                Some(kv) => self.value_and_ttl(&client, kv).await,
                None => Ok(None),
            }
        })
        .await
    }

    /// The keys under `prefix` (the store's own prefix taken off), tree lock spaces left out.
    pub(crate) async fn keys(self, prefix: String) -> CacheResult<Vec<String>> {
        timed("listing", self.timeout(), async {
            let client = self.client().await?;
            let full = self.key(&prefix);
            let resp = resend_once("listing", || {
                let mut kv = client.kv_client();
                let full = full.clone();
                async move {
                    kv.get(full, Some(GetOptions::new().with_prefix().with_keys_only()))
                        .await
                }
            })
            .await
            .map_err(|e| failed("listing", e))?;
            let own = self.settings.key_prefix.len();
            Ok(resp
                .kvs()
                .iter()
                .filter_map(|kv| kv.key_str().ok())
                .filter(|key| !key.contains(MARK))
                .filter_map(|key| key.get(own..).map(str::to_owned))
                .collect())
        })
        .await
    }

    /// Deletes `key` whoever holds it, and revokes its lease in the background.
    pub(crate) async fn force_release(self, key: String) -> CacheResult<()> {
        timed("force-release", self.timeout(), async {
            let client = self.client().await?;
            let resp = resend_once("force-release", || {
                let mut kv = client.kv_client();
                let key = key.clone();
                async move {
                    kv.delete(key, Some(DeleteOptions::new().with_prev_key()))
                        .await
                }
            })
            .await
            .map_err(|e| failed("force-release", e))?;
            for prev in resp.prev_kvs() {
                self.revoke_later(&client, prev.lease());
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn wait(self, key: String, pause: Duration) -> CacheResult<()> {
        self.wait_for_delete(key, false, pause).await;
        Ok(())
    }
}
