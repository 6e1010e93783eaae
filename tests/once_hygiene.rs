//! Hygiene: the expansion names only `::cachelock::__private`, `::core` and `::std` (or the
//! `crate = "..."` path), so it compiles without the prelude, next to decoy modules, and
//! under `clippy::pedantic` (CI runs clippy with `-D warnings` on this file).
#![no_implicit_prelude]
#![deny(clippy::pedantic)]

// Decoys: a naive expansion that wrote `cachelock::`, `core::` or `std::` would pick these.
mod cachelock {}
mod core {}
#[allow(clippy::module_name_repetitions)]
mod std {}

use ::cachelock::once;
use ::std::assert_eq;
use ::std::option::Option::{self, None, Some};
use ::std::result::Result::{self, Err, Ok};
use ::std::string::String;

#[once(key = "hygiene-<key>-<cache>-<guard>-<lock>-<result>")]
fn names(key: u32, cache: u32, guard: u32, lock: u32, result: u32) -> Option<u32> {
    Some(key + cache + guard + lock + result)
}

#[once(
    key = "hygiene-result-<a>",
    raise_if_locked = true,
    ttl = "30s",
    wait = "1ms"
)]
fn raising(a: &str) -> Result<String, ::cachelock::Error> {
    Ok(::std::borrow::ToOwned::to_owned(a))
}

#[once(key = "hygiene-skip-<a>", cache = ::cachelock::NoopCache)]
fn skipping(a: u8) -> Result<Option<u8>, ::cachelock::Error> {
    Ok(Some(a))
}

#[once(key = "hygiene-async-<a>")]
async fn asynchronous(a: u8) -> Option<u8> {
    Some(a)
}

struct Job {
    id: u32,
}

impl Job {
    #[once(key = "hygiene-method-<self.id>")]
    fn run(&self) -> Option<u32> {
        Some(self.id)
    }
}

/// A facade re-exporting cachelock's private module with one function replaced, to prove
/// that `crate = "..."` is the path the expansion uses.
mod facade {
    pub mod __private {
        pub use ::cachelock::__private::*;

        pub static LOCKS: ::std::sync::atomic::AtomicUsize =
            ::std::sync::atomic::AtomicUsize::new(0);

        pub fn lock<C: ::cachelock::LockStore + ::core::clone::Clone + 'static>(
            key: ::std::string::String,
            cache: C,
            ttl: ::core::time::Duration,
        ) -> ::cachelock::Lock<C> {
            LOCKS.fetch_add(1, ::std::sync::atomic::Ordering::SeqCst);
            ::cachelock::__private::lock(key, cache, ttl)
        }
    }
}

#[once(key = "hygiene-crate", crate = "crate::facade")]
fn through_facade() -> Option<()> {
    Some(())
}

#[test]
fn expansion_is_hygienic() {
    assert_eq!(names(1, 2, 3, 4, 5), Some(15));
    assert_eq!(
        raising("x").ok(),
        Some(::std::borrow::ToOwned::to_owned("x"))
    );
    assert_eq!(skipping(3).ok(), Some(Some(3)));
    assert_eq!(Job { id: 4 }.run(), Some(4));
    let runtime = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(asynchronous(9)), Some(9));
    let _: Option<()> = None;
    let _: Result<(), ()> = Err(());
}

#[test]
fn crate_option_names_the_path_used() {
    let before = facade::__private::LOCKS.load(::std::sync::atomic::Ordering::SeqCst);
    assert_eq!(through_facade(), Some(()));
    let after = facade::__private::LOCKS.load(::std::sync::atomic::Ordering::SeqCst);
    assert_eq!(after, before + 1);
}
