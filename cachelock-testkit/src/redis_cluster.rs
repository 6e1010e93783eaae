//! [`RedisCluster`]: three `redis-server` nodes on free loopback ports, joined into a Redis
//! Cluster with `redis-cli --cluster create`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::free_cluster_port;
use crate::process::{ServerProcess, TempDir, START_TIMEOUT};
use crate::redis_client::command;
use crate::redis_server::{base_args, start_redis_server};

fn cli_bin() -> String {
    std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".to_owned())
}

/// A three-node Redis Cluster (three primaries, no replicas) on free loopback ports.
///
/// Each node is `redis-server --cluster-enabled yes --cluster-config-file <tmp>/nodes-P.conf`;
/// they are joined with `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`,
/// and the helper waits until every node reports `cluster_state:ok`. Killed on `Drop`.
pub struct RedisCluster {
    ports: Vec<u16>,
    nodes: Vec<ServerProcess>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts and joins the cluster. Panics if it cannot.
    pub fn start() -> RedisCluster {
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            nodes: Vec::new(),
            _dir: TempDir::new("cluster"),
        };
        for _ in 0..3 {
            let mut started = false;
            for _ in 0..5 {
                let port = free_cluster_port();
                let log = cluster._dir.path().join(format!("redis-{port}.log"));
                let conf = cluster._dir.path().join(format!("nodes-{port}.conf"));
                let mut args = base_args(port, cluster._dir.path());
                args.extend([
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                ]);
                if let Ok(node) = start_redis_server(port, &args, &log) {
                    cluster.ports.push(port);
                    cluster.nodes.push(node);
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
        // Every node, in order, before `_dir` is removed.
        self.nodes.clear();
    }
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}
