//! Test helpers for cachelock (never published).
//!
//! - [`RedisServer`]: a throwaway `redis-server` on a free loopback port, killed on `Drop`,
//!   that can be stopped and restarted on the same port for fault tests.
//! - [`RedisCluster`]: three `redis-server --cluster-enabled yes` nodes on free loopback
//!   ports, joined with `redis-cli --cluster create`, killed on `Drop`.
//! - [`eventually`]: waits, with a generous bound, until a condition holds (tests bound
//!   time from the safe side only: never "by a deadline").
//! - [`TracingCapture`]: a `tracing` subscriber that keeps every event and span field as
//!   text, to check what a library logs.
//! - [`LostReplyProxy`]: a TCP proxy to a real server that lets one command run and loses
//!   its reply (the connection is cut), the fault a resent command must survive.
//!
//! Only loopback addresses are ever used. The binaries are `redis-server` and `redis-cli`
//! from `PATH`, or `REDIS_SERVER_BIN` / `REDIS_CLI_BIN`; when one is missing the helper
//! panics with a one-line message that says how to install it.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod eventually;
mod lost_reply;
mod port;
mod redis_client;
mod tracing_capture;
pub use eventually::eventually;
pub use lost_reply::LostReplyProxy;
use port::free_cluster_port;
pub use port::free_port;
pub use redis_client::parse_commandstats;
use redis_client::{answers, command};
pub use tracing_capture::TracingCapture;

/// How long a server or cluster may take to come up before the helper gives up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

fn cli_bin() -> String {
    std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".to_owned())
}

/// A fresh, empty directory under the system temp dir, removed on `Drop`.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
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

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn_server(args: &[String], log: &Path) -> Child {
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

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
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

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
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

/// A three-node Redis Cluster (three primaries, no replicas) on free loopback ports.
///
/// Each node is `redis-server --cluster-enabled yes --cluster-config-file <tmp>/nodes-P.conf`;
/// they are joined with `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`,
/// and the helper waits until every node reports `cluster_state:ok`. Killed on `Drop`.
pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts and joins the cluster. Panics if it cannot.
    pub fn start() -> RedisCluster {
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            children: Vec::new(),
            _dir: TempDir::new("cluster"),
        };
        for _ in 0..3 {
            let mut started = false;
            for _ in 0..5 {
                let port = free_cluster_port();
                let log = cluster._dir.path().join(format!("redis-{port}.log"));
                let conf = cluster._dir.path().join(format!("nodes-{port}.conf"));
                let args: Vec<String> = vec![
                    "--port".into(),
                    port.to_string(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                    "--save".into(),
                    String::new(),
                    "--appendonly".into(),
                    "no".into(),
                    "--dir".into(),
                    cluster._dir.path().display().to_string(),
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                ];
                let mut child = spawn_server(&args, &log);
                let deadline = Instant::now() + START_TIMEOUT;
                let up = loop {
                    if answers(port) {
                        break true;
                    }
                    if let Ok(Some(_)) = child.try_wait() {
                        break false;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break false;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                if up {
                    cluster.ports.push(port);
                    cluster.children.push(Some(child));
                    started = true;
                    break;
                }
            }
            assert!(started, "a cluster node could not start on a free port");
        }
        cluster.create();
        cluster.wait_ok();
        cluster
    }

    fn create(&self) {
        let bin = cli_bin();
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let output = Command::new(&bin)
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "`{bin} --cluster create` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{bin}` not found: install it with `apt-get install -y redis-tools` (or set REDIS_CLI_BIN)"
            ),
            Err(e) => panic!("cannot run `{bin}`: {e}"),
        }
    }

    fn wait_ok(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let all_ok = self.ports.iter().all(|&port| {
                command(port, &["CLUSTER", "INFO"])
                    .map(|info| info.contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if all_ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster on ports {:?} did not reach cluster_state:ok within {START_TIMEOUT:?}",
                self.ports
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The nodes' URLs, `redis://127.0.0.1:P`.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            kill(child);
        }
    }
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}
