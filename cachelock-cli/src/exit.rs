//! Exit codes and the one failure type every command returns.
//!
//! The codes follow `sysexits.h` where one fits; `run` passes its command's own status
//! through, so they are documented in `--help` (see [`EXIT_CODES_HELP`]).

use std::fmt::Write as _;

/// Success (`run`: the command exited 0; `status`: the key is held; `release`: it was freed;
/// `serve`: stopped by SIGINT or SIGTERM).
pub const OK: u8 = 0;
/// `status`: the key is free; `release --force`: the key was not held.
pub const NOT_HELD: u8 = 1;
/// EX_USAGE: bad arguments (an invalid key, duration or store URL; an admin command on
/// `memory://`; two store options; `release` without `--force`).
pub const USAGE: u8 = 64;
/// EX_UNAVAILABLE: the lock backend failed (Redis or Redis Cluster unreachable, timed out,
/// refused; the lock directory unusable).
pub const UNAVAILABLE: u8 = 69;
/// EX_SOFTWARE: an internal failure (no runtime, no signal handlers, no socket).
pub const SOFTWARE: u8 = 70;
/// EX_OSERR: `serve` cannot listen on its address (in use, not permitted).
pub const CANNOT_LISTEN: u8 = 71;
/// EX_TEMPFAIL: `run` found the key held (the default of `--conflict-exit-code`).
pub const TEMPFAIL: u8 = 75;
/// `run`: the command was found but could not be executed (as in POSIX shells).
pub const CANNOT_EXECUTE: u8 = 126;
/// `run`: the command was not found (as in POSIX shells).
pub const NOT_FOUND: u8 = 127;
/// `run`: the command (or cachelock, before it started the command) was killed by signal N:
/// the exit code is `SIGNALED + N` (as in POSIX shells).
pub const SIGNALED: u8 = 128;

/// The exit-code table shown at the end of `cachelock --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0        success (run: the command exited 0; status: held; release: freed)
  1        status: the key is free; release: the key was not held
  N        run: the command's own exit status
  64       bad arguments (EX_USAGE), e.g. a bad duration or store URL, or two
           of --store, --redis and --redis-cluster
  69       the lock store failed (EX_UNAVAILABLE), e.g. Redis unreachable, or
           the lock directory cannot be used
  70       internal error (EX_SOFTWARE)
  71       serve: cannot listen on the address (EX_OSERR)
  75       run: the key is held by someone else (EX_TEMPFAIL; change with -E)
  126/127  run: the command cannot be executed / was not found
  128+N    run: the command (or cachelock, before it) was killed by signal N";

/// A command that could not do its job: the exit code and a one-line message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong, without the `cachelock: ` prefix.
    pub message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Bad arguments (exit 64).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(USAGE, message)
    }

    /// An internal failure (exit 70).
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(SOFTWARE, message)
    }

    /// Maps a library error: bad key, setting or store → 64, backend → 69, anything else → 70.
    pub fn from_lock(error: &cachelock::Error) -> Failure {
        let code = match error {
            cachelock::Error::InvalidKey { .. }
            | cachelock::Error::InvalidSetting { .. }
            | cachelock::Error::InvalidStore { .. } => USAGE,
            cachelock::Error::Backend { .. } => UNAVAILABLE,
            _ => SOFTWARE,
        };
        Failure::new(code, error_chain(error))
    }
}

/// An error and its sources on one line: `outer: inner: innermost`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let part = source.to_string();
        // Some errors repeat their source's text in their own; print each text once.
        if !text.contains(&part) {
            let _ = write!(text, ": {part}");
        }
        next = source.source();
    }
    text
}
