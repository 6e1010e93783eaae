//! The attribute's arguments: `#[once(key = "...", raise_if_locked = true, ttl = "30s", ...)]`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitBool, LitStr, Path, Token};

use crate::duration;
use crate::max_ttl::{MAX_TTL_NANOS, MAX_TTL_TEXT};

mod kw {
    syn::custom_keyword!(key);
    syn::custom_keyword!(raise_if_locked);
    syn::custom_keyword!(ttl);
    syn::custom_keyword!(wait);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(cancel_on_lost);
    syn::custom_keyword!(fence);
    syn::custom_keyword!(renew);
    syn::custom_keyword!(max_hold);
    syn::custom_keyword!(hold_at_least);
}

/// The valid options, for error messages.
const VALID: &str = "`key`, `raise_if_locked`, `ttl`, `wait`, `cache`, `cancel_on_lost`, `fence`, `renew`, `max_hold`, `hold_at_least`, `crate`";

/// A duration option: a literal parsed at compile time, or an expression of type `Duration`.
pub(crate) enum DurationArg {
    /// Nanoseconds, from a literal like `"30s"`.
    Literal(u64),
    /// Any expression that yields a `core::time::Duration`.
    Expr(Expr),
}

/// Everything the attribute says; `None` for what it does not.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) key: Option<LitStr>,
    pub(crate) raise_if_locked: Option<LitBool>,
    pub(crate) ttl: Option<DurationArg>,
    pub(crate) wait: Option<DurationArg>,
    pub(crate) cache: Option<Expr>,
    /// The whole `cancel_on_lost = <bool>` option (its span is the option's), and the value.
    pub(crate) cancel_on_lost: Option<(Span, LitBool)>,
    /// `fence = name`: the local the body sees the fencing token in.
    pub(crate) fence: Option<Ident>,
    /// `renew = false` turns renewal off.
    pub(crate) renew: Option<LitBool>,
    pub(crate) max_hold: Option<DurationArg>,
    pub(crate) hold_at_least: Option<DurationArg>,
    pub(crate) krate: Option<Path>,
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

