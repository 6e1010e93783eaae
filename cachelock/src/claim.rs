//! What a claim asks for ([`Claim`]) and what a won claim hands back ([`Claimed`], with the
//! store's [`Handle`]).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::owner::{owner_value, OwnerValue};
use crate::token::Token;

/// One claim of a lock, as a [`LockStore`](crate::LockStore) receives it: a fresh owner
/// token, the TTL, whether the holder wants a fencing token, and the holder's label.
///
/// The options are typed (as redis-rs's `SetOptions` are), so a store keeps what it needs
/// in its own form: [`MemoryCache`](crate::MemoryCache) keeps the token and label as they
/// are and formats nothing; a network store sends [`owner_value`](Claim::owner_value).
///
/// ```
/// use std::time::Duration;
/// use cachelock::Claim;
///
/// let claim = Claim::new(Duration::from_secs(30)).with_label("nightly");
/// assert_eq!(claim.token().len(), 32);
/// assert!(claim.fencing());
/// assert!(claim.owner_value().starts_with(claim.token()));
/// ```
#[derive(Clone)]
pub struct Claim<'a> {
    token: Token,
    label: Option<&'a str>,
    ttl: Duration,
    fencing: bool,
    /// When the claim was made: before it is sent, so every local count of its TTL from
    /// here ends early, never late.
    made_at: Instant,
}

impl<'a> Claim<'a> {
    /// A claim with a fresh random owner token, for `ttl`, fenced, without a label.
    pub fn new(ttl: Duration) -> Self {
        Claim {
            token: Token::new(),
            label: None,
            ttl,
            fencing: true,
            made_at: Instant::now(),
        }
    }

    /// Whether the claim asks for a fencing token (default: yes). A store answers a claim
    /// without fencing with fence 0, and may make it cheaper (Redis: a plain `SET NX PX`).
    pub fn with_fencing(mut self, fencing: bool) -> Self {
        self.fencing = fencing;
        self
    }

    /// The holder's label ([`Lock::label`](crate::Lock::label)), stored with the lock.
    pub fn with_label(mut self, label: &'a str) -> Self {
        self.label = Some(label);
        self
    }

    /// Sets the label, or none.
    pub(crate) fn with_label_opt(mut self, label: Option<&'a str>) -> Self {
        self.label = label;
        self
    }

    /// The owner token: 32 lowercase hex digits, fresh and random for every claim. Release
    /// and extend are owner-checked against it.
    pub fn token(&self) -> &str {
        self.token.as_str()
    }

    /// The token, typed.
    pub(crate) fn owner_token(&self) -> Token {
        self.token
    }

    /// How long the lock lives unless extended.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When the claim was made (before it was sent): the lease of a grant counts from here.
    pub(crate) fn made_at(&self) -> Instant {
        self.made_at
    }

    /// Whether the claim asks for a fencing token.
    pub fn fencing(&self) -> bool {
        self.fencing
    }

    /// The holder's label, if any.
    pub fn label(&self) -> Option<&'a str> {
        self.label
    }

    /// The value to store for a store that keeps strings: `<token>|<pid>|<host>|<label>`,
    /// whose token part (before the first `|`) release and extend compare.
    pub fn owner_value(&self) -> OwnerValue {
        owner_value(self.token.as_str(), self.label)
    }
}

impl std::fmt::Debug for Claim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("token", &self.token)
            .field("label", &self.label)
            .field("ttl", &self.ttl)
            .field("fencing", &self.fencing)
            .finish()
    }
}

/// A store's own note on a key it granted, kept by the guard and passed back to the same
/// store's [`release`](crate::LockStore::release) and [`extend`](crate::LockStore::extend),
/// so that they can reach the key's state without looking the key up again. Only the store
/// that made it reads it ([`MemoryCache`](crate::MemoryCache): the key's slot); a guard
/// passes it back to that store alone, with the key it was made for.
///
/// A store that hands out handles is an **in-process** store; see
/// [`LockStore::claim`](crate::LockStore::claim) for what that promises.
pub type Handle = Arc<dyn Any + Send + Sync>;

/// A claim that won: its fencing token, and the store's [`Handle`] if it keeps one.
#[derive(Clone)]
#[non_exhaustive]
pub struct Claimed {
    /// The fencing token of this hold (0 for a claim without fencing).
    pub fence: u64,
    /// The store's note on the key, for the holder's release and extend.
    pub handle: Option<Handle>,
}

impl Claimed {
    /// A won claim with `fence` and no handle: what every network store returns.
    pub fn new(fence: u64) -> Self {
        Claimed {
            fence,
            handle: None,
        }
    }

    /// A won claim with `fence` and the store's `handle` on the key.
    pub fn with_handle(fence: u64, handle: Handle) -> Self {
        Claimed {
            fence,
            handle: Some(handle),
        }
    }
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("fence", &self.fence)
            .field("handle", &self.handle.is_some())
            .finish()
    }
}
