//! The file store (`cachelock::file`) on real directories: the conformance suites (sync,
//! async, boxed, trees), processes that take one key and must never overlap, a killed
//! holder whose lock frees by TTL, fences across release, expiry, re-opening and a deleted
//! file, and the faults (a directory that cannot be used, one removed while in use, a
//! lock file `flock`ed by a stopped process, a file that is not a lock file).
//!
//! The processes are this test binary run again with `child_process_helper` as the filter
//! and `CACHELOCK_FILE_CHILD` naming what the child does.
#![cfg(feature = "file")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cachelock::file::FileStore;
use cachelock::testing::{
    conformance, conformance_async, tree_conformance, tree_conformance_async,
};
use cachelock::tree::TreeLock;
use cachelock::{held_locks, store_from_url, Claim, Error, Lock, LockStore};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cachelock-file-test-{what}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(dir: &TempDir) -> FileStore {
    FileStore::open(dir.join("locks")).expect("open the lock directory")
}

// --- Conformance --------------------------------------------------------------------------

#[test]
fn sync_file_store_passes_the_conformance_suite() {
    let dir = TempDir::new("conf-sync");
    conformance(store(&dir)).expect("the file store conforms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_file_store_passes_the_conformance_suite() {
    let dir = TempDir::new("conf-async");
    conformance_async(store(&dir))
        .await
        .expect("the file store conforms (async)");
}

#[tokio::test(flavor = "current_thread")]
async fn async_file_store_conforms_on_a_current_thread_runtime() {
    let dir = TempDir::new("conf-current");
    conformance_async(store(&dir))
        .await
        .expect("the file store conforms (current-thread runtime)");
}

#[test]
fn file_tree_locks_pass_the_tree_conformance_suite() {
    let dir = TempDir::new("tree-sync");
    tree_conformance(store(&dir)).expect("file tree locks conform");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_file_tree_locks_pass_the_tree_conformance_suite() {
    let dir = TempDir::new("tree-async");
    tree_conformance_async(store(&dir))
        .await
        .expect("file tree locks conform (async)");
}

#[test]
fn a_store_from_a_file_url_shares_the_directory_with_file_store_open() {
    let dir = TempDir::new("url");
    let locks = dir.join("with space");
    let url = format!("file://{}", locks.display()).replace(' ', "%20");
    let by_url = store_from_url(&url).expect("a file:// URL opens");
    let guard = Lock::new("shared")
        .cache(by_url.clone())
        .try_acquire()
        .expect("free");
    let direct = FileStore::open(&locks).expect("open");
    let refused = Lock::new("shared").cache(direct.clone()).try_acquire();
    assert!(refused.as_ref().is_err_and(Error::is_locked), "{refused:?}");
    guard.release().expect("release");
    let again = Lock::new("shared").cache(direct).try_acquire();
    assert!(again.is_ok(), "free again: {:?}", again.err());
    let bad = store_from_url("file://elsewhere/x").err().expect("refused");
    assert!(bad.to_string().contains("absolute path"), "{bad}");
}

// --- Processes ----------------------------------------------------------------------------

const CHILD_ENV: &str = "CACHELOCK_FILE_CHILD";

/// This test binary, run again as a child doing `role` with `vars`.
fn spawn_child(role: &str, vars: &[(&str, &Path)]) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "child_process_helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    command.spawn().expect("spawn a child process")
}

fn var(name: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set")))
}

/// Rounds of the exclusion check per child.
const ROUNDS: usize = 25;
/// Children taking the one key.
const CHILDREN: usize = 6;

/// Not a test of its own: what a child process does, when a test spawns this binary with
/// `CACHELOCK_FILE_CHILD` set (it returns at once otherwise).
#[test]
fn child_process_helper() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = FileStore::open(var("LOCKS")).expect("open the lock directory");
    let work = var("WORK");
    match role.as_str() {
        "exclude-sync" => {
            for _ in 0..ROUNDS {
                let guard = Lock::new("shared")
                    .cache(store.clone())
                    .ttl(Duration::from_secs(60))
                    .acquire_timeout(Duration::from_secs(120))
                    .expect("acquire");
                inside(&work);
                guard.release().expect("release");
            }
        }
        "exclude-async" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                for _ in 0..ROUNDS {
                    let guard = Lock::new("shared")
                        .cache(store.clone())
                        .ttl(Duration::from_secs(60))
                        .acquire_timeout_async(Duration::from_secs(120))
                        .await
                        .expect("acquire");
                    inside(&work);
                    guard.release().await.expect("release");
                }
            });
        }
        "hold" => {
            let guard = Lock::new("crash")
                .cache(store)
                .ttl(Duration::from_millis(1500))
                .label("doomed")
                .try_acquire()
                .expect("the key is free");
            std::fs::write(work.join("holding"), guard.fence().to_string()).expect("write");
            // Renewed by the renewal thread until the parent kills this process.
            std::thread::sleep(Duration::from_secs(600));
        }
        other => panic!("unknown child role {other}"),
    }
}

