//! [`RedisServer`]: one throwaway `redis-server` on a free loopback port; also how any test
//! `redis-server` is started (its base arguments, ready once it answers PING), which the
//! cluster's nodes share.

use std::path::{Path, PathBuf};

use crate::port::free_port;
use crate::process::{log_tail, ServerProcess, StartError, TempDir, START_TIMEOUT};
use crate::redis_client::answers;

fn server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

/// Starts `redis-server args` with its output in `log`, and waits until it answers PING on
/// `port`.
pub(crate) fn start_redis_server(
    port: u16,
    args: &[String],
    log: &Path,
) -> Result<ServerProcess, StartError> {
    ServerProcess::start(
        &server_bin(),
        "install it with `apt-get install -y redis-server` (or set REDIS_SERVER_BIN)",
        args,
        log,
        || answers(port),
    )
}

/// The arguments every test `redis-server` starts with:
/// `--port P --bind 127.0.0.1 --save "" --appendonly no --dir DIR`.
pub(crate) fn base_args(port: u16, dir: &Path) -> Vec<String> {
    vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.display().to_string(),
    ]
}

/// A `redis-server` on a free loopback port, for one test.
///
/// Started as `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no` (plus any
/// extra arguments), in its own temp dir; killed on `Drop`.
///
/// ```no_run
/// let server = cachelock_testkit::RedisServer::start();
/// println!("{}", server.url()); // redis://127.0.0.1:P
/// ```
pub struct RedisServer {
    port: u16,
    extra: Vec<String>,
    /// `None` while stopped.
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers. Panics if it cannot.
    pub fn start() -> RedisServer {
        RedisServer::start_with_args(&[])
    }

    /// Like [`start`](RedisServer::start), with extra arguments such as
    /// `["--requirepass", "secret"]`.
    pub fn start_with_args(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: 0,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            process: None,
            dir: TempDir::new("server"),
        };
        // A free port can be taken by someone else between the probe and the bind: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_spawn() {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server could not start on a free port:\n{last_log}");
    }

    fn args(&self) -> Vec<String> {
        let mut args = base_args(self.port, self.dir.path());
        args.extend(self.extra.iter().cloned());
        args
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns and waits; on an early exit (port taken) returns the log tail.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = self.log();
        match start_redis_server(self.port, &self.args(), &log) {
            Ok(process) => {
                self.process = Some(process);
                Ok(())
            }
            Err(StartError::Exited(_)) => Err(log_tail(&log)),
            Err(StartError::TimedOut) => Err(format!(
                "no answer within {START_TIMEOUT:?}\n{}",
                log_tail(&log)
            )),
        }
    }

    /// The port it listens on (the same across [`restart`](RedisServer::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:P`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
        let log = self.log();
        let port = self.port;
        match start_redis_server(port, &self.args(), &log) {
            Ok(process) => self.process = Some(process),
            Err(StartError::Exited(status)) => panic!(
                "redis-server on port {port} exited ({status}) before answering:\n{}",
                log_tail(&log)
            ),
            Err(StartError::TimedOut) => panic!(
                "redis-server on port {port} did not answer PING within {START_TIMEOUT:?}:\n{}",
                log_tail(&log)
            ),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}
