//! [`EtcdServer`]: a throwaway single-member etcd on free loopback ports, for the etcd
//! store's tests; it can be stopped, restarted on the same data (revisions survive) and
//! paused.
//!
//! The binary is `etcd` from `PATH`, or `ETCD_BIN`; when it is missing the helper panics
//! with a one-line message that says how to install it (`apt-get install -y etcd-server`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::port::free_port;
use crate::process::{log_tail, ServerProcess, StartError, TempDir, START_TIMEOUT};

fn server_bin() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".to_owned())
}

/// One `etcd` member on free loopback ports (client and peer), its data in a temp dir,
/// killed on `Drop`.
///
/// Started as `etcd --name default --data-dir DIR --listen-client-urls http://127.0.0.1:P
/// --advertise-client-urls http://127.0.0.1:P --listen-peer-urls http://127.0.0.1:Q
/// --initial-advertise-peer-urls http://127.0.0.1:Q --initial-cluster default=http://127.0.0.1:Q`
/// (plus any extra arguments), with etcd's default timings (so its minimum lease TTL is
/// etcd's default, 2 s). Ready once `GET /health` answers `"health":"true"` (a leader is
/// elected).
///
/// ```no_run
/// let server = cachelock_testkit::etcd::EtcdServer::start();
/// println!("{}", server.url()); // etcd://127.0.0.1:P
/// ```
pub struct EtcdServer {
    port: u16,
    peer_port: u16,
    extra: Vec<String>,
    /// `None` while stopped.
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl EtcdServer {
    /// Starts a member on free ports and waits until it is healthy. Panics if it cannot.
    pub fn start() -> EtcdServer {
        EtcdServer::start_with_args(&[])
    }

    /// Like [`start`](EtcdServer::start), with extra arguments such as
    /// `["--election-timeout", "500"]`.
    pub fn start_with_args(extra: &[&str]) -> EtcdServer {
        let mut server = EtcdServer {
            port: 0,
            peer_port: 0,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            process: None,
            dir: TempDir::new("etcd"),
        };
        // A free port can be taken by someone else between the probe and the bind: retry,
        // each time with a fresh data dir (a failed first start may have left one).
        let mut last_log = String::new();
        for attempt in 0..5 {
            server.port = free_port();
            server.peer_port = free_port();
            let _ = std::fs::remove_dir_all(server.data_dir());
            match server.spawn() {
                Ok(process) => {
                    server.process = Some(process);
                    return server;
                }
                Err(log) => last_log = format!("attempt {attempt}:\n{log}"),
            }
        }
        panic!("etcd could not start on free ports:\n{last_log}");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn args(&self) -> Vec<String> {
        let client = format!("http://127.0.0.1:{}", self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut args: Vec<String> = vec![
            "--name".into(),
            "default".into(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client,
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer.clone(),
            "--initial-cluster".into(),
            format!("default={peer}"),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Spawns and waits until healthy; on failure, the log tail.
    fn spawn(&self) -> Result<ServerProcess, String> {
        let log = self.log();
        let port = self.port;
        match ServerProcess::start(
            &server_bin(),
            "install it with `apt-get install -y etcd-server` (or set ETCD_BIN)",
            &self.args(),
            &log,
            || healthy(port),
        ) {
            Ok(process) => Ok(process),
            Err(StartError::Exited(status)) => {
                Err(format!("etcd exited ({status}):\n{}", log_tail(&log)))
            }
            Err(StartError::TimedOut) => Err(format!(
                "etcd was not healthy within {START_TIMEOUT:?}:\n{}",
                log_tail(&log)
            )),
        }
    }

    /// The client port (the same across [`restart`](EtcdServer::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `etcd://127.0.0.1:P`.
    pub fn url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:P`, the endpoint as `etcd_client::Client::connect` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `true` while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// Kills the member (SIGKILL: no goodbye to its clients) and waits for it to exit. Its
    /// data stays.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Stops the member if it runs, then starts it again on the same ports and the **same
    /// data**: keys, leases and the revision counter survive, as after a crash and restart.
    pub fn restart(&mut self) {
        self.stop();
        match self.spawn() {
            Ok(process) => self.process = Some(process),
            Err(log) => panic!("etcd did not come back on port {}:\n{log}", self.port),
        }
    }

    /// Freezes the member (`SIGSTOP`): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](EtcdServer::pause)d member run again (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the etcd member is stopped");
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(process.id().to_string())
            .status()
            .expect("cannot run `kill`");
        assert!(status.success(), "kill {signal} failed");
    }

    /// How many gRPC requests the member has started, per method (`Txn`, `LeaseGrant`,
    /// `LeaseRevoke`, `Range`, `LeaseKeepAlive`, ...), from its `/metrics` page
    /// (`grpc_server_started_total`): to count the requests an operation sends.
    pub fn grpc_requests(&self) -> std::collections::BTreeMap<String, u64> {
        let page = http(self.port, "GET", "/metrics", "").expect("GET /metrics");
        let mut counts = std::collections::BTreeMap::new();
        for line in page.lines() {
            let Some(labels) = line.strip_prefix("grpc_server_started_total{") else {
                continue;
            };
            let method = labels
                .split(',')
                .find_map(|label| label.strip_prefix("grpc_method=\""))
                .and_then(|rest| rest.split('"').next());
            let count = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
            if let (Some(method), Some(count)) = (method, count) {
                *counts.entry(method.to_owned()).or_insert(0) += count as u64;
            }
        }
        counts
    }

    /// Turns on etcd authentication with `user` (given the `root` role) and `password`,
    /// through etcd's JSON gateway. From then on every client must log in.
    pub fn enable_auth(&self, user: &str, password: &str) {
        let quote = |s: &str| format!("{s:?}"); // test names and passwords: plain ASCII
        let calls = [
            ("/v3/auth/role/add", r#"{"name":"root"}"#.to_owned()),
            (
                "/v3/auth/user/add",
                format!(
                    r#"{{"name":{},"password":{}}}"#,
                    quote(user),
                    quote(password)
                ),
            ),
            (
                "/v3/auth/user/grant",
                format!(r#"{{"user":{},"role":"root"}}"#, quote(user)),
            ),
            ("/v3/auth/enable", "{}".to_owned()),
        ];
        for (path, body) in calls {
            let answer = http(self.port, "POST", path, &body)
                .unwrap_or_else(|e| panic!("etcd {path} failed: {e}"));
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "etcd {path} answered: {answer}"
            );
        }
        // The root user must exist for `auth enable`; with `user` named root it is the same.
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdServer")
            .field("port", &self.port)
            .field("peer_port", &self.peer_port)
            .finish_non_exhaustive()
    }
}

/// Whether the member on `port` says it is healthy (it has a leader).
fn healthy(port: u16) -> bool {
    http(port, "GET", "/health", "").is_ok_and(|answer| answer.contains(r#""health":"true""#))
}

/// One HTTP/1.1 request to the member's gateway; the whole answer as text.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
