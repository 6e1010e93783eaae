//! The JSON bodies the service answers with, and the one error type of its handlers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cachelock::Holder;
use serde::Serialize;

use crate::exit::error_chain;

/// A request the service refuses or could not serve: a status and a message, answered as
/// `{"ok": false, "error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// 400: the path, a parameter or the token is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// Maps a library error: a bad path or setting is the client's (400); anything else
    /// means the backend could not answer (503), never a 500.
    pub fn from_lock(error: &cachelock::Error) -> ApiError {
        match error {
            cachelock::Error::InvalidKey { key, reason } => {
                ApiError::bad_request(format!("invalid path {key:?}: {reason}"))
            }
            cachelock::Error::InvalidSetting { reason, .. } => {
                ApiError::bad_request(reason.clone())
            }
            other => {
                log_backend_failure(other);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the lock backend is unavailable: {}", error_chain(other)),
                )
            }
        }
    }
}

/// Backend failures go to stderr too: the operator needs them more than the client.
fn log_backend_failure(error: &cachelock::Error) {
    tracing::error!(error = %error_chain(error), "the lock store failed");
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    ok: bool,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            ok: false,
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// `canhaz` granted: `{"ok": true, "token", "fence", "path", "ttl"}` (ttl in seconds).
#[derive(Serialize)]
pub struct Granted {
    /// Always `true`.
    pub ok: bool,
    /// The owner token, for `nowant`.
    pub token: String,
    /// The fencing token of this hold: greater than that of every lock granted before in
    /// this lock space, for the client to send with its writes.
    pub fence: u64,
    /// The locked path.
    pub path: String,
    /// Seconds until the lock expires unless released.
    pub ttl: f64,
}

/// Who is in the way: Locker's `lockedBy`, plus the held path and its time left.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockedBy {
    /// The `id` the holder gave, `"?"` if none; `null` if nothing is in the way.
    pub locked_by: Option<String>,
    /// The held path in the way (this path, an ancestor or a descendant); `null` if none.
    pub locked_path: Option<String>,
    /// Seconds the holder's lock has left; `null` if none.
    pub ttl: Option<f64>,
}

impl LockedBy {
    /// From a holder, or nobody.
    pub fn from_holder(holder: Option<&Holder>) -> LockedBy {
        match holder {
            Some(holder) => LockedBy {
                locked_by: Some(holder.label.clone().unwrap_or_else(|| "?".to_owned())),
                locked_path: Some(holder.key.clone()),
                ttl: holder.ttl.map(seconds),
            },
            None => LockedBy {
                locked_by: None,
                locked_path: None,
                ttl: None,
            },
        }
    }
}

/// Seconds, to the millisecond.
pub fn seconds(duration: std::time::Duration) -> f64 {
    duration.as_millis() as f64 / 1000.0
}

/// `canhaz` refused: `{"ok": false, "lockedBy", "lockedPath", "ttl"}`.
#[derive(Serialize)]
pub struct Refused {
    /// Always `false`.
    pub ok: bool,
    /// Who is in the way.
    #[serde(flatten)]
    pub by: LockedBy,
}

/// `nowant` done: `{"ok": true}`.
#[derive(Serialize)]
pub struct Released {
    /// Always `true`.
    pub ok: bool,
}

/// `stillwant` done: `{"ok": true, "ttl"}` (the new TTL in seconds).
#[derive(Serialize)]
pub struct Extended {
    /// Always `true`.
    pub ok: bool,
    /// Seconds until the lock expires now.
    pub ttl: f64,
}
