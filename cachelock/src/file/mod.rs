//! Locks in a directory of lock files, for every process of one host (cargo feature
//! `file`, on by default): [`FileStore`]. The command line's default store.
//!
//! ```
//! use cachelock::file::FileStore;
//! use cachelock::{set_default_cache, Lock};
//!
//! # let dir = std::env::temp_dir().join(format!("cachelock-doc-mod-{}", std::process::id()));
//! let store = FileStore::open(&dir)?; // e.g. /var/lock/myapp; created 0700 if missing
//! let guard = Lock::new("nightly-report").cache(store.clone()).try_acquire()?;
//! // Every process of this host that opens the same directory is refused meanwhile.
//! guard.release()?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Or by URL ([`store_from_url`](crate::store_from_url)): `file:///var/lock/myapp`
//! (`file://localhost/var/lock/myapp`), and `file://` alone for this user's directory
//! ([`user_dir`]: `/tmp/cachelock-<uid>`, or `$CACHELOCK_DIR`).
//!
//! # How it works
//!
//! Each key has one lock file in the directory. Every operation opens the key's file, takes
//! an exclusive `flock(2)` on it (the [`fs4`](https://docs.rs/fs4) crate), reads the record,
//! decides, writes the record back in place, and closes the file (which drops the `flock`).
//! The `flock` makes each operation atomic with respect to every other process and thread
//! (each open of the file is its own lock, so threads of one process exclude each other
//! too), and the kernel drops it when a process dies, so a crash inside an operation blocks
//! nobody. The file holds the key, the fence, the deadline and the owner value
//! (`<token>|<pid>|<host>|<label>`), as a few lines of text.
//!
//! | operation | what it does | system calls |
//! |---|---|---|
//! | claim | open (create), `flock`, read; if the deadline has passed (or the file is new): write owner, deadline, fence | `openat`, `flock`, `read`, `pwrite64`, `close` |
//! | release | open, `flock`, read; if the key is live and holds the token: write it free (deadline 0, no owner; the fence stays) | the same, no create |
//! | extend | open, `flock`, read; if the key is live and holds the token: write the new deadline | the same |
//! | holder lookup ([`Lock::holder`](crate::Lock::holder)) | open, shared `flock`, read | `openat`, `flock`, `read`, `close` |
//! | force-release | like release, without the token check | as release |
//! | listing ([`held_locks`](crate::held_locks)) | read the directory; open and read each `*.lock` file whose name may be under the prefix | one `getdents` pass, then one holder lookup per file |
//! | tree lock claim / release / extend / holder / listing | the same on the lock space's one file (`<space>.tree`), which holds every path of the space: the claim checks the [conflict rule](crate::tree::conflicts) against all live paths and appends its own | as above |
//!
//! Owner-checked release and extend are thus one atomic step each (never a read, then a
//! delete by a second operation: the bug of sherlock's file lock). An uncontended acquire +
//! release is two operations, ten system calls, no network and no server: as fast as the
//! bare `flock` primitive it is built on (the bench's file LIMIT row, which reads each file
//! until a `read` returns 0; the store stops at the first short `read` that holds a whole
//! record, whose `end` line says where it ends). Every operation opens the file by its path
//! in the directory: no descriptor of the directory is kept, so a directory replaced under
//! its name (moved away, made again) is the new one for every process at once, never a
//! split between processes that kept the old one and those that opened the new. Another process's
//! `flock` on a lock file is held only inside one operation; an operation waits for it at
//! most the [lock timeout](FileStoreBuilder::lock_timeout) (5 s by default), trying again
//! without blocking, so a process stopped (`SIGSTOP`, a debugger) inside an operation makes
//! the others fail with a timeout ([`Error::is_timeout`](crate::Error::is_timeout)), never
//! hang.
//!
//! # File names
//!
//! A key may hold any character and be up to ~1 KiB long; a file name may not hold `/` and
//! has at most 255 bytes. The key is encoded reversibly: `A-Z a-z 0-9 - _ . : @ + = ,` stand
//! for themselves, every other byte (and a leading `.`) is `%XX`, then `.lock` is appended:
//! `cachelock:nightly-report.lock`, `cachelock:job%2F42.lock`. An encoding longer than
//! 200 bytes keeps its first ~120 bytes, then `~` and a 128-bit hash (FNV-1a) of the whole
//! key. The full key is always stored inside the file, which is what listing reads for
//! hashed names. Two keys that share a file (a hash collision; `Job` and `job` on a
//! case-insensitive file system) are safe: the file holds one lock at a time, so one key
//! waits for the other: contention, never a double grant. Tree lock spaces are
//! `<encoded space>.tree` files.
//!
//! # Lock files are never deleted
//!
//! A release marks the file free; it never unlinks it. An unlink races with a process that
//! has opened the file and waits for its `flock`: that process would then lock a file that
//! is no longer in the directory (a ghost), while a third one creates a new file under the
//! same name and locks that: two holders. Keeping the file also keeps the fence counter.
//! The cost: one small file (~200 bytes, one inode) per key ever used, and one per tree lock
//! space. With keys that never repeat (a job id per key), clean the directory while no
//! process uses it (at boot; a `tmpfs` such as `/run` or `/tmp` is cleaned by a reboot), or
//! use Redis. Never delete a lock file while processes may be using it.
//!
//! # Deadlines: the host's wall clock
//!
//! A lock's deadline is stored as Unix time in milliseconds by the host's wall clock
//! (`CLOCK_REALTIME`), which every process of the host shares, and TTLs are rounded up to
//! whole milliseconds. A crashed holder's lock is free once its deadline has passed: it
//! frees by TTL, as with every store. NTP's slewing is harmless. A **step** of the clock is
//! not: a step forward by D ends every held lock D early (a lock whose TTL has less than D
//! left is free at once, and its holder's next renewal finds it lost), and a step back by D
//! keeps every lock, a crashed holder's too, D longer. Hosts that step their clock while
//! locks are held (a VM resumed, a manual `date -s`) should use long TTLs or another store.
//!
//! # Fencing tokens
//!
//! The fence is a counter in the lock file: a fenced claim stores and returns
//! `max(counter + 1, wall-clock microseconds)` (as the Redis store does). Under the `flock`,
//! so for one key the fences strictly increase: across release, expiry, processes and
//! re-opening the store (the counter is in the file, and the file is never deleted). If the
//! file is deleted anyway (a reboot of a `tmpfs`, someone's `rm`), the clock floor keeps new
//! fences above old ones, unless the clock went back meanwhile. A claim without fencing
//! ([`Lock::fencing(false)`](crate::Lock::fencing)) returns 0 and leaves the counter as it
//! is. Tree locks: one counter per lock space, the same way.
//!
//! # Waiting
//!
//! A waiter ([`Lock::acquire_timeout`](crate::Lock::acquire_timeout)) polls with the
//! jittered backoff (2 ms doubling to 100 ms): a release is seen at the next try. (No
//! file-change notification: it would not cover expiry, and polling a local file costs a few
//! microseconds.)
//!
//! # Sync and async
//!
//! The sync methods do the file I/O on the calling thread (also inside a tokio runtime: it
//! blocks for microseconds, never panics). The async methods run it on tokio's blocking pool
//! (`spawn_blocking`), never on a runtime thread; an async claim whose future is dropped
//! gives back what it won.
//!
//! # Faults
//!
//! | what happens | what you get |
//! |---|---|
//! | the directory cannot be created or written (permissions, a read-only mount, a file in the way) | [`FileStore::open`] fails with an [`io::Error`](std::io::Error) naming the directory and the reason; an operation afterwards: [`Error::Backend`](crate::Error::Backend) naming the file |
//! | the directory was removed while in use | the next claim creates it again (the fences: see above) |
//! | a process stopped inside an operation | [`Error::Backend`](crate::Error::Backend) with [`is_timeout`](crate::Error::is_timeout) after the lock timeout |
//! | a holder crashed | its lock is free after its TTL; a crash inside an operation leaves no `flock` behind |
//! | a lock file not written by cachelock, or by another format version | [`Error::Backend`](crate::Error::Backend) naming it; it is never overwritten |
//!
//! Records are written in place with one `write` of ~200 bytes at offset 0 (a shorter record
//! is padded with spaces to the file's length instead of trimming the file; readers stop at
//! the record's end), and each ends with its length and a checksum, so a torn record (a writer dying inside its one `write`, which a local file
//! system makes all but impossible) reads as free, never as a mix of two. Files are not
//! `fsync`ed: a lock lives no longer than the processes that see it, and after a power loss
//! the fence's clock floor still holds.
//!
//! # Local file systems only
//!
//! `flock` is reliable on local file systems (ext4, xfs, btrfs, tmpfs, APFS). On NFS,
//! `flock` is emulated with byte-range locks (Linux ≥ 2.6.12) or not shared between
//! clients at all, and attribute caching can serve stale records: **do not put the
//! directory on NFS, SMB or another network file system**, and do not share it between
//! containers that do not share the kernel. To lock across hosts, use Redis, PostgreSQL,
//! MariaDB/MySQL or etcd.
//!
//! A tmpfs is the best place (`/tmp` on most systems, `/run/lock`, `/dev/shm`): locks need no
//! persistence, and on a disk file system page writeback now and then stalls a write for
//! milliseconds (an operation takes ~15 µs otherwise).
//!
//! # Permissions
//!
//! [`FileStore::open`] creates a missing directory with mode `0o700` (this user only;
//! [`dir_mode`](FileStoreBuilder::dir_mode) to change it) and lock files with mode
//! `0o666` minus the umask. Processes of several users can share a directory they can all
//! write to, if their umask leaves the files writable to each other (a group directory with
//! the setgid bit and umask `002`). [`FileStore::for_user`] (and `file://`) uses
//! [`user_dir`], and refuses it unless it is a directory owned by this user that no other
//! user can write to.

