//! [`RedisServer`]: one throwaway `redis-server` on a free loopback port, and how a
//! `redis-server` process is spawned (also for the cluster's nodes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::free_port;
use crate::process::{kill, log_tail, TempDir, START_TIMEOUT};
use crate::redis_client::answers;

fn server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

pub(crate) fn spawn_server(args: &[String], log: &Path) -> Child {
    let bin = server_bin();
    let log_file = std::fs::File::create(log).expect("cannot create redis-server log file");
    match Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file handle"))
        .stderr(log_file)
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{bin}` not found: install it with `apt-get install -y redis-server` (or set REDIS_SERVER_BIN)"
        ),
        Err(e) => panic!("cannot start `{bin}`: {e}"),
    }
}

fn wait_until_answers(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if answers(port) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "redis-server on port {port} exited ({status}) before answering:\n{}",
                log_tail(log)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "redis-server on port {port} did not answer PING within {START_TIMEOUT:?}:\n{}",
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    child: Option<Child>,
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
            child: None,
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
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &self.dir.path().display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(self.extra.iter().cloned());
        args
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns and waits; on an early exit (port taken) returns the log tail.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = self.log();
        let mut child = spawn_server(&self.args(), &log);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if answers(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(log_tail(&log));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}\n{}",
                    log_tail(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
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
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Stops the server if it runs, then starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let log = self.log();
        let mut child = spawn_server(&self.args(), &log);
        wait_until_answers(self.port, &mut child, &log);
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}
