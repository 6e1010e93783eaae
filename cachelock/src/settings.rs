//! [`Settings`]: the builder options [`Lock`](crate::Lock) and
//! [`TreeLock`](crate::tree::TreeLock) share, and the setters both expose.

use std::borrow::Cow;
use std::time::Duration;

use crate::config::key_prefix;
use crate::error::{check_ttl, Error};
use crate::lease::Policy;
use crate::DEFAULT_TTL;

/// The options of a lock, whatever it locks.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Put in front of the key (the lock space of a tree lock); the process prefix if unset.
    pub(crate) prefix: Option<Cow<'static, str>>,
    pub(crate) ttl: Duration,
    /// How long `run` waits for a held key.
    pub(crate) wait: Duration,
    pub(crate) policy: Policy,
    pub(crate) label: Option<String>,
    /// Whether a claim asks for a fencing token (tree locks always do).
    pub(crate) fencing: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: None,
            ttl: DEFAULT_TTL,
            wait: Duration::ZERO,
            policy: Policy {
                renew: true,
                max_hold: None,
                hold_at_least: None,
                lost_margin: None,
            },
            label: None,
            fencing: true,
        }
    }
}

impl Settings {
    /// The prefix (lock space) in use.
    pub(crate) fn prefix(&self) -> &str {
        match &self.prefix {
            Some(prefix) => prefix,
            None => key_prefix(),
        }
    }

    /// Checks the durations; errors name `key`.
    pub(crate) fn check(&self, key: &str) -> Result<(), Error> {
        check_ttl(key, "ttl", self.ttl)?;
        if let Some(max_hold) = self.policy.max_hold {
            check_ttl(key, "max_hold", max_hold)?;
        }
        if let Some(hold_at_least) = self.policy.hold_at_least {
            check_ttl(key, "hold_at_least", hold_at_least)?;
        }
        if let Some(margin) = self.policy.lost_margin {
            if margin >= self.ttl {
                return Err(Error::InvalidSetting {
                    key: key.to_owned(),
                    reason: format!(
                        "lost_margin of {margin:?} must be shorter than the ttl ({:?})",
                        self.ttl
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The setters of the shared [`Settings`], for a builder with a `settings` field.
macro_rules! settings_setters {
    () => {
        /// How long the lock lives if its holder never releases it (default
        /// [`DEFAULT_TTL`](crate::DEFAULT_TTL), 60 s): the longest a holder that crashed
        /// keeps it.
        ///
        /// Must be greater than zero and at most [`MAX_TTL`](crate::MAX_TTL); acquiring
        /// reports [`Error::InvalidSetting`](crate::Error::InvalidSetting) otherwise. Pick it
        /// longer than the work takes, or use renewal (the default), or the lock may run out
        /// while the work goes on (a release then reports
        /// [`Error::LockLost`](crate::Error::LockLost)).
        pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
            self.settings.ttl = ttl;
            self
        }

        /// How long `run` and `run_async` wait for the holder to let go before giving up
        /// with [`Error::Locked`](crate::Error::Locked) (default: zero, one attempt).
        pub fn wait(mut self, wait: std::time::Duration) -> Self {
            self.settings.wait = wait;
            self
        }

        /// Whether to renew the lock in the background while a guard holds it (default:
        /// yes).
        ///
        /// With renewal, a holder keeps its lock however long the work takes, and a holder
        /// that dies frees it within one TTL. Renewal is an owner-checked extend at every
        /// third of the TTL, done by one shared background thread for the whole process. If
        /// a renewal is refused (the lock expired or is held by another owner) the guard
        /// reports the lock lost (`is_lost`, `lost`). Without renewal, the lock simply
        /// expires after its TTL, and the guard reports it lost from then on.
        pub fn renew(mut self, renew: bool) -> Self {
            self.settings.policy.renew = renew;
            self
        }

        /// Bounds how long renewal may keep the lock: never past `max_hold` after acquiring.
        ///
        /// The last renewal shortens the TTL so that the lock runs out exactly then; the
        /// guard reports it lost from that moment. A bound on a runaway holder (a job stuck
        /// in a loop keeps its renewing lock forever otherwise). Default: no bound.
        pub fn max_hold(mut self, max_hold: std::time::Duration) -> Self {
            self.settings.policy.max_hold = Some(max_hold);
            self
        }

        /// Keeps the lock at least this long after acquiring, even if released sooner
        /// (ShedLock's `lockAtLeastFor`).
        ///
        /// A guard's release before then (its `release`, its drop, the end of `run`) does
        /// not delete the lock: it sets the lock's TTL to the time left (owner-checked), so
        /// nobody else acquires it until `hold_at_least` has passed. A job that takes 2 s
        /// with `hold_at_least(5 min)` runs at most once per 5 minutes across every node
        /// that shares the store, even when the nodes' clocks or schedules drift by seconds.
        /// Greater than zero and at most [`MAX_TTL`](crate::MAX_TTL). Default: none.
        pub fn hold_at_least(mut self, hold_at_least: std::time::Duration) -> Self {
            self.settings.policy.hold_at_least = Some(hold_at_least);
            self
        }

        /// How long before its TTL runs out (by this process's clock) the lock is declared
        /// lost when it could not be renewed: `is_lost()`, `lost()`, `cancel_on_lost` and the
        /// command line's `--kill-on-lost` act then, so the work hears of it **before** the
        /// store can hand the key to someone else.
        ///
        /// Default: 1 % of the TTL + 20 ms, at most a quarter of the TTL (Redlock's "validity
        /// time" uses 1 % + 2 ms for clock drift; the 20 ms cover what the signal takes to
        /// reach the work: a thread woken on a busy host, a signal sent to a child process).
        /// A lock's local deadline already counts from before its claim (or renewal) was
        /// sent, so the margin need not cover the network. Must be shorter than the TTL
        /// ([`Error::InvalidSetting`](crate::Error::InvalidSetting) otherwise); zero turns it
        /// off.
        pub fn lost_margin(mut self, margin: std::time::Duration) -> Self {
            self.settings.policy.lost_margin = Some(margin);
            self
        }

        /// A label stored with the lock beside this process's host name and pid, so that
        /// `holder` and `held_locks` can tell who holds it (e.g. a job name or a request
        /// id; Locker's `id`). Not secret: anyone who can read the store sees it.
        pub fn label(mut self, label: impl Into<String>) -> Self {
            self.settings.label = Some(label.into());
            self
        }

        /// Puts `prefix` in front of the key instead of the process prefix
        /// ([`set_key_prefix`](crate::set_key_prefix), `"cachelock:"` unless set); for a tree
        /// lock, the lock space (trees under different prefixes never conflict).
        pub fn prefix(mut self, prefix: impl Into<std::borrow::Cow<'static, str>>) -> Self {
            self.settings.prefix = Some(prefix.into());
            self
        }
    };
}

pub(crate) use settings_setters;
