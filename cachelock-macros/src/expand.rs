//! Code generation: one generator for sync and async functions.
//!
//! The signature is never rewritten. The original body stays raw tokens:
//!
//! - sync: pasted inline after the lock is taken, so `return` and `?` keep their meaning; the
//!   guard is a local of the function and releases the lock when the function returns or
//!   unwinds;
//! - async: wrapped in `async move { .. }` and awaited, then the lock is released with an
//!   awaited release; if the future is dropped or the body panics, the guard's `Drop`
//!   releases it without blocking.
//!
//! Every local is prefixed `__cachelock_`, and every path is absolute (`::core`, or the
//! `__private` module of the cachelock crate, `::cachelock` unless `crate = "..."` says
//! otherwise).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Block, ItemFn, ReturnType, Signature, Type};

use crate::args::{Args, Flag};
use crate::errors;
use crate::key;
use crate::private_path::private_path;
use crate::valid;

/// Expands `#[once(args)] item`. On any error, the item is emitted untouched beside the
/// `compile_error!`s, so that one mistake does not cascade into "function not found" errors.
pub(crate) fn once(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item)
        }
    }
}

/// Parses, checks, lowers the key, then generates: the errors of the checks and of the
/// key are reported together.
fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function = valid::function(item)?;
    let args: Args = syn::parse2(args)?;
    let checked = valid::check(&function, &args);
    let key = errors::both(checked, key::lower(&function, &args))?;
    Ok(generate(&function, &args, &key))
}

/// The function again, its body run under the lock.
fn generate(function: &ItemFn, args: &Args, key: &TokenStream) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let outer = attrs
        .iter()
        .filter(|a| matches!(a.style, syn::AttrStyle::Outer));
    let inner = attrs
        .iter()
        .filter(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
    let generator = Generator {
        args,
        sig,
        private: private_path(args),
        output: Output::of(sig),
    };
    let claim = generator.claim(key);
    let body = if sig.asyncness.is_some() {
        let run = generator.run_async(block);
        quote!(#claim #run)
    } else {
        quote!(#claim #block)
    };
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}

/// The function's return type, as the generated code names it.
pub(crate) struct Output {
    /// The type; `()` for none.
    pub(crate) ty: TokenStream,
    /// Where errors about it point: the type, or the function's name if there is none.
    pub(crate) span: Span,
    /// Whether it mentions `impl Trait`, which the body cannot name.
    pub(crate) has_impl: bool,
}

impl Output {
    fn of(sig: &Signature) -> Self {
        match &sig.output {
            ReturnType::Default => Output {
                ty: quote!(()),
                span: sig.ident.span(),
                has_impl: false,
            },
            ReturnType::Type(_, ty) => Output {
                ty: ty.to_token_stream(),
                span: ty.span(),
                has_impl: has_impl_trait(ty),
            },
        }
    }
}

/// Whether a type mentions `impl Trait` (it cannot then be named inside the body).
fn has_impl_trait(ty: &Type) -> bool {
    fn any_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => any_impl(group.stream()),
            _ => false,
        })
    }
    any_impl(ty.to_token_stream())
}

/// What every piece of the generated body needs. The claim of the lock is in
/// [`crate::claim`].
pub(crate) struct Generator<'a> {
    pub(crate) args: &'a Args,
    pub(crate) sig: &'a Signature,
    /// [`private_path`].
    pub(crate) private: TokenStream,
    pub(crate) output: Output,
}

impl Generator<'_> {
    /// Async, after the claim: the body runs as a future (dropped on loss with
    /// `cancel_on_lost = true`), then the lock is released with an awaited release.
    fn run_async(&self, block: &Block) -> TokenStream {
        let private = &self.private;
        let fake_return = self.fake_return();
        let cancel = self.args.cancel_on_lost.as_ref().is_some_and(Flag::is_true);
        let run_body = if cancel {
            // Raced against the lost signal: on loss the body's future is dropped (at its
            // current `.await`) and the call returns `Err(Error::LockLost { .. }.into())`.
            let span = self.output.span;
            quote_spanned!(span=>
                #private::cancel_on_lost(&__cachelock_guard, __cachelock_body).await
            )
        } else {
            quote!(__cachelock_body.await)
        };
        quote! {
            let __cachelock_body = async move {
                #fake_return
                #block
            };
            let __cachelock_result = #run_body;
            #private::release_async(__cachelock_guard).await;
            __cachelock_result
        }
    }

    /// Tells type inference the async block's output type, so that `?` in the body works
    /// (the same device as `#[tracing::instrument]`); nothing if the type is `impl Trait`.
    fn fake_return(&self) -> TokenStream {
        let Output { ty, span, has_impl } = &self.output;
        if *has_impl {
            return quote!();
        }
        quote_spanned! {*span=>
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::let_with_type_underscore,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let __cachelock_fake_return: #ty = loop {};
                return __cachelock_fake_return;
            }
        }
    }
}