/// The hint for an option under a name used elsewhere (python-cachelock, other crates).
fn hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "raise_if_lock" | "raises_if_lock" | "raise" | "raises" | "raise_if_lock_held" => {
            "did you mean `raise_if_locked`?"
        }
        "timeout" => {
            "did you mean `ttl` (how long the lock lives) or `wait` (how long to wait for it)?"
        }
        "expire" | "expires" | "expiry" | "expiration" | "lease" => "did you mean `ttl`?",
        "block" | "blocking" | "wait_for" | "wait_timeout" | "acquire_timeout" => {
            "did you mean `wait`?"
        }
        "krate" | "cachelock" => "did you mean `crate = \"...\"`?",
        "name" | "lock" | "id" | "keys" => "did you mean `key`?",
        "backend" | "store" | "cache_backend" => "did you mean `cache`?",
        "cancel_on_loss" | "cancel_if_lost" | "abort_on_lost" | "cancel" => {
            "did you mean `cancel_on_lost`?"
        }
        "lock_at_least_for" | "lock_at_least" | "at_least" | "min_hold" | "hold_for" => {
            "did you mean `hold_at_least`?"
        }
        "lock_at_most_for" | "lock_at_most" | "max_duration" | "max_lease" => {
            "did you mean `max_hold` (how long renewal may keep the lock) or `ttl`?"
        }
        "auto_renew" | "renewal" | "keep_alive" | "extend" => "did you mean `renew`?",
        _ => return None,
    })
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::key) {
                let kw: kw::key = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitStr) {
                    return Err(input.error(
                        "`key` takes a string literal, the key template, like key = \"job-<id>\"",
                    ));
                }
                set(&mut args.key, input.parse()?, "key", kw.span)?;
            } else if lookahead.peek(kw::raise_if_locked) {
                let kw: kw::raise_if_locked = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitBool) {
                    return Err(input.error("`raise_if_locked` takes `true` or `false`"));
                }
                set(
                    &mut args.raise_if_locked,
                    input.parse()?,
                    "raise_if_locked",
                    kw.span,
                )?;
            } else if lookahead.peek(kw::ttl) {
                let kw: kw::ttl = input.parse()?;
                input.parse::<Token![=]>()?;
                let value = parse_duration(input, "ttl")?;
                set(&mut args.ttl, value, "ttl", kw.span)?;
            } else if lookahead.peek(kw::wait) {
                let kw: kw::wait = input.parse()?;
                input.parse::<Token![=]>()?;
                let value = parse_duration(input, "wait")?;
                set(&mut args.wait, value, "wait", kw.span)?;
            } else if lookahead.peek(kw::cache) {
                let kw: kw::cache = input.parse()?;
                input.parse::<Token![=]>()?;
                set(&mut args.cache, input.parse()?, "cache", kw.span)?;
            } else if lookahead.peek(kw::cancel_on_lost) {
                let kw: kw::cancel_on_lost = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitBool) {
                    return Err(input.error("`cancel_on_lost` takes `true` or `false`"));
                }
                let value: LitBool = input.parse()?;
                let span = kw.span.join(value.span).unwrap_or(kw.span);
                set(
                    &mut args.cancel_on_lost,
                    (span, value),
                    "cancel_on_lost",
                    kw.span,
                )?;
            } else if lookahead.peek(kw::fence) {
                let kw: kw::fence = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(Ident) {
                    return Err(input.error(
                        "`fence` takes the name of a local for the body, like fence = token",
                    ));
                }
                set(&mut args.fence, input.parse()?, "fence", kw.span)?;
            } else if lookahead.peek(kw::renew) {
                let kw: kw::renew = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitBool) {
                    return Err(input.error("`renew` takes `true` or `false`"));
                }
                set(&mut args.renew, input.parse()?, "renew", kw.span)?;
            } else if lookahead.peek(kw::max_hold) {
                let kw: kw::max_hold = input.parse()?;
                input.parse::<Token![=]>()?;
                let value = parse_duration(input, "max_hold")?;
                set(&mut args.max_hold, value, "max_hold", kw.span)?;
            } else if lookahead.peek(kw::hold_at_least) {
                let kw: kw::hold_at_least = input.parse()?;
                input.parse::<Token![=]>()?;
                let value = parse_duration(input, "hold_at_least")?;
                set(&mut args.hold_at_least, value, "hold_at_least", kw.span)?;
            } else if lookahead.peek(Token![crate]) {
                let kw: Token![crate] = input.parse()?;
                input.parse::<Token![=]>()?;
                if !input.peek(LitStr) {
                    return Err(input.error(
                        "`crate` takes the path of the cachelock crate as a string, like crate = \"my_cachelock\"",
                    ));
                }
                let lit: LitStr = input.parse()?;
                let path: Path = lit.parse().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!("`crate` must be a path, like \"cachelock\" or \"::deps::cachelock\", not {:?}", lit.value()),
                    )
                })?;
                set(&mut args.krate, path, "crate", kw.span)?;
            } else if input.peek(Ident::peek_any) {
                let name = Ident::parse_any(input)?;
                let text = name.to_string();
                let message = match hint(&text) {
                    Some(hint) => {
                        format!("unknown option `{text}`: {hint} The options are {VALID}")
                    }
                    None => format!("unknown option `{text}`; the options are {VALID}"),
                };
                return Err(syn::Error::new(name.span(), message));
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

fn parse_duration(input: ParseStream<'_>, name: &str) -> syn::Result<DurationArg> {
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
        // `wait` may be zero (one attempt); every lock duration must be a valid TTL.
        if name != "wait" && nanos == 0 {
            let why = match name {
                "ttl" => ": it is how long a crashed holder keeps the key",
                _ => "",
            };
            return Err(syn::Error::new(
                lit.span(),
                format!("`{name}` must be greater than zero{why}"),
            ));
        }
        if name != "wait" && nanos > MAX_TTL_NANOS {
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
