//! Procedural macros for cachelock. Use them through the `cachelock` crate.
