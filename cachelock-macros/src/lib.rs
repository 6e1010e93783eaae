//! Procedural macros for cachelock. Use them through the `cachelock` crate:
//! `use cachelock::once;`. The documentation is on [`once`].
#![deny(missing_docs)]

mod args;
mod claim;
mod duration;
mod errors;
mod expand;
mod key;
mod max_ttl;
mod options;
mod private_path;
mod template;
mod valid;

use proc_macro::TokenStream;

/// Runs a function at most once at a time per formatted key, across every thread, task,
/// process and machine that shares the cache.
///
/// ```
/// use cachelock::once;
///
/// #[once(key = "nightly-report-<day>")]
/// fn nightly_report(day: &str) -> Option<usize> {
///     // Runs only if no one else is running the report for `day` right now.
///     Some(day.len())
/// }
///
/// assert_eq!(nightly_report("2026-11-25"), Some(10));
///
/// // While someone holds the key, the call is skipped and returns `None`.
/// let held = cachelock::Lock::new("nightly-report-2026-11-25").try_acquire()?;
/// assert_eq!(nightly_report("2026-11-25"), None);
/// drop(held);
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// A call formats the key from its arguments, takes a lock on it (a
/// [`Lock`](https://docs.rs/cachelock/latest/cachelock/struct.Lock.html) in the process default cache unless `cache = ...`
/// says otherwise), runs the body, and releases the lock. The signature is not rewritten and
/// the body is kept as written: `return` and `?` keep their meaning.
///
/// # Options
///
/// | option | default | |
/// |---|---|---|
/// | `key = "..."` | required | the key template, see [below](#the-key-template) |
/// | `raise_if_locked = bool` | `false` | `false`: a held key skips the call; `true`: it returns `Err(Error::Locked { .. }.into())` |
/// | `ttl = "30s"` | 60 s (`cachelock::DEFAULT_TTL`) | how long the lock lives if its holder never releases it (a crash) |
/// | `wait = "5s"` | no wait | how long to wait for a held key before giving up |
/// | `cache = <expr>` | the process default cache | the cache the lock lives in, evaluated on each call |
/// | `cancel_on_lost = bool` | `false` | `async fn` only: drop the body's future when the lock is lost and return `Err(Error::LockLost { .. }.into())` |
/// | `fence = name` | none: the claim takes no fencing token | the body sees this hold's fencing token as `name: u64` |
/// | `renew = bool` | `true` | renew the lock while the body runs (see [`Lock::renew`](https://docs.rs/cachelock/latest/cachelock/struct.Lock.html#method.renew)) |
/// | `max_hold = "1h"` | none | renewal never keeps the lock longer than this after acquiring ([`Lock::max_hold`](https://docs.rs/cachelock/latest/cachelock/struct.Lock.html#method.max_hold)) |
/// | `hold_at_least = "5m"` | none | keep the key this long after acquiring even if the body ends sooner: at most one run per window across all nodes ([`Lock::hold_at_least`](https://docs.rs/cachelock/latest/cachelock/struct.Lock.html#method.hold_at_least)) |
/// | `crate = "path"` | `"cachelock"` | where the `cachelock` crate is, if it was renamed |
///
/// Each option can be given once; an unknown one is a compile error that lists the valid
/// ones. Durations are parsed at compile time: a number and a unit (`ns`, `us`, `ms`, `s`,
/// `m`, `h`, `d`), fractions and compounds allowed (`"250ms"`, `"1.5s"`, `"1h30m"`); an
/// invalid one is a compile error on the literal. Every duration option also accepts any
/// expression of type `Duration` (a `const`, `Duration::from_secs(n)`), checked at run time.
///
/// ## `key`
///
/// ```
/// # use cachelock::once;
/// #[once(key = "invoice-<customer>-<month>")]
/// fn send_invoice(customer: u64, month: &str) {
///     println!("sending the {month} invoice of customer {customer}");
/// }
/// send_invoice(42, "2026-11");
/// ```
///
/// ## `raise_if_locked`
///
/// ```
/// use cachelock::{once, Error};
///
/// #[once(key = "import-<file>", raise_if_locked = true)]
/// fn import(file: &str) -> Result<usize, Error> {
///     Ok(file.len())
/// }
///
/// let held = cachelock::Lock::new("import-data.csv").try_acquire()?;
/// let refused = import("data.csv").unwrap_err();
/// assert!(refused.is_locked());
/// assert_eq!(refused.key(), Some("cachelock:import-data.csv"));
/// drop(held);
/// assert_eq!(import("data.csv")?, 8);
/// # Ok::<(), cachelock::Error>(())
/// ```
///
/// ## `ttl`
///
/// ```
/// # use cachelock::once;
/// // A holder that crashes blocks the key for at most 5 minutes.
/// #[once(key = "rebuild-index", ttl = "5m")]
/// fn rebuild_index() -> Option<()> {
///     Some(())
/// }
/// # assert_eq!(rebuild_index(), Some(()));
/// ```
///
/// ## `wait`
///
/// ```
/// # use cachelock::once;
/// // If another caller is running it, wait up to 2.5 s for it to finish, then skip.
/// #[once(key = "refresh-token-<account>", wait = "2.5s")]
/// fn refresh_token(account: u32) -> Option<String> {
///     Some(format!("token-{account}"))
/// }
/// # assert_eq!(refresh_token(1).as_deref(), Some("token-1"));
/// ```
///
/// In async functions the wait sleeps on tokio's timer, so it must run inside a tokio
/// runtime.
///
/// ## `cache`
///
/// Any expression whose value is a store handle: a field of `self`, a static, a function
/// call, a parameter (also a reference to one). It is evaluated on each call and **cloned**
/// into an owned handle, because the lock's guard hands it to the shared renewal thread,
/// which may outlive the call's borrows. So its type must implement `Clone`, `'static` and
/// [`LockStore`](https://docs.rs/cachelock/latest/cachelock/trait.LockStore.html):
/// `MemoryCache`, `RedisCache` and the other stores do (their clones share one store or one
/// connection pool), and so do a `CacheStore` around a get/set/delete cache of your own, an
/// `Arc<dyn LockStore>` and a `&'static` store. A store of your own that is not `Clone`:
/// put it in an `Arc`.
///
/// ```
/// use std::sync::LazyLock;
/// use cachelock::{once, MemoryCache};
///
/// static JOBS: LazyLock<MemoryCache> = LazyLock::new(MemoryCache::new);
///
/// #[once(key = "cleanup", cache = *JOBS)]
/// fn cleanup() -> Option<()> {
///     Some(())
/// }
///
/// struct Worker {
///     id: u32,
///     cache: MemoryCache,
/// }
///
/// impl Worker {
///     #[once(key = "work-<self.id>", cache = self.cache)]
///     fn work(&self) -> Option<u32> {
///         Some(self.id)
///     }
/// }
///
/// assert_eq!(cleanup(), Some(()));
/// assert_eq!(Worker { id: 1, cache: MemoryCache::new() }.work(), Some(1));
/// ```
///
/// Since the handle is a clone, `cache = self.field` does not keep `self` borrowed: a
/// `&mut self` or `self` method may change or move `self` in its body.
///
/// ## `cancel_on_lost`
///
/// While the body runs, the lock is renewed in the background. If a renewal finds the lock
/// lost (the key expired, or another owner holds it), `cancel_on_lost = true` drops the
/// body's future at the `.await` it is suspended on, so nothing after that point runs, and
/// the call returns `Err(cachelock::Error::LockLost { key }.into())`. The function must be
/// `async` and return `Result<T, E>` with `E: From<cachelock::Error>`; anything else is a
/// compile error. Without it, a body whose lock is lost runs to its end.
///
/// ```
/// use std::time::Duration;
/// use cachelock::{once, Error, Lock, MemoryCache};
///
/// #[once(key = "sync-<id>", cache = cache, ttl = "300ms", cancel_on_lost = true, raise_if_locked = true)]
/// async fn sync(cache: &MemoryCache, id: u32) -> Result<u32, Error> {
///     std::future::pending::<()>().await; // long work: every `.await` is a cancellation point
///     Ok(id)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = MemoryCache::new();
/// let intruder = Lock::new("sync-1").cache(cache.clone());
/// // An admin force-releases the key while the call holds it, and someone else takes it.
/// std::thread::spawn(move || {
///     while intruder.holder().unwrap().is_none() {
///         std::thread::sleep(Duration::from_millis(5));
///     }
///     intruder.force_release().unwrap();
///     std::mem::forget(intruder.try_acquire().unwrap());
/// });
/// let error = sync(&cache, 1).await.unwrap_err();
/// assert!(error.is_lost()); // the body was dropped at its `.await`
/// # }
/// ```
///
/// ## `fence`
///
/// Binds the fencing token of this call's hold to a local `u64` the body can use (see
/// `Guard::fence` in cachelock): strictly greater than the fence of every earlier hold of
/// the key. Send it with every write to a store that refuses fences lower than the highest
/// it has seen, and a call that was paused past its TTL can no longer overwrite the work of
/// the call that took over.
///
/// **Without `fence = name` the call takes no fencing token**: the body could not see it, so
/// nobody could use it, and the lock is taken as with
/// [`Lock::fencing(false)`](https://docs.rs/cachelock/latest/cachelock/struct.Lock.html#method.fencing). On Redis the claim
/// is then a plain `SET key value NX PX ttl` (an uncontended call costs that plus the release
/// `EVALSHA`, and never touches the fence counter) instead of the script that also bumps
/// the counter. Exclusion, renewal and the other lease settings are the same either way.
/// With `fence = name`, the claim is fenced, and every call's fence is strictly greater
/// than the one before.
///
/// ```
/// use std::sync::Mutex;
/// use cachelock::once;
///
/// static HIGHEST: Mutex<u64> = Mutex::new(0);
///
/// /// The downstream store: refuses a write with a fence it has already passed.
/// fn store_write(fence: u64) -> Result<(), String> {
///     let mut highest = HIGHEST.lock().unwrap();
///     if fence <= *highest {
///         return Err(format!("stale fence {fence}"));
///     }
///     *highest = fence;
///     Ok(())
/// }
///
/// #[once(key = "export", fence = token)]
/// fn export() -> Option<Result<(), String>> {
///     Some(store_write(token))
/// }
///
/// assert_eq!(export(), Some(Ok(())));
/// assert_eq!(export(), Some(Ok(()))); // the next hold has a greater fence
/// ```
///
/// ## `hold_at_least`, `max_hold`, `renew`
///
/// The lease settings of a [`Lock`](https://docs.rs/cachelock/latest/cachelock/struct.Lock.html), for the lock the call
/// takes. `hold_at_least` (ShedLock's `lockAtLeastFor`) keeps the key after a body that
/// ends early, so a scheduled job that every node fires runs at most once per window;
/// `max_hold` bounds how long renewal keeps the lock of a runaway body; `renew = false`
/// lets the lock expire after its TTL whatever the body does.
///
/// ```
/// use cachelock::{once, MemoryCache};
///
/// // However fast it runs, the digest goes out at most once per 5 minutes across all nodes.
/// #[once(key = "digest", cache = cache, hold_at_least = "5m")]
/// fn send_digest(cache: &MemoryCache) -> Option<()> {
///     Some(())
/// }
///
/// let cache = MemoryCache::new();
/// assert_eq!(send_digest(&cache), Some(()));
/// assert_eq!(send_digest(&cache), None); // inside the window: skipped
/// ```
///
/// ## `crate`
///
/// ```
/// # extern crate cachelock as locks;
/// // With `locks = { package = "cachelock", ... }` in Cargo.toml:
/// use locks::once;
///
/// #[once(key = "renamed", crate = "locks")]
/// fn renamed() -> Option<()> {
///     Some(())
/// }
/// # assert_eq!(renamed(), Some(()));
/// ```
///
/// # The key template
///
/// - `<name>` is a parameter, formatted with `Display`; `<name.field.sub>` a field path
///   (`<pair.0>` for a tuple field); `<self.field>` a field of `self` in a method.
/// - `<<` and `>>` stand for a literal `<` and `>`.
/// - Everything else is literal text.
///
/// The key is stored under the process prefix: `"job-<id>"` with `id = 7` locks
/// `cachelock:job-7`. Arguments are only borrowed to format the key, before the body runs:
/// no `Clone`, `'static` or `Send` is needed for that.
///
/// A placeholder that names no parameter, an unclosed `<`, an empty `<>`, a stray `>` and a
/// parameter that is not `Display` are compile errors pointing at the key.
///
/// ## Collision-free keys
///
/// Two calls with different arguments never get the same key. In argument values, `%` and
/// the first character of each separator between two placeholders are percent-encoded,
/// byte by byte (`%2D` for `-`); everything else is kept, so numbers and plain words stay
/// readable. With `key = "<a>-<b>"`:
///
/// | `a` | `b` | key |
/// |---|---|---|
/// | `"report"` | `42` | `report-42` |
/// | `"x-y"` | `"z"` | `x%2Dy-z` |
/// | `"x"` | `"y-z"` | `x-y%2Dz` |
/// | `"100%"` | `""` | `100%25-` |
///
/// Reading a key from the left, a value ends at the first unescaped separator character, so
/// every key decodes back to exactly one list of arguments. For that, two placeholders must
/// have literal text between them (`"<a><b>"` is a compile error) that does not start with
/// `%`. The guarantee is per function: give different functions different key texts.
///
/// # What a call returns
///
/// | the lock | `raise_if_locked = false` (default) | `raise_if_locked = true` |
/// |---|---|---|
/// | taken | the body runs; the lock is released afterwards | same |
/// | held by someone else | the body does not run; the call returns the *skipped value*: `()`, `None`, `Ok(())`, `Ok(None)` | `Err(Error::Locked { key }.into())` |
/// | the cache failed | see below | `Err(error.into())` |
///
/// The lock is released when the body returns, also on an early `return`, on `?`, on a
/// panic (which then goes on unwinding) and, in async functions, when the future is dropped
/// before it finished (cancelled): the guard's `Drop` releases it without blocking.
///
/// With `raise_if_locked = false` the return type must have a skipped value: `()`,
/// `Option<T>`, or `Result<T, E>` where `T` has one. Any other return type is a compile
/// error on the return type, suggesting `Option<T>` or `raise_if_locked = true`. With
/// `raise_if_locked = true` the return type must be `Result<T, E>` with
/// `E: From<cachelock::Error>`.
///
/// ## When the cache fails
///
/// When the lock cannot be taken because the cache failed (a Redis server that is down), or
/// the formatted key is invalid (empty, longer than `cachelock::MAX_KEY_LEN`):
///
/// - if the function returns `Result<_, E>` with `E: From<cachelock::Error>`, the error is
///   returned (in a generic function, `E` must have that bound in scope);
/// - otherwise the body does **not** run (the call *fails closed*: it returns the skipped
///   value), and the skip is never silent: it is counted (`cachelock::fail_closed_count()`),
///   reported through `tracing` at error level with the function name and the key, handed to
///   the hook set with `cachelock::on_fail_closed`, and, when neither a hook nor a `tracing`
///   subscriber is installed, written to stderr (the first time per function, then at most
///   once a minute).
///
/// Failing closed is the safe choice for "at most once" work (payments, e-mails, reports):
/// running without the lock could run it twice. Return a `Result` to handle the failure, or
/// set `cachelock::on_fail_closed` to alert on it.
///
/// # What it applies to
///
/// Free functions, associated functions, methods (`&self`, `&mut self`, `self`), generic
/// functions, functions with lifetimes and `impl Trait` arguments, and `async` functions,
/// whose futures stay `Send` when the body is. It works next to other attributes such as
/// `#[tracing::instrument]` and `#[tokio::test]`, in either order.
///
/// ```
/// use cachelock::once;
///
/// #[once(key = "sync-user-<user_id>")]
/// async fn sync_user(user_id: u64) -> Result<Option<u64>, cachelock::Error> {
///     tokio::task::yield_now().await;
///     Ok(Some(user_id))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let synced = tokio::spawn(sync_user(7)).await.unwrap();
/// assert_eq!(synced.unwrap(), Some(7));
/// # }
/// ```
///
/// A recursive call with the same key sees the key held by the outer call: it is skipped
/// (or refused), never deadlocked. `const fn` and `extern` functions are compile errors.
///
/// # From python-cachelock
///
/// | python-cachelock | cachelock |
/// |---|---|
/// | `@once(key='foo-{a}-{b}')` | `#[once(key = "foo-<a>-<b>")]` (a `{a}` naming a parameter is a compile error that suggests `<a>`) |
/// | `{a}`: `str.format` of the arguments | `<a>`: `Display` of the argument, escaped (collision-free); `<a.b>` for fields |
/// | locked: the function quits silently, returning `None` | locked: returns `()`, `None`, `Ok(())` or `Ok(None)`; other return types do not compile |
/// | `raise_if_lock=True`: raises `LockError` | `raise_if_locked = true`: returns `Err(Error::Locked { key }.into())` |
/// | `cache=...` (Django's cache by default) | `cache = <expr>` (any `LockStore`, e.g. `CacheStore::new(your_cache)`; the process default, set with `cachelock::set_default_cache`) |
/// | (not an option of `once`) | `ttl = "30s"` (default 60 s): a crashed holder frees the key |
/// | (not an option of `once`) | `wait = "5s"` |
/// | a cache error is raised | returned in a `Result` whose error converts from `cachelock::Error`, else fail closed: counted, logged, sent to `cachelock::on_fail_closed`'s hook, on stderr if nothing else listens |
/// | the key as formatted | stored under the process prefix, `cachelock:` by default |
#[proc_macro_attribute]
pub fn once(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::once(args.into(), item.into()).into()
}
