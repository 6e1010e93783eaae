//! The command line: every command, option and help text (clap derive).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::{parse_duration, parse_ttl};
use crate::exit::EXIT_CODES_HELP;

/// Locks from the shell: run a command while holding a lock (a `flock` that works across
/// the processes of this host with no server, and across machines through Redis, Redis
/// Cluster or another --store), inspect and free locks, or serve them over HTTP.
#[derive(Debug, Parser)]
#[command(name = "cachelock", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Where the locks live.
    #[command(flatten)]
    pub backend: BackendArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The lock backend, shared by every command.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Where the locks live, as a URL: file:///var/lock/myapp (lock files on this host),
    /// redis://host:6379/0, rediss://..., redis-cluster://host1:7000,host2:7000,
    /// memory:// (this process only: excludes nobody else), or postgres://, mysql://,
    /// memcache://, etcd:// when built with that store's feature.
    ///
    /// Default (no --store, --redis nor --redis-cluster): this user's lock directory,
    /// /tmp/cachelock-<uid> (created 0700, refused unless owned by this user), or
    /// $CACHELOCK_DIR when set. Every process of this user on this host (cron jobs,
    /// services, shells alike) shares its locks, with no server. One store option at most
    /// (exit 64 otherwise).
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub store: Option<String>,

    /// One Redis server holding the locks, e.g. redis://127.0.0.1:6379/0 (rediss:// with
    /// the `redis-tls` feature); the same as --store with that URL.
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub redis: Option<String>,

    /// A Redis Cluster holding the locks: node URLs, comma-separated or the option repeated,
    /// e.g. redis://10.0.0.1:7000,redis://10.0.0.2:7000. Instead of --redis, never with it.
    ///
    /// Any reachable subset of the nodes will do (the others are discovered); give more than
    /// one so that cachelock starts while a node is down. A comma inside a password is
    /// written %2C.
    ///
    /// A separate option, not detected from the URL: a cluster and one server are different
    /// stores (a lock on a cluster is only as safe as the node that holds its slot, see the
    /// README), and cachelock does not guess which one holds your locks. Two store options at
    /// once (--store, --redis, --redis-cluster, on the command line or in the environment) is
    /// an error (exit 64), never a silent pick: every process sharing a key must use the same
    /// store.
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_REDIS_CLUSTER_URLS",
        hide_env_values = true,
        value_name = "URL[,URL...]",
        value_delimiter = ','
    )]
    pub redis_cluster: Vec<String>,

    /// Put in front of every key of `run`, `status`, `list` and `release` in the store
    /// (`serve` uses --space).
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_PREFIX",
        hide_env_values = true,
        default_value = cachelock::DEFAULT_PREFIX,
        value_name = "PREFIX"
    )]
    pub prefix: String,

    /// Which of the store options came from the environment (for error messages); set by
    /// `main` from clap's value sources.
    #[arg(skip)]
    pub from_env: FromEnv,
}

/// Whether `--store`, `--redis` and `--redis-cluster` were given by their environment
/// variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromEnv {
    /// `CACHELOCK_STORE` gave `--store`.
    pub store: bool,
    /// `CACHELOCK_REDIS_URL` gave `--redis`.
    pub redis: bool,
    /// `CACHELOCK_REDIS_CLUSTER_URLS` gave `--redis-cluster`.
    pub redis_cluster: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command while holding a lock; exit with its status (75 if the key is held).
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Tell who holds a key (exit 0 if held, 1 if free). Not on memory://.
    Status(StatusArgs),
    /// List the held locks, optionally only keys starting with PREFIX (on a cluster: of
    /// every node). Not on memory://.
    List(ListArgs),
    /// Delete a lock whoever holds it (admin override; needs --force). Not on memory://.
    Release(ReleaseArgs),
    /// Serve hierarchical locks over HTTP with Locker's API (/canhaz, /nowant, /dohaz).
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
}

const RUN_AFTER_HELP: &str = "\
The lock is renewed while CMD runs and released when it exits. If cachelock
itself is killed, the lock frees itself after its TTL and CMD gets SIGTERM
(Linux). SIGINT, SIGTERM and SIGHUP sent to cachelock are forwarded to CMD;
a terminal's Ctrl-C reaches CMD directly and is not sent twice.

Where the lock lives: without --store (or CACHELOCK_STORE), --redis or
--redis-cluster, in this user's lock directory on this host
(/tmp/cachelock-<uid>, or $CACHELOCK_DIR): two runs of this user on this host,
from cron, a service or a shell, exclude each other with no server.
Across machines, use --store redis://... (or another shared store).
--store memory:// keeps the lock in this process (it excludes nobody).

