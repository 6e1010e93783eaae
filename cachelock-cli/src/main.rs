//! `cachelock`: distributed locks from the shell.
//!
//! - `cachelock run --key K -- CMD ARGS..`: a `flock` for every process of this host with
//!   no server (the default store, this user's lock directory), or across machines (Redis,
//!   Redis Cluster, any `--store URL`; see [`backend`]).
//! - `cachelock status K`, `cachelock list [PREFIX]`, `cachelock release K --force`.
//! - `cachelock serve`: hierarchical locks over HTTP with Locker's API.
//! - `cachelock completions SHELL`, `cachelock man [COMMAND]`: see [`docs`].
//! - `-v`, `-vv`, `RUST_LOG`: see [`logging`].
//!
//! Exit codes: see [`exit`] and `cachelock --help`.
#![deny(missing_docs)]

mod admin;
mod backend;
mod cli;
mod docs;
mod duration;
mod exit;
mod logging;
mod run;
mod serve;
mod show;
mod signals;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};

use crate::backend::Backend;
use crate::cli::{Cli, Command, FromEnv};
use crate::exit::{Failure, UNAVAILABLE, USAGE};

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors; argument errors are EX_USAGE.
            return ExitCode::from(if error.use_stderr() { USAGE } else { 0 });
        }
    };
    // A service logs its requests by default; the other commands only with -v or RUST_LOG.
    let floor = matches!(cli.command, Command::Serve(_)).then_some("info");
    logging::init(cli.verbose, floor);
    // What the command line says about itself needs no store.
    match &cli.command {
        Command::Completions(args) => return finish(docs::completions(args)),
        Command::Man(args) => return finish(docs::man(args)),
        _ => {}
    }
    let prefix = cli.command.prefix().unwrap_or(cachelock::DEFAULT_PREFIX);
    let outcome = Backend::from_args(&cli.backend, prefix).and_then(|backend| {
        dispatch(&cli, &backend).map_err(|mut failure| {
            if failure.code == UNAVAILABLE && backend.is_shared() {
                let hint = backend.hint(&failure.message);
                failure.message.push_str(&format!(" ({})", backend.store()));
                if let Some(hint) = hint {
                    failure.message.push_str(&format!("; {hint}"));
                }
            }
            failure
        })
    });
    finish(outcome)
}

/// The exit code, after the failure's message on stderr.
fn finish(outcome: Result<u8, Failure>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("cachelock: {message}");
            ExitCode::from(code)
        }
    }
}

/// The command line, and which store options came from the environment.
fn parse() -> Result<Cli, clap::Error> {
    let mut matches = cli::command().try_get_matches()?;
    let from_env =
        |matches: &ArgMatches, id: &str| matches.value_source(id) == Some(ValueSource::EnvVariable);
    let env = FromEnv {
        store: from_env(&matches, "store"),
        redis: from_env(&matches, "redis"),
        redis_cluster: from_env(&matches, "redis_cluster"),
    };
    let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
    cli.backend.from_env = env;
    Ok(cli)
}

fn dispatch(cli: &Cli, backend: &Backend) -> Result<u8, Failure> {
    match &cli.command {
        Command::Run(args) => run::run(args, backend),
        Command::Status(args) => admin::status(args, backend),
        Command::List(args) => admin::list(args, backend),
        Command::Release(args) => admin::release(args, backend),
        Command::Serve(args) => serve::serve(args, backend),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}
