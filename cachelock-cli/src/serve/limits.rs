//! The request body limit (413), and the file descriptor limit that the connection limit
//! needs.
//!
//! No endpoint takes a body: a body is read (at most `--max-body-size` bytes) and dropped,
//! so that a client cannot make the server buffer or wait on an endless upload.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::reply::ApiError;

/// The largest request body accepted, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct MaxBody(pub usize);

/// 413 for a body larger than the limit (by its `Content-Length`, or once that many bytes
/// arrived); the request goes on with an empty body otherwise.
pub async fn body_size(State(max): State<MaxBody>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.0 as u64) {
        return too_large(max);
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, max.0).await {
        Ok(_) => next.run(Request::from_parts(parts, Body::empty())).await,
        Err(error) if is_length_limit(&error) => too_large(max),
        Err(error) => {
            ApiError::bad_request(format!("cannot read the request body: {error}")).into_response()
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn too_large(max: MaxBody) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than {} bytes (--max-body-size); no endpoint takes a body",
            max.0
        ),
    )
    .into_response()
}

/// Raises this process's soft limit on open files to its hard limit (as Go programs do),
/// so that `--max-connections` is not cut short by the usual soft limit of 1024. Returns
/// the soft limit now in force, if known.
// `rlim_t` is u64 on Linux but not on every platform.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes to the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(raised.rlim_cur as u64);
        }
    }
    Some(limit.rlim_cur as u64)
}
