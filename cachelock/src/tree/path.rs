//! Tree paths: validation, ancestry, and the conflict rule.

use crate::error::Error;
use crate::MAX_KEY_LEN;

/// Which relatives a tree lock holds besides its own path.
///
/// The defaults lock both (Locker's default): a lock on `/a/b` then excludes `/a` (a
/// parent) and `/a/b/c` (a child). See [`conflicts`] for the exact rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeScope {
    /// The lock excludes locks on its ancestors (Locker's `lockParents`).
    pub lock_parents: bool,
    /// The lock excludes locks on its descendants (Locker's `lockChildren`).
    pub lock_children: bool,
}

impl Default for TreeScope {
    fn default() -> Self {
        TreeScope {
            lock_parents: true,
            lock_children: true,
        }
    }
}

impl TreeScope {
    /// The two flags as stored by the backends: `"11"`, `"10"`, `"01"` or `"00"`
    /// (lock_parents first).
    pub fn flags(self) -> &'static str {
        match (self.lock_parents, self.lock_children) {
            (true, true) => "11",
            (true, false) => "10",
            (false, true) => "01",
            (false, false) => "00",
        }
    }

    /// The scope stored as [`flags`](TreeScope::flags); `None` if `flags` is not one of them.
    pub fn from_flags(flags: &str) -> Option<TreeScope> {
        let mut bytes = flags.bytes();
        let bit = |b: Option<u8>| match b {
            Some(b'1') => Some(true),
            Some(b'0') => Some(false),
            _ => None,
        };
        let lock_parents = bit(bytes.next())?;
        let lock_children = bit(bytes.next())?;
        bytes.next().is_none().then_some(TreeScope {
            lock_parents,
            lock_children,
        })
    }
}

/// Checks a tree path; see the [module docs](crate::tree#paths) for the rules.
///
/// Returns [`Error::InvalidKey`] naming the path (cut to 64 characters) and the reason.
pub fn check_path(path: &str) -> Result<(), Error> {
    let invalid = |reason: &'static str| Error::InvalidKey {
        key: path.chars().take(64).collect(),
        reason,
    };
    if path.len() > MAX_KEY_LEN {
        return Err(invalid("the path is longer than MAX_KEY_LEN (1024 bytes)"));
    }
    if !path.starts_with('/') {
        return Err(invalid("a tree path must start with `/`"));
    }
    if path.chars().any(char::is_control) {
        return Err(invalid("a tree path must not contain control characters"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(invalid(
            "a tree path must not end with `/` (only the root `/` does)",
        ));
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => {
                return Err(invalid(
                    "a tree path must not contain an empty segment (`//`)",
                ))
            }
            "." | ".." => return Err(invalid("a tree path must not contain `.` or `..` segments")),
            _ => {}
        }
    }
    Ok(())
}

/// `true` if `ancestor` is a strict ancestor of `path` (both valid paths): the root is the
/// ancestor of every other path, `/a` of `/a/b` but not of `/ab`.
pub fn is_ancestor(ancestor: &str, path: &str) -> bool {
    if ancestor == path {
        return false;
    }
    if ancestor == "/" {
        return true;
    }
    path.len() > ancestor.len()
        && path.starts_with(ancestor)
        && path.as_bytes()[ancestor.len()] == b'/'
}

/// Whether a lock on path `a` with scope `a_scope` conflicts with a held lock on `b` with
/// `b_scope` (both valid paths). Symmetric:
///
/// - `a == b`: always;
/// - `b` an ancestor of `a`: if `a_scope.lock_parents` and `b_scope.lock_children`;
/// - `b` a descendant of `a`: if `a_scope.lock_children` and `b_scope.lock_parents`;
/// - otherwise (siblings, cousins): never.
pub fn conflicts(a: &str, a_scope: TreeScope, b: &str, b_scope: TreeScope) -> bool {
    if a == b {
        true
    } else if is_ancestor(b, a) {
        a_scope.lock_parents && b_scope.lock_children
    } else if is_ancestor(a, b) {
        a_scope.lock_children && b_scope.lock_parents
    } else {
        false
    }
}

/// The strict ancestors of a valid `path`, root first: `/a/b/c` gives `/`, `/a`, `/a/b`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let root = (path != "/").then_some("/");
    let inner = path
        .match_indices('/')
        .skip(1)
        .map(move |(at, _)| &path[..at]);
    root.into_iter().chain(inner)
}

/// The prefix every descendant of a valid `path` starts with: `/` for the root, else
/// `path + "/"`.
pub(crate) fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_are_listed_root_first() {
        assert_eq!(ancestors("/").collect::<Vec<_>>(), Vec::<&str>::new());
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), vec!["/"]);
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/", "/a", "/a/b"]
        );
        for path in ["/a/b/c", "/x", "/"] {
            for a in ancestors(path) {
                assert!(is_ancestor(a, path));
            }
        }
    }

    #[test]
    fn flags_round_trip() {
        for lock_parents in [true, false] {
            for lock_children in [true, false] {
                let scope = TreeScope {
                    lock_parents,
                    lock_children,
                };
                assert_eq!(TreeScope::from_flags(scope.flags()), Some(scope));
            }
        }
        assert_eq!(TreeScope::from_flags("1"), None);
        assert_eq!(TreeScope::from_flags("111"), None);
        assert_eq!(TreeScope::from_flags("x1"), None);
    }
}
