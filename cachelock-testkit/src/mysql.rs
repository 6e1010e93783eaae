//! Test databases for the MariaDB/MySQL store: [`MysqlDb`], a fresh database per test,
//! dropped at the end, and [`MysqlServer`], a private `mariadbd` of a test's own.
//!
//! Where the database lives, chosen once per test process:
//!
//! 1. the server of `CACHELOCK_TEST_MYSQL_URL` (`mysql://user:password@host:port`), if set;
//! 2. else the local server on 127.0.0.1:3306 as `root` without a password, if it answers
//!    (the machine's MariaDB, as this project's machines run it);
//! 3. else a private server: `mariadb-install-db` into a temp dir and `mariadbd` on a free
//!    loopback port (as the `mysql` user, or `nobody`, when the tests run as root), shared
//!    by the tests of the process while any of them runs, killed after the last.
//!
//! SQL is run with the command-line client (`mariadb`, else `mysql`, from `PATH`, or
//! `CACHELOCK_MYSQL_CLIENT_BIN`), so this crate needs no MySQL driver; the password goes in
//! the client's environment (`MYSQL_PWD`), never on its command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::port::free_port;
use crate::process::{log_tail, ServerProcess, StartError, TempDir, START_TIMEOUT};

/// Where a server is and how to log in.
#[derive(Clone, Debug)]
struct Login {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl Login {
    fn url(&self, port: u16, db: &str) -> String {
        let auth = match &self.password {
            Some(password) => format!("{}:{}@", self.user, encode(password)),
            None => format!("{}@", self.user),
        };
        format!("mysql://{auth}{}:{port}/{db}", self.host)
    }
}

/// Percent-encodes what a URL's user-info cannot hold as is.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `mysql://user:password@host:port[/...]`.
fn parse_login(url: &str) -> Login {
    let rest = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let (userinfo, hostport) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => ("root", rest),
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (decode(user), Some(decode(password))),
        None => (decode(userinfo), None),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(3306)),
        None => (hostport.to_owned(), 3306),
    };
    let host = if host == "localhost" {
        "127.0.0.1".to_owned()
    } else {
        host
    };
    Login {
        host,
        port,
        user,
        password,
    }
}

fn client_bin() -> String {
    if let Ok(bin) = std::env::var("CACHELOCK_MYSQL_CLIENT_BIN") {
        return bin;
    }
    for bin in ["mariadb", "mysql"] {
        if Command::new(bin).arg("--version").output().is_ok() {
            return bin.to_owned();
        }
    }
    panic!("no MariaDB/MySQL command-line client (`mariadb` or `mysql`) found: install it (Debian/Ubuntu: apt-get install -y mariadb-client), or set CACHELOCK_MYSQL_CLIENT_BIN")
}

