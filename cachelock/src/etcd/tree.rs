//! Tree locks on etcd: the keys of a lock space, and one transaction per claim.
//!
//! # Keys
//!
//! A lock on `path` in the space `space` is up to three keys, all on the lock's one lease
//! (so they expire together), behind `<base> = <store prefix><space>{cachelock-tree}:`
//! (the `{cachelock-tree}:` mark makes [`Lock`](crate::Lock) refuse them and the listings
//! skip them):
//!
//! | key | value | exists |
//! |---|---|---|
//! | `<base>k<path>` | the owner value | always |
//! | `<base>c<path>` | empty | if the lock excludes its descendants (`lock_children`) |
//! | `<base>p<path>` | empty | if the lock excludes its ancestors (`lock_parents`) |
//!
//! # The claim: one transaction, no retry
//!
//! The conflict rule ([`crate::tree::conflicts`]) becomes comparisons that etcd checks
//! atomically with the puts, in one transaction:
//!
//! - `create_revision(<base>k<path>) == 0`: the path itself is free;
//! - with `lock_parents`: `create_revision(<base>c<a>) == 0` for every ancestor `a`: no
//!   ancestor excludes its descendants;
//! - with `lock_children`: `create_revision == 0` over the whole range of keys that start
//!   with `<base>p<path>/` (etcd compares every key of a range; an empty range passes): no
//!   descendant excludes its ancestors.
//!
//! So a claim costs one lease grant and one transaction of `depth + 2` comparisons, whatever
//! the number of locks in the space. The fence is the transaction's revision, the create
//! revision of `<base>k<path>`: revisions grow across the whole cluster, so fences strictly
//! increase within the space (and across spaces). Release is one transaction that compares
//! the owner token on `<base>k<path>` and deletes the three keys; extend renews the shared
//! lease (or moves the keys to a new one in a transaction that compares the owner).

use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use futures_util::future::join_all;

use super::core::{failed, resend_once, timed, Core, MARK};
use super::ops::ClaimArgs;
use crate::result::CacheResult;
use crate::tree::path::{ancestors, child_prefix};
use crate::tree::{TreeEntry, TreeScope};

/// The key names of one lock space.
pub(crate) struct Space {
    base: String,
}

impl Space {
    pub(crate) fn new(core: &Core, space: &str) -> Space {
        Space {
            base: format!("{}{MARK}", core.key(space)),
        }
    }

    /// The owner key of `path`.
    fn owner(&self, path: &str) -> String {
        format!("{}k{path}", self.base)
    }

    /// The key that says the lock on `path` excludes its descendants.
    fn children(&self, path: &str) -> String {
        format!("{}c{path}", self.base)
    }

    /// The key that says the lock on `path` excludes its ancestors.
    fn parents(&self, path: &str) -> String {
        format!("{}p{path}", self.base)
    }

    /// The prefix of every owner key: what a listing reads and a waiter watches.
    fn owners(&self) -> String {
        format!("{}k", self.base)
    }

    /// The companion keys of `path` (deleted with it, on its lease).
    fn companions(&self, path: &str) -> Vec<String> {
        vec![self.children(path), self.parents(path)]
    }

    /// The path of an owner key.
    fn path_of<'k>(&self, owner_key: &'k str) -> Option<&'k str> {
        owner_key
            .strip_prefix(self.base.as_str())?
            .strip_prefix('k')
    }
}

/// The tree lock operations.
impl Core {
    pub(crate) async fn tree_claim(
        self,
        space: String,
        path: String,
        scope: TreeScope,
        claim: ClaimArgs,
    ) -> CacheResult<Option<u64>> {
        let keys = Space::new(&self, &space);
        let secs = self.lease_secs(claim.ttl);
        timed("tree claim", self.lease_timeout(secs), async {
            let client = self.client().await?;
            let owner = keys.owner(&path);
            let mut compares = vec![Compare::create_revision(
                owner.as_str(),
                CompareOp::Equal,
                0,
            )];
            if scope.lock_parents {
                compares.extend(
                    ancestors(&path)
                        .map(|a| Compare::create_revision(keys.children(a), CompareOp::Equal, 0)),
                );
            }
            if scope.lock_children {
                compares.push(
                    Compare::create_revision(
                        keys.parents(&child_prefix(&path)),
                        CompareOp::Equal,
                        0,
                    )
                    .with_prefix(),
                );
            }
            self.grant_then(&client, secs, &claim.token, &keys.owners(), |lease| {
                let put = || Some(PutOptions::new().with_lease(lease));
                let mut puts = vec![TxnOp::put(owner.as_str(), claim.value.as_str(), put())];
                if scope.lock_children {
                    puts.push(TxnOp::put(keys.children(&path), "", put()));
                }
                if scope.lock_parents {
                    puts.push(TxnOp::put(keys.parents(&path), "", put()));
                }
                Txn::new()
                    .when(compares.clone())
                    .and_then(puts)
                    .or_else([TxnOp::get(owner.as_str(), None)])
            })
            .await
        })
        .await
    }

    pub(crate) async fn tree_release(
        self,
        space: String,
        path: String,
        token: String,
    ) -> CacheResult<bool> {
        let keys = Space::new(&self, &space);
        timed(
            "tree release",
            self.timeout(),
            self.release_keys(keys.owner(&path), keys.companions(&path), token),
        )
        .await
    }