#[cfg(unix)]
mod dir;
mod io;
mod name;
mod record;
mod store;
mod tree;

use std::sync::Arc;

#[cfg(unix)]
pub use dir::user_dir;
pub use store::{FileStore, FileStoreBuilder, DEFAULT_DIR_MODE, DEFAULT_LOCK_TIMEOUT};

use crate::error::BoxError;
use crate::store::LockStore;

/// Opens a `file://` URL (see [`store_from_url`](crate::store_from_url)).
pub(crate) fn open_url(url: &str) -> Result<Arc<dyn LockStore>, BoxError> {
    match url_path(url)? {
        Some(dir) => Ok(Arc::new(FileStore::open(dir)?)),
        #[cfg(unix)]
        None => Ok(Arc::new(FileStore::for_user()?)),
        #[cfg(not(unix))]
        None => Err("`file://` without a directory names this user's lock directory, which exists on Unix only: give one, e.g. file:///C:/locks".into()),
    }
}

/// The directory of a `file://` URL; `None` for `file://` alone (this user's directory).
fn url_path(url: &str) -> Result<Option<std::path::PathBuf>, BoxError> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    if rest.contains(['?', '#']) {
        return Err(
            "a file:// URL takes no query or fragment (write `?` and `#` in a path as %3F and %23)"
                .into(),
        );
    }
    if rest.is_empty() {
        return Ok(None);
    }
    let path = if rest.starts_with('/') {
        rest
    } else if let Some(path) = rest.strip_prefix("localhost/") {
        &rest[rest.len() - path.len() - 1..]
    } else {
        return Err(format!(
            "a file:// URL names a directory on this host by its absolute path: file:///var/lock/app (not {url:?})"
        )
        .into());
    };
    let bytes = percent_decode(path)
        .ok_or("a badly escaped file:// URL (a `%` not followed by two hex digits)")?;
    #[cfg(unix)]
    let path = {
        use std::os::unix::ffi::OsStringExt as _;
        std::path::PathBuf::from(std::ffi::OsString::from_vec(bytes))
    };
    #[cfg(not(unix))]
    let path = std::path::PathBuf::from(
        String::from_utf8(bytes).map_err(|_| "a file:// URL whose path is not UTF-8")?,
    );
    Ok(Some(path))
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::url_path;
    use std::path::Path;

    #[test]
    fn file_urls_name_absolute_directories_or_the_users_own() {
        let path = |url: &str| url_path(url).map(|p| p.map(|p| p.display().to_string()));
        assert_eq!(
            path("file:///var/lock/app").unwrap().as_deref(),
            Some("/var/lock/app")
        );
        assert_eq!(
            path("file://localhost/var/lock/app").unwrap().as_deref(),
            Some("/var/lock/app")
        );
        assert_eq!(
            path("file:///a%20b/%25").unwrap().as_deref(),
            Some("/a b/%")
        );
        assert_eq!(path("file://").unwrap(), None);
        assert!(path("file://host/x")
            .unwrap_err()
            .to_string()
            .contains("absolute path"));
        assert!(path("file://relative").is_err());
        assert!(path("file:///x?mode=1")
            .unwrap_err()
            .to_string()
            .contains("no query"));
        assert!(path("file:///x%2").is_err());
        assert_eq!(
            url_path("file:///").unwrap().as_deref(),
            Some(Path::new("/"))
        );
    }
}
