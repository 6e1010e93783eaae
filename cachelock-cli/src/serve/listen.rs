//! The accept loop: one hyper HTTP/1 connection per socket, plain or through TLS, at most
//! `--max-connections` at once, each given `--header-read-timeout` to send a request's
//! headers (and, with TLS, to finish its handshake).
//!
//! A connection beyond the limit is answered 503 with a JSON body and closed (plain HTTP),
//! or closed (TLS: the answer would cost a handshake). Idle keep-alive connections count
//! until the header read timeout closes them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How connections are accepted and kept.
#[derive(Clone)]
pub struct Connections {
    /// Most connections served at once.
    pub max: usize,
    /// Time a client has to send a request's headers (and to finish the TLS handshake).
    pub header_read_timeout: Duration,
    /// Serve HTTPS with this, or plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

/// Connections over the limit being answered 503 at most at once; more are just closed.
const REFUSING_AT_ONCE: usize = 64;

/// Time a connection has to finish its request after the shutdown began.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then lets the connections
/// finish their request in flight (at most [`DRAIN`]).
pub async fn run(
    listener: TcpListener,
    app: Router,
    connections: Connections,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(connections.max));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let (stop, stopped) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(connections.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // wait a little rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if connections.tls.is_none() {
                if let Ok(turn) = Arc::clone(&refusing).try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream).await;
                        drop(turn);
                    });
                }
            }
            tracing::warn!(
                client = %peer,
                max = connections.max,
                "too many connections (--max-connections): refused"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = Arc::clone(&builder);
        let tls = connections.tls.clone();
        let timeout = connections.header_read_timeout;
        let stopped = stopped.clone();
        let (slots_left, max) = (Arc::clone(&slots), connections.max);
        tokio::spawn(async move {
            match tls {
                None => serve_one(&builder, stream, peer, app, stopped).await,
                Some(tls) => match tokio::time::timeout(timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_one(&builder, stream, peer, app, stopped).await,
                    Ok(Err(error)) => {
                        tracing::debug!(client = %peer, %error, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(client = %peer, "TLS handshake timed out"),
                },
            }
            drop(slot);
            if slots_left.available_permits() == max {
                super::trim::after_last_connection();
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back: every connection closed.
    let all = u32::try_from(connections.max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
}

/// One connection, with the client's address in every request's extensions (as
/// axum's `ConnectInfo`).
async fn serve_one<S>(
    builder: &http1::Builder,
    stream: S,
    peer: SocketAddr,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(client = %peer, %error, "connection ended");
            }
        }
        () = async {
            let _ = stopped.wait_for(|stop| *stop).await;
        } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Answers a connection over the limit: 503, then closed.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str =
        "{\"ok\":false,\"error\":\"too many connections (--max-connections): try again later\"}";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    // Read what the client sent first (a close with unread data would reset the
    // connection before the client reads the answer), briefly.
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
