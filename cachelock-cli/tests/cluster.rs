//! `--redis-cluster`: every command on a real three-node Redis Cluster (started per test by
//! cachelock-testkit on free loopback ports), and the errors of the store options.

mod common;

use cachelock_testkit::{RedisCluster, RedisServer};
use common::http::Server;
use common::*;
use serde_json::Value;

/// `cachelock run --redis-cluster .. -k KEY -l LABEL` holding the key until `dir/stop`
/// exists, started with only `seed` as its node list; returned once held.
fn hold(seed: &[String], dir: &TempDir, key: &str, label: &str) -> std::process::Child {
    let name = key.replace('/', "_");
    let child = spawn_with_cluster(
        seed,
        &[
            "run",
            "-k",
            key,
            "-l",
            label,
            "--",
            "sh",
            "-c",
            &hold_until_stop(dir, &name, 0),
        ],
    );
    recorded_pid(dir, &name);
    child
}

/// The keys of each node (`SCAN` on the node itself) that match `pattern`.
fn keys_by_node(cluster: &RedisCluster, pattern: &str) -> Vec<Vec<String>> {
    cluster
        .urls()
        .iter()
        .map(|url| {
            let mut con = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .expect("connect to a node");
            let mut keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query(&mut con)
                .expect("KEYS");
            keys.sort();
            keys
        })
        .collect()
}

/// The node list with only node `i`: any node leads to the whole cluster.
fn only(cluster: &RedisCluster, i: usize) -> Vec<String> {
    vec![cluster.urls()[i].clone()]
}

#[test]
fn run_on_a_cluster_two_concurrent_runs_on_one_key_one_runs_and_the_other_exits_75() {
    let cluster = RedisCluster::start();
    let dir = TempDir::new();
    let ran = dir.file("ran");
    let command = |name: &str| format!("echo {name} >> {ran}; {}", hold_until_stop(&dir, name, 0));
    let (a, b) = (command("a"), command("b"));
    // One names every node on the command line, the other one node in the environment.
    let first = spawn_with_cluster(
        &cluster.urls(),
        &["run", "--key", "deploy", "--", "sh", "-c", &a],
    );
    let second = cachelock()
        .env("CACHELOCK_REDIS_CLUSTER_URLS", &cluster.urls()[2])
        .args(["run", "--key", "deploy", "--", "sh", "-c", &b])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let (loser, winner) = first_to_exit(first, second);
    assert_eq!(code(&loser), 75, "stderr: {}", stderr(&loser));
    let message = stderr(&loser);
    assert!(
        message.contains(&format!("`deploy` is held by pid {}", winner.id())),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap().lines().count(),
        1,
        "exactly one command ran"
    );

    std::fs::write(dir.file("stop"), "").unwrap();
    let winner = wait_exit(winner, "the winning run");
    assert_eq!(code(&winner), 0, "stderr: {}", stderr(&winner));
    assert_eq!(
        keys_by_node(&cluster, "cachelock:*"),
        vec![Vec::<String>::new(); 3],
        "released on exit"
    );
    let again = with_cluster(&only(&cluster, 1), &["run", "-k", "deploy", "--", "true"]);
    assert_eq!(code(&again), 0, "stderr: {}", stderr(&again));

    // `--redis` pointed at a cluster node cannot take the lock, and says what to use.
    let dir2 = TempDir::new();
    let marker = dir2.file("ran");
    let wrong = with_redis(
        &cluster.urls()[0],
        &["run", "-k", "deploy", "--", "touch", &marker],
    );
    assert_eq!(code(&wrong), 69, "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("Redis Cluster node: use --redis-cluster"),
        "{}",
        stderr(&wrong)
    );
    assert!(!std::path::Path::new(&marker).exists(), "not run");
}