/// The critical section: enter (a marker only one process may create), log, leave. A
/// second process inside at once finds the marker and records an overlap.
fn inside(work: &Path) {
    let marker = work.join("inside");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(_) => {}
        Err(_) => {
            let mut overlaps = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(work.join("overlaps"))
                .expect("open overlaps");
            writeln!(overlaps, "{}", std::process::id()).expect("record an overlap");
        }
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(work.join("log"))
        .expect("open log");
    writeln!(log, "{}", std::process::id()).expect("log");
    std::thread::sleep(Duration::from_millis(1));
    std::fs::remove_file(&marker).expect("leave");
}

fn wait_ok(child: Child, what: &str) {
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{what} failed ({:?}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn processes_taking_one_key_never_overlap() {
    let dir = TempDir::new("processes");
    let (locks, work) = (dir.join("locks"), dir.join("work"));
    std::fs::create_dir_all(&work).expect("work dir");
    let children: Vec<Child> = (0..CHILDREN)
        .map(|i| {
            let role = if i % 2 == 0 {
                "exclude-sync"
            } else {
                "exclude-async"
            };
            spawn_child(role, &[("LOCKS", &locks), ("WORK", &work)])
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        wait_ok(child, &format!("child {i}"));
    }
    let log = std::fs::read_to_string(work.join("log")).expect("log");
    assert_eq!(
        log.lines().count(),
        CHILDREN * ROUNDS,
        "every round of every child ran once"
    );
    assert!(
        !work.join("overlaps").exists(),
        "two processes held the key at once: {:?}",
        std::fs::read_to_string(work.join("overlaps"))
    );
}

#[test]
fn a_killed_holders_lock_frees_by_its_ttl() {
    let dir = TempDir::new("crash");
    let (locks, work) = (dir.join("locks"), dir.join("work"));
    std::fs::create_dir_all(&work).expect("work dir");
    let mut child = spawn_child("hold", &[("LOCKS", &locks), ("WORK", &work)]);
    let holding = work.join("holding");
    cachelock_testkit::eventually("the child to hold the key", || holding.exists());
    let store = FileStore::open(&locks).expect("open");
    let lock = Lock::new("crash").cache(store.clone());
    let holder = lock.holder().expect("holder").expect("held by the child");
    assert_eq!(holder.pid, Some(child.id()));
    assert_eq!(holder.label.as_deref(), Some("doomed"));
    assert!(lock.try_acquire().is_err_and(|e| e.is_locked()));

    child.kill().expect("kill the holder");
    child.wait().expect("reap it");
    // Nobody releases it: it frees when its TTL (1.5 s, no longer renewed) runs out.
    let guard = lock
        .acquire_timeout(Duration::from_secs(60))
        .expect("free after the dead holder's TTL");
    let child_fence: u64 = std::fs::read_to_string(&holding)
        .expect("fence")
        .parse()
        .expect("a number");
    assert!(guard.fence() > child_fence, "fences go on increasing");
}

// --- Fences -------------------------------------------------------------------------------

#[test]
fn fences_strictly_increase_across_release_expiry_reopening_and_a_deleted_file() {
    let dir = TempDir::new("fences");
    let locks = dir.join("locks");
    let mut last = 0;
    let mut next = |what: &str, fence: u64| {
        assert!(fence > last, "{what}: fence {fence} after {last}");
        last = fence;
    };
    {
        let store = FileStore::open(&locks).expect("open");
        let lock = Lock::new("fenced").cache(store.clone());
        for round in 0..3 {
            let guard = lock.try_acquire().expect("free");
            next(&format!("after release {round}"), guard.fence());
            guard.release().expect("release");
        }
        // A claim straight on the store: never released, never renewed, it expires.
        let short = store
            .claim(&lock.full_key(), &Claim::new(Duration::from_millis(50)))
            .expect("claim")
            .expect("free");
        next("a short lock", short.fence);
        let guard = lock
            .acquire_timeout(Duration::from_secs(30))
            .expect("free after expiry");
        next("after expiry", guard.fence());
        guard.release().expect("release");
        // A claim without a fence leaves the counter alone, and the next fence is above.
        let unfenced = Lock::new("fenced")
            .cache(store.clone())
            .fencing(false)
            .try_acquire()
            .expect("free");
        assert_eq!(unfenced.fence(), 0);
        unfenced.release().expect("release");
    }
    // Another store value on the directory (another process, a restart).
    let store = FileStore::open(&locks).expect("open again");
    let lock = Lock::new("fenced").cache(store.clone());
    let guard = lock.try_acquire().expect("free");
    next("after re-opening", guard.fence());
    guard.release().expect("release");
    // The lock file deleted (while nobody uses it): the clock floor still holds.
    std::fs::remove_file(store.lock_file(&lock.full_key())).expect("remove the lock file");
    let guard = lock.try_acquire().expect("free");
    next("after the file was deleted", guard.fence());
}

// --- Keys, files, listing -----------------------------------------------------------------

#[test]
fn any_key_gets_one_file_of_its_own_and_is_listed() {
    let dir = TempDir::new("keys");
    let store = store(&dir);
    let long = format!("long-{}", "é/".repeat(300));
    let keys = [
        "plain".to_owned(),
        "with/slash and space".to_owned(),
        "..".to_owned(),
        "line\nbreak".to_owned(),
        "日本".to_owned(),
        long.clone(),
    ];
    let guards: Vec<_> = keys
        .iter()
        .map(|key| {
            Lock::new(key.clone())
                .cache(store.clone())
                .label("lister")
                .try_acquire()
                .unwrap_or_else(|e| panic!("{key:?}: {e}"))
        })
        .collect();
    let files: Vec<String> = std::fs::read_dir(store.dir())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
        .collect();
    assert_eq!(files.len(), keys.len(), "{files:?}");
    for key in &keys {
        let file = store.lock_file(&format!("cachelock:{key}"));
        assert_eq!(file.parent(), Some(store.dir()), "{file:?}");
        assert!(file.exists(), "{file:?}");
    }
    let mut listed: Vec<String> = held_locks(&store, "cachelock:")
        .expect("list")
        .into_iter()
        .map(|holder| {
            assert_eq!(holder.label.as_deref(), Some("lister"));
            holder.key
        })
        .collect();
    listed.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| format!("cachelock:{k}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let only: Vec<String> = held_locks(&store, "cachelock:long-")
        .expect("list")
        .into_iter()
        .map(|h| h.key)
        .collect();
    assert_eq!(
        only,
        vec![format!("cachelock:{long}")],
        "the hashed name too"
    );
    drop(guards);
    assert_eq!(held_locks(&store, "").expect("list"), Vec::new());
    // The files stay (with their fences), free.
    assert_eq!(
        std::fs::read_dir(store.dir()).expect("read dir").count(),
        keys.len()
    );
}

#[test]
fn a_tree_lock_space_is_one_file_and_its_locks_exclude_across_store_values() {
    let dir = TempDir::new("tree-file");
    let (a, b) = (
        store(&dir),
        FileStore::open(dir.join("locks")).expect("open"),
    );
    let held = TreeLock::new("/a/b")
        .cache(a.clone())
        .try_acquire()
        .expect("free");
    let refused = TreeLock::new("/a").cache(b.clone()).try_acquire();
    assert!(refused.is_err_and(|e| e.is_locked()));
    assert!(a.tree_file("cachelock:").exists());
    held.release().expect("release");
    let parent = TreeLock::new("/a").cache(b).try_acquire();
    assert!(parent.is_ok(), "free after the release: {:?}", parent.err());
}

#[test]
fn a_lock_space_file_shrinks_back_when_its_locks_are_released() {
    let dir = TempDir::new("tree-shrink");
    let store = store(&dir);
    let label = "l".repeat(100);
    let guards: Vec<_> = (0..100)
        .map(|i| {
            TreeLock::new(format!("/jobs/{i}"))
                .cache(store.clone())
                .label(&label)
                .try_acquire()
                .expect("siblings coexist")
        })
        .collect();
    let file = store.tree_file("cachelock:");
    let full = std::fs::metadata(&file).expect("the space's file").len();
    assert!(full > 10_000, "{full} bytes for 100 locks");
    drop(guards);
    let empty = std::fs::metadata(&file).expect("kept").len();
    assert!(empty < 4096 + 200, "{empty} bytes after every release");
    // The space still works, and its fences go on increasing.
    let again = TreeLock::new("/jobs")
        .cache(store)
        .try_acquire()
        .expect("free");
    assert!(again.fence() > 0);
}

// --- Sync in async ------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn a_sync_guard_taken_and_dropped_on_a_runtime_thread_works() {
    let dir = TempDir::new("sync-in-async");
    let store = store(&dir);
    let lock = Lock::new("mixed").cache(store.clone());
    let guard = lock.try_acquire().expect("sync acquire inside a runtime");
    assert!(lock.try_acquire_async().await.is_err_and(|e| e.is_locked()));
    drop(guard); // the sync release, on the runtime's thread
    let again = lock
        .try_acquire_async()
        .await
        .expect("released by the drop");
    again.release().await.expect("release");
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_claim_dropped_before_it_completes_leaves_the_key_free() {
    let dir = TempDir::new("cancel");
    let store = store(&dir);
    let mut dropped = 0;
    for _ in 0..20 {
        let claim = Claim::new(Duration::from_secs(60));
        // Polled once (the claim is sent to the blocking pool), then dropped.
        let mut future = store.claim_async("cachelock:cancelled", &claim);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            // Done within the one poll: not a dropped claim; the winner gives it back.
            std::task::Poll::Ready(won) => {
                if won.expect("claim").is_some() {
                    assert!(store
                        .release_async("cachelock:cancelled", claim.token(), None)
                        .await
                        .expect("release"));
                }
            }
            std::task::Poll::Pending => dropped += 1,
        }
        drop(future);
    }
    assert!(
        dropped > 0,
        "no claim was still running when its future was dropped"
    );
    // Whatever the dropped claims won, they gave back.
    let guard = Lock::new("cancelled")
        .cache(store)
        .acquire_timeout_async(Duration::from_secs(30))
        .await
        .expect("the key is free");
    guard.release().await.expect("release");
}

// --- Faults -------------------------------------------------------------------------------

#[test]
fn a_directory_that_cannot_be_used_is_a_clear_error() {
    let dir = TempDir::new("unusable");
    // A file where the directory should be.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").expect("write");
    let error = FileStore::open(file.join("locks")).expect_err("under a file");
    let message = error.to_string();
    assert!(message.contains("cannot use"), "{message}");
    assert!(message.contains(&file.display().to_string()), "{message}");
    let error = FileStore::open(&file).expect_err("a file");
    assert!(error.to_string().contains("not a directory"), "{error}");

    // A directory this user cannot write to (root writes anywhere, except on a read-only
    // file system: /sys is one).
    let read_only = dir.join("read-only");
    std::fs::create_dir(&read_only).expect("mkdir");
    set_mode(&read_only, 0o500);
    let unwritable = if FileStore::open(&read_only).is_ok() {
        PathBuf::from("/sys")
    } else {
        read_only.clone()
    };
    if unwritable.exists() {
        let error = FileStore::open(&unwritable).expect_err("unwritable");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "cannot use {} as a lock directory",
                unwritable.display()
            )),
            "{message}"
        );
        assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ),
            "{error:?}"
        );
        // The same through a URL: an InvalidSetting that names the reason.
        let url = format!("file://{}", unwritable.display());
        let error = store_from_url(&url).err().expect("refused");
        assert!(error.to_string().contains("cannot use"), "{error}");
    }
    set_mode(&read_only, 0o700);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_directory_removed_while_in_use_is_made_again() {
    let dir = TempDir::new("removed");
    let store = store(&dir);
    let lock = Lock::new("k").cache(store.clone());
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("release");
    std::fs::remove_dir_all(store.dir()).expect("remove the directory");
    let guard = lock.try_acquire().expect("the directory is made again");
    guard.release().expect("release");
}

