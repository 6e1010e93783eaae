//! The options of `#[once(...)]`: one table, [`OPTIONS`], that drives the parser, the list
//! of valid names in error messages, and the "did you mean" hints for names that other
//! libraries use.

use syn::{Expr, Ident, LitStr, Path};

use crate::args::{Args, DurationArg, Flag};

/// What an option takes after its `=`, and the field of [`Args`] it goes to.
pub(crate) enum Takes {
    /// A string literal: the key template.
    Template(fn(&mut Args) -> &mut Option<LitStr>),
    /// `true` or `false`.
    Bool(fn(&mut Args) -> &mut Option<Flag>),
    /// A duration of the lock: a literal greater than zero and at most `cachelock::MAX_TTL`,
    /// or an expression of type `Duration`.
    LockDuration(fn(&mut Args) -> &mut Option<DurationArg>),
    /// A duration that may be zero: a literal, or an expression of type `Duration`.
    Duration(fn(&mut Args) -> &mut Option<DurationArg>),
    /// Any expression.
    Expr(fn(&mut Args) -> &mut Option<Expr>),
    /// An identifier: the name of a local for the body.
    Local(fn(&mut Args) -> &mut Option<Ident>),
    /// A path in a string literal: `"cachelock"`, `"::deps::cachelock"`.
    Path(fn(&mut Args) -> &mut Option<Path>),
}

/// One option.
pub(crate) struct Opt {
    /// The name, as written before the `=`.
    pub(crate) name: &'static str,
    pub(crate) takes: Takes,
    /// What it is, in a few words: said after its name when a misspelt name could mean it
    /// or another option ("did you mean `ttl` (how long the lock lives) or ...").
    pub(crate) about: &'static str,
    /// Names used for it elsewhere (python-cachelock, ShedLock, other crates): an unknown
    /// option by one of these names is answered with "did you mean" this option. A name
    /// listed under two options offers both.
    pub(crate) aliases: &'static [&'static str],
}

/// Every option, in the order the error messages list them.
pub(crate) const OPTIONS: &[Opt] = &[
    Opt {
        name: "key",
        takes: Takes::Template(|args| &mut args.key),
        about: "the key template",
        aliases: &["name", "lock", "id", "keys"],
    },
    Opt {
        name: "raise_if_locked",
        takes: Takes::Bool(|args| &mut args.raise_if_locked),
        about: "return an error when the key is held",
        aliases: &[
            "raise_if_lock",
            "raises_if_lock",
            "raise",
            "raises",
            "raise_if_lock_held",
        ],
    },
    Opt {
        name: "ttl",
        takes: Takes::LockDuration(|args| &mut args.ttl),
        about: "how long the lock lives",
        aliases: &[
            "timeout",
            "expire",
            "expires",
            "expiry",
            "expiration",
            "lease",
            "lock_at_most_for",
            "lock_at_most",
            "max_duration",
            "max_lease",
        ],
    },
    Opt {
        name: "wait",
        takes: Takes::Duration(|args| &mut args.wait),
        about: "how long to wait for it",
        aliases: &[
            "timeout",
            "block",
            "blocking",
            "wait_for",
            "wait_timeout",
            "acquire_timeout",
        ],
    },
    Opt {
        name: "cache",
        takes: Takes::Expr(|args| &mut args.cache),
        about: "the cache the lock lives in",
        aliases: &["backend", "store", "cache_backend"],
    },
    Opt {
        name: "cancel_on_lost",
        takes: Takes::Bool(|args| &mut args.cancel_on_lost),
        about: "drop the body's future when the lock is lost",
        aliases: &[
            "cancel_on_loss",
            "cancel_if_lost",
            "abort_on_lost",
            "cancel",
        ],
    },
    Opt {
        name: "fence",
        takes: Takes::Local(|args| &mut args.fence),
        about: "the local the body sees the fencing token in",
        aliases: &[],
    },
    Opt {
        name: "renew",
        takes: Takes::Bool(|args| &mut args.renew),
        about: "renew the lock while the body runs",
        aliases: &["auto_renew", "renewal", "keep_alive", "extend"],
    },
    Opt {
        name: "max_hold",
        takes: Takes::LockDuration(|args| &mut args.max_hold),
        about: "how long renewal may keep the lock",
        aliases: &[
            "lock_at_most_for",
            "lock_at_most",
            "max_duration",
            "max_lease",
        ],
    },
    Opt {
        name: "hold_at_least",
        takes: Takes::LockDuration(|args| &mut args.hold_at_least),
        about: "how long the key is kept after acquiring",
        aliases: &[
            "lock_at_least_for",
            "lock_at_least",
            "at_least",
            "min_hold",
            "hold_for",
        ],
    },
    Opt {
        name: "crate",
        takes: Takes::Path(|args| &mut args.krate),
        about: "where the cachelock crate is",
        aliases: &["krate", "cachelock"],
    },
];

