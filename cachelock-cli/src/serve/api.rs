//! The handlers: `/canhaz/<path>`, `/nowant/<path>`, `/stillwant/<path>`, `/dohaz/<path>`,
//! and the JSON answers
//! for unknown endpoints and wrong methods.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cachelock::tree::{check_path, TreeLock};
use cachelock::{Error, LockStore};

use super::access::{LockPath, Outcome};
use super::params::{id, Params};
use super::quota::Change;
use super::reply::{seconds, ApiError, Extended, Granted, LockedBy, Refused, Released};

/// What every handler shares: the store, the lock space and the TTL bounds.
#[derive(Clone)]
pub struct Service {
    /// The cache the locks live in.
    pub cache: Arc<dyn LockStore>,
    /// The lock space (tree lock prefix).
    pub space: String,
    /// TTL of a `canhaz` without `ttl`.
    pub default_ttl: Duration,
    /// Longest `ttl` accepted.
    pub max_ttl: Duration,
}

impl Service {
    fn lock(&self, path: &str) -> TreeLock<Arc<dyn LockStore>> {
        TreeLock::new(path)
            .cache(Arc::clone(&self.cache))
            .prefix(self.space.clone())
            // The service hands the lock to its client (`into_claim`): nothing to renew.
            .renew(false)
    }
}

type PathArg = Result<Path<String>, PathRejection>;
type QueryArg = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `/canhaz/<path>?id=&lockParents=&lockChildren=&ttl=`: take the lock, or say who is in the way.
pub async fn canhaz(State(service): State<Service>, path: PathArg, query: QueryArg) -> Response {
    match tree_path(path) {
        Ok(path) => reply_at(&path, canhaz_at(&service, path.clone(), query).await),
        Err(error) => error.into_response(),
    }
}

/// `/canhaz/`: the root, which conflicts with every lock below it.
pub async fn canhaz_root(State(service): State<Service>, query: QueryArg) -> Response {
    reply_at("/", canhaz_at(&service, "/".to_owned(), query).await)
}

/// `/nowant/<path>?token=`: release the lock `canhaz` granted with this token.
pub async fn nowant(State(service): State<Service>, path: PathArg, query: QueryArg) -> Response {
    match tree_path(path) {
        Ok(path) => reply_at(&path, nowant_at(&service, path.clone(), query).await),
        Err(error) => error.into_response(),
    }
}

/// `/nowant/?token=`: release the root.
pub async fn nowant_root(State(service): State<Service>, query: QueryArg) -> Response {
    reply_at("/", nowant_at(&service, "/".to_owned(), query).await)
}

/// `/stillwant/<path>?token=&ttl=`: reset the TTL of the lock this token owns (a client
/// that needs longer than its TTL calls it before the TTL runs out).
pub async fn stillwant(State(service): State<Service>, path: PathArg, query: QueryArg) -> Response {
    match tree_path(path) {
        Ok(path) => reply_at(&path, stillwant_at(&service, path.clone(), query).await),
        Err(error) => error.into_response(),
    }
}

/// `/stillwant/?token=&ttl=`: extend the root.
pub async fn stillwant_root(State(service): State<Service>, query: QueryArg) -> Response {
    reply_at("/", stillwant_at(&service, "/".to_owned(), query).await)
}

/// `/dohaz/<path>?lockParents=&lockChildren=`: who holds a lock that a `canhaz` with the same
/// flags would run into.
pub async fn dohaz(State(service): State<Service>, path: PathArg, query: QueryArg) -> Response {
    match tree_path(path) {
        Ok(path) => reply_at(&path, dohaz_at(&service, path.clone(), query).await),
        Err(error) => error.into_response(),
    }
}

/// `/dohaz/`: who holds anything (the root conflicts with every lock).
pub async fn dohaz_root(State(service): State<Service>, query: QueryArg) -> Response {
    reply_at("/", dohaz_at(&service, "/".to_owned(), query).await)
}