#[test]
fn a_lock_file_flocked_by_a_stopped_process_times_out_then_works_on_the_same_store() {
    let dir = TempDir::new("stopped");
    let store = FileStore::builder(dir.join("locks"))
        .lock_timeout(Duration::from_millis(200))
        .open()
        .expect("open");
    let lock = Lock::new("k").cache(store.clone());
    lock.try_acquire()
        .expect("free")
        .release()
        .expect("release");
    // Someone holds the file's flock and does not let go (as a process stopped inside an
    // operation would).
    let file = std::fs::File::open(store.lock_file(&lock.full_key())).expect("open");
    flock(&file, libc::LOCK_EX);
    let error = lock.try_acquire().expect_err("times out");
    assert!(error.is_backend() && error.is_timeout(), "{error:?}");
    let chain = format!("{:?}", std::error::Error::source(&error));
    assert!(chain.contains("lock timeout"), "{chain}");
    flock(&file, libc::LOCK_UN);
    lock.try_acquire()
        .expect("works again on the same store value")
        .release()
        .expect("release");
}

fn flock(file: &std::fs::File, operation: i32) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock(2) on a descriptor this test owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), operation) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

#[test]
fn a_file_that_is_not_a_lock_file_is_an_error_and_left_alone() {
    let dir = TempDir::new("foreign");
    let store = store(&dir);
    let lock = Lock::new("k").cache(store.clone());
    let path = store.lock_file(&lock.full_key());
    std::fs::write(&path, "my notes\n").expect("write");
    let error = lock.try_acquire().expect_err("refused");
    assert!(error.is_backend(), "{error:?}");
    let chain = format!("{:?}", std::error::Error::source(&error));
    assert!(chain.contains("not a cachelock lock file"), "{chain}");
    assert!(chain.contains(&path.display().to_string()), "{chain}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "my notes\n");
}

#[test]
fn debug_shows_the_directory() {
    let dir = TempDir::new("debug");
    let store = store(&dir);
    let shown = format!("{store:?}");
    assert!(
        shown.contains(&store.dir().display().to_string()),
        "{shown}"
    );
}
