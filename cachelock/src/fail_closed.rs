//! What a user learns when `#[once]` could not check its lock and the function has no
//! `Result` to report it in: the call is skipped (fail closed), and that is never silent.
//!
//! Every such skip is counted ([`fail_closed_count`]), logged through `tracing` at error
//! level, and handed to the hook set with [`on_fail_closed`]. With no hook and no global
//! `tracing` subscriber, it is also written to stderr (the first time for each function,
//! then at most once a minute per function), so a cron job whose store is down says so even
//! in a program that installed nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::Error;

/// A call of an `#[once]` function that was skipped because its lock could not be checked
/// (the store failed, an invalid key...), as [`on_fail_closed`]'s hook sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct FailClosed<'a> {
    /// The function's name.
    pub function: &'static str,
    /// Why the lock could not be taken.
    pub error: &'a Error,
}

type Hook = Box<dyn Fn(&FailClosed<'_>) + Send + Sync>;

static COUNT: AtomicU64 = AtomicU64::new(0);
static HOOK: OnceLock<Hook> = OnceLock::new();

/// Sets the hook called for every `#[once]` call skipped because its lock could not be
/// checked (the function returns no `Result` to carry the error): alert, count in your
/// metrics, or abort. Once per process, like
/// [`set_default_cache`](crate::set_default_cache); a second call returns
/// [`Error::AlreadyConfigured`]. The hook runs on the calling thread, before the call
/// returns; keep it short.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// static SKIPPED: AtomicU64 = AtomicU64::new(0);
/// cachelock::on_fail_closed(|skip| {
///     SKIPPED.fetch_add(1, Ordering::Relaxed);
///     eprintln!("job {} did not run: {}", skip.function, skip.error);
/// })?;
/// # Ok::<(), cachelock::Error>(())
/// ```
pub fn on_fail_closed(hook: impl Fn(&FailClosed<'_>) + Send + Sync + 'static) -> Result<(), Error> {
    HOOK.set(Box::new(hook))
        .map_err(|_| Error::AlreadyConfigured {
            what: "fail-closed hook",
        })
}

/// How many `#[once]` calls this process skipped because their lock could not be checked
/// (not counting calls skipped because the key was held: that is the lock working).
pub fn fail_closed_count() -> u64 {
    COUNT.load(Ordering::Relaxed)
}

/// At most one stderr line a minute per function (after its first).
const STDERR_EVERY: Duration = Duration::from_secs(60);

/// Reports a skipped call: counted, logged, handed to the hook, and on stderr when nobody
/// else would see it.
pub(crate) fn report(function: &'static str, error: &Error) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        function,
        key = error.key().unwrap_or_default(),
        error = %error,
        "#[once] did not run the function: the lock could not be taken (fail closed)"
    );
    match HOOK.get() {
        Some(hook) => hook(&FailClosed { function, error }),
        None if !tracing::dispatcher::has_been_set() && due(function) => eprintln!(
            "cachelock: #[once] fn {function} did not run: the lock could not be taken: {} \
             (fail closed; install a tracing subscriber or cachelock::on_fail_closed to handle this)",
            with_sources(error)
        ),
        None => {}
    }
}

/// `error`, then each of its sources, separated by `: `.
fn with_sources(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether a stderr line for `function` is due now.
fn due(function: &'static str) -> bool {
    static LAST: OnceLock<Mutex<HashMap<&'static str, Instant>>> = OnceLock::new();
    let mut last = LAST
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    match last.get(function) {
        Some(at) if now.duration_since(*at) < STDERR_EVERY => false,
        _ => {
            last.insert(function, now);
            true
        }
    }
}
