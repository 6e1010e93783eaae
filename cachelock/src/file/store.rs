//! [`FileStore`]: the public type, its builder, and the lock operations on key files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::io::{at, create_dir, deadline, in_dir, next_fence, now_ms, Open, Opener};
use super::name::{self, lock_name, tree_name, LOCK_SUFFIX};
use super::record::LockRecord;
use crate::claim::{Claim, Claimed, Handle};
use crate::owner::is_owned_by;
use crate::result::{BoxFuture, CacheResult};
use crate::store::{LockAdmin, LockStore};
use crate::tree::TreeStore;

/// How long an operation waits for another process's `flock` on a lock file before it fails
/// with a timeout: 5 seconds.
///
/// Another process holds a lock file's `flock` only inside one operation (microseconds);
/// waiting this long means it was stopped there (`SIGSTOP`, a debugger).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The mode of a lock directory `FileStore` creates (on Unix): `0o700`, this user only.
pub const DEFAULT_DIR_MODE: u32 = 0o700;

/// Locks in a directory of lock files, for every process of one host. See the
/// [module docs](crate::file) for the design and what it guarantees.
///
/// ```
/// use cachelock::file::FileStore;
/// use cachelock::Lock;
///
/// # let dir = std::env::temp_dir().join(format!("cachelock-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir)?; // created (0700) if missing
/// let guard = Lock::new("nightly-report").cache(store.clone()).try_acquire()?;
/// // Any process of this host with a FileStore on `dir` is refused meanwhile.
/// assert!(Lock::new("nightly-report").cache(store.clone()).try_acquire().is_err());
/// guard.release()?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Clones are cheap and share the settings. Opening checks that the directory can be
/// used (created if missing, a file created and removed in it) and fails with a message
/// that names it; every operation after that opens one lock file, so a store never holds
/// file descriptors between operations.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    dir: PathBuf,
    lock_timeout: Duration,
    dir_mode: u32,
    per_user: bool,
}

impl Inner {
    pub(crate) fn opener(&self) -> Opener<'_> {
        Opener {
            dir: &self.dir,
            lock_timeout: self.lock_timeout,
            dir_mode: self.dir_mode,
            per_user: self.per_user,
        }
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .field("lock_timeout", &self.inner.lock_timeout)
            .finish()
    }
}

/// Settings of a [`FileStore`]: [`FileStore::builder`].
#[derive(Debug, Clone)]
pub struct FileStoreBuilder {
    dir: PathBuf,
    lock_timeout: Duration,
    dir_mode: u32,
    per_user: bool,
}

impl FileStoreBuilder {
    /// How long an operation waits for another process's `flock` on a lock file
    /// (default [`DEFAULT_LOCK_TIMEOUT`]); then it fails with an error for which
    /// [`Error::is_timeout`](crate::Error::is_timeout) is true. At least 1 ms.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The mode of the directory (and its missing parents) when the store creates it (Unix;
    /// default [`DEFAULT_DIR_MODE`], `0o700`), before the umask. Give `0o770` or `0o1777` for
    /// a directory several users share (their umask must then leave the lock files
    /// group- or world-writable too). An existing directory is left as it is.
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = mode;
        self
    }

    /// Creates the directory if missing and checks that lock files can be created in it. A
    /// relative path is made absolute (against the current directory, now).
    pub fn open(self) -> io::Result<FileStore> {
        if self.dir.as_os_str().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the lock directory path is empty",
            ));
        }
        let dir = std::path::absolute(&self.dir).map_err(|e| in_dir(&self.dir, e))?;
        if std::fs::metadata(&dir).is_ok_and(|meta| !meta.is_dir()) {
            return Err(in_dir(&dir, not_a_directory()));
        }
        create_dir(&dir, self.dir_mode).map_err(|e| in_dir(&dir, e))?;
        probe(&dir).map_err(|e| in_dir(&dir, e))?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir,
                lock_timeout: self.lock_timeout,
                dir_mode: self.dir_mode,
                per_user: self.per_user,
            }),
        })
    }
}

