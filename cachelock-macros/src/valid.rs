//! What `#[once]` applies to, and what the options and the function must agree on. The
//! options alone are checked as they are parsed ([`crate::args`]), the key template as it
//! is lowered ([`crate::key`]).

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::args::Args;
use crate::errors::Errors;

/// The function `#[once]` is on: a function with a body.
pub(crate) fn function(item: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2(item).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            "`#[once]` applies to functions with a body (free functions, associated functions and methods)",
        )
    })
}

/// Every error in how the function and the options go together.
pub(crate) fn check(function: &ItemFn, args: &Args) -> syn::Result<()> {
    let mut errors = Errors::default();
    let sig = &function.sig;
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "`#[once]` cannot apply to a `const fn`: a lock is taken at run time, in a cache",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new(
            abi.span(),
            "`#[once]` cannot apply to an `extern` function: wrap it, and put `#[once]` on the Rust function it calls",
        ));
    }
    if let Some(cancel) = args.cancel_on_lost.as_ref().filter(|c| c.is_true()) {
        if sig.asyncness.is_none() {
            errors.push(syn::Error::new(
                cancel.span,
                "`cancel_on_lost = true` needs an `async fn`: only a future can be dropped when the lock is lost (in sync code, check `Guard::is_lost()` with a `Lock` instead)",
            ));
        }
        if let ReturnType::Default = sig.output {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "`cancel_on_lost = true` needs a function that returns `Result<T, E>` with `E: From<cachelock::Error>`: a cancelled call returns `Err(Error::LockLost { .. }.into())`",
            ));
        }
    }
    errors.finish()
}
