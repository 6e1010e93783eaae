//! One connection to the server, sync (`std::net`) or async (`tokio::net`): opening it (TCP,
//! authentication, the handshake that learns the server run) and one request/reply exchange,
//! each bounded by a timeout.

use std::future::Future;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::config::Target;
use super::proto::{self, Code, Header, Reply, Session, Stats, MAX_LINE};

/// A connection the operations (`ops.rs`) run on, sync or async alike: the sync one answers
/// its futures at once (they never wait on anything but its blocking socket).
pub(super) trait Exchange: Send {
    /// The server run this connection reaches.
    fn session(&self) -> Session;

    /// When the connection opened (to estimate the server's clock since).
    fn opened(&self) -> Instant;

    /// Sends `request` and reads its reply, within `timeout`.
    fn exchange<'a>(
        &'a mut self,
        request: &'a [u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Reply>> + Send + 'a;
}

/// `true` for an error that says the connection is gone (the server restarted, or the link
/// was cut), as opposed to a slow server or a refused command.
pub(super) fn is_dead(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

fn timed_out(what: &str, after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("memcached {what} timed out after {after:?}"),
    )
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "memcached closed the connection",
    )
}

/// Checks a line read with `read_until(b'\n')` and strips its `\r\n`.
fn line_of(buf: &[u8]) -> io::Result<&[u8]> {
    if buf.is_empty() {
        return Err(closed());
    }
    match buf.strip_suffix(b"\r\n") {
        Some(line) => Ok(line),
        None if buf.len() >= MAX_LINE => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "memcached sent an overlong reply line",
        )),
        None => Err(closed()),
    }
}

/// Checks a data block read with its `\r\n`, and strips it.
fn value_of(mut data: Vec<u8>) -> io::Result<Vec<u8>> {
    if !data.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "memcached sent a value without its \\r\\n",
        ));
    }
    data.truncate(data.len() - 2);
    Ok(data)
}

/// The handshake's replies, in order, into a [`Session`].
struct HandshakeReader {
    stats: Stats,
}

impl HandshakeReader {
    /// The reply to the authentication `set`. memcached answers a wrong password with
    /// `CLIENT_ERROR unauthenticated` (1.6.18) or `... authentication failure`: either way
    /// the credentials were refused.
    fn auth(header: io::Result<Header>) -> io::Result<()> {
        match header {
            Ok(header) if header.code == Code::Stored => Ok(()),
            Err(error) if error.kind() != io::ErrorKind::PermissionDenied => Err(error),
            _ => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "memcached refused the user and password of the URL",
            )),
        }
    }
}

// --- sync -----------------------------------------------------------------------------------

/// A blocking connection.
pub(super) struct SyncConn {
    reader: io::BufReader<TcpStream>,
    writer: TcpStream,
    session: Session,
    opened: Instant,
    /// The socket timeouts last set, to skip the system calls when unchanged.
    timeout: Option<Duration>,
}

impl SyncConn {
    /// Connects to `target` and runs the handshake, all within `timeout`.
    pub(super) fn open(target: &Target, marker: &str, timeout: Duration) -> io::Result<SyncConn> {
        let deadline = Instant::now() + timeout;
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| timed_out("connect", timeout))
        };
        let addrs: Vec<SocketAddr> = target.address().to_socket_addrs()?.collect();
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, left()?) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match stream {
            Some(stream) => stream,
            None => {
                return Err(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the host name resolved to nothing")
                }))
            }
        };
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut con = SyncConn {
            reader: io::BufReader::new(stream),
            writer,
            session: Session {
                run: 0,
                epoch_micros: 0,
                server_time: 0,
            },
            opened: Instant::now(),
            timeout: None,
        };
        let request = proto::handshake(
            marker,
            target
                .credentials
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.as_str())),
            rand::random(),
        );
        con.set_timeout(left()?)?;
        con.writer
            .write_all(&request)
            .map_err(|e| con.name_timeout(e, "connect"))?;
        let mut reader = HandshakeReader {
            stats: Stats::default(),
        };
        if target.credentials.is_some() {
            HandshakeReader::auth(
                con.read_header()
                    .map_err(|e| con.name_timeout(e, "connect")),
            )?;
        }
        loop {
            let header = con
                .read_header()
                .map_err(|e| con.name_timeout(e, "connect"))?;
            match header.code {
                Code::Stat => reader.stats.take(&header),
                Code::End => break,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "memcached answered `stats` with something else",
                    ))
                }
            }
        }
        let marker_reply = con
            .read_reply()
            .map_err(|e| con.name_timeout(e, "connect"))?;
        con.session = reader.stats.session(&marker_reply)?;
        con.opened = Instant::now();
        Ok(con)
    }

    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.timeout != Some(timeout) {
            self.timeout = None;
            // One socket under both halves: setting it once sets both.
            self.writer.set_read_timeout(Some(timeout))?;
            self.writer.set_write_timeout(Some(timeout))?;
            self.timeout = Some(timeout);
        }
        Ok(())
    }

    /// A socket timeout (`WouldBlock` on Unix) as a `TimedOut` error that says what waited.
    fn name_timeout(&self, error: io::Error, what: &str) -> io::Error {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                timed_out(what, self.timeout.unwrap_or_default())
            }
            _ => error,
        }
    }

    fn read_header(&mut self) -> io::Result<Header> {
        let mut buf = Vec::with_capacity(64);
        (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)?;
        proto::parse_line(line_of(&buf)?)
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let header = self.read_header()?;
        let value = if header.code == Code::Va {
            let mut data = vec![0; header.size + 2];
            self.reader.read_exact(&mut data)?;
            Some(value_of(data)?)
        } else {
            None
        };
        Ok(Reply::new(header, value))
    }

    fn exchange_blocking(&mut self, request: &[u8], timeout: Duration) -> io::Result<Reply> {
        self.set_timeout(timeout)?;
        self.writer
            .write_all(request)
            .and_then(|()| self.read_reply())
            .map_err(|e| self.name_timeout(e, "reply"))
    }
}

