//! The tree-lock cases written out by hand, shared by `tree_memory.rs` and `tree_redis.rs`.
#![allow(dead_code)]

use cachelock::tree::TreeScope;

pub const BOTH: TreeScope = TreeScope {
    lock_parents: true,
    lock_children: true,
};
pub const NO_PARENTS: TreeScope = TreeScope {
    lock_parents: false,
    lock_children: true,
};
pub const NO_CHILDREN: TreeScope = TreeScope {
    lock_parents: true,
    lock_children: false,
};
pub const NEITHER: TreeScope = TreeScope {
    lock_parents: false,
    lock_children: false,
};

/// Every case written out by hand: (held, its scope, tried, its scope, refused?).
#[rustfmt::skip]
pub const TABLE: &[(&str, TreeScope, &str, TreeScope, bool)] = &[
    // Locker's README: /foo/bar is held.
    ("/foo/bar", BOTH, "/foo", BOTH, true),            // a parent
    ("/foo/bar", BOTH, "/", BOTH, true),               // the root, a grandparent
    ("/foo/bar", BOTH, "/foo/bar/baz", BOTH, true),    // a child
    ("/foo/bar", BOTH, "/foo/bar/baz/q", BOTH, true),  // a grandchild
    ("/foo/bar", BOTH, "/foo/bar", BOTH, true),        // the path itself
    ("/foo/bar", BOTH, "/foo/zip", BOTH, false),       // a sibling
    ("/foo/bar", BOTH, "/foo/zip/x", BOTH, false),     // a nephew
    ("/foo/bar", BOTH, "/foobar", BOTH, false),        // a prefix, not a parent
    ("/foo/bar", BOTH, "/foo/ba", BOTH, false),
    ("/foo/bar", BOTH, "/foo/bar2", BOTH, false),
    ("/foo/bar", BOTH, "/foo/bar!", BOTH, false),      // sorts before "/foo/bar/"
    ("/foo/bar", BOTH, "/other", BOTH, false),
    // The root.
    ("/", BOTH, "/a", BOTH, true),
    ("/", BOTH, "/a/b/c", BOTH, true),
    ("/a/b/c", BOTH, "/", BOTH, true),
    ("/", BOTH, "/", NEITHER, true),
    ("/", NO_CHILDREN, "/a", BOTH, false),
    ("/a", BOTH, "/", NO_CHILDREN, false),
    ("/", BOTH, "/a", NO_PARENTS, false),
    ("/a", NO_PARENTS, "/", BOTH, false),
    // lock_parents = false, in both directions.
    ("/foo/bar", NO_PARENTS, "/foo", BOTH, false),     // Locker: canhaz/foo/bar?lockParents=False, then /foo
    ("/foo", BOTH, "/foo/bar", NO_PARENTS, false),     // the other order
    ("/foo/bar", NO_PARENTS, "/foo/bar/baz", BOTH, true), // its children stay locked
    ("/foo/bar/baz", BOTH, "/foo/bar", NO_PARENTS, true),
    ("/foo/bar", NO_PARENTS, "/foo/bar", BOTH, true),
    // lock_children = false, in both directions.
    ("/bar", NO_CHILDREN, "/bar/foo", BOTH, false),    // Locker: canhaz/bar?lockChildren=False, then /bar/foo
    ("/bar/foo", BOTH, "/bar", NO_CHILDREN, false),
    ("/bar", NO_CHILDREN, "/", BOTH, true),            // its parents stay locked
    ("/", BOTH, "/bar", NO_CHILDREN, true),
    // One side opting out is enough; the rule needs both sides.
    ("/x/y", NO_PARENTS, "/x", NO_PARENTS, false),
    ("/x", NO_CHILDREN, "/x/y", NO_CHILDREN, false),
    ("/x/y", NO_CHILDREN, "/x", NO_PARENTS, true),     // parent locks children, child locks parents
    ("/x", NO_PARENTS, "/x/y", NO_CHILDREN, true),
    ("/x", NEITHER, "/x/y", BOTH, false),
    ("/x/y", BOTH, "/x", NEITHER, false),
    ("/x", NEITHER, "/x", NEITHER, true),              // the same path always conflicts
];

/// A tiny deterministic generator, so the tests need no extra dependency.
pub struct Pick(u64);

impl Pick {
    pub fn new(seed: u64) -> Pick {
        Pick(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