#[test]
fn status_and_list_show_locks_held_on_every_node() {
    let cluster = RedisCluster::start();
    let dir = TempDir::new();
    // These three keys hash to slots 2408, 7959 and 12148: one on each node of three.
    let holders = [
        hold(&only(&cluster, 0), &dir, "c", "on-one"),
        hold(&only(&cluster, 1), &dir, "jobs/b", "on-two"),
        hold(&cluster.urls(), &dir, "jobs/a", "on-three"),
    ];
    let placed = keys_by_node(&cluster, "cachelock:*");
    let mut per_node: Vec<usize> = placed.iter().map(Vec::len).collect();
    per_node.sort_unstable();
    assert_eq!(per_node, [1, 1, 1], "one lock on each node: {placed:?}");

    // Every node, and every seed list, sees every lock.
    for seed in [cluster.urls(), only(&cluster, 0), only(&cluster, 2)] {
        let all = with_cluster(&seed, &["list"]);
        assert_eq!(code(&all), 0, "{}", stderr(&all));
        let text = stdout(&all);
        let keys: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(keys, ["c", "jobs/a", "jobs/b"], "{seed:?}: {text}");
    }

    let jobs = with_cluster(&only(&cluster, 1), &["list", "jobs/", "--json"]);
    assert_eq!(code(&jobs), 0, "{}", stderr(&jobs));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&jobs)).unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["on-three", "on-two"]);
    assert_eq!(rows[0]["pid"], holders[2].id());

    for (key, holder, label) in [
        ("c", &holders[0], "on-one"),
        ("jobs/b", &holders[1], "on-two"),
        ("jobs/a", &holders[2], "on-three"),
    ] {
        let status = with_cluster(&only(&cluster, 2), &["status", key]);
        assert_eq!(code(&status), 0, "{key}: {}", stderr(&status));
        let line = stdout(&status);
        assert!(
            line.starts_with(&format!("{key}: held by pid {} ", holder.id())),
            "{line}"
        );
        assert!(line.contains(&format!("label \"{label}\"")), "{line}");
    }
    // `list --redis` at one node would see that node's lock alone: refused, with the hint.
    let one_node = with_redis(&cluster.urls()[0], &["list"]);
    assert_eq!(code(&one_node), 69, "{}", stderr(&one_node));
    assert!(
        stderr(&one_node).contains("Redis Cluster node: use --redis-cluster"),
        "{}",
        stderr(&one_node)
    );
    assert_eq!(stdout(&one_node), "", "no partial listing");
    let json = with_cluster(&cluster.urls(), &["status", "jobs/b", "--json"]);
    let value: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["held"], true);
    assert_eq!(value["pid"], holders[1].id());
    let free = with_cluster(&cluster.urls(), &["status", "nobody"]);
    assert_eq!(code(&free), 1);
    assert_eq!(stdout(&free), "nobody: free\n");

    std::fs::write(dir.file("stop"), "").unwrap();
    for holder in holders {
        assert_eq!(code(&wait_exit(holder, "holder")), 0);
    }
    let empty = with_cluster(&cluster.urls(), &["list", "--json"]);
    assert_eq!(stdout(&empty).trim(), "[]");
}

#[test]
fn release_force_frees_a_key_on_a_cluster() {
    let cluster = RedisCluster::start();
    let dir = TempDir::new();
    let holder = hold(&cluster.urls(), &dir, "stuck", "old");

    let refused = with_cluster(&cluster.urls(), &["release", "stuck"]);
    assert_eq!(code(&refused), 64);
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));

    let released = with_cluster(&only(&cluster, 0), &["release", "stuck", "--force"]);
    assert_eq!(code(&released), 0, "{}", stderr(&released));
    assert!(
        stdout(&released).contains("label \"old\""),
        "{}",
        stdout(&released)
    );
    assert_eq!(
        code(&with_cluster(&cluster.urls(), &["status", "stuck"])),
        1,
        "freed"
    );
    let next = with_cluster(&only(&cluster, 2), &["run", "-k", "stuck", "--", "true"]);
    assert_eq!(code(&next), 0, "{}", stderr(&next));
    let again = with_cluster(&cluster.urls(), &["release", "stuck", "--force"]);
    assert_eq!(code(&again), 1);
    assert_eq!(stdout(&again), "stuck: was not held\n");

    std::fs::write(dir.file("stop"), "").unwrap();
    let old = wait_exit(holder, "old holder");
    assert_eq!(code(&old), 0);
    assert!(
        stderr(&old).contains("had already been lost"),
        "{}",
        stderr(&old)
    );
}

