//! Opening a lock file under its `flock`, reading its record, writing it back in place.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fs4::TryLockError;

use super::record::holds_whole_record;

/// A lock file, open and `flock`ed (exclusive, or shared for a read): dropping it closes the
/// file, which lets go of the `flock`.
pub(crate) struct Locked {
    file: File,
    /// The length of the file as read: all of it, or (when the read stopped at a whole
    /// record, see `read_all`) what a read returned short of its buffer, which on a local
    /// file system is the end of the file.
    len: usize,
    pub(crate) path: PathBuf,
}

/// How an operation opens a lock file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Open {
    /// Creates it if missing, `flock` exclusive (claims).
    Create,
    /// `None` if missing, `flock` exclusive (release, extend, force-release).
    Existing,
    /// `None` if missing, `flock` shared (holder lookup, listing).
    Read,
}

/// The settings every open needs.
pub(crate) struct Opener<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) lock_timeout: Duration,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) dir_mode: u32,
    /// This user's directory ([`FileStore::for_user`](super::FileStore::for_user)): made
    /// again with its owner check.
    pub(crate) per_user: bool,
}

impl Opener<'_> {
    /// Opens `name` in the directory and takes its `flock`, waiting for another process's
    /// at most the lock timeout; reads the whole file. `Ok(None)`: the file does not exist
    /// (and `how` does not create it).
    pub(crate) fn open(&self, name: &str, how: Open) -> io::Result<Option<(Locked, String)>> {
        let mut path = PathBuf::with_capacity(self.dir.as_os_str().len() + 1 + name.len());
        path.push(self.dir);
        path.push(name);
        let mut options = OpenOptions::new();
        options.read(true);
        if how != Open::Read {
            options.write(true);
        }
        if how == Open::Create {
            options.create(true);
        }
        let file = match options.open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound && how == Open::Create => {
                // The directory itself went away (a tmp cleaner, someone's `rm -r`): make it
                // again, once.
                self.make_dir()?;
                options.open(&path).map_err(|e| at(&path, e))?
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(at(&path, error)),
        };
        flock(&file, how == Open::Read, self.lock_timeout).map_err(|e| at(&path, e))?;
        let bytes = read_all(&file).map_err(|e| at(&path, e))?;
        let len = bytes.len();
        let text = String::from_utf8(bytes).map_err(|_| {
            at(
                &path,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a cachelock lock file (not UTF-8)",
                ),
            )
        })?;
        Ok(Some((Locked { file, len, path }, text)))
    }
}

/// The file's record, read from its start: `read` calls until end of file, or until a read
/// that did not fill the buffer holds a whole record (its `end` line and newline), which
/// saves the `read` that would return 0 (a lock operation is a dozen system calls; this is
/// one of them). No `fstat`, no `lseek`: a lock file is a few hundred bytes. What follows a
/// record is ignored by its reader, so stopping early never changes what is read.
fn read_all(mut file: &File) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 1024;
    let mut bytes = Vec::with_capacity(CHUNK);
    loop {
        let had = bytes.len();
        bytes.resize(had + CHUNK, 0);
        match file.read(&mut bytes[had..]) {
            Ok(0) => {
                bytes.truncate(had);
                return Ok(bytes);
            }
            Ok(n) => {
                bytes.truncate(had + n);
                if n < CHUNK && holds_whole_record(&bytes) {
                    return Ok(bytes);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => bytes.truncate(had),
            Err(error) => return Err(error),
        }
    }
}

impl Opener<'_> {
    /// Makes the directory again; this user's directory with its checks (someone else may
    /// have made one under its name meanwhile).
    fn make_dir(&self) -> io::Result<()> {
        #[cfg(unix)]
        if self.per_user {
            return super::dir::prepare_user_dir(self.dir);
        }
        create_dir(self.dir, self.dir_mode).map_err(|e| in_dir(self.dir, e))
    }
}

/// A record shorter than the file by more than this is followed by a trim of the file;
/// a shorter gap is blanked out in the same write.
const KEPT_TAIL: usize = 4096;

