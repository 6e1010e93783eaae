//! Taking the lock: the key, the cache, the `Lock` with its lease settings, the wait for
//! it, and what the function returns when it is not taken.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{DurationArg, Flag};
use crate::expand::{Generator, Output};
use crate::private_path::private_path_at;

impl Generator<'_> {
    /// Takes the lock. After these statements `__cachelock_guard` holds it and the fence is
    /// bound to `fence = name`; if it could not be taken, the function has returned.
    pub(crate) fn claim(&self, key: &TokenStream) -> TokenStream {
        let private = &self.private;
        let lock = self.lock(key);
        let wait = match &self.args.wait {
            Some(wait) => self.duration(wait),
            None => quote!(#private::Duration::ZERO),
        };
        let acquire = if self.sig.asyncness.is_some() {
            quote!(#private::acquire_async(&__cachelock_lock, #wait).await)
        } else {
            quote!(#private::acquire(&__cachelock_lock, #wait))
        };
        let on_error = self.on_error();
        // `fence = name`: the body sees the fencing token as a `u64` local (the user's
        // ident, with its span, so the body can name it).
        let fence = self.args.fence.as_ref().map(|name| {
            quote! {
                let #name: u64 = __cachelock_guard.fence();
            }
        });
        quote! {
            #lock
            let __cachelock_guard = match #acquire {
                ::core::result::Result::Ok(__cachelock_guard) => __cachelock_guard,
                #[allow(clippy::needless_borrow)]
                ::core::result::Result::Err(__cachelock_error) => return #on_error,
            };
            #fence
        }
    }

    /// The key, the cache and the `Lock` (`__cachelock_lock`) with its lease settings.
    fn lock(&self, key: &TokenStream) -> TokenStream {
        let private = &self.private;
        let (cache_binding, cache_arg) = self.cache();
        let ttl = match &self.args.ttl {
            Some(ttl) => self.duration(ttl),
            None => quote!(#private::DEFAULT_TTL),
        };
        let lease_options = self.lease_options();
        quote! {
            #[allow(unused_imports)]
            use #private::{ViaError as _, FailClosed as _};
            #key
            #cache_binding
            let __cachelock_lock = #private::lock(__cachelock_key, #cache_arg, #ttl) #lease_options;
        }
    }

    /// The statement that binds `cache = <expr>`, if any, and the cache argument of the
    /// lock.
    fn cache(&self) -> (TokenStream, TokenStream) {
        let private = &self.private;
        match &self.args.cache {
            // Cloned into an owned handle: the guard gives it to the shared renewer, which
            // may outlive this call's borrows. Cache handles are cheap to clone (an `Arc`, a
            // `&'static`, or a backend that shares its state between clones).
            Some(expr) => {
                let private_at = private_path_at(self.args, expr.span());
                (
                    quote_spanned!(expr.span()=>
                        let __cachelock_cache = {
                            #[allow(unused_imports)]
                            use #private_at::CacheHandle as _;
                            (#expr).cachelock_handle()
                        };
                    ),
                    quote_spanned!(expr.span()=> __cachelock_cache),
                )
            }
            None => (quote!(), quote!(#private::DefaultCache)),
        }
    }

    /// `renew`, `max_hold`, `hold_at_least`: the `Lock` builder methods of the same names;
    /// and no fencing without `fence = name`.
    fn lease_options(&self) -> TokenStream {
        let args = self.args;
        let mut lease_options = TokenStream::new();
        // Without `fence = name` the body cannot see the fence, so nobody can use it: the
        // claim skips it (on Redis a plain `SET NX PX` instead of the fencing script).
        if args.fence.is_none() {
            lease_options.extend(quote!(.fencing(false)));
        }
        if let Some(renew) = &args.renew {
            let renew = &renew.value;
            lease_options.extend(quote!(.renew(#renew)));
        }
        if let Some(max_hold) = &args.max_hold {
            let max_hold = self.duration(max_hold);
            lease_options.extend(quote!(.max_hold(#max_hold)));
        }
        if let Some(hold) = &args.hold_at_least {
            let hold = self.duration(hold);
            lease_options.extend(quote!(.hold_at_least(#hold)));
        }
        lease_options
    }

    /// A `Duration`: a literal's nanoseconds, or the user's expression (its errors at it).
    fn duration(&self, arg: &DurationArg) -> TokenStream {
        let private = &self.private;
        match arg {
            DurationArg::Literal(nanos) => quote!(#private::Duration::from_nanos(#nanos)),
            DurationArg::Expr(expr) => {
                let private = private_path_at(self.args, expr.span());
                quote_spanned!(expr.span()=> #private::duration(#expr))
            }
        }
    }

    /// What the function returns when the lock is not taken (`__cachelock_error`): the
    /// error raised, or the skipped value, or a failure that fails closed.
    fn on_error(&self) -> TokenStream {
        let private = &self.private;
        let Output {
            ty: ret,
            span: ret_span,
            has_impl,
        } = &self.output;
        let name = self.sig.ident.to_string();
        let raise = self
            .args
            .raise_if_locked
            .as_ref()
            .is_some_and(Flag::is_true);
        if raise && *has_impl {
            quote_spanned!(*ret_span=> #private::raise(__cachelock_error))
        } else if raise {
            quote_spanned!(*ret_span=> <#ret as #private::Raise>::raise(__cachelock_error))
        } else if *has_impl {
            quote_spanned!(*ret_span=> #private::fail_closed(__cachelock_error, #name))
        } else {
            quote_spanned!(*ret_span=>
                (&#private::Policy::<#ret>::new()).skip_or_fail(__cachelock_error, #name)
            )
        }
    }
}
