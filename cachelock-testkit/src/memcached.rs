//! [`MemcachedServer`]: a throwaway `memcached` on a free loopback port, for the memcached
//! store's tests and bench: stopped and restarted on the same port, paused (`SIGSTOP`) to
//! play a hung server, optionally with ASCII authentication (`-Y`).
//!
//! The binary is `memcached` from `PATH`, or `MEMCACHED_BIN`; when it is missing the helper
//! panics with a one-line message that says how to install it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::port::free_port;
use crate::process::{log_tail, ServerProcess, StartError, TempDir, START_TIMEOUT};

fn server_bin() -> String {
    std::env::var("MEMCACHED_BIN").unwrap_or_else(|_| "memcached".to_owned())
}

/// `true` if something on `port` answers `version` (any line: a server that wants
/// authentication answers with an error, which is an answer).
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && !line.is_empty()
}

/// A `memcached` on a free loopback port, for one test.
///
/// Started as `memcached -l 127.0.0.1 -p P -U 0 -u root -m 64 -t 2` (plus any extra
/// arguments; `-u root` only matters when the tests run as root, which memcached refuses
/// otherwise); killed on `Drop`.
///
/// ```no_run
/// let server = cachelock_testkit::memcached::MemcachedServer::start();
/// println!("{}", server.url()); // memcache://127.0.0.1:P
/// ```
pub struct MemcachedServer {
    port: u16,
    extra: Vec<String>,
    credentials: Option<(String, String)>,
    /// `None` while stopped.
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl MemcachedServer {
    /// Starts a server on a free port and waits until it answers. Panics if it cannot.
    pub fn start() -> MemcachedServer {
        MemcachedServer::start_with_args(&[])
    }

    /// Like [`start`](MemcachedServer::start), with extra arguments such as `["-C"]`.
    pub fn start_with_args(extra: &[&str]) -> MemcachedServer {
        MemcachedServer::spawn(extra, None)
    }

    /// A server that wants memcached's ASCII authentication (`-Y authfile`) with `user` and
    /// `password`.
    pub fn start_with_auth(user: &str, password: &str) -> MemcachedServer {
        MemcachedServer::spawn(&[], Some((user.to_owned(), password.to_owned())))
    }

    fn spawn(extra: &[&str], credentials: Option<(String, String)>) -> MemcachedServer {
        let mut server = MemcachedServer {
            port: 0,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            credentials,
            process: None,
            dir: TempDir::new("memcached"),
        };
        if let Some((user, password)) = &server.credentials {
            std::fs::write(server.auth_file(), format!("{user}:{password}\n"))
                .expect("cannot write the memcached auth file");
        }
        // A free port can be taken by someone else between the probe and the bind: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_spawn() {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("memcached could not start on a free port:\n{last_log}");
    }

    fn auth_file(&self) -> PathBuf {
        self.dir.path().join("auth")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("memcached.log")
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-l",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "0",
            "-u",
            "root",
            "-m",
            "64",
            "-t",
            "2",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if self.credentials.is_some() {
            args.push("-Y".into());
            args.push(self.auth_file().display().to_string());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    fn spawn_process(&self) -> Result<ServerProcess, StartError> {
        let port = self.port;
        ServerProcess::start(
            &server_bin(),
            "install it with `apt-get install -y memcached` (or set MEMCACHED_BIN)",
            &self.args(),
            &self.log(),
            || answers(port),
        )
    }

    /// Spawns and waits; on an early exit (port taken) returns the log tail.
    fn try_spawn(&mut self) -> Result<(), String> {
        match self.spawn_process() {
            Ok(process) => {
                self.process = Some(process);
                Ok(())
            }
            Err(StartError::Exited(_)) => Err(log_tail(&self.log())),
            Err(StartError::TimedOut) => Err(format!(
                "no answer within {START_TIMEOUT:?}\n{}",
                log_tail(&self.log())
            )),
        }
    }

    /// The port it listens on (the same across [`restart`](MemcachedServer::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `memcache://127.0.0.1:P`, with `user:password@` for a server with authentication.
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((user, password)) => {
                format!("memcache://{user}:{password}@127.0.0.1:{}", self.port)
            }
            None => format!("memcache://127.0.0.1:{}", self.port),
        }
    }

    /// `true` while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Stops the server if it runs, then starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        match self.spawn_process() {
            Ok(process) => self.process = Some(process),
            Err(StartError::Exited(status)) => panic!(
                "memcached on port {port} exited ({status}) before answering:\n{}",
                log_tail(&self.log())
            ),
            Err(StartError::TimedOut) => panic!(
                "memcached on port {port} did not answer within {START_TIMEOUT:?}:\n{}",
                log_tail(&self.log())
            ),
        }
    }

    fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the server is not running");
        let status = Command::new("kill")
            .args([signal, &process.id().to_string()])
            .status()
            .expect("cannot run `kill`");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Stops the process (`SIGSTOP`): connections are accepted by the kernel, nothing
    /// answers. [`resume`](MemcachedServer::resume) lets it go on. Returns once every
    /// thread of it is stopped (`kill` returns when the signal is sent, not delivered).
    pub fn pause(&self) {
        self.signal("-STOP");
        let pid = self.process.as_ref().map_or(0, ServerProcess::id);
        let tasks = PathBuf::from(format!("/proc/{pid}/task"));
        if !tasks.exists() {
            // No procfs: give the signal a moment.
            std::thread::sleep(Duration::from_millis(200));
            return;
        }
        let stopped = || {
            std::fs::read_dir(&tasks).is_ok_and(|entries| {
                entries.flatten().all(|task| {
                    std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                        // `pid (comm) S ...`: the state follows the last `)`.
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().next())
                            .is_some_and(|state| state == "T" || state == "t")
                    })
                })
            })
        };
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while !stopped() {
            assert!(
                std::time::Instant::now() < deadline,
                "memcached did not stop"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a paused server go on (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Sends `request` (raw protocol text, `\r\n`-terminated commands) on a new connection,
    /// after authenticating if the server wants it, and returns the reply lines up to the
    /// last one of a single reply (`END`, a status line, or a `VA` value). For tests that set
    /// up or inspect the server directly.
    pub fn command(&self, request: &str) -> Vec<String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to memcached");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        if let Some((user, password)) = &self.credentials {
            let token = format!("{user} {password}");
            write!(stream, "set auth 0 0 {}\r\n{token}\r\n", token.len()).expect("write");
            let mut line = String::new();
            reader.read_line(&mut line).expect("auth reply");
            assert_eq!(line.trim_end(), "STORED", "authentication");
        }
        stream.write_all(request.as_bytes()).expect("write");
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("reply line");
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                return lines;
            }
            let done = !line.starts_with("STAT ") && !line.starts_with("VA ");
            if let Some(size) = line.strip_prefix("VA ").and_then(|rest| {
                rest.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
                let mut data = vec![0; size + 2];
                reader.read_exact(&mut data).expect("value");
                lines.push(line);
                lines.push(String::from_utf8_lossy(&data[..size]).into_owned());
                return lines;
            }
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// The value of one `stats` counter (e.g. `cmd_set`, `delete_hits`).
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.command("stats\r\n").iter().find_map(|line| {
            let rest = line.strip_prefix("STAT ")?;
            let (stat, value) = rest.split_once(' ')?;
            (stat == name).then(|| value.parse().ok()).flatten()
        })
    }
}

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        if let Some(process) = &self.process {
            // A paused process dies from SIGKILL all the same; resume it first anyway, so
            // nothing is left stopped should the kill fail.
            let _ = Command::new("kill")
                .args(["-CONT", &process.id().to_string()])
                .status();
        }
        self.stop();
    }
}

impl std::fmt::Debug for MemcachedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}