Examples:
  cachelock run -k nightly-backup -- ./backup.sh   # this host, no server
  cachelock run -k nightly-backup --store file:///var/lock/backup -- ./backup.sh
  cachelock run -k nightly-backup --redis redis://redis.lan -- ./backup.sh
  CACHELOCK_REDIS_URL=redis://127.0.0.1 cachelock run -k deploy -w 5m -- make
  cachelock run -k nightly-backup \
      --redis-cluster redis://10.0.0.1:7000,redis://10.0.0.2:7000 -- ./backup.sh
  cachelock run -k cron-sync -E 0 -q -- sync.sh   # held: exit 0, say nothing";

const SERVE_AFTER_HELP: &str = "\
Endpoints (GET). Answers are JSON; errors are {\"ok\": false, \"error\": ...}
with a 4xx status, or 503 when the backend is down.
  /canhaz/<path>?id=&lockParents=&lockChildren=&ttl=
        lock it: {ok: true, token, path, ttl}
        or, when something is in the way: {ok: false, lockedBy, lockedPath, ttl}
  /nowant/<path>?token=           release it: {ok: true}
  /stillwant/<path>?token=&ttl=   extend it: {ok: true, ttl}
  /dohaz/<path>                   who is in the way: {lockedBy, lockedPath, ttl}

A lock on /a/b also excludes /a and /a/b/c (lockParents=false and
lockChildren=false relax that), never /a/c. A granted lock ends with /nowant
or its TTL (/stillwant extends it).

Locks live in the store (default: this user's lock directory, shared by every
serve process of this user on this host; --store, --redis or --redis-cluster
to share them across hosts).

Example:
  cachelock serve --listen 127.0.0.1:8765
  cachelock serve --listen 127.0.0.1:8765 --redis redis://127.0.0.1:6379
  cachelock serve --redis-cluster redis://10.0.0.1:7000,redis://10.0.0.2:7000
  curl 'http://127.0.0.1:8765/canhaz/ci/runner-3?id=job-42&ttl=30m'";

/// `cachelock run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The lock's key.
    #[arg(short, long, value_name = "KEY")]
    pub key: String,

    /// How long the lock outlives a cachelock that was killed (renewed while CMD runs).
    #[arg(long, default_value = "60s", value_parser = parse_ttl, value_name = "DURATION")]
    pub ttl: Duration,

    /// Wait up to this long for a held key before giving up (default: do not wait).
    #[arg(short, long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,

    /// Stored with the lock so that `status` and `list` show who holds it
    /// (default: CMD's file name). Not secret.
    #[arg(short, long, value_name = "LABEL")]
    pub label: Option<String>,

    /// Send SIGTERM to CMD if the lock is lost while it runs (its renewal was refused or
    /// the backend was unreachable for a whole TTL). Without it, a warning is printed.
    #[arg(long)]
    pub kill_on_lost: bool,

    /// Say nothing when the key is held (with `-E 0`, cron then mails nothing).
    #[arg(short, long)]
    pub quiet: bool,

    /// Exit code when the key is held.
    #[arg(short = 'E', long, default_value_t = crate::exit::TEMPFAIL, value_name = "CODE")]
    pub conflict_exit_code: u8,

    /// The command to run, and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `cachelock status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The key.
    pub key: String,

    /// Print JSON: {"key", "held", "host", "pid", "label", "ttl_ms"}.
    #[arg(long)]
    pub json: bool,
}

/// `cachelock list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys that start with this (after the store's --prefix).
    #[arg(value_name = "PREFIX", default_value = "")]
    pub filter: String,

    /// Print a JSON array of {"key", "held", "host", "pid", "label", "ttl_ms"}.
    #[arg(long)]
    pub json: bool,
}

/// `cachelock release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The key.
    pub key: String,

    /// Required: the holder is not told, and may still be working when the next holder
    /// starts. Stop it first.
    #[arg(long)]
    pub force: bool,
}

/// `cachelock serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8765", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// TTL of a lock taken without a `ttl` parameter.
    #[arg(long, default_value = "1h", value_parser = parse_ttl, value_name = "DURATION")]
    pub default_ttl: Duration,

    /// Longest TTL a client may ask for.
    #[arg(long, default_value = "24h", value_parser = parse_ttl, value_name = "DURATION")]
    pub max_ttl: Duration,

    /// The lock space of the HTTP locks: serve processes on the same store with the same
    /// --space share their locks. Kept apart from the keys of `run`
    /// (--prefix).
    #[arg(
        long,
        env = "CACHELOCK_SPACE",
        hide_env_values = true,
        default_value = "cachelock-http:",
        value_name = "SPACE"
    )]
    pub space: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
