//! A cache that fails (a Redis server that is down): with a `Result` return type whose error
//! converts from `cachelock::Error`, the error is returned; otherwise the body does not run
//! (fail closed) and the failure is reported through `tracing` at error level.

mod common;

use std::cell::Cell;

use cachelock::{once, Error};
use common::{DownCache, ErrorEvents};

#[derive(Debug)]
enum AppError {
    Lock(Error),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        AppError::Lock(error)
    }
}

#[once(key = "down-result-<n>", cache = DownCache)]
fn result_job(n: u32, ran: &Cell<bool>) -> Result<Option<u32>, AppError> {
    ran.set(true);
    Ok(Some(n))
}

#[once(key = "down-raise", cache = DownCache, raise_if_locked = true)]
fn raising_job(ran: &Cell<bool>) -> Result<(), Error> {
    ran.set(true);
    Ok(())
}

#[test]
fn result_with_cachelock_error_returns_the_failure() {
    let ran = Cell::new(false);
    let events = ErrorEvents::default();
    let outcome = events.capture(|| result_job(1, &ran));
    let Err(AppError::Lock(error)) = outcome else {
        panic!("expected the cache failure, got {outcome:?}");
    };
    assert!(error.is_backend(), "{error}");
    assert_eq!(error.key(), Some("cachelock:down-result-1"));
    assert!(!ran.get(), "the body did not run");
    assert!(events.lines().is_empty(), "returned, not logged");

    let error = raising_job(&ran).unwrap_err();
    assert!(error.is_backend());
    assert!(!ran.get());
}

#[once(key = "down-option", cache = DownCache)]
fn option_job(ran: &Cell<bool>) -> Option<u32> {
    ran.set(true);
    Some(1)
}

#[once(key = "down-unit", cache = DownCache)]
fn unit_job(ran: &Cell<bool>) {
    ran.set(true);
}

/// An error type without `From<cachelock::Error>`: the failure cannot be returned.
#[once(key = "down-string-error", cache = DownCache)]
fn string_error_job(ran: &Cell<bool>) -> Result<(), String> {
    ran.set(true);
    Ok(())
}

#[test]
fn other_return_types_fail_closed_and_log_an_error() {
    let ran = Cell::new(false);
    let events = ErrorEvents::default();
    events.capture(|| {
        assert_eq!(option_job(&ran), None);
        unit_job(&ran);
        assert_eq!(string_error_job(&ran), Ok(()));
    });
    assert!(!ran.get(), "no body ran");
    let lines = events.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, function) in lines
        .iter()
        .zip(["option_job", "unit_job", "string_error_job"])
    {
        assert!(line.contains("fail closed"), "{line}");
        assert!(line.contains(&format!("function=\"{function}\"")), "{line}");
        assert!(line.contains("cache backend failed"), "{line}");
    }
}

#[once(key = "down-async", cache = DownCache)]
async fn async_option_job() -> Option<u32> {
    Some(1)
}

#[once(key = "down-async-result", cache = DownCache)]
async fn async_result_job() -> Result<Option<u32>, Error> {
    Ok(Some(1))
}

#[test]
fn async_functions_follow_the_same_policy() {
    let events = ErrorEvents::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    events.capture(|| {
        assert_eq!(runtime.block_on(async_option_job()), None);
        assert!(runtime
            .block_on(async_result_job())
            .unwrap_err()
            .is_backend());
    });
    let lines = events.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("function=\"async_option_job\""));
}

#[once(key = "<a>")]
fn empty_key(a: &str) -> Result<(), Error> {
    let _ = a;
    Ok(())
}

#[test]
fn an_invalid_formatted_key_is_a_failure_too() {
    let error = empty_key("").unwrap_err();
    assert!(matches!(error, Error::InvalidKey { .. }), "{error}");
}
