//! SIGINT, SIGTERM and SIGHUP for `run`: caught from the start (so that a signal never kills
//! cachelock while it holds a lock), and reported with where they came from.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;
use tokio::sync::mpsc;

/// The signals `run` catches and forwards.
pub const FORWARDED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// One caught signal.
#[derive(Debug, Clone, Copy)]
pub struct Caught {
    /// The signal number.
    pub signal: i32,
    /// `true` when the kernel sent it (a terminal's Ctrl-C or hang-up): it went to the whole
    /// foreground process group, the command included, so it is not forwarded again.
    pub from_kernel: bool,
}

/// Installs the handlers and returns the receiving end; a background thread feeds it.
///
/// A signal that cachelock was started with ignored (`nohup cachelock run ..` ignores
/// SIGHUP) is left ignored, so that the command inherits that too, as it would without
/// cachelock in between.
pub fn catch() -> std::io::Result<mpsc::UnboundedReceiver<Caught>> {
    let wanted: Vec<i32> = FORWARDED
        .into_iter()
        .filter(|&signal| !is_ignored(signal))
        .collect();
    let mut signals = SignalsInfo::<WithOrigin>::new(wanted)?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("cachelock-signals".to_owned())
        .spawn(move || {
            for origin in signals.forever() {
                let caught = Caught {
                    signal: origin.signal,
                    from_kernel: origin.cause == Cause::Kernel,
                };
                if tx.send(caught).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// Whether `signal` is set to SIG_IGN in this process.
fn is_ignored(signal: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`, a
    // zeroed sigaction that it fully initialises.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Sends `signal` to process `pid`; `false` if it is gone.
pub fn send(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The signal's name, e.g. `SIGTERM`.
pub fn name(signal: i32) -> String {
    signal_hook::low_level::signal_name(signal)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("signal {signal}"))
}