/// Runs `sql` with the command-line client; the rows of its output, tab-separated, without
/// the header line.
fn run_sql(login: &Login, db: Option<&str>, sql: &str) -> Result<String, String> {
    let mut command = Command::new(client_bin());
    command
        .arg("--protocol=TCP")
        .arg(format!("--host={}", login.host))
        .arg(format!("--port={}", login.port))
        .arg(format!("--user={}", login.user))
        .arg("--connect-timeout=5")
        .arg("--batch")
        .arg("--skip-column-names")
        .arg("--execute")
        .arg(sql);
    if let Some(db) = db {
        command.arg(format!("--database={db}"));
    }
    match &login.password {
        Some(password) => command.env("MYSQL_PWD", password),
        None => command.env_remove("MYSQL_PWD"),
    };
    let output = command
        .output()
        .map_err(|e| format!("cannot run the MariaDB/MySQL client: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// The server the test databases of this process live on.
enum Shared {
    /// An outside server (the env var's, or the local one).
    Outside(Login),
    /// The private server of this process, while some database uses it.
    Private(Mutex<std::sync::Weak<MysqlServer>>),
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var("CACHELOCK_TEST_MYSQL_URL") {
            let login = parse_login(&url);
            if let Err(error) = run_sql(&login, None, "SELECT 1") {
                panic!(
                    "CACHELOCK_TEST_MYSQL_URL names a server that does not answer ({}:{}): {error}",
                    login.host, login.port
                );
            }
            return Shared::Outside(login);
        }
        let local = Login {
            host: "127.0.0.1".to_owned(),
            port: 3306,
            user: "root".to_owned(),
            password: None,
        };
        if run_sql(&local, None, "SELECT 1").is_ok() {
            return Shared::Outside(local);
        }
        Shared::Private(Mutex::new(std::sync::Weak::new()))
    })
}

/// A fresh database (`cachelock_t_<random>`) for one test, on the server chosen as the
/// [module docs](self) say; dropped (`DROP DATABASE`) on `Drop`.
pub struct MysqlDb {
    login: Login,
    name: String,
    /// Keeps the private server alive while this database is used.
    _server: Option<Arc<MysqlServer>>,
}

impl MysqlDb {
    /// Creates a fresh, empty database.
    pub fn create() -> MysqlDb {
        let (login, server) = match shared() {
            Shared::Outside(login) => (login.clone(), None),
            Shared::Private(slot) => {
                let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                let server = slot.upgrade().unwrap_or_else(|| {
                    let server = Arc::new(MysqlServer::start());
                    *slot = Arc::downgrade(&server);
                    server
                });
                (server.login(), Some(server))
            }
        };
        MysqlDb::create_on(login, server)
    }

    fn create_on(login: Login, server: Option<Arc<MysqlServer>>) -> MysqlDb {
        let name = format!("cachelock_t_{}", unique_suffix());
        run_sql(&login, None, &format!("CREATE DATABASE `{name}`"))
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        MysqlDb {
            login,
            name,
            _server: server,
        }
    }

    /// The URL of this database (with the password, if the server needs one).
    pub fn url(&self) -> String {
        self.login.url(self.login.port, &self.name)
    }

    /// The URL of this database through another port on the same host (a [`CutProxy`]'s).
    ///
    /// [`CutProxy`]: crate::CutProxy
    pub fn url_via(&self, port: u16) -> String {
        self.login.url(port, &self.name)
    }

    /// The server's address, for a [`CutProxy`](crate::CutProxy) (a loopback address).
    pub fn addr(&self) -> SocketAddr {
        format!("{}:{}", self.login.host, self.login.port)
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "the test server's host {:?} is not an IP address",
                    self.login.host
                )
            })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user the tests log in as, and its password.
    pub fn credentials(&self) -> (String, Option<String>) {
        (self.login.user.clone(), self.login.password.clone())
    }

    /// Runs `sql` in this database with the command-line client; its output rows,
    /// tab-separated. Panics with the client's message on an error.
    pub fn sql(&self, sql: &str) -> String {
        run_sql(&self.login, Some(&self.name), sql)
            .unwrap_or_else(|e| panic!("SQL failed: {sql}: {e}"))
    }

    /// Like [`sql`](MysqlDb::sql), but the client's error message instead of a panic.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        run_sql(&self.login, Some(&self.name), sql)
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        let _ = run_sql(
            &self.login,
            None,
            &format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{mixed:016x}")
}

fn server_bin() -> String {
    if let Ok(bin) = std::env::var("MARIADBD_BIN") {
        return bin;
    }
    for bin in [
        "mariadbd",
        "/usr/sbin/mariadbd",
        "mysqld",
        "/usr/sbin/mysqld",
    ] {
        if Path::new(bin).is_absolute() && Path::new(bin).exists() {
            return bin.to_owned();
        }
        if !Path::new(bin).is_absolute() && Command::new(bin).arg("--version").output().is_ok() {
            return bin.to_owned();
        }
    }
    "mariadbd".to_owned()
}

