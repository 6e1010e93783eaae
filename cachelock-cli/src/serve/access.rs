//! The request log: one info event per request on stderr (target `cachelock::serve::access`),
//! with the method, the URL path, the status, the lock path, and for `canhaz` whether it was
//! granted and the fence.
//!
//! Never a token: tokens travel in the query string (`/nowant/<path>?token=`,
//! `/stillwant/<path>?token=`), and the log takes the URL's path alone, never its query, nor
//! any header. Nor a password: the store's URL is not part of a request.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// The lock path a request was about (once it was found valid), set by the handlers on
/// their response.
#[derive(Clone, Debug)]
pub struct LockPath(pub String);

/// What a `canhaz` came to, set by its handler on the response.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Granted, with this fence.
    Granted {
        /// The fencing token of the new lock.
        fence: u64,
    },
    /// Something was in the way.
    Refused,
}

/// Logs the request once its response is ready.
pub async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The path only: the query string carries the tokens.
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let lock = response
        .extensions()
        .get::<LockPath>()
        .map(|p| p.0.as_str());
    let (granted, fence) = match response.extensions().get::<Outcome>() {
        Some(Outcome::Granted { fence }) => (Some(true), Some(*fence)),
        Some(Outcome::Refused) => (Some(false), None),
        None => (None, None),
    };
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        lock,
        granted,
        fence,
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
