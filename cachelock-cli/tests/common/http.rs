//! A `cachelock serve` process for one test, and a real HTTP client (ureq) to drive it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{cachelock, wait_exit};

/// `cachelock serve --listen 127.0.0.1:0 ARGS..`; SIGTERM and wait on drop. Its stderr
/// (the request log) is collected ([`Server::stderr`]) and shown if the test fails.
pub struct Server {
    child: Option<Child>,
    base: String,
    agent: ureq::Agent,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// A server on the in-memory store (`--store memory://`).
    pub fn memory(args: &[&str]) -> Server {
        Server::start(&["--store", "memory://"], args)
    }

    /// A server on the default store, this user's lock directory, with `runtime_dir` as its
    /// `CACHELOCK_DIR` (its `cachelock` subdirectory): servers given the same one share their locks.
    pub fn default_store(runtime_dir: &std::path::Path, args: &[&str]) -> Server {
        Server::start_with(&[], args, Some(runtime_dir))
    }

    /// A server on this Redis.
    pub fn redis(url: &str, args: &[&str]) -> Server {
        Server::start(&["--redis", url], args)
    }

    /// A server on the Redis Cluster reachable through these nodes.
    pub fn cluster(nodes: &[String], args: &[&str]) -> Server {
        Server::start(&["--redis-cluster", &nodes.join(",")], args)
    }

    fn start(store: &[&str], args: &[&str]) -> Server {
        Server::start_with(store, args, None)
    }

    fn start_with(store: &[&str], args: &[&str], runtime_dir: Option<&std::path::Path>) -> Server {
        let mut command = cachelock();
        if let Some(dir) = runtime_dir {
            command.env("CACHELOCK_DIR", dir.join("cachelock"));
        }
        command.args(store);
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cachelock serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        // The first line says where it listens: "cachelock: serving on http://127.0.0.1:P (...)".
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the serve banner");
        let base = line
            .split_whitespace()
            .find(|word| {
                word.starts_with("http://127.0.0.1:") || word.starts_with("https://127.0.0.1:")
            })
            .unwrap_or_else(|| panic!("no address in the banner {line:?}"))
            .to_owned();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Server {
            child: Some(child),
            base,
            agent,
            stderr,
        }
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:P` (`https://` with TLS).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The address it listens on, `127.0.0.1:P`.
    pub fn address(&self) -> std::net::SocketAddr {
        let host = self
            .base
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        host.parse().expect("an address")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether the server process still runs.
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        child.try_wait().expect("try_wait").is_none()
    }

    /// GET with these extra headers: status, JSON body and the response's headers.
    pub fn get_with(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, ureq::http::HeaderMap) {
        let mut request = self.agent.get(&format!("{}{path_and_query}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .call()
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
        let headers = response.headers().clone();
        let (status, body) = read(response, path_and_query);
        (status, body, headers)
    }

    /// GET `path_and_query` (as written, e.g. `/canhaz/a/b?id=x`): status and JSON body.
    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .agent
            .get(&format!("{}{path_and_query}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
        read(response, path_and_query)
    }

    /// Any method with an empty body: status, JSON body (`null` for HEAD), `Allow` header.
    pub fn request(&self, method: &str, path_and_query: &str) -> (u16, Value, Option<String>) {
        let url = format!("{}{path_and_query}", self.base);
        let response = match method {
            "HEAD" => {
                let response = self
                    .agent
                    .head(&url)
                    .call()
                    .unwrap_or_else(|e| panic!("HEAD {path_and_query}: {e}"));
                let allow = response
                    .headers()
                    .get("allow")
                    .map(|v| v.to_str().unwrap().to_owned());
                return (response.status().as_u16(), Value::Null, allow);
            }
            "POST" => self.agent.post(&url).send_empty(),
            "PUT" => self.agent.put(&url).send_empty(),
            "DELETE" => self.agent.delete(&url).call(),
            other => panic!("no helper for {other}"),
        }
        .unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"));
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = read(response, path_and_query);
        (status, body, allow)
    }

    /// `canhaz` that must succeed: the token.
    pub fn lock(&self, path_and_query: &str) -> String {
        let (status, body) = self.get(&format!("/canhaz{path_and_query}"));
        assert_eq!(
            (status, &body["ok"]),
            (200, &Value::Bool(true)),
            "canhaz{path_and_query}: {body}"
        );
        body["token"].as_str().expect("a token").to_owned()
    }

    /// `canhaz` that must be refused: the body.
    pub fn refused(&self, path_and_query: &str) -> Value {
        let (status, body) = self.get(&format!("/canhaz{path_and_query}"));
        assert_eq!(
            (status, &body["ok"]),
            (200, &Value::Bool(false)),
            "canhaz{path_and_query}: {body}"
        );
        body
    }

    /// `nowant` that must succeed.
    pub fn unlock(&self, path: &str, token: &str) {
        let (status, body) = self.get(&format!("/nowant{path}?token={token}"));
        assert_eq!(
            (status, body),
            (200, serde_json::json!({"ok": true})),
            "nowant{path}"
        );
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn stop(mut self) -> i32 {
        let child = self.child.take().expect("running");
        super::signal(child.id(), libc::SIGTERM);
        let output = wait_exit(child, "cachelock serve");
        output.status.code().expect("exited, not killed")
    }
}

fn read(response: ureq::http::Response<ureq::Body>, what: &str) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response
        .into_body()
        .read_to_string()
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{what}: every answer is JSON ({status}: {text})"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    (status, body)
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("cachelock serve's stderr:\n{}", self.stderr());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `request` as is on a new connection to `address` and reads the answer until the
/// server closes the connection (or 30 s pass): the answer's text, as far as it came (a
/// reset after part of it keeps that part). A failed write is ignored: the server may
/// answer before it read everything.
pub fn raw_exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP/1.1 answer (`None` if there was no status line).
pub fn raw_status(answer: &str) -> Option<u16> {
    let line = answer.lines().next()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    words.next()?.parse().ok()
}

/// The JSON body of a raw HTTP/1.1 answer with a `content-length` (the body after the
/// blank line).
pub fn raw_json(answer: &str) -> Value {
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body in {answer:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}
