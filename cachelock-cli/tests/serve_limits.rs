//! `cachelock serve`'s limits, end to end: body size (413), locks per client (429), the
//! header read timeout (a slow client is disconnected) and connections (503).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{raw_exchange, raw_json, raw_status, Server};
use common::*;

#[test]
fn a_body_over_max_body_size_gets_413_by_length_or_once_sent_chunked() {
    let server = Server::memory(&["--max-body-size", "100"]);
    // Declared too large: refused from the headers alone.
    let answer = raw_exchange(
        server.address(),
        b"GET /canhaz/big HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&answer), Some(413), "{answer}");
    let body = raw_json(&answer);
    assert_eq!(body["ok"], false);
    assert!(
        body["error"].as_str().unwrap().contains("--max-body-size"),
        "{body}"
    );

    // Chunked, with no length up front: refused once more than 100 bytes came.
    let mut request =
        b"GET /canhaz/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    request.extend_from_slice(format!("{:x}\r\n{}\r\n0\r\n\r\n", 150, "b".repeat(150)).as_bytes());
    let answer = raw_exchange(server.address(), &request);
    assert_eq!(raw_status(&answer), Some(413), "{answer}");

    // Neither took the lock; a body within the limit is read and ignored.
    let answer = raw_exchange(
        server.address(),
        b"GET /canhaz/big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    assert_eq!(raw_json(&answer)["ok"], true, "{answer}");
}

#[test]
fn a_client_address_holding_max_locks_gets_429_until_it_releases_one() {
    let server = Server::memory(&["--max-locks-per-client", "2"]);
    let a = server.lock("/a");
    server.lock("/b");
    let (status, body) = server.get("/canhaz/c");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["ok"], false);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-locks-per-client"),
        "{body}"
    );
    // The 429 took nothing: /c is free.
    assert_eq!(
        server.get("/dohaz/c").1["lockedBy"],
        serde_json::Value::Null
    );
    // Refusals and queries do not count; a release frees a place.
    assert_eq!(server.get("/dohaz/a").0, 200);
    server.unlock("/a", &a);
    server.lock("/c");
    assert_eq!(server.get("/canhaz/d").0, 429);
    // An expired lock frees its place too.
    let server = Server::memory(&["--max-locks-per-client", "1"]);
    server.lock("/short?ttl=1s");
    assert_eq!(server.get("/canhaz/other").0, 429);
    wait_until("the 1s lock to expire and free the place", || {
        server.get("/canhaz/other").0 == 200
    });
}

#[test]
fn a_client_slower_than_the_header_read_timeout_is_disconnected() {
    let server = Server::memory(&["--header-read-timeout", "1s"]);
    let mut slow = TcpStream::connect(server.address()).unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    let started = Instant::now();
    // Half a request, then nothing.
    slow.write_all(b"GET /canhaz/slow HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let closed = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    // Closed (EOF or reset), with at most a 408 said first: never a lock.
    assert!(
        closed.is_ok()
            || matches!(
                closed.as_ref().map_err(|e| e.kind()),
                Err(std::io::ErrorKind::ConnectionReset)
            ),
        "{closed:?}"
    );
    assert!(
        answer.is_empty() || raw_status(&answer) == Some(408),
        "{answer:?}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert_eq!(
        server.get("/dohaz/slow").1["lockedBy"],
        serde_json::Value::Null
    );
}

#[test]
fn connections_beyond_max_connections_get_503_and_a_freed_slot_serves_again() {
    let server = Server::memory(&["--max-connections", "2", "--header-read-timeout", "5m"]);
    // Two idle connections take both slots: the server accepts in order, so they are
    // taken before the third connection is accepted.
    let first = TcpStream::connect(server.address()).unwrap();
    let second = TcpStream::connect(server.address()).unwrap();
    let answer = raw_exchange(
        server.address(),
        b"GET /dohaz/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&answer), Some(503), "{answer}");
    let body = raw_json(&answer);
    assert_eq!(body["ok"], false);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-connections"),
        "{body}"
    );

    drop(first);
    drop(second);
    wait_until("a slot to be free again", || {
        raw_status(&raw_exchange(
            server.address(),
            b"GET /dohaz/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )) == Some(200)
    });
}
