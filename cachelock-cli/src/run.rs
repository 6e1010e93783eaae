//! `cachelock run`: hold a key while a command runs.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;

use cachelock::{AsyncGuard, Error, Lock, LockStore};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::backend::Backend;
use crate::cli::RunArgs;
use crate::duration::show;
use crate::exit::{Failure, CANNOT_EXECUTE, NOT_FOUND, SIGNALED};
use crate::show::describe;
use crate::signals::{self, Caught};

type Guard = AsyncGuard<Arc<dyn LockStore>>;

/// Runs the command under the lock; returns the exit code.
pub fn run(args: &RunArgs, backend: &Backend) -> Result<u8, Failure> {
    // First of all: from here on a SIGTERM cannot kill cachelock while it holds the lock.
    let signals = signals::catch()
        .map_err(|e| Failure::internal(format!("cannot install signal handlers: {e}")))?;
    // Never hidden by -q, which silences only the "key is held" line: a lock that excludes
    // nobody is a mistake to point out every time.
    if !backend.is_shared() {
        eprintln!(
            "cachelock: warning: the lock on `{}` lives in {} and excludes no other process \
             (without --store, the default store is this user's lock directory, which does)",
            args.key,
            backend.store()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(hold_and_run(args, backend, signals))
}

async fn hold_and_run(
    args: &RunArgs,
    backend: &Backend,
    mut signals: UnboundedReceiver<Caught>,
) -> Result<u8, Failure> {
    let program = &args.command[0];
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| file_name(program).to_string_lossy().into_owned());
    let lock = backend.lock(&args.key).ttl(args.ttl).label(label);

    let acquired = tokio::select! {
        acquired = acquire(&lock, args) => acquired,
        Some(caught) = signals.recv() => {
            eprintln!(
                "cachelock: {} before `{}` was locked; not running the command",
                signals::name(caught.signal),
                args.key
            );
            return Ok(signal_code(caught.signal));
        }
    };
    let guard = match acquired {
        Ok(guard) => guard,
        Err(Error::Locked { .. }) => {
            tracing::info!(key = %args.key, "key is held; not running the command");
            if !args.quiet {
                eprintln!("cachelock: {}", held_message(&lock, &args.key).await);
            }
            return Ok(args.conflict_exit_code);
        }
        Err(error) => return Err(Failure::from_lock(&error)),
    };

    // A signal that came while the lock was being taken: a terminal's Ctrl-C never reached
    // a command that did not exist yet, so stop here rather than start it.
    if let Ok(caught) = signals.try_recv() {
        release(guard, &args.key).await;
        eprintln!(
            "cachelock: {} while `{}` was being locked; not running the command",
            signals::name(caught.signal),
            args.key
        );
        return Ok(signal_code(caught.signal));
    }

    tracing::info!(
        key = %args.key,
        fence = guard.fence(),
        ttl = %show(args.ttl),
        store = %backend.store(),
        "lock acquired"
    );

    let mut command = Command::new(program);
    command.args(&args.command[1..]);
    // CMD's own lock: its key, and the fence to send with its writes.
    command.env(ENV_KEY, &args.key);
    command.env(ENV_FENCE, guard.fence().to_string());
    die_with_parent(&mut command);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            release(guard, &args.key).await;
            let code = match error.kind() {
                ErrorKind::NotFound => NOT_FOUND,
                _ => CANNOT_EXECUTE,
            };
            let what = if code == NOT_FOUND {
                "command not found".to_owned()
            } else {
                format!("cannot execute: {error}")
            };
            eprintln!("cachelock: {}: {what}", program.to_string_lossy());
            return Ok(code);
        }
    };

    tracing::info!(pid = child.id(), command = %program.to_string_lossy(), "command started");
    let status = supervise(child, &guard, args, &mut signals).await;
    if let Ok(status) = &status {
        tracing::info!(exit_code = exit_code(*status), "command exited");
    }
    release(guard, &args.key).await;
    match status {
        Ok(status) => Ok(exit_code(status)),
        Err(error) => Err(Failure::internal(format!(
            "lost track of `{}`: {error}",
            program.to_string_lossy()
        ))),
    }
}

/// The environment variable that hands CMD the key.
pub const ENV_KEY: &str = "CACHELOCK_KEY";
/// The environment variable that hands CMD the fencing token of its hold.
pub const ENV_FENCE: &str = "CACHELOCK_FENCE";

async fn acquire(lock: &Lock<Arc<dyn LockStore>>, args: &RunArgs) -> Result<Guard, Error> {
    if args.wait.is_zero() {
        lock.try_acquire_async().await
    } else {
        tracing::info!(key = %args.key, wait = %show(args.wait), "taking the lock, waiting if it is held");
        lock.acquire_timeout_async(args.wait).await
    }
}

/// Waits for the child, forwarding signals and watching the lock.
async fn supervise(
    mut child: Child,
    guard: &Guard,
    args: &RunArgs,
    signals: &mut UnboundedReceiver<Caught>,
) -> std::io::Result<ExitStatus> {
    let mut lost = false;
    loop {
        tokio::select! {
            status = child.wait() => return status,
            Some(caught) = signals.recv() => {
                // A terminal's signal already reached the whole process group.
                if !caught.from_kernel {
                    if let Some(pid) = child.id() {
                        signals::send(pid, caught.signal);
                    }
                }
            }
            () = guard.lost(), if !lost => {
                lost = true;
                if args.kill_on_lost {
                    eprintln!(
                        "cachelock: the lock on `{}` was lost while the command ran; sending it SIGTERM (--kill-on-lost)",
                        args.key
                    );
                    if let Some(pid) = child.id() {
                        signals::send(pid, libc::SIGTERM);
                    }
                } else {
                    eprintln!(
                        "cachelock: warning: the lock on `{}` was lost while the command runs (renewal refused, or the backend unreachable for a whole TTL); another holder may start",
                        args.key
                    );
                }
            }
        }
    }
}

/// Releases; a failure is reported on stderr, never changes the exit code.
async fn release(guard: Guard, key: &str) {
    let held_for = guard.held_for();
    match guard.release().await {
        Ok(()) => tracing::info!(key = %key, held_for = %show(held_for), "lock released"),
        Err(Error::LockLost { .. }) => eprintln!(
            "cachelock: warning: the lock on `{key}` had already been lost (expired or force-released) when the command ended"
        ),
        Err(error) => eprintln!(
            "cachelock: warning: could not release `{key}` ({}); it expires with its TTL",
            crate::exit::error_chain(&error)
        ),
    }
}

/// The one line for a held key: who holds it.
async fn held_message(lock: &Lock<Arc<dyn LockStore>>, key: &str) -> String {
    match lock.holder_async().await {
        Ok(Some(holder)) => format!("`{key}` is held by {}", describe(&holder)),
        Ok(None) => format!("`{key}` was held by another owner (released just now)"),
        Err(_) => format!("`{key}` is held by another owner"),
    }
}

/// The exit code for a child's status: its code, or 128 + the signal that killed it.
fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(u8::MAX);
    }
    status.signal().map_or(SIGNALED, signal_code)
}

fn signal_code(signal: i32) -> u8 {
    u8::try_from(i32::from(SIGNALED) + signal).unwrap_or(u8::MAX)
}

fn file_name(program: &OsStr) -> &OsStr {
    Path::new(program).file_name().unwrap_or(program)
}

/// Linux: the child gets SIGTERM if cachelock dies without releasing (SIGKILL, OOM): its
/// lock then expires with its TTL, so the command must not go on unprotected.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid); it touches no memory of the parent.
    let parent = std::process::id();
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}
