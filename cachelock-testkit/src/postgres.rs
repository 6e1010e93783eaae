//! PostgreSQL for the postgres store's tests: [`TestDb`], a fresh database per test.
//!
//! The server is, in this order:
//!
//! 1. the one named by `CACHELOCK_TEST_POSTGRES_URL` (a URL to a database the user may
//!    `CREATE DATABASE` from, e.g. `postgres://postgres:pw@127.0.0.1:5432/postgres`);
//! 2. the local one on `127.0.0.1:5432`, user `postgres`, if it answers (Debian's default
//!    cluster, with `trust` or a `~/.pgpass`);
//! 3. a private server this process starts once, on a free loopback port, with `initdb`
//!    and `postgres` from `/usr/lib/postgresql/*/bin` (or `PATH`), as the user `postgres`
//!    through `runuser` when the tests run as root; it stops within a second of the test
//!    process's end. `CACHELOCK_TEST_POSTGRES_PRIVATE=1` skips the local server (to test
//!    this path).
//!
//! Every [`TestDb`] is `CREATE DATABASE cachelock_t_<random>`, dropped (`WITH (FORCE)`) on
//! `Drop`. Administrative SQL goes through `psql`, so the helper works from sync and async
//! tests alike.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::port::free_port;

/// The chosen server: a URL without a database, `postgres://user[:pw]@host:port`, plus the
/// query part to append (may be empty).
struct Server {
    base: String,
    query: String,
    admin_db: String,
    /// The private server's watchdog shell, kept for the life of the process.
    _private: Option<std::sync::Mutex<std::process::Child>>,
}

/// The directory of the PostgreSQL binaries (`initdb`, `postgres`, `psql`): the newest
/// `/usr/lib/postgresql/*/bin`, or `None` to use `PATH`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn bin(name: &str) -> String {
    match bin_dir() {
        Some(dir) => dir.join(name).display().to_string(),
        None => name.to_owned(),
    }
}

/// Runs `sql` with `psql` on `url`; the output rows (`-At`: unaligned, tuples only).
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new(bin("psql"))
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql ({e}): apt-get install -y postgresql-client"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// `scheme://authority` and `?query` of a URL, and its database name.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, format!("?{query}")),
        None => (rest, String::new()),
    };
    let (authority, db) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let db = if db.is_empty() { "postgres" } else { db };
    (format!("{scheme}://{authority}"), query, db.to_owned())
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("CACHELOCK_TEST_POSTGRES_URL") {
            let (base, query, admin_db) = split_url(&url);
            let server = Server {
                base,
                query,
                admin_db,
                _private: None,
            };
            if let Err(error) = psql(&server.url(&server.admin_db), "SELECT 1") {
                panic!("CACHELOCK_TEST_POSTGRES_URL does not answer: {error}");
            }
            return server;
        }
        let local = Server {
            base: "postgres://postgres@127.0.0.1:5432".to_owned(),
            query: String::new(),
            admin_db: "postgres".to_owned(),
            _private: None,
        };
        let force_private = std::env::var_os("CACHELOCK_TEST_POSTGRES_PRIVATE").is_some();
        if !force_private && psql(&local.url("postgres"), "SELECT 1").is_ok() {
            return local;
        }
        start_private()
    })
}

impl Server {
    fn url(&self, db: &str) -> String {
        format!("{}/{db}{}", self.base, self.query)
    }
}

/// Whether the tests run as root (then the server runs as `postgres`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args` as the server's user: through `runuser -u postgres --` when root.
fn as_server_user(program: &str, args: &[&str]) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

