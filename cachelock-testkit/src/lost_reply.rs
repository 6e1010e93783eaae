//! [`LostReplyProxy`]: a TCP proxy in front of a real server that can lose one reply.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A loopback TCP proxy to a real `redis-server` that forwards every byte both ways, until
/// it is [armed](LostReplyProxy::arm): then the first command it sees that contains the
/// armed bytes (a key, say) is forwarded to the server and **runs there**, but its reply is
/// thrown away and the client's connection is cut, both ways. That is the fault of a
/// connection that dies after the server ran a command and before its reply arrived: the
/// client sees a dropped connection and cannot tell whether the command ran.
///
/// Later connections (the client's reconnect) are forwarded normally. Dropping the proxy
/// closes its listener and every connection it forwards.
pub struct LostReplyProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    /// The bytes whose first command loses its reply, while armed.
    armed: Mutex<Option<Vec<u8>>>,
    /// How many replies were thrown away.
    lost: AtomicUsize,
    stop: AtomicBool,
    /// Every socket opened, to shut them down on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn track(&self, stream: &TcpStream) {
        if let Ok(clone) = stream.try_clone() {
            self.sockets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(clone);
        }
    }

    /// Disarms and returns `true` if `bytes` contain the armed bytes.
    fn fires_on(&self, bytes: &[u8]) -> bool {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let hit = armed
            .as_deref()
            .is_some_and(|needle| bytes.windows(needle.len()).any(|w| w == needle));
        if hit {
            *armed = None;
        }
        hit
    }
}

impl LostReplyProxy {
    /// A proxy on a free loopback port to the server on `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> LostReplyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            armed: Mutex::new(None),
            lost: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("lost-reply-proxy".to_owned())
            .spawn(move || accept_loop(listener, target_port, accepting))
            .expect("cannot start the proxy thread");
        LostReplyProxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Loses the reply of the next command that contains `needle`, and cuts its connection.
    pub fn arm(&self, needle: &str) {
        *self.shared.armed.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(needle.as_bytes().to_vec());
    }

    /// How many replies were lost so far.
    pub fn lost(&self) -> usize {
        self.shared.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LostReplyProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; it sees `stop` and returns.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for socket in self
            .shared
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl std::fmt::Debug for LostReplyProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LostReplyProxy")
            .field("port", &self.port)
            .field("lost", &self.lost())
            .finish()
    }
}

fn accept_loop(listener: TcpListener, target_port: u16, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        shared.track(&client);
        shared.track(&server);
        let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        // Set once the command whose reply is to be lost went to the server.
        let lose_reply = Arc::new(AtomicBool::new(false));
        let (lose, watch) = (Arc::clone(&lose_reply), Arc::clone(&shared));
        let (mut to_server, mut to_client) = (server, client);
        let spawned = std::thread::Builder::new()
            .name("lost-reply-up".to_owned())
            .spawn(move || {
                let mut from_client = client_read;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match from_client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if watch.fires_on(&buf[..n]) {
                        // Before the command goes out: its reply cannot arrive first.
                        lose.store(true, Ordering::SeqCst);
                    }
                    if to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to_server.shutdown(Shutdown::Write);
            });
        if spawned.is_err() {
            continue;
        }
        let watch = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("lost-reply-down".to_owned())
            .spawn(move || {
                let mut from_server = server_read;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match from_server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if lose_reply.load(Ordering::SeqCst) {
                        // The server ran the command and answered: throw the answer away
                        // and cut the connection, as a network failure would.
                        watch.lost.fetch_add(1, Ordering::SeqCst);
                        let _ = to_client.shutdown(Shutdown::Both);
                        let _ = from_server.shutdown(Shutdown::Both);
                        return;
                    }
                    if to_client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to_client.shutdown(Shutdown::Write);
            });
    }
}
