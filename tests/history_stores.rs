//! One history checker, every store, every fault (issue #17): see `history/mod.rs`.
//!
//! Each test runs worker processes (the memory store: threads) against one store under one
//! fault and prints `history store=<s> fault=<f> holds=N overlaps=N fence_inversions=N`.
//! Overlaps and fence inversions are asserted 0 where the store promises it; where a fault
//! loses acknowledged writes (a server restarted without persistence) they are measured and
//! printed, not asserted. Nothing asserts a duration.
//!
//! ```text
//! cargo test --all-features --test history_stores                                  # a few s per run
//! CACHELOCK_HISTORY_SECS=600 cargo test --release --all-features --test history_stores -- --nocapture --test-threads=1
//! ```

mod history;

use history::checker::Report;
use history::run::{run_processes, run_threads, secs, Fault, TempDir};
use history::worker::Behaviour;

/// The body of a worker process; does nothing when run by the test harness itself.
#[test]
fn worker_entry_point() {
    history::worker::entry_point();
}

fn assert_clean(report: &Report) {
    assert!(
        report.overlaps.is_empty(),
        "{} overlapping holds, first: {:#?}",
        report.overlaps.len(),
        report.overlaps.first()
    );
    assert_no_inversions(report);
}

fn assert_no_inversions(report: &Report) {
    assert!(
        report.inversions.is_empty(),
        "{} fence inversions, first: {:#?}",
        report.inversions.len(),
        report.inversions.first()
    );
}

// ---------------------------------------------------------------------------------------
// The control: a store that excludes nobody must be caught.
// ---------------------------------------------------------------------------------------

#[test]
fn the_checker_catches_a_lock_that_excludes_nobody() {
    let report = run_processes("noop", "noop://", 2, Fault::None);
    assert!(
        !report.overlaps.is_empty(),
        "{} holds under noop:// and no overlap reported",
        report.holds
    );
}

// ---------------------------------------------------------------------------------------
// memory:// (threads of this process)
// ---------------------------------------------------------------------------------------

#[test]
fn memory_abandoned_holders() {
    let behaviour = Behaviour {
        abandon_one_in: 50,
        ..Behaviour::default()
    };
    let report = run_threads("kill", secs(), behaviour);
    assert!(report.unfinished > 0, "no holder abandoned its guard");
    assert_clean(&report);
}

#[test]
fn memory_stalled_holders() {
    let behaviour = Behaviour {
        stall_one_in: 50,
        ..Behaviour::default()
    };
    assert_clean(&run_threads("pause", secs(), behaviour));
}

// ---------------------------------------------------------------------------------------
// file://
// ---------------------------------------------------------------------------------------

#[cfg(feature = "file")]
fn file_url(dir: &TempDir) -> String {
    format!("file://{}", dir.0.display())
}

#[cfg(feature = "file")]
#[test]
fn file_killed_holders() {
    let dir = TempDir::new("file-store");
    let report = run_processes("file", &file_url(&dir), secs(), Fault::Kill);
    assert!(report.unfinished > 0, "no holder was killed inside");
    assert_clean(&report);
}

#[cfg(feature = "file")]
#[test]
fn file_paused_holders() {
    let dir = TempDir::new("file-store");
    assert_clean(&run_processes(
        "file",
        &file_url(&dir),
        secs(),
        Fault::Pause,
    ));
}

// ---------------------------------------------------------------------------------------
// redis:// and redis-cluster://
// ---------------------------------------------------------------------------------------

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use cachelock_testkit::{RedisCluster, RedisServer};

    #[test]
    fn redis_killed_holders() {
        let server = RedisServer::start();
        let report = run_processes("redis", &server.url(), secs(), Fault::Kill);
        assert!(report.unfinished > 0, "no holder was killed inside");
        assert_clean(&report);
    }

    #[test]
    fn redis_paused_holders() {
        let server = RedisServer::start();
        assert_clean(&run_processes("redis", &server.url(), secs(), Fault::Pause));
    }

    #[test]
    fn redis_restarted_with_aof() {
        let mut server =
            RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
        let url = server.url();
        let mut restart = || server.restart();
        let report = run_processes(
            "redis-aof",
            &url,
            secs(),
            Fault::Server("restart", &mut restart),
        );
        assert_clean(&report);
    }

    /// Without persistence a restart forgets every lock: overlaps are expected, measured and
    /// printed. The fences stay increasing through the claim script's clock floor.
    #[test]
    fn redis_restarted_without_persistence() {
        let mut server = RedisServer::start();
        let url = server.url();
        let mut restart = || server.restart();
        let report = run_processes(
            "redis-nopersist",
            &url,
            secs(),
            Fault::Server("restart", &mut restart),
        );
        assert_no_inversions(&report);
    }

    fn cluster_url(cluster: &RedisCluster) -> String {
        let nodes: Vec<String> = cluster
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    #[test]
    fn redis_cluster_killed_holders() {
        let cluster = RedisCluster::start();
        let report = run_processes("redis-cluster", &cluster_url(&cluster), secs(), Fault::Kill);
        assert!(report.unfinished > 0, "no holder was killed inside");
        assert_clean(&report);
    }

    /// A primary killed (SIGKILL) so that its replica takes over, then restarted as a
    /// replica. Replication is asynchronous: a grant the primary acknowledged may not have
    /// reached the replica, so overlaps are measured and printed, not asserted; the fences
    /// keep increasing through the claim script's clock floor.
    #[test]
    fn redis_cluster_primary_killed() {
        let mut cluster = RedisCluster::start_with_replicas();
        let url = cluster_url(&cluster);
        let mut fail_over = || {
            cluster.kill_a_primary();
        };
        let report = run_processes(
            "redis-cluster",
            &url,
            secs(),
            Fault::Server("failover", &mut fail_over),
        );
        assert_no_inversions(&report);
    }

    #[test]
    fn redis_cluster_paused_holders() {
        let cluster = RedisCluster::start();
        assert_clean(&run_processes(
            "redis-cluster",
            &cluster_url(&cluster),
            secs(),
            Fault::Pause,
        ));
    }
}

