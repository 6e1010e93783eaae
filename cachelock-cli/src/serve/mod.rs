//! `cachelock serve`: a Locker-compatible HTTP lock service on hierarchical locks
//! ([`cachelock::tree::TreeLock`]).
//!
//! Locks live in the backend (by default this user's lock directory, which every `serve`
//! process of the user on this host shares; with `--store`, `--redis` or `--redis-cluster`,
//! every `serve` process on the same store shares them: on Redis a lock space's keys share
//! one hash tag, so they live on one node of a cluster); a granted lock is handed to the
//! client by its token and is not renewed: it ends with `/nowant` or its TTL.
//!
//! On a network: a bearer token ([`auth`]), TLS ([`tls`]), and limits on bodies
//! ([`limits`]), connections and slow clients ([`listen`]), and locks per client
//! ([`quota`]).

mod access;
mod api;
mod auth;
mod limits;
mod listen;
mod params;
mod quota;
mod reply;
mod tls;
mod trim;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::handler::Handler;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;

use crate::backend::Backend;
use crate::cli::ServeArgs;
use crate::duration::show;
use crate::exit::{Failure, CANNOT_LISTEN, OK};

use api::Service;
use auth::Token;
use limits::MaxBody;
use listen::Connections;
use quota::Quota;

/// Serves until SIGINT or SIGTERM; exit 0 then.
pub fn serve(args: &ServeArgs, backend: &Backend) -> Result<u8, Failure> {
    if args.default_ttl > args.max_ttl {
        return Err(Failure::usage(format!(
            "--default-ttl {} is longer than --max-ttl {}",
            show(args.default_ttl),
            show(args.max_ttl)
        )));
    }
    let token = match &args.auth_token_file {
        Some(path) => Some(Token::from_file(path).map_err(Failure::usage)?),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(Failure::usage)?),
        (None, None) => None,
        // clap requires both; said again here for a caller that builds ServeArgs itself.
        _ => {
            return Err(Failure::usage(
                "--tls-cert and --tls-key go together: give both or neither",
            ))
        }
    };
    if let Some(warning) = open_warning(args.listen, token.is_some(), tls.is_some()) {
        eprintln!("{warning}");
    }
    let max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    if let Some(files) = limits::raise_open_files() {
        // Each connection is a file, plus the store's and the runtime's own.
        if files < max_connections as u64 + 64 {
            eprintln!(
                "cachelock: warning: --max-connections {max_connections} but this process may open only {files} files: \
                 raise its limit (ulimit -n, LimitNOFILE=) or lower --max-connections"
            );
        }
    }
    let connections = Connections {
        max: max_connections,
        header_read_timeout: args.header_read_timeout,
        tls,
    };
    let https = connections.tls.is_some();
    let guards = Guards {
        token,
        max_body: MaxBody(args.max_body_size),
        quota: Quota::new(usize::try_from(args.max_locks_per_client).unwrap_or(usize::MAX)),
    };
    let service = Service {
        cache: Arc::clone(backend.cache()),
        space: args.space.clone(),
        default_ttl: args.default_ttl,
        max_ttl: args.max_ttl,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen).await.map_err(|e| {
            Failure::new(
                CANNOT_LISTEN,
                format!("cannot listen on {}: {e}", args.listen),
            )
        })?;
        let address = listener
            .local_addr()
            .map_err(|e| Failure::new(CANNOT_LISTEN, format!("no local address: {e}")))?;
        let store = if backend.is_shared() {
            format!("locks in {}", backend.store())
        } else {
            format!("locks in {} (--store URL to share them)", backend.store())
        };
        let scheme = if https { "https" } else { "http" };
        println!("cachelock: serving on {scheme}://{address} ({store})");
        let _ = std::io::stdout().flush();
        listen::run(listener, router(service, guards), connections, shutdown()).await;
        Ok(OK)
    })
}

/// What every request passes before a handler.
struct Guards {
    token: Option<Token>,
    max_body: MaxBody,
    quota: Quota,
}

/// The routes, behind (outermost first) the request log, the token, the body limit and
/// the locks-per-client count.
fn router(service: Service, guards: Guards) -> Router {
    let mut router = routes()
        .layer(from_fn_with_state(guards.quota, quota::count))
        .layer(from_fn_with_state(guards.max_body, limits::body_size));
    if let Some(token) = guards.token {
        router = router.layer(from_fn_with_state(token, auth::require));
    }
    router.layer(from_fn(access::log)).with_state(service)
}

/// What to say on stderr when the service is open to the network without a token, or
/// sends its token in clear. A warning, not a refusal: a service behind a firewall or an
/// authenticating proxy may be meant to run so, and an upgrade should not stop it.
fn open_warning(listen: SocketAddr, token: bool, tls: bool) -> Option<String> {
    if listen.ip().is_loopback() {
        return None;
    }
    if !token {
        return Some(format!(
            "cachelock: WARNING: serving {listen} with no --auth-token-file: anyone who can reach \
             this port can take and release every lock. Use --auth-token-file (and --tls-cert/--tls-key), \
             or listen on 127.0.0.1."
        ));
    }
    (!tls).then(|| {
        format!(
            "cachelock: warning: serving {listen} without TLS: the bearer token crosses the network \
             in clear. Use --tls-cert/--tls-key, or a TLS proxy in front."
        )
    })
}

fn routes() -> Router<Service> {
    Router::new()
        .route("/canhaz/", changes(api::canhaz_root))
        .route("/canhaz/{*path}", changes(api::canhaz))
        .route("/nowant/", changes(api::nowant_root))
        .route("/nowant/{*path}", changes(api::nowant))
        .route("/stillwant/", changes(api::stillwant_root))
        .route("/stillwant/{*path}", changes(api::stillwant))
        .route("/dohaz/", get(api::dohaz_root))
        .route("/dohaz/{*path}", get(api::dohaz))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
}

/// A GET route that changes locks. axum's `get` serves HEAD too, and a HEAD (a link
/// checker, a proxy) that took or dropped a lock would be a surprise: HEAD is refused here
/// and allowed only for the `/dohaz` query.
fn changes<H, T>(handler: H) -> MethodRouter<Service>
where
    H: Handler<T, Service>,
    T: 'static,
{
    get(handler).head(api::method_not_allowed)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_address_without_a_token_or_tls_is_warned_about() {
        let any: SocketAddr = "0.0.0.0:8765".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        let local6: SocketAddr = "[::1]:8765".parse().unwrap();
        assert!(open_warning(any, false, false).unwrap().contains("WARNING"));
        assert!(open_warning(any, false, true).unwrap().contains("WARNING"));
        assert!(open_warning(any, true, false)
            .unwrap()
            .contains("without TLS"));
        assert_eq!(open_warning(any, true, true), None);
        assert_eq!(open_warning(local, false, false), None);
        assert_eq!(open_warning(local6, false, false), None);
    }
}
