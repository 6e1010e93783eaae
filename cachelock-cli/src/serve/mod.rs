//! `cachelock serve`: a Locker-compatible HTTP lock service on hierarchical locks
//! ([`cachelock::tree::TreeLock`]).
//!
//! Locks live in the backend (by default this user's lock directory, which every `serve`
//! process of the user on this host shares; with `--store`, `--redis` or `--redis-cluster`,
//! every `serve` process on the same store shares them: on Redis a lock space's keys share
//! one hash tag, so they live on one node of a cluster); a granted lock is handed to the
//! client by its token and is not renewed: it ends with `/nowant` or its TTL.

mod access;
mod api;
mod params;
mod reply;

use std::io::Write as _;
use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{get, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;

use crate::backend::Backend;
use crate::cli::ServeArgs;
use crate::duration::show;
use crate::exit::{Failure, CANNOT_LISTEN, OK};

use api::Service;

/// Serves until SIGINT or SIGTERM; exit 0 then.
pub fn serve(args: &ServeArgs, backend: &Backend) -> Result<u8, Failure> {
    if args.default_ttl > args.max_ttl {
        return Err(Failure::usage(format!(
            "--default-ttl {} is longer than --max-ttl {}",
            show(args.default_ttl),
            show(args.max_ttl)
        )));
    }
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
        println!("cachelock: serving on http://{address} ({store})");
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(service))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| Failure::internal(format!("the HTTP server failed: {e}")))?;
        Ok(OK)
    })
}

fn router(service: Service) -> Router {
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
        .layer(axum::middleware::from_fn(access::log))
        .with_state(service)
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