impl Exchange for SyncConn {
    fn session(&self) -> Session {
        self.session
    }

    fn opened(&self) -> Instant {
        self.opened
    }

    fn exchange<'a>(
        &'a mut self,
        request: &'a [u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Reply>> + Send + 'a {
        std::future::ready(self.exchange_blocking(request, timeout))
    }
}

/// Runs a future made of sync exchanges: each is ready at once, so one poll completes it.
pub(super) fn now<T>(future: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(outcome) => outcome,
        std::task::Poll::Pending => Err(io::Error::other(
            "internal error: a sync memcached operation waited on a future",
        )),
    }
}

// --- async ----------------------------------------------------------------------------------

/// A tokio connection; it belongs to the runtime it was opened in.
pub(super) struct AsyncConn {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    session: Session,
    opened: Instant,
}

impl AsyncConn {
    /// Connects to `target` and runs the handshake, all within `timeout`.
    pub(super) async fn open(
        target: &Target,
        marker: &str,
        timeout: Duration,
    ) -> io::Result<AsyncConn> {
        match tokio::time::timeout(timeout, Self::open_unbounded(target, marker)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timed_out("connect", timeout)),
        }
    }

    async fn open_unbounded(target: &Target, marker: &str) -> io::Result<AsyncConn> {
        let mut last = None;
        let mut stream = None;
        for addr in tokio::net::lookup_host(target.address()).await? {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match stream {
            Some(stream) => stream,
            None => {
                return Err(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the host name resolved to nothing")
                }))
            }
        };
        stream.set_nodelay(true)?;
        let mut con = AsyncConn {
            stream: tokio::io::BufReader::new(stream),
            session: Session {
                run: 0,
                epoch_micros: 0,
                server_time: 0,
            },
            opened: Instant::now(),
        };
        let request = proto::handshake(
            marker,
            target
                .credentials
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.as_str())),
            rand::random(),
        );
        con.stream.get_mut().write_all(&request).await?;
        if target.credentials.is_some() {
            HandshakeReader::auth(con.read_header().await)?;
        }
        let mut reader = HandshakeReader {
            stats: Stats::default(),
        };
        loop {
            let header = con.read_header().await?;
            match header.code {
                Code::Stat => reader.stats.take(&header),
                Code::End => break,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "memcached answered `stats` with something else",
                    ))
                }
            }
        }
        let marker_reply = con.read_reply().await?;
        con.session = reader.stats.session(&marker_reply)?;
        con.opened = Instant::now();
        Ok(con)
    }

    async fn read_header(&mut self) -> io::Result<Header> {
        let mut buf = Vec::with_capacity(64);
        (&mut self.stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await?;
        proto::parse_line(line_of(&buf)?)
    }

    async fn read_reply(&mut self) -> io::Result<Reply> {
        let header = self.read_header().await?;
        let value = if header.code == Code::Va {
            let mut data = vec![0; header.size + 2];
            self.stream.read_exact(&mut data).await?;
            Some(value_of(data)?)
        } else {
            None
        };
        Ok(Reply::new(header, value))
    }
}

impl Exchange for AsyncConn {
    fn session(&self) -> Session {
        self.session
    }

    fn opened(&self) -> Instant {
        self.opened
    }

    async fn exchange(&mut self, request: &[u8], timeout: Duration) -> io::Result<Reply> {
        let exchange = async {
            self.stream.get_mut().write_all(request).await?;
            self.read_reply().await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timed_out("reply", timeout)),
        }
    }
}