fn not_a_directory() -> io::Error {
    io::Error::new(io::ErrorKind::NotADirectory, "it is not a directory")
}

/// Creates and removes a file in `dir`: the one check that holds on every file system, for
/// every user (root passes permission bits, not a read-only mount).
fn probe(dir: &Path) -> io::Result<()> {
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(not_a_directory());
    }
    let probe = dir.join(format!(
        ".cachelock-probe-{}-{}",
        std::process::id(),
        &crate::token::Token::new().as_str()[..8]
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

impl FileStore {
    /// Opens the lock directory `dir` with the default settings: created (mode `0o700`) if
    /// missing, checked to be writable. The error names the directory and the reason.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FileStore> {
        FileStore::builder(dir).open()
    }

    /// The settings, for the directory `dir`; [`open`](FileStoreBuilder::open) opens it.
    pub fn builder(dir: impl AsRef<Path>) -> FileStoreBuilder {
        FileStoreBuilder {
            dir: dir.as_ref().to_path_buf(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            dir_mode: DEFAULT_DIR_MODE,
            per_user: false,
        }
    }

    /// Opens this user's lock directory ([`user_dir`](super::user_dir)): the command line's
    /// default store, so a program that opens it excludes `cachelock run` of the same user
    /// (with the same `CACHELOCK_DIR`, usually none).
    #[cfg(unix)]
    pub fn for_user() -> io::Result<FileStore> {
        let dir = super::user_dir();
        super::dir::prepare_user_dir(&dir)?;
        let mut builder = FileStore::builder(dir);
        builder.per_user = true;
        builder.open()
    }

    /// The lock directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file that holds the lock of `key` (prefix included, as stored): for an admin who
    /// wants to look at it. Never delete it while processes use the store (see the
    /// [module docs](crate::file#lock-files-are-never-deleted)).
    pub fn lock_file(&self, key: &str) -> PathBuf {
        self.inner.dir.join(lock_name(key))
    }

    /// The file that holds the tree locks of the lock space `space`.
    pub fn tree_file(&self, space: &str) -> PathBuf {
        self.inner.dir.join(tree_name(space))
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Runs `op` off the runtime's threads: on tokio's blocking pool inside a runtime, inline
    /// outside one (as [`CacheStore`](crate::CacheStore) does).
    pub(crate) fn blocking<'a, T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    ) -> BoxFuture<'a, CacheResult<T>> {
        let inner = Arc::clone(&self.inner);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Box::pin(async move {
                runtime
                    .spawn_blocking(move || op(&inner))
                    .await
                    .map_err(|error| format!("the lock file operation did not complete: {error}"))?
                    .map_err(Into::into)
            }),
            Err(_) => Box::pin(std::future::ready(op(&inner).map_err(Into::into))),
        }
    }

    /// An async claim on the blocking pool. If its future is dropped before it completes,
    /// what the claim won is given back: by the claim itself when it sees the drop right
    /// after winning, else by an owner-checked release that the drop sends after it (a claim
    /// that won before the drop was seen has written its record by then).
    pub(crate) fn claim_blocking<'a>(
        &self,
        claim: impl FnOnce(&Inner) -> io::Result<Option<u64>> + Send + 'static,
        give_back: impl Fn(&Inner) -> io::Result<bool> + Send + Sync + 'static,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let give_back: GiveBack = Arc::new(give_back);
        let cancelled = Arc::new(AtomicBool::new(false));
        let (seen, back) = (Arc::clone(&cancelled), Arc::clone(&give_back));
        let claimed = self.blocking(move |inner| {
            let won = claim(inner)?;
            if won.is_some() && seen.load(Ordering::SeqCst) {
                let _ = back(inner);
                return Ok(None);
            }
            Ok(won)
        });
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            // Made at the first poll, which is when the claim is sent to the pool.
            let mut cancel = Cancelled {
                flag: cancelled,
                give_back: Some((inner, give_back)),
            };
            let outcome = claimed.await;
            cancel.give_back = None;
            Ok(outcome?.map(Claimed::new))
        })
    }
}

