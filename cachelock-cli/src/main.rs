//! `cachelock`: distributed locks from the shell.
//!
//! - `cachelock run --key K -- CMD ARGS..`: a `flock` that works across machines (Redis).
//! - `cachelock status K`, `cachelock list [PREFIX]`, `cachelock release K --force`.
//! - `cachelock serve`: hierarchical locks over HTTP with Locker's API.
//!
//! Exit codes: see [`exit`] and `cachelock --help`.
#![deny(missing_docs)]

mod admin;
mod backend;
mod cli;
mod duration;
mod exit;
mod run;
mod serve;
mod show;
mod signals;

use std::process::ExitCode;

use clap::Parser;

use crate::backend::Backend;
use crate::cli::{Cli, Command};
use crate::exit::{Failure, UNAVAILABLE, USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors; argument errors are EX_USAGE.
            return ExitCode::from(if error.use_stderr() { USAGE } else { 0 });
        }
    };
    let outcome = Backend::from_args(&cli.backend).and_then(|backend| {
        dispatch(&cli, &backend).map_err(|mut failure| {
            if failure.code == UNAVAILABLE {
                if let Some(url) = backend.redis() {
                    failure.message.push_str(&format!(" (Redis at {url})"));
                }
            }
            failure
        })
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("cachelock: {message}");
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: &Cli, backend: &Backend) -> Result<u8, Failure> {
    match &cli.command {
        Command::Run(args) => run::run(args, backend),
        Command::Status(args) => admin::status(args, backend),
        Command::List(args) => admin::list(args, backend),
        Command::Release(args) => admin::release(args, backend),
        Command::Serve(args) => serve::serve(args, backend),
    }
}
