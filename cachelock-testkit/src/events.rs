//! Events of several processes on one host, on one clock: [`mono_ns`] reads
//! `CLOCK_MONOTONIC` (shared by every process, network namespaces included), and a test's
//! processes append `name value...` lines to `dir/events` ([`record`]) that the test reads
//! back ([`event`]), polling with [`wait_for`].

use std::path::Path;
use std::time::Duration;

/// `CLOCK_MONOTONIC` in nanoseconds: one clock shared by every process on this host
/// (`std::time::Instant` is opaque, so it cannot be written to a file and compared across
/// processes; network namespaces do not change it).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Appends one line to `dir/events`.
pub fn record(dir: &Path, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("events"))
        .expect("events file");
    file.write_all(format!("{line}\n").as_bytes())
        .expect("record");
}

/// The value of the first `name <value...>` line in `dir/events`, if written yet.
pub fn event(dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("events")).ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    })
}

/// Polls `what` every 2 ms for at most `bound` (a bound from the safe side: a healthy run
/// takes a fraction of it).
pub fn wait_for<T>(bound: Duration, mut what: impl FnMut() -> Option<T>) -> Option<T> {
    let end = mono_ns() + bound.as_nanos() as u64;
    loop {
        if let Some(value) = what() {
            return Some(value);
        }
        if mono_ns() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