    pub(crate) async fn tree_extend(
        self,
        space: String,
        path: String,
        token: String,
        ttl: Duration,
    ) -> CacheResult<bool> {
        let keys = Space::new(&self, &space);
        let limit = self.lease_timeout(self.lease_secs(ttl));
        timed(
            "tree extend",
            limit,
            self.extend_keys(keys.owner(&path), keys.companions(&path), token, ttl),
        )
        .await
    }

    /// A live lock that a claim of `path` with `scope` would hit: the path itself, an
    /// ancestor that excludes its descendants, or a descendant that excludes its ancestors.
    pub(crate) async fn tree_holder(
        self,
        space: String,
        path: String,
        scope: TreeScope,
    ) -> CacheResult<Option<TreeEntry>> {
        let keys = Space::new(&self, &space);
        timed("tree holder", self.timeout(), async {
            let client = self.client().await?;
            let above: Vec<&str> = if scope.lock_parents {
                ancestors(&path).collect()
            } else {
                Vec::new()
            };
            // [owner of path] + per ancestor [children flag, owner] + [first descendant
            // that excludes its ancestors].
            let mut reads = vec![TxnOp::get(keys.owner(&path), None)];
            for a in &above {
                reads.push(TxnOp::get(
                    keys.children(a),
                    Some(GetOptions::new().with_keys_only()),
                ));
                reads.push(TxnOp::get(keys.owner(a), None));
            }
            if scope.lock_children {
                reads.push(TxnOp::get(
                    keys.parents(&child_prefix(&path)),
                    Some(
                        GetOptions::new()
                            .with_prefix()
                            .with_keys_only()
                            .with_limit(1),
                    ),
                ));
            }
            let resp = resend_once("tree holder", || {
                let mut kv = client.kv_client();
                let txn = Txn::new().and_then(reads.clone());
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|e| failed("tree holder", e))?;
            let answers: Vec<Option<etcd_client::KeyValue>> = resp
                .op_responses()
                .into_iter()
                .map(|answer| match answer {
                    TxnOpResponse::Get(get) => get.kvs().first().cloned(),
                    _ => None,
                })
                .collect();
            let mut found = answers
                .first()
                .cloned()
                .flatten()
                .map(|kv| (path.clone(), kv));
            for (i, a) in above.iter().enumerate() {
                if found.is_some() {
                    break;
                }
                if answers.get(1 + 2 * i).is_some_and(Option::is_some) {
                    found = answers
                        .get(2 + 2 * i)
                        .cloned()
                        .flatten()
                        .map(|kv| ((*a).to_owned(), kv));
                }
            }
            if found.is_none() && scope.lock_children {
                let flag = answers.get(1 + 2 * above.len()).cloned().flatten();
                let descendant = flag.and_then(|kv| {
                    let key = kv.key_str().ok()?;
                    let base_p = keys.parents("");
                    key.strip_prefix(base_p.as_str()).map(str::to_owned)
                });
                if let Some(d) = descendant {
                    let owner = keys.owner(&d);
                    let resp = resend_once("tree holder", || {
                        let mut kv = client.kv_client();
                        let owner = owner.clone();
                        async move { kv.get(owner, None).await }
                    })
                    .await
                    .map_err(|e| failed("tree holder", e))?;
                    found = resp.kvs().first().cloned().map(|kv| (d, kv));
                }
            }
            let Some((path, kv)) = found else {
                return Ok(None);
            };
            Ok(self
                .value_and_ttl(&client, &kv)
                .await?
                .map(|(value, ttl)| TreeEntry { path, value, ttl }))
        })
        .await
    }

    /// Every live lock of the space: one range read, then each lease's time left.
    pub(crate) async fn tree_list(self, space: String) -> CacheResult<Vec<TreeEntry>> {
        let keys = Space::new(&self, &space);
        timed("tree listing", self.timeout(), async {
            let client = self.client().await?;
            let owners = keys.owners();
            let resp = resend_once("tree listing", || {
                let mut kv = client.kv_client();
                let owners = owners.clone();
                async move { kv.get(owners, Some(GetOptions::new().with_prefix())).await }
            })
            .await
            .map_err(|e| failed("tree listing", e))?;
            let lookups = resp.kvs().iter().filter_map(|kv| {
                let path = keys.path_of(kv.key_str().ok()?)?.to_owned();
                let client = &client;
                let core = &self;
                Some(async move {
                    let held = core.value_and_ttl(client, kv).await?;
                    CacheResult::Ok(held.map(|(value, ttl)| TreeEntry { path, value, ttl }))
                })
            });
            let mut entries = Vec::new();
            for entry in join_all(lookups).await {
                entries.extend(entry?);
            }
            Ok(entries)
        })
        .await
    }

    /// Waits for a delete of any lock of the space (after the revision the space was last
    /// seen blocking a claim at), or `pause`.
    pub(crate) async fn tree_wait(self, space: String, pause: Duration) -> CacheResult<()> {
        let keys = Space::new(&self, &space);
        self.wait_for_delete(keys.owners(), true, pause).await;
        Ok(())
    }
}
