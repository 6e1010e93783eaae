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

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use crate::args::{Args, DurationArg, Flag};
use crate::errors;
use crate::key;
use crate::private_path::{private_path, private_path_at};
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

fn duration(
    args: &Args,
    private: &TokenStream,
    arg: Option<&DurationArg>,
    default: TokenStream,
) -> TokenStream {
    match arg {
        None => default,
        Some(DurationArg::Literal(nanos)) => quote!(#private::Duration::from_nanos(#nanos)),
        Some(DurationArg::Expr(expr)) => {
            let private = private_path_at(args, expr.span());
            quote_spanned!(expr.span()=> #private::duration(#expr))
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

fn generate(function: &ItemFn, args: &Args, key_tokens: &TokenStream) -> TokenStream {
    let private = private_path(args);
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
    let is_async = sig.asyncness.is_some();
    let name = sig.ident.to_string();

    let (ret, ret_span) = match &sig.output {
        ReturnType::Default => (quote!(()), sig.ident.span()),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    };
    let ret_has_impl = match &sig.output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => has_impl_trait(ty),
    };

    let private_at = args
        .cache
        .as_ref()
        .map(|expr| private_path_at(args, expr.span()));
    let (cache_binding, cache_arg) = match &args.cache {
        // Cloned into an owned handle: the guard gives it to the shared renewer, which may
        // outlive this call's borrows. Cache handles are cheap to clone (an `Arc`, a
        // `&'static`, or a backend that shares its state between clones).
        Some(expr) => (
            quote_spanned!(expr.span()=>
                let __cachelock_cache = {
                    #[allow(unused_imports)]
                    use #private_at::CacheHandle as _;
                    (#expr).cachelock_handle()
                };
            ),
            quote_spanned!(expr.span()=> __cachelock_cache),
        ),
        None => (quote!(), quote!(#private::DefaultCache)),
    };
    let ttl = duration(
        args,
        &private,
        args.ttl.as_ref(),
        quote!(#private::DEFAULT_TTL),
    );
    let wait = duration(
        args,
        &private,
        args.wait.as_ref(),
        quote!(#private::Duration::ZERO),
    );

    // `renew`, `max_hold`, `hold_at_least`: the `Lock` builder methods of the same names.
    let mut lease_options = TokenStream::new();
    // Without `fence = name` the body cannot see the fence, so nobody can use it: the claim
    // skips it (on Redis a plain `SET NX PX` instead of the fencing script).
    if args.fence.is_none() {
        lease_options.extend(quote!(.fencing(false)));
    }
    if let Some(renew) = &args.renew {
        let renew = &renew.value;
        lease_options.extend(quote!(.renew(#renew)));
    }
    if let Some(max_hold) = args.max_hold.as_ref() {
        let max_hold = duration(args, &private, Some(max_hold), TokenStream::new());
        lease_options.extend(quote!(.max_hold(#max_hold)));
    }
    if let Some(hold) = args.hold_at_least.as_ref() {
        let hold = duration(args, &private, Some(hold), TokenStream::new());
        lease_options.extend(quote!(.hold_at_least(#hold)));
    }

    let raise = args.raise_if_locked.as_ref().is_some_and(Flag::is_true);
    let on_error = if raise && ret_has_impl {
        quote_spanned!(ret_span=> #private::raise(__cachelock_error))
    } else if raise {
        quote_spanned!(ret_span=> <#ret as #private::Raise>::raise(__cachelock_error))
    } else if ret_has_impl {
        quote_spanned!(ret_span=> #private::fail_closed(__cachelock_error, #name))
    } else {
        quote_spanned!(ret_span=>
            (&#private::Policy::<#ret>::new()).skip_or_fail(__cachelock_error, #name)
        )
    };

    let preamble = quote! {
        #[allow(unused_imports)]
        use #private::{ViaError as _, FailClosed as _};
        #key_tokens
        #cache_binding
        let __cachelock_lock = #private::lock(__cachelock_key, #cache_arg, #ttl) #lease_options;
    };

    let cancel = args.cancel_on_lost.as_ref().is_some_and(Flag::is_true);
    let run_body = if cancel {
        // Raced against the lost signal: on loss the body's future is dropped (at its
        // current `.await`) and the call returns `Err(Error::LockLost { .. }.into())`.
        quote_spanned!(ret_span=>
            #private::cancel_on_lost(&__cachelock_guard, __cachelock_body).await
        )
    } else {
        quote!(__cachelock_body.await)
    };

    // `fence = name`: the body sees the fencing token as a `u64` local (the user's ident,
    // with its span, so the body can name it).
    let fence = args.fence.as_ref().map(|name| {
        quote! {
            let #name: u64 = __cachelock_guard.fence();
        }
    });

    let body = if is_async {
        let fake_return = if ret_has_impl {
            quote!()
        } else {
            // Tells type inference the block's output type, so that `?` in the body works
            // (the same device as `#[tracing::instrument]`).
            quote_spanned! {ret_span=>
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
                    let __cachelock_fake_return: #ret = loop {};
                    return __cachelock_fake_return;
                }
            }
        };
        quote! {
            #preamble
            let __cachelock_guard = match #private::acquire_async(&__cachelock_lock, #wait).await {
                ::core::result::Result::Ok(__cachelock_guard) => __cachelock_guard,
                #[allow(clippy::needless_borrow)]
                ::core::result::Result::Err(__cachelock_error) => return #on_error,
            };
            #fence
            let __cachelock_body = async move {
                #fake_return
                #block
            };
            let __cachelock_result = #run_body;
            #private::release_async(__cachelock_guard).await;
            __cachelock_result
        }
    } else {
        quote! {
            #preamble
            let __cachelock_guard = match #private::acquire(&__cachelock_lock, #wait) {
                ::core::result::Result::Ok(__cachelock_guard) => __cachelock_guard,
                #[allow(clippy::needless_borrow)]
                ::core::result::Result::Err(__cachelock_error) => return #on_error,
            };
            #fence
            #block
        }
    };

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}
