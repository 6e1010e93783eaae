//! The command line: every command, option and help text (clap derive).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::duration::{parse_duration, parse_ttl};
use crate::exit::EXIT_CODES_HELP;

/// Locks from the shell: run a command while holding a lock (a `flock` that works across
/// the processes of this host with no server, and across machines through Redis, Redis
/// Cluster or another --store), inspect and free locks, or serve them over HTTP.
#[derive(Debug, Parser)]
#[command(
    name = "cachelock",
    version,
    long_version = long_version(),
    after_help = top_after_help()
)]
pub struct Cli {
    /// Show cachelock's events on stderr (lock acquired, released, lost...): -v info, -vv
    /// debug, -vvv trace. RUST_LOG overrides it.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Where the locks live.
    #[command(flatten)]
    pub backend: BackendArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The heading of the store options in every command's help, which points to the one
/// description of the stores, in `cachelock --help` ([`STORES_HELP`]).
const STORE_HEADING: &str = "Lock store (see cachelock --help)";
/// The same heading in `cachelock --help` itself, and in the man pages.
pub const STORE_HEADING_HERE: &str = "Lock store";

/// The command line as parsed and documented: [`Cli`], with the store options of
/// `cachelock --help` under a heading that does not point to itself, and none listed by
/// `completions` and `man`.
pub fn command() -> clap::Command {
    built(Cli::command())
}

/// Builds `command` (a [`Cli::command`], maybe adjusted) and adjusts its help as
/// [`command`] says.
pub fn built(mut command: clap::Command) -> clap::Command {
    // The store options and -v are global: building copies them, heading and all, into
    // every subcommand. Only the top level's own copies are renamed afterwards, and the
    // commands that open no store and log nothing do not list them (they accept them).
    command.build();
    let mut command = command.mut_args(|arg| {
        if arg.get_help_heading() == Some(STORE_HEADING) {
            arg.help_heading(STORE_HEADING_HERE)
        } else {
            arg
        }
    });
    for name in ["completions", "man"] {
        command = command.mut_subcommand(name, |sub| {
            sub.mut_args(|arg| {
                if arg.get_help_heading() == Some(STORE_HEADING) || arg.get_id() == "verbose" {
                    arg.hide(true)
                } else {
                    arg
                }
            })
        });
    }
    command
}

/// The lock backend, shared by every command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = STORE_HEADING)]
pub struct BackendArgs {
    /// Where the locks live, as a URL: file:///dir, redis://host, redis-cluster://h1,h2,
    /// memory://, ... (default: this user's lock directory on this host).
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub store: Option<String>,

    /// One Redis server holding the locks (the same as --store with that URL).
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub redis: Option<String>,

    /// A Redis Cluster holding the locks: some of its node URLs.
    #[arg(
        long,
        global = true,
        env = "CACHELOCK_REDIS_CLUSTER_URLS",
        hide_env_values = true,
        value_name = "URL[,URL...]",
        value_delimiter = ','
    )]
    pub redis_cluster: Vec<String>,

    /// Which of the store options came from the environment (for error messages); set by
    /// `main` from clap's value sources.
    #[arg(skip)]
    pub from_env: FromEnv,
}

/// The key prefix of the commands that name keys (`run`, `status`, `list`, `release`);
/// `serve` has its own lock space (`--space`) instead.
#[derive(Debug, Clone, Args)]
pub struct PrefixArg {
    /// Put in front of every key in the store, so that different applications' keys do not
    /// meet (`serve` uses --space instead).
    #[arg(
        long,
        env = "CACHELOCK_PREFIX",
        hide_env_values = true,
        default_value = cachelock::DEFAULT_PREFIX,
        value_name = "PREFIX"
    )]
    pub prefix: String,
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
    /// Print a shell completion script on stdout (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout: `cachelock man | man -l -`.
    #[command(after_help = MAN_AFTER_HELP)]
    Man(ManArgs),
}

