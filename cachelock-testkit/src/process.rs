//! Running a server binary for a test, whatever the server: [`ServerProcess`] starts it with
//! its output in a log file, waits until it is ready, and kills it on `Drop`; plus a scratch
//! [`TempDir`] for its files and the tail of its log for panic messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server or cluster may take to come up before the helper gives up.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh, empty directory under the system temp dir, removed on `Drop`.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "cachelock-testkit-{what}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last 8 lines of a log file (empty if it cannot be read).
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// A server process started for one test, its stdout and stderr in a log file; killed
/// (SIGKILL: no goodbye to its clients) and waited for on `Drop`.
pub(crate) struct ServerProcess {
    child: Child,
}

/// Why [`ServerProcess::start`] gave up (the process is gone either way).
pub(crate) enum StartError {
    /// It exited before it was ready (for a server on a free port: often, the port was
    /// taken in the meantime).
    Exited(ExitStatus),
    /// It was not ready within [`START_TIMEOUT`], and was killed.
    TimedOut,
}

impl ServerProcess {
    /// Runs `bin args` with stdout and stderr to a fresh `log`, then checks `ready` every
    /// 20 ms until it returns `true`.
    ///
    /// Panics if `bin` cannot be run; when it is missing the message is
    /// `` `{bin}` not found: {missing} ``, so `missing` says how to install it.
    pub(crate) fn start(
        bin: &str,
        missing: &str,
        args: &[String],
        log: &Path,
        mut ready: impl FnMut() -> bool,
    ) -> Result<ServerProcess, StartError> {
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {bin} log file: {e:?}"));
        let child = match Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file handle"))
            .stderr(log_file)
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("`{bin}` not found: {missing}")
            }
            Err(e) => panic!("cannot start `{bin}`: {e}"),
        };
        // From here on, an early return kills the process (if it still runs) and reaps it.
        let mut process = ServerProcess { child };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready() {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(StartError::Exited(status));
            }
            if Instant::now() > deadline {
                return Err(StartError::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id (to signal it, e.g. `SIGSTOP` to pause it).
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// `true` while the process runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