type GiveBack = Arc<dyn Fn(&Inner) -> io::Result<bool> + Send + Sync>;

/// Dropped with the future of an async claim: if the claim has not completed, sets the flag
/// it checks and gives back what it may have won, off the runtime's threads.
struct Cancelled {
    flag: Arc<AtomicBool>,
    give_back: Option<(Arc<Inner>, GiveBack)>,
}

impl Drop for Cancelled {
    fn drop(&mut self) {
        let Some((inner, give_back)) = self.give_back.take() else {
            return;
        };
        self.flag.store(true, Ordering::SeqCst);
        let release = move || {
            let _ = give_back(&inner);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

/// The operations on one key's file, each under the file's exclusive `flock`.
impl Inner {
    /// The claim: stores `owner` with a deadline `ttl` from now if the file holds no live
    /// lock (of any key: see the hashed names); the fence (0 without `fencing`) if it did.
    pub(crate) fn claim(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
        fencing: bool,
    ) -> io::Result<Option<u64>> {
        let (mut file, text) = self
            .opener()
            .open(&lock_name(key), Open::Create)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let record = parse(&file.path, &text)?;
        let now = now_ms();
        if record.live(now) {
            return Ok(None);
        }
        let fence = if fencing { next_fence(record.fence) } else { 0 };
        let stored = LockRecord {
            key: key.into(),
            fence: if fencing { fence } else { record.fence },
            deadline: deadline(now, ttl),
            owner: owner.into(),
        };
        file.write(stored.to_text())?;
        Ok(Some(fence))
    }

    /// Owner-checked release (`ttl` `None`) or extend (`Some(ttl)`): `true` if the file held
    /// a live lock of `key` by `token`, which is now free (release) or runs `ttl` from now.
    pub(crate) fn release_or_extend(
        &self,
        key: &str,
        token: &str,
        ttl: Option<Duration>,
    ) -> io::Result<bool> {
        let Some((mut file, text)) = self.opener().open(&lock_name(key), Open::Existing)? else {
            return Ok(false);
        };
        let mut record = parse(&file.path, &text)?;
        let now = now_ms();
        if !(record.live(now) && record.key == key && is_owned_by(&record.owner, token)) {
            return Ok(false);
        }
        match ttl {
            Some(ttl) => record.deadline = deadline(now, ttl),
            None => {
                record.deadline = 0;
                record.owner = "".into();
            }
        }
        file.write(record.to_text())?;
        Ok(true)
    }

    /// The live lock of `key`: owner value and time left.
    pub(crate) fn holder(&self, key: &str) -> io::Result<Option<(String, Option<Duration>)>> {
        self.read_live(&lock_name(key), Some(key))
            .map(|found| found.map(|(_, owner, left)| (owner, Some(left))))
    }

    /// The record of the file `name` if it holds a live lock (of `key`, when given): key,
    /// owner, time left.
    fn read_live(
        &self,
        name: &str,
        key: Option<&str>,
    ) -> io::Result<Option<(String, String, Duration)>> {
        let Some((file, text)) = self.opener().open(name, Open::Read)? else {
            return Ok(None);
        };
        let record = parse(&file.path, &text)?;
        drop(file);
        let now = now_ms();
        if !record.live(now) || key.is_some_and(|key| record.key != key) {
            return Ok(None);
        }
        let left = Duration::from_millis(record.deadline - now);
        Ok(Some((
            record.key.into_owned(),
            record.owner.into_owned(),
            left,
        )))
    }

    /// Every key under `prefix` with a live lock: the directory's `*.lock` files, read one
    /// by one (a name that decodes to a key outside `prefix` is skipped unread).
    pub(crate) fn keys(&self, prefix: &str) -> io::Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| at(&self.dir, e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| at(&self.dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            let Some(encoded) = name.strip_suffix(LOCK_SUFFIX) else {
                continue;
            };
            let key = name::decode(encoded);
            if key.as_deref().is_some_and(|key| !key.starts_with(prefix)) {
                continue;
            }
            if key.is_none() && !name::is_hashed(encoded) {
                continue; // not a file this store names
            }
            match self.read_live(name, key.as_deref()) {
                Ok(Some((key, _, _))) if key.starts_with(prefix) => keys.push(key),
                Ok(_) => {}
                // Removed by hand meanwhile; or a file that is not ours: not a lock.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::InvalidData
                    ) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(keys)
    }

    /// Frees `key` whoever holds it; the file and its fence stay.
    pub(crate) fn force_release(&self, key: &str) -> io::Result<()> {
        let Some((mut file, text)) = self.opener().open(&lock_name(key), Open::Existing)? else {
            return Ok(());
        };
        let mut record = parse(&file.path, &text)?;
        if record.key != key || record.deadline == 0 {
            return Ok(());
        }
        record.deadline = 0;
        record.owner = "".into();
        file.write(record.to_text())
    }
}

fn parse<'t>(path: &Path, text: &'t str) -> io::Result<LockRecord<'t>> {
    LockRecord::parse(text).map_err(|reason| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {reason}", path.display()),
        )
    })
}