impl Command {
    /// The key prefix of a command that names keys; `None` for the others.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Command::Run(args) => Some(&args.prefix.prefix),
            Command::Status(args) => Some(&args.prefix.prefix),
            Command::List(args) => Some(&args.prefix.prefix),
            Command::Release(args) => Some(&args.prefix.prefix),
            Command::Serve(_) | Command::Completions(_) | Command::Man(_) => None,
        }
    }
}

/// `cachelock --version`: the version, the stores compiled in and TLS, e.g.
/// `0.1.0 (stores: memory, file, redis, redis-cluster, postgres; tls: rediss)`. `-V` prints
/// the version alone.
pub fn long_version() -> &'static str {
    static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        // The stores `--store` accepts in this build (the `cachelock` features this crate
        // enables: memory, file and Redis always, the others by this crate's features).
        let optional = [
            ("postgres", cfg!(feature = "postgres")),
            ("mysql", cfg!(feature = "mysql")),
            ("memcached", cfg!(feature = "memcached")),
            ("etcd", cfg!(feature = "etcd")),
        ];
        let mut stores = vec!["memory", "file", "redis", "redis-cluster"];
        stores.extend(optional.iter().filter(|(_, on)| *on).map(|(name, _)| *name));
        let tls = if cfg!(feature = "redis-tls") {
            "rediss"
        } else {
            "none"
        };
        format!(
            "{} (stores: {}; tls: {tls})",
            env!("CARGO_PKG_VERSION"),
            stores.join(", ")
        )
    });
    LONG_VERSION.as_str()
}

/// The end of `cachelock --help`: the one description of the stores, logging, and the exit
/// codes. The subcommands' help names the store options briefly and points here.
fn top_after_help() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("{STORES_HELP}\n\n{LOGGING_HELP}\n\n{EXIT_CODES_HELP}")
    });
    TEXT.as_str()
}

/// Where the locks live: the one place the help describes the stores.
const STORES_HELP: &str = "\
Stores (where the locks live; the same options for every command):
  (none)          this user's lock directory on this host: /tmp/cachelock-<uid>,
                  or $CACHELOCK_DIR (created 0700, refused unless owned by this
                  user and writable by nobody else). Every process of the user
                  on this host (cron jobs, services, shells) shares it, with no
                  server.
  --store URL     any store by its URL (CACHELOCK_STORE):
                    file:///var/lock/myapp  lock files in that directory, for
                                            every user who can write there
                    redis://host:6379/0, rediss://host (TLS), redis+unix:///path
                    redis-cluster://host1:7000,host2:7000
                    memory://               this process only: excludes nobody
                                            else (status, list, release refuse it)
                    postgres://, mysql://, memcache://, etcd://
                                            when built with that store (cachelock
                                            --version lists them)
  --redis URL     one Redis server (CACHELOCK_REDIS_URL); the same as --store URL
  --redis-cluster URL[,URL...]
                  a Redis Cluster (CACHELOCK_REDIS_CLUSTER_URLS): any reachable
                  nodes, comma-separated or the option repeated (the others are
                  discovered); name more than one so that cachelock starts while
                  a node is down. A comma inside a password is written %2C.

One store at most: two of --store, --redis and --redis-cluster, on the command
line or in the environment, is an error (exit 64), never a silent pick: every
process sharing a key must name the same store. A Redis Cluster is named, it is
not detected from the URL: it is a different store from one server (a lock on
a cluster is only as safe as the node that holds its slot).

Keys are stored as <prefix><key> (--prefix, default cachelock:); serve keeps
its locks in --space instead.";

/// `-v` and `RUST_LOG`.
const LOGGING_HELP: &str = "\
Logging:
  -v shows cachelock's events on stderr (lock acquired, released, lost; serve's
  requests), -vv their details, -vvv every renewal. RUST_LOG overrides -v (e.g.
  RUST_LOG=cachelock=debug). serve logs its requests by default.";

const RUN_AFTER_HELP: &str = "\
The lock is renewed while CMD runs and released when it exits. If cachelock
itself is killed, the lock frees itself after its TTL and CMD gets SIGTERM
(Linux). SIGINT, SIGTERM and SIGHUP sent to cachelock are forwarded to CMD;
a terminal's Ctrl-C reaches CMD directly and is not sent twice.

