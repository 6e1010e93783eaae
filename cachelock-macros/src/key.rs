//! The key: from the template of `key = "..."` to the statements that build the key of a
//! call. The errors about the template point inside the string literal where the compiler
//! allows it.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{FnArg, ItemFn, LitStr, Pat};

use crate::args::Args;
use crate::errors::Errors;
use crate::private_path::{private_path, private_path_at};
use crate::template::{self, Placeholder, Segment};

/// The statements that build the key into `__cachelock_key` (a `String`).
pub(crate) fn lower(function: &ItemFn, args: &Args) -> syn::Result<TokenStream> {
    let Some(key) = &args.key else {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[once]` needs a key template: #[once(key = \"job-<id>\")]",
        ));
    };
    let private = private_path(args);
    let segments = template::parse(&key.value())
        .map_err(|e| syn::Error::new(span_in(key, e.range), e.message))?;
    let mut lowering = Lowering {
        key,
        function,
        args,
        params: parameters(function),
        errors: Errors::default(),
    };
    let mut writes = Vec::new();
    for segment in &segments {
        match segment {
            Segment::Literal(text) => writes.push(lowering.literal(text, &private)),
            Segment::Placeholder(placeholder) => writes.extend(lowering.placeholder(placeholder)),
        }
    }
    lowering.errors.finish()?;
    let reserved = template::reserved(&segments);
    Ok(quote! {
        let __cachelock_key = {
            let mut __cachelock_key = #private::KeyWriter::new(&[#(#reserved),*]);
            #(#writes)*
            #private::KeyWriter::finish(__cachelock_key)
        };
    })
}

/// One template being lowered, and the errors found in it so far.
struct Lowering<'a> {
    key: &'a LitStr,
    function: &'a ItemFn,
    args: &'a Args,
    /// The names a placeholder may start with.
    params: Vec<String>,
    errors: Errors,
}

impl Lowering<'_> {
    /// Writes literal text; a python-cachelock `{param}` in it is an error.
    fn literal(&mut self, text: &str, private: &TokenStream) -> TokenStream {
        if let Some(name) = template::python_placeholder(text, &self.params) {
            self.errors.push(syn::Error::new(
                self.key.span(),
                format!(
                    "`{{{name}}}` is python-cachelock's placeholder syntax: write `<{name}>` to format the parameter `{name}`"
                ),
            ));
        }
        quote!(#private::KeyWriter::literal(&mut __cachelock_key, #text);)
    }

    /// Writes the value a placeholder names, every token at the placeholder, so that a
    /// value that is not `Display` (or a field that does not exist) is an error there.
    fn placeholder(&mut self, placeholder: &Placeholder) -> Option<TokenStream> {
        let span = span_in(self.key, placeholder.range.clone());
        let first = &placeholder.path[0];
        if !self.params.iter().any(|p| p == first) {
            let message = self.no_such_parameter(placeholder);
            self.errors.push(syn::Error::new(span, message));
            return None;
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
        let private = private_path_at(self.args, span);
        Some(quote_spanned!(span=>
            #private::KeyWriter::value(&mut __cachelock_key, &#expr);
        ))
    }

    /// The error for a placeholder whose first name is no parameter.
    fn no_such_parameter(&self, placeholder: &Placeholder) -> String {
        let function = &self.function.sig.ident;
        let shown = placeholder.display();
        if placeholder.path[0] == "self" {
            format!("`{shown}` uses `self`, but `{function}` is not a method")
        } else if self.params.is_empty() {
            format!("`{shown}` names no parameter: `{function}` has no parameters")
        } else {
            let list = self
                .params
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("`{shown}` names no parameter of `{function}`; the parameters are {list}")
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
