//! Free loopback ports: [`free_port`] for a server, and a port pair for a cluster node.

use std::net::TcpListener;

/// A port that is free on 127.0.0.1 right now (the OS picks it: bind `127.0.0.1:0`).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// A free port `p` such that `p + 10000` (the cluster bus port) is free too.
pub(crate) fn free_cluster_port() -> u16 {
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if port > 55_535 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair (p, p + 10000) found on 127.0.0.1 for a cluster node");
}
