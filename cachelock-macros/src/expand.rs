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
use syn::{FnArg, ItemFn, LitStr, Pat, ReturnType, Type};

use crate::args::{Args, DurationArg, Flag};
use crate::template::{self, Segment};

/// Expands `#[once(args)] item`. On any error, the item is emitted untouched beside the
/// `compile_error!`s, so that one mistake does not cascade into "function not found" errors.
pub(crate) fn once(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item)
        }
    }
}

/// Merges `error` into `errors`.
fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            "`#[once]` applies to functions with a body (free functions, associated functions and methods)",
        )
    })?;
    let args: Args = syn::parse2(args)?;
    let mut errors = None;

    if let Some(constness) = &function.sig.constness {
        push(
            &mut errors,
            syn::Error::new(
                constness.span,
                "`#[once]` cannot apply to a `const fn`: a lock is taken at run time, in a cache",
            ),
        );
    }
    if let Some(abi) = &function.sig.abi {
        push(
            &mut errors,
            syn::Error::new(
                abi.span(),
                "`#[once]` cannot apply to an `extern` function: wrap it, and put `#[once]` on the Rust function it calls",
            ),
        );
    }

    if let Some(cancel) = &args.cancel_on_lost {
        if cancel.is_true() && function.sig.asyncness.is_none() {
            push(
                &mut errors,
                syn::Error::new(
                    cancel.span,
                    "`cancel_on_lost = true` needs an `async fn`: only a future can be dropped when the lock is lost (in sync code, check `Guard::is_lost()` with a `Lock` instead)",
                ),
            );
        }
        if cancel.is_true() {
            if let ReturnType::Default = function.sig.output {
                push(
                    &mut errors,
                    syn::Error::new(
                        function.sig.ident.span(),
                        "`cancel_on_lost = true` needs a function that returns `Result<T, E>` with `E: From<cachelock::Error>`: a cancelled call returns `Err(Error::LockLost { .. }.into())`",
                    ),
                );
            }
        }
    }

    let key_tokens = match &args.key {
        Some(key) => key_builder(key, &function, &args),
        None => Err(syn::Error::new(
            Span::call_site(),
            "`#[once]` needs a key template: #[once(key = \"job-<id>\")]",
        )),
    };
    match (key_tokens, errors) {
        (Ok(key_tokens), None) => Ok(generate(&function, &args, &key_tokens)),
        (Ok(_), Some(errors)) => Err(errors),
        (Err(error), None) => Err(error),
        (Err(error), Some(mut errors)) => {
            errors.combine(error);
            Err(errors)
        }
    }
}

/// Span of a byte range of the literal's value, inside the literal where the compiler
/// allows it (nightly), else the whole literal.
fn span_in(lit: &LitStr, range: std::ops::Range<usize>) -> Span {
    let source = lit.token().to_string();
    // Only a plain "..." literal without escapes maps value bytes 1:1 onto source bytes.
    if source.starts_with('"') && !source.contains('\\') {
        if let Some(span) = lit.token().subspan(range.start + 1..range.end + 1) {
            return span;
        }
    }
    lit.span()
}

/// The names a placeholder may start with: the parameters bound to a plain identifier, and
/// `self` in methods.
fn parameters(function: &ItemFn) -> Vec<String> {
    fn names(pat: &Pat, out: &mut Vec<String>) {
        match pat {
            Pat::Ident(ident) => out.push(ident.ident.to_string()),
            Pat::Type(typed) => names(&typed.pat, out),
            Pat::Reference(reference) => names(&reference.pat, out),
            Pat::Paren(paren) => names(&paren.pat, out),
            Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| names(p, out)),
            Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| names(p, out)),
            Pat::Struct(st) => st.fields.iter().for_each(|f| names(&f.pat, out)),
            Pat::Slice(slice) => slice.elems.iter().for_each(|p| names(p, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for input in &function.sig.inputs {
        match input {
            FnArg::Receiver(_) => out.push("self".to_owned()),
            FnArg::Typed(typed) => names(&typed.pat, &mut out),
        }
    }
    out
}

/// The statements that build the key into `__cachelock_key` (a `String`).
fn key_builder(key: &LitStr, function: &ItemFn, args: &Args) -> syn::Result<TokenStream> {
    let private = private_path(args);
    let template = key.value();
    let segments = template::parse(&template)
        .map_err(|e| syn::Error::new(span_in(key, e.range), e.message))?;
    let params = parameters(function);
    let mut errors = None;
    let mut writes = Vec::new();
    for segment in &segments {
        match segment {
            Segment::Literal(text) => {
                if let Some(name) = template::python_placeholder(text, &params) {
                    push(
                        &mut errors,
                        syn::Error::new(
                            key.span(),
                            format!(
                                "`{{{name}}}` is python-cachelock's placeholder syntax: write `<{name}>` to format the parameter `{name}`"
                            ),
                        ),
                    );
                }
                writes.push(quote!(#private::KeyWriter::literal(&mut __cachelock_key, #text);));
            }
            Segment::Placeholder(placeholder) => {
                let span = span_in(key, placeholder.range.clone());
                let first = &placeholder.path[0];
                if !params.iter().any(|p| p == first) {
                    let message = if first == "self" {
                        format!(
                            "`{}` uses `self`, but `{}` is not a method",
                            placeholder.display(),
                            function.sig.ident
                        )
                    } else if params.is_empty() {
                        format!(
                            "`{}` names no parameter: `{}` has no parameters",
                            placeholder.display(),
                            function.sig.ident
                        )
                    } else {
                        let list = params
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!(
                            "`{}` names no parameter of `{}`; the parameters are {list}",
                            placeholder.display(),
                            function.sig.ident
                        )
                    };
                    push(&mut errors, syn::Error::new(span, message));
                    continue;
                }
                let mut expr = if first == "self" {
                    quote_spanned!(span=> self)
                } else {
                    syn::Ident::new(first, span).into_token_stream()
                };
                for field in &placeholder.path[1..] {
                    let member = if field.chars().all(|c| c.is_ascii_digit()) {
                        syn::Member::Unnamed(syn::Index {
                            index: field.parse().unwrap_or_default(),
                            span,
                        })
                    } else {
                        syn::Member::Named(syn::Ident::new(field, span))
                    };
                    expr = quote_spanned!(span=> #expr.#member);
                }
                let private = private_path_at(args, span);
                writes.push(quote_spanned!(span=>
                    #private::KeyWriter::value(&mut __cachelock_key, &#expr);
                ));
            }
        }
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let reserved = template::reserved(&segments);
    Ok(quote! {
        let __cachelock_key = {
            let mut __cachelock_key = #private::KeyWriter::new(&[#(#reserved),*]);
            #(#writes)*
            #private::KeyWriter::finish(__cachelock_key)
        };
    })
}

fn private_path(args: &Args) -> TokenStream {
    match &args.krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::cachelock::__private),
    }
}

/// [`private_path`] with every token at `span`, so that an error about a call through it
/// points at the user's tokens alone.
fn private_path_at(args: &Args, span: Span) -> TokenStream {
    fn respan(tokens: TokenStream, span: Span) -> TokenStream {
        tokens
            .into_iter()
            .map(|mut token| {
                if let proc_macro2::TokenTree::Group(group) = &token {
                    let mut new =
                        proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                    new.set_span(span);
                    token = proc_macro2::TokenTree::Group(new);
                } else {
                    token.set_span(span);
                }
                token
            })
            .collect()
    }
    respan(private_path(args), span)
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
