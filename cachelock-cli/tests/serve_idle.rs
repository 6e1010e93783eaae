//! 1,000 idle connections (opened and left silent) do not keep `cachelock serve` from
//! serving a new client.
//!
//! The default --max-connections (1024) leaves room for them, and the header read timeout
//! is set far out here (5 minutes) so that the new client is served while the 1,000 are
//! all still open, not because the server dropped them: the test checks that they are.

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::Instant;

use common::http::Server;

const IDLE: usize = 1000;

/// Raises this process's soft limit on open files to at least `wanted` (up to the hard
/// limit), for the idle sockets.
// `rlim_t` is u64 on Linux but not on every platform.
#[allow(clippy::unnecessary_cast)]
fn raise_open_files(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if (limit.rlim_cur as u64) < wanted {
            limit.rlim_cur = limit.rlim_max.min(wanted as libc::rlim_t);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur as u64 >= wanted,
        "this test needs {wanted} open files; the hard limit is {}",
        limit.rlim_max
    );
}

#[test]
fn a_thousand_idle_connections_do_not_keep_a_new_client_from_being_served() {
    raise_open_files(IDLE as u64 + 256);
    let server = Server::memory(&["--header-read-timeout", "5m"]);
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            TcpStream::connect(server.address())
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();

    let started = Instant::now();
    let token = server.lock("/after/the/idle");
    let took = started.elapsed();
    server.unlock("/after/the/idle", &token);
    eprintln!("served a new client behind {IDLE} idle connections in {took:?}");

    // All 1,000 are still open: the server neither closed nor reset them.
    for (i, mut socket) in idle.into_iter().enumerate() {
        socket.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        match socket.read(&mut byte) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("idle connection {i} was closed or answered: {other:?}"),
        }
    }
    // And the server still answers.
    assert_eq!(server.get("/dohaz/after").0, 200);
}
