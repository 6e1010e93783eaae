//! Tree locks in files: one file per lock space, every operation a read-modify-write of the
//! whole space under the file's `flock`.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::io::{deadline, next_fence, now_ms, Open};
use super::name::tree_name;
use super::record::{TreeEntryRecord, TreeRecord};
use super::store::{FileStore, Inner};
use crate::claim::{Claim, Claimed, Handle};
use crate::owner::is_owned_by;
use crate::result::{BoxFuture, CacheResult};
use crate::tree::{conflicts, is_ancestor, TreeEntry, TreeScope, TreeStore};

fn parse(path: &Path, text: &str) -> io::Result<TreeRecord> {
    TreeRecord::parse(text).map_err(|reason| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {reason}", path.display()),
        )
    })
}

/// The live lock of `record` that conflicts with `path`/`scope` and comes first in the
/// order [`MemoryCache`](crate::MemoryCache) reports: the path itself, then its ancestors
/// root first, then its descendants by path.
fn conflict<'r>(
    record: &'r TreeRecord,
    path: &str,
    scope: TreeScope,
    now: u64,
) -> Option<&'r TreeEntryRecord> {
    fn rank<'e>(e: &'e TreeEntryRecord, path: &str) -> (u8, usize, &'e str) {
        if e.path == path {
            (0, 0, "")
        } else if is_ancestor(&e.path, path) {
            (1, e.path.len(), "")
        } else {
            (2, 0, e.path.as_str())
        }
    }
    record
        .locks
        .iter()
        .filter(|e| e.deadline > now && conflicts(path, scope, &e.path, e.scope))
        .min_by(|a, b| rank(a, path).cmp(&rank(b, path)))
}

fn entry(e: &TreeEntryRecord, now: u64) -> TreeEntry {
    TreeEntry {
        path: e.path.clone(),
        value: e.owner.clone(),
        ttl: Some(Duration::from_millis(e.deadline.saturating_sub(now))),
    }
}

impl Inner {
    fn tree_claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        owner: &str,
        ttl: Duration,
    ) -> io::Result<Option<u64>> {
        let (mut file, text) = self
            .opener()
            .open(&tree_name(space), Open::Create)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut record = parse(&file.path, &text)?;
        let now = now_ms();
        // A file that another space's live locks use (two spaces whose names share a file:
        // a hash collision, a case-insensitive file system) is held for this one.
        let foreign = record.space != space && record.locks.iter().any(|e| e.deadline > now);
        if foreign || conflict(&record, path, scope, now).is_some() {
            return Ok(None);
        }
        // Expired locks are free: dropped here, so the file holds the live locks only.
        record.locks.retain(|e| e.deadline > now);
        record.space = space.to_owned();
        record.fence = next_fence(record.fence);
        record.locks.push(TreeEntryRecord {
            path: path.to_owned(),
            deadline: deadline(now, ttl),
            scope,
            owner: owner.to_owned(),
        });
        file.write(record.to_text())?;
        Ok(Some(record.fence))
    }

    /// Owner-checked release (`ttl` `None`) or extend of `path` in `space`.
    fn tree_release_or_extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Option<Duration>,
    ) -> io::Result<bool> {
        let Some((mut file, text)) = self.opener().open(&tree_name(space), Open::Existing)? else {
            return Ok(false);
        };
        let mut record = parse(&file.path, &text)?;
        let now = now_ms();
        if record.space != space {
            return Ok(false);
        }
        let Some(at) = record
            .locks
            .iter()
            .position(|e| e.path == path && e.deadline > now && is_owned_by(&e.owner, token))
        else {
            return Ok(false);
        };
        match ttl {
            Some(ttl) => record.locks[at].deadline = deadline(now, ttl),
            None => {
                record.locks.remove(at);
            }
        }
        record.locks.retain(|e| e.deadline > now);
        file.write(record.to_text())?;
        Ok(true)
    }

    fn tree_read(&self, space: &str) -> io::Result<(TreeRecord, u64)> {
        let Some((file, text)) = self.opener().open(&tree_name(space), Open::Read)? else {
            return Ok((TreeRecord::default(), now_ms()));
        };
        let mut record = parse(&file.path, &text)?;
        if record.space != space {
            record.locks.clear(); // another space's locks
        }
        Ok((record, now_ms()))
    }

    fn tree_holder(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
    ) -> io::Result<Option<TreeEntry>> {
        let (record, now) = self.tree_read(space)?;
        Ok(conflict(&record, path, scope, now).map(|e| entry(e, now)))
    }

    fn tree_list(&self, space: &str) -> io::Result<Vec<TreeEntry>> {
        let (record, now) = self.tree_read(space)?;
        Ok(record
            .locks
            .iter()
            .filter(|e| e.deadline > now)
            .map(|e| entry(e, now))
            .collect())
    }
}

/// One file per lock space; waiters poll with the backoff (the default
/// `wait_for_release`).
impl TreeStore for FileStore {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        let owner = claim.owner_value();
        let won = self
            .inner()
            .tree_claim(space, path, scope, &owner, claim.ttl())?;
        Ok(won.map(Claimed::new))
    }

    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let (space, path) = (space.to_owned(), path.to_owned());
        let (owner, token, ttl) = (
            claim.owner_value().to_string(),
            claim.token().to_owned(),
            claim.ttl(),
        );
        let (back_space, back_path) = (space.clone(), path.clone());
        self.claim_blocking(
            move |inner| inner.tree_claim(&space, &path, scope, &owner, ttl),
            move |inner| inner.tree_release_or_extend(&back_space, &back_path, &token, None),
        )
    }

    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self
            .inner()
            .tree_release_or_extend(space, path, token, None)?)
    }

    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        self.blocking(move |inner| inner.tree_release_or_extend(&space, &path, &token, None))
    }

    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self
            .inner()
            .tree_release_or_extend(space, path, token, Some(ttl))?)
    }

    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (space, path, token) = (space.to_owned(), path.to_owned(), token.to_owned());
        self.blocking(move |inner| inner.tree_release_or_extend(&space, &path, &token, Some(ttl)))
    }

    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        Ok(self.inner().tree_holder(space, path, scope)?)
    }

    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        let (space, path) = (space.to_owned(), path.to_owned());
        self.blocking(move |inner| inner.tree_holder(&space, &path, scope))
    }

    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        Ok(self.inner().tree_list(space)?)
    }

    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        let space = space.to_owned();
        self.blocking(move |inner| inner.tree_list(&space))
    }
}
