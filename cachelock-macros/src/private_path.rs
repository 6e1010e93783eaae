//! The path every generated call goes through: the `__private` module of the cachelock
//! crate, `::cachelock` unless `crate = "..."` says otherwise.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::quote;

use crate::args::Args;

pub(crate) fn private_path(args: &Args) -> TokenStream {
    match &args.krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::cachelock::__private),
    }
}

/// [`private_path`] with every token at `span`, so that an error about a call through it
/// points at the user's tokens alone.
pub(crate) fn private_path_at(args: &Args, span: Span) -> TokenStream {
    respan(private_path(args), span)
}

/// `tokens`, each (groups included) at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                token = TokenTree::Group(new);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
