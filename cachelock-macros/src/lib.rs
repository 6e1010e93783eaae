//! Procedural macros for cachelock. Use them through the `cachelock` crate:
//! `use cachelock::once;`.
#![deny(missing_docs)]

mod args;
mod duration;
mod expand;
mod template;

use proc_macro::TokenStream;

/// Runs a function at most once at a time per key. See the docs of `cachelock::once`.
#[proc_macro_attribute]
pub fn once(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::once(args.into(), item.into()).into()
}