/// Starts a private server on a free port, stopped when this process ends.
fn start_private() -> Server {
    let dir = std::env::temp_dir().join(format!(
        "cachelock-testkit-pg-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("a directory for the private PostgreSQL server");
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres", &dir.display().to_string()])
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "cannot chown {} to postgres (is the postgresql package installed?)",
            dir.display()
        );
    }
    let data = dir.join("data");
    let data_s = data.display().to_string();
    let initdb = as_server_user(
        &bin("initdb"),
        &["-D", &data_s, "-A", "trust", "-U", "postgres", "--no-sync"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .output()
    .unwrap_or_else(|e| {
        panic!("cannot run initdb ({e}): apt-get install -y postgresql, or set CACHELOCK_TEST_POSTGRES_URL")
    });
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = free_port();
    // The server stops (fast shutdown) once this process is gone, checked every second.
    let script = format!(
        "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off \
         >{dir}/log 2>&1 & pg=$!; \
         while [ -d /proc/{me} ] && kill -0 $pg 2>/dev/null; do sleep 1; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
        postgres = bin("postgres"),
        data = data_s,
        dir = dir.display(),
        me = std::process::id(),
    );
    let watchdog = as_server_user("sh", &["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start the private PostgreSQL server");
    let server = Server {
        base: format!("postgres://postgres@127.0.0.1:{port}"),
        query: String::new(),
        admin_db: "postgres".to_owned(),
        _private: Some(std::sync::Mutex::new(watchdog)),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match psql(&server.url("postgres"), "SELECT 1") {
            Ok(_) => return server,
            Err(error) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                panic!("the private PostgreSQL server did not start: {error}\n{log}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn rand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", hasher.finish())
}

/// A fresh database for one test, dropped on `Drop`.
///
/// ```no_run
/// let db = cachelock_testkit::postgres::TestDb::create();
/// println!("{}", db.url()); // postgres://postgres@127.0.0.1:5432/cachelock_t_…
/// ```
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// Creates `cachelock_t_<random>` on the test server (see the module docs).
    pub fn create() -> TestDb {
        let server = server();
        let name = format!("cachelock_t_{}", rand_suffix());
        psql(
            &server.url(&server.admin_db),
            &format!("CREATE DATABASE {name}"),
        )
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        TestDb { name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL to the database (with the server's credentials).
    pub fn url(&self) -> String {
        server().url(&self.name)
    }

    /// The server's TCP address, if it is on a loopback address (what a
    /// [`CutProxy`](crate::CutProxy) forwards to).
    pub fn addr(&self) -> Option<SocketAddr> {
        let authority = server().base.split_once("://")?.1;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let addr = host_port
            .to_socket_addrs()
            .ok()?
            .find(|a| a.ip().is_loopback())?;
        Some(addr)
    }

    /// A URL to the database through `127.0.0.1:port` (a proxy) instead of the server's
    /// own address.
    pub fn url_via(&self, port: u16) -> String {
        let server = server();
        let (scheme, authority) = server.base.split_once("://").expect("a URL");
        let userinfo = authority.rsplit_once('@').map_or("", |(u, _)| u);
        let at = if userinfo.is_empty() { "" } else { "@" };
        format!(
            "{scheme}://{userinfo}{at}127.0.0.1:{port}/{}{}",
            self.name, server.query
        )
    }

    /// Runs `sql` in the database with `psql`; its rows, one a line, columns separated by
    /// `|`. Panics on an error.
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.url(), sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = server();
        let _ = psql(
            &server.url(&server.admin_db),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A private PostgreSQL server of one test's own, on a free loopback port, with one database
/// (`cachelock_t`), killed on `Drop`: for fault tests that restart the server, which must
/// never touch the shared one. [`restart`](PostgresServer::restart) kills the postmaster
/// (SIGKILL: a crash) and starts it again on the same port and data; committed rows survive
/// (the server runs with `fsync=off`, which loses nothing when only the process dies).
pub struct PostgresServer {
    port: u16,
    dir: crate::process::TempDir,
    postmaster: std::sync::Mutex<Option<std::process::Child>>,
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

impl PostgresServer {
    /// `initdb` into a temp dir, starts the server and creates the database. Panics with the
    /// log if it does not come up.
    pub fn start() -> PostgresServer {
        let dir = crate::process::TempDir::new("pg-private");
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres", &dir.path().display().to_string()])
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "cannot chown {} to postgres (is the postgresql package installed?)",
                dir.path().display()
            );
        }
        let data = dir.path().join("data").display().to_string();
        let initdb = as_server_user(
            &bin("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run initdb ({e}): apt-get install -y postgresql"));
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let server = PostgresServer {
            port: free_port(),
            dir,
            postmaster: std::sync::Mutex::new(None),
        };
        server.launch();
        psql(&server.url_of("postgres"), "CREATE DATABASE cachelock_t")
            .unwrap_or_else(|e| panic!("cannot create the database: {e}"));
        server
    }

    fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the postmaster and waits until it answers; retried while the previous one's
    /// backends still hold the data directory (after a kill).
    fn launch(&self) {
        let log = self.dir.path().join("log");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut command = Command::new(bin("postgres"));
            command
                .args(["-D", &self.dir.path().join("data").display().to_string()])
                .args(["-p", &self.port.to_string()])
                .args(["-k", &self.dir.path().display().to_string()])
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("postgres log"));
            if is_root() {
                use std::os::unix::process::CommandExt;
                let (uid, gid) = postgres_ids().expect("a postgres user in /etc/passwd");
                command.uid(uid).gid(gid);
            }
            let mut child = command.spawn().expect("cannot start postgres");
            loop {
                if psql(&self.url_of("postgres"), "SELECT 1").is_ok() {
                    *self.postmaster.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                    return;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // e.g. the old backends still hold the data dir: try again
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("the private PostgreSQL server did not start:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                Instant::now() < deadline,
                "the private PostgreSQL server did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL to its database, `postgres://postgres@127.0.0.1:P/cachelock_t`.
    pub fn url(&self) -> String {
        self.url_of("cachelock_t")
    }

    /// Kills the postmaster (SIGKILL: a crash); its backends exit on their own.
    pub fn stop(&self) {
        let child = self
            .postmaster
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and data (crash recovery).
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        // The backends see the postmaster gone and exit; give them a moment before the
        // temp dir (and the data in it) is removed.
        std::thread::sleep(Duration::from_millis(300));
    }
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("port", &self.port)
            .finish()
    }
}