impl Locked {
    /// Replaces the record, in place: one `write` at offset 0. A record shorter than the
    /// file is padded with spaces (and a newline) to the file's length, so the old record's
    /// tail is blanked out in the same write (a trim costs a journal update on ext4, a third
    /// of an operation); only a file more than 4 KiB longer is trimmed. Readers stop at the
    /// record's `end` line anyway. Never a new file renamed over the old one: a process
    /// waiting on the old file's `flock` would then lock a file nobody else opens.
    pub(crate) fn write(&mut self, text: String) -> io::Result<()> {
        let mut text = text.into_bytes();
        let gap = self.len.saturating_sub(text.len());
        if gap > 0 && gap <= KEPT_TAIL {
            text.resize(self.len - 1, b' ');
            text.push(b'\n');
        }
        write_at_start(&self.file, &text).map_err(|e| at(&self.path, e))?;
        if gap > KEPT_TAIL {
            self.file
                .set_len(text.len() as u64)
                .map_err(|e| at(&self.path, e))?;
            self.len = text.len();
        }
        self.len = self.len.max(text.len());
        Ok(())
    }
}

#[cfg(unix)]
fn write_at_start(file: &File, bytes: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(not(unix))]
fn write_at_start(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    use std::io::{Seek as _, SeekFrom, Write as _};
    file.seek(SeekFrom::Start(0))?;
    file.write_all(bytes)
}

/// Takes the file's `flock` without blocking, trying again with short sleeps (the other
/// holder of a lock file's `flock` is inside one operation: microseconds) until `timeout`:
/// then a `TimedOut` error. A blocking `flock` would hang for good behind a process that
/// was stopped (`SIGSTOP`, a debugger) inside an operation.
fn flock(file: &File, shared: bool, timeout: Duration) -> io::Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(20);
    loop {
        let tried = if shared {
            fs4::FileExt::try_lock_shared(file)
        } else {
            fs4::FileExt::try_lock(file)
        };
        match tried {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(error)) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(TryLockError::Error(error)) => return Err(error),
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "another process kept the lock file's flock for {timeout:?} (the lock \
                     timeout); is a process stopped inside a lock operation?"
                ),
            ));
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// Creates `dir` and its missing parents (the last one with `mode` on Unix).
pub(crate) fn create_dir(
    dir: &Path,
    #[cfg_attr(not(unix), allow(unused))] mode: u32,
) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
    builder.create(dir)
}

/// An I/O error on `path`, saying which file.
pub(crate) fn at(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// An I/O error on the lock directory `dir`.
pub(crate) fn in_dir(dir: &Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot use {} as a lock directory: {error}", dir.display()),
    )
}

/// Milliseconds since the Unix epoch by the host's wall clock (0 before 1970).
pub(crate) fn now_ms() -> u64 {
    since_epoch().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch by the host's wall clock: the fence floor.
pub(crate) fn now_us() -> u64 {
    since_epoch().map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn since_epoch() -> Option<Duration> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok()
}

/// The next fence after `last`: `max(last + 1, wall-clock µs)`.
pub(crate) fn next_fence(last: u64) -> u64 {
    last.saturating_add(1).max(now_us())
}

/// `now + ttl` in Unix ms, the TTL rounded up to whole milliseconds (never 0).
pub(crate) fn deadline(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(crate::clock::ttl_ms(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_returns_the_record_and_reads_past_a_torn_one() {
        let dir = std::env::temp_dir().join(format!("cachelock-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.lock");
        let whole = b"cachelock-lock 1\nkey k\nend 23 0011223344556677\n";
        std::fs::write(&path, whole).unwrap();
        assert_eq!(read_all(&File::open(&path).unwrap()).unwrap(), whole);
        // Longer than one read's buffer: read to its end.
        let long: Vec<u8> = std::iter::repeat_n(b'x', 3000).chain(*b"\n").collect();
        std::fs::write(&path, &long).unwrap();
        assert_eq!(read_all(&File::open(&path).unwrap()).unwrap(), long);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