// ---------------------------------------------------------------------------------------
// postgres://
// ---------------------------------------------------------------------------------------

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use cachelock_testkit::postgres::{PostgresServer, TestDb};

    #[test]
    fn postgres_killed_holders() {
        let db = TestDb::create();
        let report = run_processes("postgres", &db.url(), secs(), Fault::Kill);
        assert!(report.unfinished > 0, "no holder was killed inside");
        assert_clean(&report);
    }

    #[test]
    fn postgres_paused_holders() {
        let db = TestDb::create();
        assert_clean(&run_processes("postgres", &db.url(), secs(), Fault::Pause));
    }

    /// A private server of this test's own (never the shared one), killed (SIGKILL) and
    /// restarted on its data: committed rows and the fence sequence survive.
    #[test]
    fn postgres_restarted() {
        let server = PostgresServer::start();
        let url = server.url();
        let mut restart = || server.restart();
        let report = run_processes(
            "postgres",
            &url,
            secs(),
            Fault::Server("restart", &mut restart),
        );
        assert_clean(&report);
    }
}

// ---------------------------------------------------------------------------------------
// mysql://
// ---------------------------------------------------------------------------------------

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use cachelock_testkit::mysql::{MysqlDb, MysqlServer};

    #[test]
    fn mysql_killed_holders() {
        let db = MysqlDb::create();
        let report = run_processes("mysql", &db.url(), secs(), Fault::Kill);
        assert!(report.unfinished > 0, "no holder was killed inside");
        assert_clean(&report);
    }

    #[test]
    fn mysql_paused_holders() {
        let db = MysqlDb::create();
        assert_clean(&run_processes("mysql", &db.url(), secs(), Fault::Pause));
    }

    /// A private server of this test's own, killed (SIGKILL) and restarted on its data:
    /// InnoDB recovers the committed rows.
    #[test]
    fn mysql_restarted() {
        let server = MysqlServer::start();
        let db = server.database();
        let url = db.url();
        let mut restart = || server.restart();
        let report = run_processes(
            "mysql",
            &url,
            secs(),
            Fault::Server("restart", &mut restart),
        );
        assert_clean(&report);
    }
}

// ---------------------------------------------------------------------------------------
// memcache://
// ---------------------------------------------------------------------------------------

#[cfg(feature = "memcached")]
mod memcached {
    use super::*;
    use cachelock_testkit::memcached::MemcachedServer;

    #[test]
    fn memcached_killed_holders() {
        let server = MemcachedServer::start();
        let report = run_processes("memcached", &server.url(), secs(), Fault::Kill);
        assert!(report.unfinished > 0, "no holder was killed inside");
        assert_clean(&report);
    }

    #[test]
    fn memcached_paused_holders() {
        let server = MemcachedServer::start();
        assert_clean(&run_processes(
            "memcached",
            &server.url(),
            secs(),
            Fault::Pause,
        ));
    }

    /// memcached keeps nothing across a restart: overlaps are expected, measured and
    /// printed. Fences across a restart are documented to increase only if the new run
    /// started in a later second (cachelock/src/memcached/mod.rs): measured, not asserted.
    #[test]
    fn memcached_restarted() {
        let mut server = MemcachedServer::start();
        let url = server.url();
        let mut restart = || server.restart();
        run_processes(
            "memcached",
            &url,
            secs(),
            Fault::Server("restart", &mut restart),
        );
    }

    /// The same with every restart in a later second than the previous start (the server
    /// down for over a second): inside the documented condition, so fences must increase.
    #[test]
    fn memcached_restarted_a_second_apart() {
        let mut server = MemcachedServer::start();
        let url = server.url();
        let mut restart = || {
            server.stop();
            std::thread::sleep(std::time::Duration::from_millis(1_100));
            server.restart();
        };
        let report = run_processes(
            "memcached-1s-apart",
            &url,
            secs(),
            Fault::Server("restart", &mut restart),
        );
        assert_no_inversions(&report);
    }
}

// ---------------------------------------------------------------------------------------
// etcd://
// ---------------------------------------------------------------------------------------

#[cfg(feature = "etcd")]
mod etcd {
    use super::*;
    use cachelock_testkit::etcd::EtcdServer;

    #[test]
    fn etcd_killed_holders() {
        let server = EtcdServer::start();
        let report = run_processes("etcd", &server.url(), secs(), Fault::Kill);
        assert!(report.unfinished > 0, "no holder was killed inside");
        assert_clean(&report);
    }

    #[test]
    fn etcd_paused_holders() {
        let server = EtcdServer::start();
        assert_clean(&run_processes("etcd", &server.url(), secs(), Fault::Pause));
    }

    /// Restarted on its data dir: keys, leases and revisions survive.
    #[test]
    fn etcd_restarted() {
        let mut server = EtcdServer::start();
        let url = server.url();
        let mut restart = || server.restart();
        let report = run_processes("etcd", &url, secs(), Fault::Server("restart", &mut restart));
        assert_clean(&report);
    }
}
