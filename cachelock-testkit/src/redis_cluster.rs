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

/// A three-node Redis Cluster (three primaries, no replicas) on free loopback ports, or
/// with [`start_with_replicas`](RedisCluster::start_with_replicas) three primaries with one
/// replica each.
///
/// Each node is `redis-server --cluster-enabled yes --cluster-config-file <tmp>/nodes-P.conf`;
/// they are joined with `redis-cli --cluster create ... --cluster-replicas N --cluster-yes`,
/// and the helper waits until every node reports `cluster_state:ok`. Killed on `Drop`.
pub struct RedisCluster {
    ports: Vec<u16>,
    /// `None` while a node is killed.
    nodes: Vec<Option<ServerProcess>>,
    args: Vec<Vec<String>>,
    replicas: usize,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts and joins the cluster. Panics if it cannot.
    pub fn start() -> RedisCluster {
        RedisCluster::start_nodes(0, "5000")
    }

    /// Three primaries with one replica each (node timeout 1 s, so a replica takes over
    /// about a second after its primary dies): for
    /// [`kill_a_primary`](RedisCluster::kill_a_primary).
    pub fn start_with_replicas() -> RedisCluster {
        RedisCluster::start_nodes(1, "1000")
    }

    fn start_nodes(replicas: usize, node_timeout: &str) -> RedisCluster {
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            nodes: Vec::new(),
            args: Vec::new(),
            replicas,
            _dir: TempDir::new("cluster"),
        };
        for _ in 0..3 * (1 + replicas) {
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
                    node_timeout.into(),
                    // A replica always tries to take over, however long since it last
                    // heard from its primary.
                    "--cluster-replica-validity-factor".into(),
                    "0".into(),
                ]);
                if let Ok(node) = start_redis_server(port, &args, &log) {
                    cluster.ports.push(port);
                    cluster.nodes.push(Some(node));
                    cluster.args.push(args);
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
            .args([
                "--cluster-replicas",
                &self.replicas.to_string(),
                "--cluster-yes",
            ])
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
            let all_ok = self.live_ports().iter().all(|&port| {
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

    fn live_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, node)| node.is_some())
            .map(|(port, _)| *port)
            .collect()
    }

    /// Kills (SIGKILL) one primary, the first by port order after the one killed last,
    /// waits until its replica has taken over and every live node reports
    /// `cluster_state:ok`, then starts the killed node again on its port and config file:
    /// it rejoins as a replica. Returns the killed port. Panics if the fail-over does not
    /// happen within the start timeout.
    pub fn kill_a_primary(&mut self) -> u16 {
        assert!(
            self.replicas > 0,
            "a cluster without replicas cannot fail over"
        );
        let nodes = command(self.live_ports()[0], &["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        let primary = nodes
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .filter_map(|l| {
                let addr = l.split(' ').nth(1)?;
                addr.split(['@', ','])
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse::<u16>()
                    .ok()
            })
            .min()
            .expect("a primary");
        let at = self
            .ports
            .iter()
            .position(|&p| p == primary)
            .expect("a node");
        self.nodes[at] = None;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let survivor = self.live_ports()[0];
            let taken_over = command(survivor, &["CLUSTER", "NODES"]).is_ok_and(|nodes| {
                nodes
                    .lines()
                    .any(|l| l.contains(&format!(":{primary}@")) && l.contains("fail"))
                    && nodes
                        .lines()
                        .filter(|l| l.contains("master") && !l.contains("fail"))
                        .count()
                        == 3
            });
            if taken_over {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over from {primary} within {START_TIMEOUT:?}:\n{}",
                command(survivor, &["CLUSTER", "NODES"]).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_ok();
        let log = self._dir.path().join(format!("redis-{primary}.log"));
        let node = start_redis_server(primary, &self.args[at], &log)
            .unwrap_or_else(|_| panic!("the killed node {primary} did not come back"));
        self.nodes[at] = Some(node);
        self.wait_ok();
        primary
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
