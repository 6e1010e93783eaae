//! Support code for the expansion of `#[once]`. Not public API: it can change in any release
//! (the `cachelock-macros` crate is pinned to the exact version of `cachelock`).

use std::fmt::{self, Display, Write as _};
use std::marker::PhantomData;

pub use core::time::Duration;

pub use crate::default_cache::DefaultCache;
pub use crate::DEFAULT_TTL;
use crate::{AsyncGuard, Error, Guard, Lock, LockStore};

/// Builds a formatted key: literal text as is, argument values escaped.
///
/// # The escaping
///
/// In an argument value, `%` and every *reserved* character are written as `%XX` for each
/// byte of their UTF-8 encoding (uppercase hex, as in URLs). The reserved characters are the
/// first character of every separator between two placeholders: for `"job-<a>-<b>"` they are
/// `%` and `-`, so `a = "x-y", b = "z"` gives `job-x%2Dy-z` and `a = "x", b = "y-z"` gives
/// `job-x-y%2Dz`. Everything else is written as is, so numbers and plain words stay readable.
///
/// This is injective for a given template: reading a key from the left, a value ends exactly
/// at the first unescaped reserved character (escapes are `%` plus two hex digits, and a
/// value never contains a bare `%` or reserved character), and the last value ends where the
/// template's fixed suffix begins. The macro rejects templates where this would fail: two
/// placeholders with nothing between them, or a separator that starts with `%`.
#[derive(Debug)]
pub struct KeyWriter {
    key: String,
    reserved: &'static [char],
}

impl KeyWriter {
    /// A writer that escapes `%` and `reserved` in values.
    #[must_use]
    pub fn new(reserved: &'static [char]) -> Self {
        KeyWriter {
            key: String::new(),
            reserved,
        }
    }

    /// Appends literal template text, unescaped.
    pub fn literal(&mut self, text: &str) {
        self.key.push_str(text);
    }

    /// Appends an argument value, formatted with `Display` and escaped.
    ///
    /// # Panics
    ///
    /// If the `Display` implementation returns an error, as `ToString::to_string` does.
    pub fn value<T: Display + ?Sized>(&mut self, value: &T) {
        let mut escaper = Escaper {
            key: &mut self.key,
            reserved: self.reserved,
        };
        escaper
            .write_fmt(format_args!("{value}"))
            .expect("a Display implementation returned an error unexpectedly");
    }

    /// The key.
    #[must_use]
    pub fn finish(self) -> String {
        self.key
    }
}

struct Escaper<'a> {
    key: &'a mut String,
    reserved: &'static [char],
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for c in text.chars() {
            if c == '%' || self.reserved.contains(&c) {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    write!(self.key, "%{byte:02X}")?;
                }
            } else {
                self.key.push(c);
            }
        }
        Ok(())
    }
}

/// The lock of one call.
///
/// The cache is a `'static` handle (the guard hands it to the shared renewer); the
/// `cache = ...` expression is cloned into one, and checked once, here, so a type that is
/// not a cache gives one error pointing at it.
pub fn lock<C: LockStore + Clone + 'static>(key: String, cache: C, ttl: Duration) -> Lock<C> {
    Lock::new(key).ttl(ttl).cache(cache)
}

/// Turns the value of a `cache = ...` expression into an owned cache handle.
///
/// Called as a method, `(expr).cachelock_handle()`, so that method resolution looks through
/// references: `cache = cache` with a `cache: &RedisCache` parameter clones the
/// `RedisCache` (clones share the connections), `cache = self.cache` clones the field, and
/// `cache = *STATIC` clones what the static holds.
pub trait CacheHandle {
    /// An owned clone of the handle.
    fn cachelock_handle(&self) -> Self;
}

impl<T: LockStore + Clone + 'static> CacheHandle for T {
    fn cachelock_handle(&self) -> Self {
        self.clone()
    }
}

/// Checks that a `ttl`/`wait` expression is a `Duration`.
#[must_use]
pub fn duration(duration: Duration) -> Duration {
    duration
}

/// Takes the lock: one attempt, or waiting up to `wait`.
///
/// # Errors
///
/// [`Error::Locked`] if the key stays held, or any failure of the cache.
pub fn acquire<C: LockStore + Clone + 'static>(
    lock: &Lock<C>,
    wait: Duration,
) -> Result<Guard<C>, Error> {
    if wait.is_zero() {
        lock.try_acquire()
    } else {
        lock.acquire_timeout(wait)
    }
}

/// Async twin of [`acquire`].
///
/// # Errors
///
/// As [`acquire`].
pub async fn acquire_async<C: LockStore + Clone + 'static>(
    lock: &Lock<C>,
    wait: Duration,
) -> Result<AsyncGuard<C>, Error> {
    if wait.is_zero() {
        lock.try_acquire_async().await
    } else {
        lock.acquire_timeout_async(wait).await
    }
}

/// Releases the lock after an async body, reporting a failure through `tracing` (a lost
/// lock is already reported at warn level by the guard).
pub async fn release_async<C: LockStore + Clone + 'static>(guard: AsyncGuard<C>) {
    if let Err(error) = guard.release().await {
        if !error.is_lost() {
            tracing::error!(key = error.key().unwrap_or_default(), error = %error, "releasing lock failed; it stays until its TTL runs out");
        }
    }
}