Where the lock lives: by default in this user's lock directory, shared by
every process of the user on this host, with no server; --store, --redis or
--redis-cluster for a lock across machines (see cachelock --help).

Environment of CMD (cachelock's own, plus):
  CACHELOCK_KEY    the key, as given to --key
  CACHELOCK_FENCE  the fencing token of this hold, a decimal number greater than
                   that of every earlier hold of the key: send it with each
                   write and let the target refuse older ones, e.g.
                   UPDATE jobs SET ..., fence = $CACHELOCK_FENCE
                     WHERE name = 'backup' AND fence < $CACHELOCK_FENCE

Examples:
  cachelock run -k nightly-backup -- ./backup.sh   # this host, no server
  cachelock run -k nightly-backup --store file:///var/lock/backup -- ./backup.sh
  cachelock run -k nightly-backup --redis redis://redis.lan -- ./backup.sh
  CACHELOCK_REDIS_URL=redis://127.0.0.1 cachelock run -k deploy -w 5m -- make
  cachelock run -k nightly-backup \\
      --redis-cluster redis://10.0.0.1:7000,redis://10.0.0.2:7000 -- ./backup.sh
  cachelock run -k cron-sync -E 0 -q -- sync.sh   # held: exit 0, say nothing
  cachelock run -k report -- sh -c 'echo \"fence $CACHELOCK_FENCE\"; ./report.sh'";

const SERVE_AFTER_HELP: &str = "\
A lock on /a/b also excludes /a and /a/b/c (lockParents=false and
lockChildren=false relax that), never /a/c. A granted lock ends with /nowant
or its TTL (/stillwant extends it). Its fence is greater than that of every
lock granted before in this lock space: send it with your writes.

Locks live in the store (see cachelock --help): by default this user's lock
directory, shared by every serve process of the user on this host; --store,
--redis or --redis-cluster to share them across hosts. Every request is logged
on stderr (method, path, status, lock path; never a token).

Endpoints:
  GET only. Answers are JSON; errors are {\"ok\": false, \"error\": ...} with a
  4xx status, or 503 when the store is down.
  /canhaz/<path>?id=&lockParents=&lockChildren=&ttl=
        lock it: {ok: true, token, fence, path, ttl}
        or, when something is in the way: {ok: false, lockedBy, lockedPath, ttl}
  /nowant/<path>?token=           release it: {ok: true}
  /stillwant/<path>?token=&ttl=   extend it: {ok: true, ttl}
  /dohaz/<path>                   who is in the way: {lockedBy, lockedPath, ttl}

Running serve on a network:
  By default serve listens on 127.0.0.1 and trusts whoever reaches it. Before
  listening on another address, give it a token (--auth-token-file: clients
  send Authorization: Bearer <token>, else 401) and TLS (--tls-cert,
  --tls-key), so that the token does not cross the network in clear. serve
  still starts on a non-loopback address without a token (behind a firewall or
  a proxy that authenticates), but warns on stderr. The limits (--max-*,
  --header-read-timeout) answer with a JSON error: 413 for a body, 429 for a
  client's locks, 503 for connections; a slow client is disconnected.

Examples:
  cachelock serve --listen 127.0.0.1:8765
  cachelock serve --listen 127.0.0.1:8765 --redis redis://127.0.0.1:6379
  cachelock serve --redis-cluster redis://10.0.0.1:7000,redis://10.0.0.2:7000
  curl 'http://127.0.0.1:8765/canhaz/ci/runner-3?id=job-42&ttl=30m'
  cachelock serve --listen 0.0.0.0:8443 --auth-token-file /etc/cachelock/token \\
      --tls-cert /etc/cachelock/cert.pem --tls-key /etc/cachelock/key.pem
  curl -H \"Authorization: Bearer $(cat token)\" https://locks:8443/canhaz/a";

const COMPLETIONS_AFTER_HELP: &str = "\
Examples:
  cachelock completions bash > ~/.local/share/bash-completion/completions/cachelock
  cachelock completions zsh > ~/.zfunc/_cachelock   # with fpath+=(~/.zfunc)
  cachelock completions fish > ~/.config/fish/completions/cachelock.fish";

const MAN_AFTER_HELP: &str = "\
Examples:
  cachelock man | man -l -              # read it
  cachelock man > cachelock.1           # install it (and cachelock-run.1, ...)
  cachelock man run > cachelock-run.1";

/// `cachelock run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The lock's key (CMD finds it in $CACHELOCK_KEY).
    #[arg(short, long, value_name = "KEY")]
    pub key: String,

    /// The key's prefix in the store.
    #[command(flatten)]
    pub prefix: PrefixArg,

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

    /// Do not print the line saying that the key is held (with `-E 0`, cron then mails
    /// nothing). Warnings are still printed (a lock that excludes nobody, a lost lock).
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

    /// The key's prefix in the store.
    #[command(flatten)]
    pub prefix: PrefixArg,

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

    /// The keys' prefix in the store.
    #[command(flatten)]
    pub prefix: PrefixArg,

    /// Print a JSON array of {"key", "held", "host", "pid", "label", "ttl_ms"}.
    #[arg(long)]
    pub json: bool,
}

