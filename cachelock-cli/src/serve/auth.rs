//! `--auth-token-file`: every request must carry `Authorization: Bearer <token>`.
//!
//! The token is compared in constant time (for a given configured token, the time taken
//! does not depend on the bytes a client sent); a request without it or with another one
//! gets 401 with `WWW-Authenticate: Bearer` and a JSON body, before any handler runs.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::{Choice, ConstantTimeEq};

use super::reply::ApiError;

/// The bearer token clients must send.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Reads the token from `path`: the file's text, trimmed of surrounding white space.
    /// An unreadable or empty file is an error (a message for the operator).
    pub fn from_file(path: &Path) -> Result<Token, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
        Token::new(text.trim()).ok_or_else(|| format!("the token file {} is empty", path.display()))
    }

    /// A token from its text; `None` if it is empty.
    pub fn new(text: &str) -> Option<Token> {
        (!text.is_empty()).then(|| Token(Arc::from(text.as_bytes())))
    }

    /// Whether `given` is this token, in time that depends on the token's length only.
    pub fn matches(&self, given: &[u8]) -> bool {
        let expected: &[u8] = &self.0;
        let mut same: Choice = (expected.len() as u64).ct_eq(&(given.len() as u64));
        for (i, byte) in expected.iter().enumerate() {
            // Past the end of `given`, compare with 0 (the length check already failed).
            let other = given.get(i).copied().unwrap_or(0);
            same &= byte.ct_eq(&other);
        }
        same.into()
    }
}

/// Lets the request through with the right bearer token; 401 otherwise.
pub async fn require(State(token): State<Token>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .and_then(bearer);
    match given {
        Some(given) if token.matches(given) => next.run(request).await,
        Some(_) => unauthorized(
            "Bearer realm=\"cachelock\", error=\"invalid_token\"",
            "the bearer token is wrong",
        ),
        None => unauthorized(
            "Bearer realm=\"cachelock\"",
            "missing the token: send Authorization: Bearer <token>",
        ),
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

fn unauthorized(challenge: &'static str, message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_match() {
        let token = Token::new("s3cret").unwrap();
        assert!(token.matches(b"s3cret"));
        for other in [
            &b""[..],
            b"s3cre",
            b"s3cret!",
            b"S3cret",
            b"s3cres",
            b"\0\0\0\0\0\0",
        ] {
            assert!(!token.matches(other), "{other:?}");
        }
        assert!(Token::new("").is_none());
    }

    #[test]
    fn the_bearer_scheme_is_parsed() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b""), None);
    }
}