/// The value a skipped call returns: `()`, `None`, `Ok(())`, `Ok(None)`.
#[diagnostic::on_unimplemented(
    message = "`#[once]` cannot skip a call that returns `{Self}`",
    label = "when the key is held, `#[once]` has no `{Self}` to return",
    note = "a skipped call returns `()`, `None`, `Ok(())` or `Ok(None)`: return `()`, `Option<T>`, `Result<(), E>` or `Result<Option<T>, E>`",
    note = "or set `raise_if_locked = true` and return `Result<T, E>` with `E: From<cachelock::Error>`"
)]
pub trait Skip {
    /// The value of a skipped call.
    fn skipped() -> Self;
}

impl Skip for () {
    fn skipped() -> Self {}
}

impl<T> Skip for Option<T> {
    fn skipped() -> Self {
        None
    }
}

impl<T: Skip, E> Skip for Result<T, E> {
    fn skipped() -> Self {
        Ok(T::skipped())
    }
}

/// `raise_if_locked = true`: the error, converted into the function's error type.
#[diagnostic::on_unimplemented(
    message = "`#[once(raise_if_locked = true)]` needs a function that returns `Result<T, E>`, not `{Self}`",
    label = "this return type cannot carry a `cachelock::Error`",
    note = "return `Result<T, E>` with `E: From<cachelock::Error>`, or drop `raise_if_locked = true` to skip the call instead"
)]
pub trait Raise {
    /// The function's error value for `error`.
    fn raise(error: Error) -> Self;
}

impl<T, E: From<Error>> Raise for Result<T, E> {
    fn raise(error: Error) -> Self {
        Err(E::from(error))
    }
}

/// `raise_if_locked = true`: the function's return value for a held key or a failure.
pub fn raise<R: Raise>(error: Error) -> R {
    R::raise(error)
}

/// `raise_if_locked = false` with a return type that cannot be named: skip, fail closed.
pub fn fail_closed<R: Skip>(error: Error, function: &'static str) -> R {
    if !error.is_locked() {
        crate::fail_closed::report(function, &error);
    }
    R::skipped()
}

/// Chooses, by autoref specialization on the return type `R`, what a call returns when the
/// lock is not taken with `raise_if_locked = false`:
///
/// - [`ViaError`] (`R = Result<T, E>` with `E: From<Error>`): a held key skips (`Ok` of
///   `T`'s skipped value), a failure is returned as `Err`;
/// - [`FailClosed`] (any other `R`): a held key skips, a failure skips too (the body never
///   runs) and is reported through `tracing` at error level.
pub struct Policy<R>(PhantomData<fn() -> R>);

impl<R> Policy<R> {
    /// The policy for return type `R`.
    #[must_use]
    pub fn new() -> Self {
        Policy(PhantomData)
    }
}

impl<R> Default for Policy<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// A failure comes back as `Err`; see [`Policy`].
pub trait ViaError<R> {
    /// The return value for `error`.
    fn skip_or_fail(&self, error: Error, function: &'static str) -> R
    where
        R: Skip;
}

impl<T, E: From<Error>> ViaError<Result<T, E>> for Policy<Result<T, E>> {
    fn skip_or_fail(&self, error: Error, _function: &'static str) -> Result<T, E>
    where
        Result<T, E>: Skip,
    {
        if error.is_locked() {
            Result::<T, E>::skipped()
        } else {
            Err(E::from(error))
        }
    }
}

/// A failure skips the call and is logged; see [`Policy`].
pub trait FailClosed<R> {
    /// The return value for `error`.
    fn skip_or_fail(&self, error: Error, function: &'static str) -> R
    where
        R: Skip;
}

impl<R> FailClosed<R> for &Policy<R> {
    fn skip_or_fail(&self, error: Error, function: &'static str) -> R
    where
        R: Skip,
    {
        fail_closed(error, function)
    }
}

/// `cancel_on_lost = true`: what a call returns when its lock is lost mid-way.
#[diagnostic::on_unimplemented(
    message = "`#[once(cancel_on_lost = true)]` needs a function that returns `Result<T, E>` with `E: From<cachelock::Error>`, not `{Self}`",
    label = "a cancelled call has no `{Self}` to return",
    note = "a call cancelled because its lock was lost returns `Err(cachelock::Error::LockLost {{ .. }}.into())`"
)]
pub trait Cancelled {
    /// The function's error value for a lost lock.
    fn lost(error: Error) -> Self;
}

impl<T, E: From<Error>> Cancelled for Result<T, E> {
    fn lost(error: Error) -> Self {
        Err(E::from(error))
    }
}

/// `cancel_on_lost = true`: runs `body` until it completes or the lock is lost, whichever
/// comes first. On loss, `body` is dropped before this returns (so nothing of it runs
/// again) and the call returns [`Error::LockLost`], converted into the function's error.
pub async fn cancel_on_lost<C, F>(guard: &AsyncGuard<C>, body: F) -> F::Output
where
    C: LockStore + Clone + 'static,
    F: std::future::Future,
    F::Output: Cancelled,
{
    use futures_util::future::{select, Either};
    let outcome = {
        let body = std::pin::pin!(body);
        let lost = std::pin::pin!(guard.lost());
        match select(body, lost).await {
            Either::Left((output, _)) => Ok(output),
            Either::Right(((), _)) => Err(()),
        }
        // `body` is dropped here, before the error is returned.
    };
    match outcome {
        Ok(output) => output,
        Err(()) => {
            tracing::warn!(
                key = guard.key(),
                held_for = ?guard.held_for(),
                "#[once] body cancelled: its lock was lost"
            );
            <F::Output as Cancelled>::lost(Error::LockLost {
                key: guard.key().to_owned(),
            })
        }
    }
}