/// `cachelock release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The key.
    pub key: String,

    /// The key's prefix in the store.
    #[command(flatten)]
    pub prefix: PrefixArg,

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

    /// Require `Authorization: Bearer <token>` on every request; the file holds the token
    /// (surrounding white space trimmed). Without it anyone who reaches the port may take
    /// and release locks: serving a non-loopback address without a token warns on stderr.
    #[arg(long, value_name = "PATH", help_heading = SECURITY_HEADING)]
    pub auth_token_file: Option<PathBuf>,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    /// Needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key", help_heading = SECURITY_HEADING)]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). Needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert", help_heading = SECURITY_HEADING)]
    pub tls_key: Option<PathBuf>,

    /// Largest request body accepted, in bytes (no endpoint takes one): larger gets 413.
    #[arg(long, default_value_t = 16 * 1024, value_name = "BYTES", help_heading = LIMITS_HEADING)]
    pub max_body_size: usize,

    /// Time a client has to send a request's headers (and to finish the TLS handshake);
    /// a slower client, or a keep-alive connection idle that long, is disconnected.
    #[arg(long, default_value = "10s", value_parser = parse_timeout, value_name = "DURATION", help_heading = LIMITS_HEADING)]
    pub header_read_timeout: Duration,

    /// Most client connections at once (idle keep-alive ones count); one more is answered
    /// 503 and closed. serve raises its open files limit to the hard limit for them.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N", help_heading = LIMITS_HEADING)]
    pub max_connections: u32,

    /// Most locks one client IP address may hold at once (taken and neither released nor
    /// expired); one more `canhaz` gets 429.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), value_name = "N", help_heading = LIMITS_HEADING)]
    pub max_locks_per_client: u32,
}

/// The heading of serve's access options in --help.
const SECURITY_HEADING: &str = "Access (see Running serve on a network below)";

/// The heading of serve's limits in --help.
const LIMITS_HEADING: &str = "Limits";

/// A positive duration (`10s`, `500ms`).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be more than 0".to_owned());
    }
    Ok(duration)
}

/// `cachelock completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `cachelock man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's own page (e.g. `run` prints cachelock-run(1)); default: cachelock(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn only_the_subcommands_point_to_the_store_description() {
        let command = command();
        let heading = |command: &clap::Command| {
            command
                .get_arguments()
                .find(|a| a.get_id() == "store")
                .and_then(|a| a.get_help_heading())
                .map(str::to_owned)
        };
        assert_eq!(heading(&command).as_deref(), Some(STORE_HEADING_HERE));
        for sub in command
            .get_subcommands()
            .filter(|c| !["help", "completions", "man"].contains(&c.get_name()))
        {
            assert_eq!(
                heading(sub).as_deref(),
                Some(STORE_HEADING),
                "{}",
                sub.get_name()
            );
        }
    }
}
