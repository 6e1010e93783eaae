//! The file store's rows: a lock directory under the system temp dir.
//!
//! LIMIT: the bare primitive the store is built on, written here with `std` and `flock(2)`:
//! a claim (open/create, `flock`, read, check free, `pwrite` the owner and deadline, close)
//! and an owner-checked release (open, `flock`, read, check the token, `pwrite` free, close).
//! Two operations, six system calls each (`openat`, `flock`, `read` x2, `pwrite64`,
//! `close`). The store makes five: its record's `end` line lets it stop at the first short
//! `read` (the LIMIT, with no framing, reads until a `read` returns 0). What the LIMIT
//! leaves out is the store's record (key, fence, owner value, checksum), the wall-clock
//! reads, and the `Lock` around it.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use cachelock::file::FileStore;
use cachelock::Lock;

use super::super::{
    case, find, lock_op, lock_op_fencing, note, profile, ratio, sequential, w2_lock, w2_threads,
    Row, Settings, TTL,
};

const LIMIT: &str = "LIMIT file: open+flock+read+pwrite, x2";
const LOCK: &str = "Lock sync, FileStore";
const LOCK_UNFENCED: &str = "Lock sync, FileStore, fencing(false)";
const LOCK_ASYNC: &str = "Lock async, FileStore (blocking pool)";

/// The bench's lock directory, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file from its start, `read` until end of file (as the store reads it: no `fstat`).
fn read_all(mut file: &File, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        match file.read(&mut chunk).expect("read") {
            0 => return,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn flock(file: &File) {
    // SAFETY: flock(2) on a descriptor this function's caller owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock");
}

/// The raw claim: `true` if the file was free and now holds `token`.
fn raw_claim(path: &Path, token: &str, buf: &mut Vec<u8>) -> bool {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .expect("open");
    flock(&file);
    read_all(&file, buf);
    let now = now_ms();
    let free = buf
        .split(|&b| b == b' ')
        .next()
        .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
        .is_none_or(|deadline| deadline <= now);
    if free {
        let record = format!("{:020} {token}\n", now + 10_000);
        file.write_all_at(record.as_bytes(), 0).expect("write");
    }
    free
}

/// The raw owner-checked release.
fn raw_release(path: &Path, token: &str, buf: &mut Vec<u8>) -> bool {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    flock(&file);
    read_all(&file, buf);
    let mine = buf.ends_with(format!(" {token}\n").as_bytes());
    if mine {
        let record = format!("{:020} {token}\n", 0);
        file.write_all_at(record.as_bytes(), 0).expect("write");
    }
    mine
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A tmpfs when there is one (`/dev/shm`): on a disk file system (ext4 here), page
/// writeback stalls a `pwrite` now and then for milliseconds, the LIMIT's as much as the
/// store's, which swamps a pass of a few thousand 15 µs operations and makes the ratio noise.
/// Lock directories belong on a tmpfs anyway (`$XDG_RUNTIME_DIR`, `/run/lock`).
fn bench_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

pub(crate) fn rows(settings: &Settings) -> Vec<Row> {
    let dir = Dir(bench_dir().join(format!("cachelock-bench-file-{}", std::process::id())));
    let store = FileStore::open(&dir.0).expect("open the bench's lock directory");
    let raw_paths: Vec<PathBuf> = (0..1000)
        .map(|i| dir.0.join(format!("raw-{i}.lock")))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut buf = Vec::with_capacity(512);
    let mut cases = [
        case(LIMIT, |i| {
            let path = &raw_paths[(i % 1000) as usize];
            assert!(raw_claim(
                path,
                "0123456789abcdef0123456789abcdef",
                &mut buf
            ));
            assert!(raw_release(
                path,
                "0123456789abcdef0123456789abcdef",
                &mut buf
            ));
        }),
        case(LOCK, |i| lock_op(&store, "bench:w1:", i % 1000)),
        case(LOCK_UNFENCED, |i| {
            lock_op_fencing(&store, "bench:w1:", i % 1000, false)
        }),
        case(LOCK_ASYNC, |i| {
            rt.block_on(async {
                let guard = Lock::new(format!("bench:w1:{}", i % 1000))
                    .cache(store.clone())
                    .ttl(TTL)
                    .try_acquire_async()
                    .await
                    .expect("uncontended");
                guard.release().await.expect("release");
            });
        }),
    ];
    if let Some(wanted) = &settings.profile {
        profile(&mut cases, wanted);
        return Vec::new();
    }
    let (mut rows, _) = sequential("W1", settings.redis_ops, settings.passes, &mut cases);

    let time = settings.w2_time;
    let raw_path = dir.0.join("raw-w2.lock");
    rows.push(w2_threads("LIMIT file, 16 threads", time, |w| {
        let token = format!("0123456789abcdef0123456789abcd{w:02}");
        let path = raw_path.clone();
        let mut buf = Vec::with_capacity(512);
        move |critical: &dyn Fn()| {
            if !raw_claim(&path, &token, &mut buf) {
                return false;
            }
            critical();
            assert!(raw_release(&path, &token, &mut buf), "our own lock");
            true
        }
    }));
    rows.push(w2_threads("Lock sync, FileStore, 16 threads", time, |_| {
        let store = store.clone();
        move |critical: &dyn Fn()| w2_lock(&store, critical)
    }));
    drop(dir);
    rows
}

pub(crate) fn ratios(rows: &[Row]) {
    println!(
        "# file store (lock directory under {}; same run):",
        bench_dir().display()
    );
    ratio(
        "W1 file Lock sync fencing(false) / LIMIT file",
        find(rows, LOCK_UNFENCED),
        find(rows, LIMIT),
        0.90,
    );
    note(
        "W1 file Lock sync, fenced (default) / LIMIT file",
        find(rows, LOCK),
        find(rows, LIMIT),
    );
    note(
        "W1 file Lock async (spawn_blocking per operation) / Lock sync",
        find(rows, LOCK_ASYNC),
        find(rows, LOCK),
    );
}
