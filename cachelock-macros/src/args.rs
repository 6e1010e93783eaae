//! The attribute's arguments: `#[once(key = "...", raise_if_locked = true, ttl = "30s", ...)]`.
//!
//! Which options exist and what each takes is the table in [`crate::options`]; this is the
//! parser it drives.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitBool, LitStr, Path, Token};

use crate::duration;
use crate::max_ttl::{MAX_TTL_NANOS, MAX_TTL_TEXT};
use crate::options::{self, Opt, Takes};

/// A duration option: a literal parsed at compile time, or an expression of type `Duration`.
pub(crate) enum DurationArg {
    /// Nanoseconds, from a literal like `"30s"`.
    Literal(u64),
    /// Any expression that yields a `core::time::Duration`.
    Expr(Expr),
}

/// A `true`/`false` option.
pub(crate) struct Flag {
    /// The whole option, `name = value` (the name's alone where spans cannot be joined).
    pub(crate) span: Span,
    pub(crate) value: LitBool,
}

impl Flag {
    pub(crate) fn is_true(&self) -> bool {
        self.value.value
    }
}

/// Everything the attribute says; `None` for what it does not.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) key: Option<LitStr>,
    pub(crate) raise_if_locked: Option<Flag>,
    pub(crate) ttl: Option<DurationArg>,
    pub(crate) wait: Option<DurationArg>,
    pub(crate) cache: Option<Expr>,
    pub(crate) cancel_on_lost: Option<Flag>,
    /// `fence = name`: the local the body sees the fencing token in.
    pub(crate) fence: Option<Ident>,
    /// `renew = false` turns renewal off.
    pub(crate) renew: Option<Flag>,
    pub(crate) max_hold: Option<DurationArg>,
    pub(crate) hold_at_least: Option<DurationArg>,
    pub(crate) krate: Option<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(input.error(format!("expected one of: {}", options::names())));
            }
            let ident = Ident::parse_any(input)?;
            let name = ident.to_string();
            let Some(option) = options::find(&name) else {
                return Err(syn::Error::new(ident.span(), options::unknown(&name)));
            };
            input.parse::<Token![=]>()?;
            args.parse_value(option, ident.span(), input)?;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

impl Args {
    /// Parses the value of `option` into its field; `span` is the option's name.
    fn parse_value(&mut self, option: &Opt, span: Span, input: ParseStream<'_>) -> syn::Result<()> {
        let name = option.name;
        match option.takes {
            Takes::Template(field) => {
                if !input.peek(LitStr) {
                    return Err(input.error(format!(
                        "`{name}` takes a string literal, the key template, like {name} = \"job-<id>\""
                    )));
                }
                set(field(self), input.parse()?, name, span)
            }
            Takes::Bool(field) => {
                if !input.peek(LitBool) {
                    return Err(input.error(format!("`{name}` takes `true` or `false`")));
                }
                let value: LitBool = input.parse()?;
                let whole = span.join(value.span).unwrap_or(span);
                set(field(self), Flag { span: whole, value }, name, span)
            }
            Takes::LockDuration(field) => {
                let value = parse_duration(input, name, true)?;
                set(field(self), value, name, span)
            }
            Takes::Duration(field) => {
                let value = parse_duration(input, name, false)?;
                set(field(self), value, name, span)
            }
            Takes::Expr(field) => set(field(self), input.parse()?, name, span),
            Takes::Local(field) => {
                if !input.peek(Ident) {
                    return Err(input.error(format!(
                        "`{name}` takes the name of a local for the body, like {name} = token"
                    )));
                }
                set(field(self), input.parse()?, name, span)
            }
            Takes::Path(field) => {
                let path = parse_path(input, name)?;
                set(field(self), path, name, span)
            }
        }
    }
}

fn set<T>(slot: &mut Option<T>, value: T, name: &str, span: Span) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("duplicate option `{name}`: each option can be given once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// A path in a string literal: `crate = "my_cachelock"`.
fn parse_path(input: ParseStream<'_>, name: &str) -> syn::Result<Path> {
    if !input.peek(LitStr) {
        return Err(input.error(format!(
            "`{name}` takes the path of the cachelock crate as a string, like {name} = \"my_cachelock\""
        )));
    }
    let lit: LitStr = input.parse()?;
    lit.parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`{name}` must be a path, like \"cachelock\" or \"::deps::cachelock\", not {:?}",
                lit.value()
            ),
        )
    })
}

/// A duration: a literal with a unit, checked here, or an expression. A duration of the
/// lock (`of_lock`) must be greater than zero and at most `cachelock::MAX_TTL`; the others
/// (`wait`) may be zero, and have no maximum.
fn parse_duration(input: ParseStream<'_>, name: &str, of_lock: bool) -> syn::Result<DurationArg> {
    if input.peek(syn::LitInt) || input.peek(syn::LitFloat) {
        let lit: syn::Lit = input.parse()?;
        let digits = match &lit {
            syn::Lit::Int(int) => int.base10_digits().to_owned(),
            syn::Lit::Float(float) => float.base10_digits().to_owned(),
            _ => String::new(),
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` needs a unit: write {name} = \"{digits}s\" (ns, us, ms, s, m, h, d)"),
        ));
    }
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let nanos = duration::parse(&lit.value()).map_err(|e| syn::Error::new(lit.span(), e))?;
        if of_lock && nanos == 0 {
            let why = match name {
                "ttl" => ": it is how long a crashed holder keeps the key",
                _ => "",
            };
            return Err(syn::Error::new(
                lit.span(),
                format!("`{name}` must be greater than zero{why}"),
            ));
        }
        if of_lock && nanos > MAX_TTL_NANOS {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "`{name}` is longer than the maximum of {MAX_TTL_TEXT} (cachelock::MAX_TTL)"
                ),
            ));
        }
        return Ok(DurationArg::Literal(nanos));
    }
    Ok(DurationArg::Expr(input.parse()?))
}