/// Every operation is one lock file's read-modify-write under its `flock`; the async twins
/// run it on tokio's blocking pool.
impl LockStore for FileStore {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        let owner = claim.owner_value();
        let won = self
            .inner
            .claim(key, &owner, claim.ttl(), claim.fencing())?;
        Ok(won.map(Claimed::new))
    }

    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        let (key, owner, token) = (
            key.to_owned(),
            claim.owner_value().to_string(),
            claim.token().to_owned(),
        );
        let (ttl, fencing) = (claim.ttl(), claim.fencing());
        let back = key.clone();
        self.claim_blocking(
            move |inner| inner.claim(&key, &owner, ttl, fencing),
            move |inner| inner.release_or_extend(&back, &token, None),
        )
    }

    fn release(&self, key: &str, token: &str, _handle: Option<&Handle>) -> CacheResult<bool> {
        Ok(self.inner.release_or_extend(key, token, None)?)
    }

    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (key, token) = (key.to_owned(), token.to_owned());
        self.blocking(move |inner| inner.release_or_extend(&key, &token, None))
    }

    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        _handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        Ok(self.inner.release_or_extend(key, token, Some(ttl))?)
    }

    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        _handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        let (key, token) = (key.to_owned(), token.to_owned());
        self.blocking(move |inner| inner.release_or_extend(&key, &token, Some(ttl)))
    }

    fn admin(&self) -> Option<&dyn LockAdmin> {
        Some(self)
    }

    fn trees(&self) -> Option<&dyn TreeStore> {
        Some(self)
    }
}

/// Holder lookup reads the key's file; listing reads the directory; force-release frees the
/// key's file (it stays, with its fence).
impl LockAdmin for FileStore {
    fn holder(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        Ok(self.inner.holder(key)?)
    }

    fn holder_async<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, CacheResult<Option<(String, Option<Duration>)>>> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.holder(&key))
    }

    fn keys(&self, prefix: &str) -> CacheResult<Vec<String>> {
        Ok(self.inner.keys(prefix)?)
    }

    fn keys_async<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, CacheResult<Vec<String>>> {
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.keys(&prefix))
    }

    fn force_release(&self, key: &str) -> CacheResult<()> {
        Ok(self.inner.force_release(key)?)
    }

    fn force_release_async<'a>(&'a self, key: &'a str) -> BoxFuture<'a, CacheResult<()>> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.force_release(&key))
    }
}
