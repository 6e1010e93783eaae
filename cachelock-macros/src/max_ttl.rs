// The longest TTL a lock accepts, copied from `cachelock::MAX_TTL`: this crate cannot
// depend on `cachelock` (which depends on it). `tests/once_max_ttl.rs` in the workspace
// root `include!`s this file and checks both constants against `cachelock::MAX_TTL`, so
// keep it to these two items (no `//!` docs, no `use`).

/// `cachelock::MAX_TTL` in nanoseconds: 30 days.
pub(crate) const MAX_TTL_NANOS: u64 = 30 * 24 * 60 * 60 * 1_000_000_000;

/// [`MAX_TTL_NANOS`] for people, in error messages.
pub(crate) const MAX_TTL_TEXT: &str = "30 days";