/// The option named `name`.
pub(crate) fn find(name: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|option| option.name == name)
}

/// The valid names, for error messages: "`key`, `raise_if_locked`, ...".
pub(crate) fn names() -> String {
    let names: Vec<String> = OPTIONS.iter().map(|o| format!("`{}`", o.name)).collect();
    names.join(", ")
}

/// The error message for an option named `name` that does not exist.
pub(crate) fn unknown(name: &str) -> String {
    let names = names();
    match hint(name) {
        Some(hint) => format!("unknown option `{name}`: {hint} The options are {names}"),
        None => format!("unknown option `{name}`; the options are {names}"),
    }
}

/// "did you mean `ttl`?" for a name listed among the aliases of an option.
fn hint(name: &str) -> Option<String> {
    let meant: Vec<&Opt> = OPTIONS
        .iter()
        .filter(|option| option.aliases.contains(&name))
        .collect();
    match meant.as_slice() {
        [] => None,
        [option] => Some(format!("did you mean {}?", option.shown())),
        [options @ .., last] => {
            let about = |o: &Opt| format!("{} ({})", o.shown(), o.about);
            let first: Vec<String> = options.iter().map(|o| about(o)).collect();
            Some(format!(
                "did you mean {} or {}?",
                first.join(", "),
                about(last)
            ))
        }
    }
}

impl Opt {
    /// The option as a hint shows it: `` `ttl` ``; with its value where that is the part
    /// people get wrong (`` `crate = "..."` ``: a string, not a path).
    fn shown(&self) -> String {
        match self.takes {
            Takes::Path(_) => format!("`{} = \"...\"`", self.name),
            _ => format!("`{}`", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_in_table_order() {
        assert_eq!(
            names(),
            "`key`, `raise_if_locked`, `ttl`, `wait`, `cache`, `cancel_on_lost`, `fence`, `renew`, `max_hold`, `hold_at_least`, `crate`"
        );
    }

    #[test]
    fn an_alias_is_never_an_option() {
        for option in OPTIONS {
            for alias in option.aliases {
                assert!(find(alias).is_none(), "`{alias}` is an option");
            }
        }
    }

    #[test]
    fn hints() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["raise_if_lock", "raises_if_lock", "raise", "raises", "raise_if_lock_held"],
                "did you mean `raise_if_locked`?",
            ),
            (
                &["timeout"],
                "did you mean `ttl` (how long the lock lives) or `wait` (how long to wait for it)?",
            ),
            (
                &["expire", "expires", "expiry", "expiration", "lease"],
                "did you mean `ttl`?",
            ),
            (
                &["block", "blocking", "wait_for", "wait_timeout", "acquire_timeout"],
                "did you mean `wait`?",
            ),
            (&["krate", "cachelock"], "did you mean `crate = \"...\"`?"),
            (&["name", "lock", "id", "keys"], "did you mean `key`?"),
            (
                &["backend", "store", "cache_backend"],
                "did you mean `cache`?",
            ),
            (
                &["cancel_on_loss", "cancel_if_lost", "abort_on_lost", "cancel"],
                "did you mean `cancel_on_lost`?",
            ),
            (
                &["lock_at_least_for", "lock_at_least", "at_least", "min_hold", "hold_for"],
                "did you mean `hold_at_least`?",
            ),
            (
                &["lock_at_most_for", "lock_at_most", "max_duration", "max_lease"],
                "did you mean `ttl` (how long the lock lives) or `max_hold` (how long renewal may keep the lock)?",
            ),
            (
                &["auto_renew", "renewal", "keep_alive", "extend"],
                "did you mean `renew`?",
            ),
        ];
        for (aliases, expected) in cases {
            for alias in *aliases {
                assert_eq!(hint(alias).as_deref(), Some(*expected), "{alias}");
            }
        }
        assert_eq!(hint("retries"), None);
        assert_eq!(hint("ttl"), None);
    }

    #[test]
    fn unknown_option_messages() {
        assert_eq!(
            unknown("raise_if_lock"),
            format!("unknown option `raise_if_lock`: did you mean `raise_if_locked`? The options are {}", names())
        );
        assert_eq!(
            unknown("retries"),
            format!("unknown option `retries`; the options are {}", names())
        );
    }
}