/// Whether this process runs as root (`mariadbd` refuses to run as root unless told to).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// The unprivileged user to run the server as when the tests run as root.
fn server_user() -> Option<&'static str> {
    if !is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let has = |user: &str| passwd.lines().any(|l| l.starts_with(&format!("{user}:")));
    Some(if has("mysql") { "mysql" } else { "nobody" })
}

/// A private `mariadbd` on a free loopback port, its data in a temp dir, killed on `Drop`;
/// `root` logs in without a password over TCP. [`restart`](MysqlServer::restart) kills it
/// and starts it again on the same port and data (a crash and restart: InnoDB recovers).
pub struct MysqlServer {
    port: u16,
    dir: TempDir,
    process: Mutex<Option<ServerProcess>>,
}

impl MysqlServer {
    /// Installs a data directory and starts the server. Panics with the log's tail if it
    /// does not come up.
    pub fn start() -> MysqlServer {
        let dir = TempDir::new("mariadb");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let user = server_user();
        if let Some(user) = user {
            chown_recursive(dir.path(), user);
        }
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if let Some(user) = user {
            install.arg(format!("--user={user}"));
        }
        let output = install.output().unwrap_or_else(|e| {
            panic!("`mariadb-install-db` cannot run ({e}): install it (Debian/Ubuntu: apt-get install -y mariadb-server)")
        });
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let server = MysqlServer {
            port: free_port(),
            dir,
            process: Mutex::new(None),
        };
        server.launch();
        server
    }

    fn launch(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("mariadbd.log");
        let mut args = vec![
            "--no-defaults".to_owned(),
            format!("--datadir={}", data.display()),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--socket={}", self.dir.path().join("mysqld.sock").display()),
            format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ),
            "--skip-name-resolve".to_owned(),
            "--innodb-buffer-pool-size=32M".to_owned(),
            "--innodb-log-file-size=16M".to_owned(),
        ];
        if let Some(user) = server_user() {
            args.push(format!("--user={user}"));
        }
        let login = self.login();
        loop {
            match ServerProcess::start(
                &server_bin(),
                "install it (Debian/Ubuntu: apt-get install -y mariadb-server), or set MARIADBD_BIN",
                &args,
                &log,
                || run_sql(&login, None, "SELECT 1").is_ok(),
            ) {
                Ok(process) => {
                    *self.process.lock().unwrap_or_else(|p| p.into_inner()) = Some(process);
                    return;
                }
                Err(StartError::Exited(_)) if Instant::now() < deadline => {
                    // The port (or the data dir's lock, after a kill) may free in a moment.
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(_) => panic!(
                    "mariadbd did not start on port {}:\n{}",
                    self.port,
                    log_tail(&log)
                ),
            }
        }
    }

    fn login(&self) -> Login {
        Login {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            user: "root".to_owned(),
            password: None,
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A fresh database on this server (dropped on `Drop`).
    pub fn database(&self) -> MysqlDb {
        MysqlDb::create_on(self.login(), None)
    }

    /// Kills the server (SIGKILL: a crash).
    pub fn stop(&self) {
        let process = self
            .process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(process);
    }

    /// Kills the server and starts it again on the same port and data.
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

fn chown_recursive(path: &Path, user: &str) {
    let _ = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(path)
        .status();
    // The temp dir's parents must let the user in (they do: /tmp is world-searchable).
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_read_from_urls() {
        let login = parse_login("mysql://app:p%40ss@localhost:3307/db");
        assert_eq!(
            (login.host.as_str(), login.port, login.user.as_str()),
            ("127.0.0.1", 3307, "app")
        );
        assert_eq!(login.password.as_deref(), Some("p@ss"));
        assert_eq!(login.url(4000, "x"), "mysql://app:p%40ss@127.0.0.1:4000/x");
        let bare = parse_login("mysql://root@127.0.0.1");
        assert_eq!((bare.port, bare.password), (3306, None));
    }
}
