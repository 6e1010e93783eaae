//! [`Claimed`] and [`Handle`]: what a won claim hands the holder for its release and extend.

use std::any::Any;
use std::sync::Arc;

/// A cache's own note on a key it granted, kept by the guard and passed back to the same
/// cache's [`release_claimed`](crate::Cache::release_claimed) and
/// [`extend_claimed`](crate::Cache::extend_claimed), so that they can reach the key's state
/// without looking the key up again. Only the cache that made it reads it
/// ([`MemoryCache`](crate::MemoryCache): the key's slot); a guard passes it back to that
/// cache alone, with the key it was made for.
///
/// A cache that hands out handles is an **in-process** store; see
/// [`claim_for_lock`](crate::Cache::claim_for_lock) for what that promises.
pub type Handle = Arc<dyn Any + Send + Sync>;

/// A claim that won: its fencing token, and the cache's [`Handle`] if it keeps one.
#[derive(Clone)]
#[non_exhaustive]
pub struct Claimed {
    /// The fencing token of this hold (0 for a claim without fencing).
    pub fence: u64,
    /// The cache's note on the key, for the holder's release and extend.
    pub handle: Option<Handle>,
}

impl Claimed {
    /// A won claim with `fence` and no handle: what every network cache returns.
    pub fn new(fence: u64) -> Self {
        Claimed {
            fence,
            handle: None,
        }
    }

    /// A won claim with `fence` and the cache's `handle` on the key.
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