async fn canhaz_at(service: &Service, path: String, query: QueryArg) -> Result<Response, ApiError> {
    let params = Params::new(pairs(query)?, &["id", "lockParents", "lockChildren", "ttl"])?;
    let ttl = params.ttl(service.default_ttl, service.max_ttl)?;
    let mut lock = service
        .lock(&path)
        .ttl(ttl)
        .lock_parents(params.flag("lockParents", true)?)
        .lock_children(params.flag("lockChildren", true)?);
    if let Some(id) = id(&params)? {
        lock = lock.label(id);
    }
    match lock.try_acquire_async().await {
        Ok(guard) => {
            let fence = guard.fence();
            let claim = guard.into_claim();
            let change = Change::Granted {
                token: claim.token.clone(),
                ttl: claim.ttl,
            };
            let mut response = Json(Granted {
                ok: true,
                token: claim.token,
                fence,
                path: claim.path,
                ttl: seconds(claim.ttl),
            })
            .into_response();
            response.extensions_mut().insert(Outcome::Granted { fence });
            response.extensions_mut().insert(change);
            Ok(response)
        }
        Err(Error::Locked { .. }) => {
            // Who is in the way; `null`s if they let go in the meantime.
            let holder = lock
                .holder_async()
                .await
                .map_err(|e| ApiError::from_lock(&e))?;
            let mut response = Json(Refused {
                ok: false,
                by: LockedBy::from_holder(holder.as_ref()),
            })
            .into_response();
            response.extensions_mut().insert(Outcome::Refused);
            Ok(response)
        }
        Err(error) => Err(ApiError::from_lock(&error)),
    }
}

async fn nowant_at(service: &Service, path: String, query: QueryArg) -> Result<Response, ApiError> {
    let params = Params::new(pairs(query)?, &["token"])?;
    let token = required_token(&params)?;
    let lock = service.lock(&path);
    let released = lock
        .release_token_async(token)
        .await
        .map_err(|e| ApiError::from_lock(&e))?;
    if released {
        let mut response = Json(Released { ok: true }).into_response();
        response.extensions_mut().insert(Change::Released {
            token: token.to_owned(),
        });
        return Ok(response);
    }
    Err(not_owned(lock, &path).await)
}

async fn stillwant_at(
    service: &Service,
    path: String,
    query: QueryArg,
) -> Result<Response, ApiError> {
    let params = Params::new(pairs(query)?, &["token", "ttl"])?;
    let token = required_token(&params)?;
    let ttl = params.ttl(service.default_ttl, service.max_ttl)?;
    let lock = service.lock(&path);
    let extended = lock
        .extend_token_async(token, ttl)
        .await
        .map_err(|e| ApiError::from_lock(&e))?;
    if extended {
        let mut response = Json(Extended {
            ok: true,
            ttl: seconds(ttl),
        })
        .into_response();
        response.extensions_mut().insert(Change::Extended {
            token: token.to_owned(),
            ttl,
        });
        return Ok(response);
    }
    Err(not_owned(lock, &path).await)
}

/// The token did not own `path`: 403 if the path is held (by another token), 404 if not.
async fn not_owned(lock: TreeLock<Arc<dyn LockStore>>, path: &str) -> ApiError {
    // Exactly this path: a lock that relaxes both directions only meets its own path.
    let exact = lock
        .lock_parents(false)
        .lock_children(false)
        .holder_async()
        .await;
    match exact {
        Ok(Some(_)) => ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{path} is locked with another token: this token does not own it"),
        ),
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{path} is not locked (never locked, already released, or its TTL ran out)"),
        ),
        Err(error) => ApiError::from_lock(&error),
    }
}

/// The `token` parameter, which must be there and not empty.
fn required_token(params: &Params) -> Result<&str, ApiError> {
    params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("missing the token parameter: ?token=<the token canhaz returned>")
        })
}

async fn dohaz_at(service: &Service, path: String, query: QueryArg) -> Result<Response, ApiError> {
    let params = Params::new(pairs(query)?, &["lockParents", "lockChildren"])?;
    let holder = service
        .lock(&path)
        .lock_parents(params.flag("lockParents", true)?)
        .lock_children(params.flag("lockChildren", true)?)
        .holder_async()
        .await
        .map_err(|e| ApiError::from_lock(&e))?;
    Ok(Json(LockedBy::from_holder(holder.as_ref())).into_response())
}

/// Any other URL: 404 with the list of endpoints.
pub async fn not_found(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint at {}: use GET /canhaz/<path>, /nowant/<path>?token=, /stillwant/<path>?token=, /dohaz/<path>",
            uri.path()
        ),
    )
    .into_response()
}

/// A known endpoint with another method: 405. Only GET changes locks (as in Locker); HEAD
/// is served by `/dohaz` alone, so that a HEAD request never takes or drops a lock.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let allow = if uri.path().starts_with("/dohaz/") {
        "GET, HEAD"
    } else {
        "GET"
    };
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here: use {allow}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

/// `<captured>` → `/<captured>`, checked by the library's path rules.
fn tree_path(path: PathArg) -> Result<String, ApiError> {
    let Path(tail) =
        path.map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))?;
    let path = format!("/{tail}");
    check_path(&path).map_err(|e| ApiError::from_lock(&e))?;
    Ok(path)
}

fn pairs(query: QueryArg) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
}

/// The response, marked with the lock path it was about for the request log.
fn reply_at(path: &str, result: Result<Response, ApiError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(LockPath(path.to_owned()));
    response
}