#[test]
fn two_serve_processes_on_one_cluster_share_their_locks() {
    let cluster = RedisCluster::start();
    let a = Server::cluster(&cluster.urls(), &[]);
    let b = Server::cluster(&only(&cluster, 1), &[]);

    let token = a.lock("/shared/printer?id=from-a");
    let refused = b.refused("/shared/printer");
    assert_eq!(refused["lockedBy"], "from-a");
    assert_eq!(b.refused("/shared")["lockedBy"], "from-a");
    assert_eq!(b.refused("/shared/printer/tray")["lockedBy"], "from-a");
    let sibling = b.lock("/shared/scanner?id=from-b");
    assert_eq!(a.get("/dohaz/shared/scanner").1["lockedBy"], "from-b");

    // A lock space lives on one node: its keys share the hash tag {cachelock-tree}.
    let tree_keys: Vec<usize> = keys_by_node(&cluster, "*cachelock-tree*")
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(
        tree_keys.iter().filter(|&&n| n > 0).count(),
        1,
        "{tree_keys:?}"
    );
    // `list` of run's keys neither shows the HTTP locks nor trips over their keys.
    let list = with_cluster(&cluster.urls(), &["list"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    assert_eq!(stdout(&list), "");

    let (status, _) = b.get("/nowant/shared/printer?token=0123456789abcdef0123456789abcdef");
    assert_eq!(status, 403, "a wrong token is refused on every server");
    b.unlock("/shared/printer", &token);
    assert_eq!(a.get("/dohaz/shared/printer").1["lockedBy"], Value::Null);
    a.unlock("/shared/scanner", &sibling);
    a.lock("/shared");

    // Another --space on the same cluster is another lock space; one with its own hash tag
    // lives on the slot of that tag, still on one node.
    let c = Server::cluster(&only(&cluster, 2), &["--space", "{other}:"]);
    c.lock("/shared?id=from-c");
    assert_eq!(b.refused("/shared/x")["lockedBy"], "?");
    assert_eq!(c.refused("/shared/x")["lockedBy"], "from-c");
    let other_keys: Vec<usize> = keys_by_node(&cluster, "{other}:*")
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(
        other_keys.iter().filter(|&&n| n > 0).count(),
        1,
        "{other_keys:?}"
    );
}

#[test]
fn both_store_options_are_an_error_that_says_where_each_came_from() {
    let dir = TempDir::new();
    let marker = dir.file("ran");
    let run = ["run", "-k", "k", "--", "touch", &marker];
    let cluster = "redis://127.0.0.1:7000,redis://127.0.0.1:7001";
    /// (environment, store flags, where the message says each value came from).
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);
    let cases: [Case<'_>; 6] = [
        (
            &[],
            &[
                "--redis",
                "redis://:hunter2@127.0.0.1",
                "--redis-cluster",
                cluster,
            ],
            &[],
        ),
        (
            &[("CACHELOCK_REDIS_URL", "redis://127.0.0.1:6379")],
            &["--redis-cluster", cluster],
            &["(from CACHELOCK_REDIS_URL)"],
        ),
        (
            &[("CACHELOCK_STORE", "file:///tmp/elsewhere")],
            &["--redis-cluster", cluster],
            &["(from CACHELOCK_STORE)"],
        ),
        (
            &[],
            &["--store", "memory://", "--redis-cluster", cluster],
            &[],
        ),
        (
            &[("CACHELOCK_REDIS_CLUSTER_URLS", cluster)],
            &["--redis", "redis://127.0.0.1:6379"],
            &["(from CACHELOCK_REDIS_CLUSTER_URLS)"],
        ),
        (
            &[
                ("CACHELOCK_REDIS_URL", "redis://127.0.0.1:6379"),
                ("CACHELOCK_REDIS_CLUSTER_URLS", cluster),
            ],
            &[],
            &[
                "(from CACHELOCK_REDIS_URL)",
                "(from CACHELOCK_REDIS_CLUSTER_URLS)",
            ],
        ),
    ];
    for (env, flags, origins) in cases {
        for command in [&run[..], &["status", "k"], &["list"], &["serve"]] {
            let output = cachelock()
                .envs(env.iter().copied())
                .args(flags)
                .args(command)
                .output()
                .unwrap();
            let message = stderr(&output);
            assert_eq!(
                code(&output),
                64,
                "{env:?} {flags:?} {command:?}: {message}"
            );
            assert!(
                message.contains("cannot be used together: name one store (--store URL, --redis URL for one Redis server, or --redis-cluster URL,.. for a Redis Cluster), not several"),
                "{message}"
            );
            assert!(
                message.contains("redis://127.0.0.1:7000,redis://127.0.0.1:7001"),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "password masked: {message}");
            for origin in origins {
                assert!(message.contains(origin), "{env:?}: {message}");
            }
            if origins.is_empty() {
                assert!(!message.contains("(from "), "{message}");
            }
        }
    }
    assert!(!std::path::Path::new(&marker).exists(), "nothing ran");

    // An empty variable is no value: `CACHELOCK_REDIS_URL=` does not conflict, and with no
    // store named the default one (this user's lock directory) answers.
    let output = cachelock()
        .env("CACHELOCK_REDIS_URL", "")
        .env("CACHELOCK_REDIS_CLUSTER_URLS", " , ")
        .env("CACHELOCK_STORE", "")
        .args(["status", "k"])
        .output()
        .unwrap();
    assert_eq!(
        (code(&output), stdout(&output)),
        (1, "k: free\n".to_owned()),
        "{}",
        stderr(&output)
    );

    let help = stdout(&cachelock().arg("--help").output().unwrap());
    assert!(help.contains("--redis-cluster <URL[,URL...]>"), "{help}");
    assert!(help.contains("CACHELOCK_REDIS_CLUSTER_URLS"), "{help}");
    assert!(help.contains("not detected from the URL"), "{help}");
}

#[test]
fn an_unreachable_cluster_exits_69_and_a_bad_node_url_64() {
    let (p, q) = (
        cachelock_testkit::free_port(),
        cachelock_testkit::free_port(),
    );
    let nodes = vec![
        format!("redis://127.0.0.1:{p}"),
        format!("redis://user:hunter2@127.0.0.1:{q}"),
    ];
    let dir = TempDir::new();
    let marker = dir.file("ran");
    for command in [
        &["run", "-k", "k", "--", "touch", &marker][..],
        &["status", "k"],
        &["list"],
        &["release", "k", "--force"],
    ] {
        let output = with_cluster(&nodes, command);
        let message = stderr(&output);
        assert_eq!(code(&output), 69, "{command:?}: {message}");
        assert!(
            message.contains(&format!(
                "(Redis Cluster at redis://127.0.0.1:{p}, redis://user:***@127.0.0.1:{q})"
            )),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert!(!std::path::Path::new(&marker).exists(), "not run");

    let bad = with_cluster(
        &[
            "redis://127.0.0.1:7000".to_owned(),
            "http://u:hunter2@x".to_owned(),
        ],
        &["list"],
    );
    assert_eq!(code(&bad), 64);
    assert!(
        stderr(&bad).contains("invalid --redis-cluster"),
        "{}",
        stderr(&bad)
    );
    assert!(!stderr(&bad).contains("hunter2"), "{}", stderr(&bad));

    // A standalone server is no cluster: 69, and the hint names the other option.
    let redis = RedisServer::start();
    let standalone = with_cluster(&[redis.url()], &["status", "k"]);
    assert_eq!(code(&standalone), 69, "{}", stderr(&standalone));
    assert!(
        stderr(&standalone)
            .contains("use --redis (or CACHELOCK_REDIS_URL) instead of --redis-cluster"),
        "{}",
        stderr(&standalone)
    );
}
