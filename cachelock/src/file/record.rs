//! What a lock file holds, as text: a few `name value` lines, then `end <length>`.
//!
//! A key's file (`<key>.lock`):
//!
//! ```text
//! cachelock-lock 1
//! key cachelock:nightly-report
//! fence 1718000000123456
//! deadline 1718000060123
//! owner 3f2a...9c|4242|web-1|backup
//! end 126 3ec1ce76f97eac31
//! ```
//!
//! `deadline` is the Unix time in milliseconds at which the lock expires (0: free; a
//! released lock keeps its key and fence and drops its deadline and owner). A tree lock
//! space's file (`<space>.tree`) has `space` and `fence` lines and one
//! `lock <deadline> <flags> <path> <owner>` line per held path (`flags`:
//! [`TreeScope::flags`]). Every record ends with `end <bytes before this line> <a 64-bit
//! checksum of those bytes>`; it is written over the old one in place (padded with spaces to
//! the old length, see `Locked::write`), and what follows `end` is ignored.
//! Fields are escaped with [`escape_field`] (`%`, spaces and control characters as `%XX`), so every
//! value stays on its line.
//!
//! A file whose record is incomplete (its first `end` line does not match the bytes before
//! it: a writer died inside its one `write`, which a local file system makes all but
//! impossible) reads as free
//! with fence 0: the fence's clock floor still keeps new fences above the old ones. A file
//! written by another format version, or not by cachelock, is an error, never overwritten.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::name::{escape_field, unescape_field};
use crate::tree::TreeScope;

const LOCK_MAGIC: &str = "cachelock-lock";
const TREE_MAGIC: &str = "cachelock-tree";
const VERSION: &str = "1";

/// A key's lock file. The key and owner borrow from the text read where they can (no `%`
/// escapes in them): a claim or a release reads, checks and rewrites a record without
/// copying its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LockRecord<'t> {
    /// The key whose lock this file holds (or last held).
    pub(crate) key: Cow<'t, str>,
    /// The last fence handed out for this file.
    pub(crate) fence: u64,
    /// Unix ms at which the lock expires; 0 when free.
    pub(crate) deadline: u64,
    /// The holder's owner value; empty when free.
    pub(crate) owner: Cow<'t, str>,
}

impl<'t> LockRecord<'t> {
    /// Whether a lock is held here at `now` (Unix ms).
    pub(crate) fn live(&self, now: u64) -> bool {
        self.deadline > now
    }

    pub(crate) fn to_text(&self) -> String {
        let mut out = String::with_capacity(128 + self.key.len() + self.owner.len());
        for part in [LOCK_MAGIC, " ", VERSION, "\nkey "] {
            out.push_str(part);
        }
        push_field(&mut out, &self.key);
        out.push_str("\nfence ");
        push_number(&mut out, self.fence);
        out.push_str("\ndeadline ");
        push_number(&mut out, self.deadline);
        out.push_str("\nowner ");
        push_field(&mut out, &self.owner);
        out.push('\n');
        out.with_end()
    }

    /// Reads a key's file; an empty or incomplete one is a free lock with fence 0.
    pub(crate) fn parse(text: &'t str) -> Result<LockRecord<'t>, String> {
        let Some(body) = body(text, LOCK_MAGIC)? else {
            return Ok(LockRecord::default());
        };
        let mut record = LockRecord::default();
        for line in Lines(body) {
            let line = line.strip_suffix('\n').unwrap_or(line);
            let (name, value) = line.split_once(' ').unwrap_or((line, ""));
            match name {
                "key" => record.key = field(value)?,
                "fence" => record.fence = number(value)?,
                "deadline" => record.deadline = number(value)?,
                "owner" => record.owner = field(value)?,
                _ => {} // a field of a later minor version: kept out, not an error
            }
        }
        Ok(record)
    }
}

/// One held path of a tree lock space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeEntryRecord {
    pub(crate) path: String,
    pub(crate) deadline: u64,
    pub(crate) scope: TreeScope,
    pub(crate) owner: String,
}

/// A tree lock space's file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TreeRecord {
    pub(crate) space: String,
    pub(crate) fence: u64,
    pub(crate) locks: Vec<TreeEntryRecord>,
}

impl TreeRecord {
    pub(crate) fn to_text(&self) -> String {
        let mut out = format!(
            "{TREE_MAGIC} {VERSION}\nspace {}\nfence {}\n",
            escape_field(&self.space),
            self.fence
        );
        for lock in &self.locks {
            let _ = writeln!(
                out,
                "lock {} {} {} {}",
                lock.deadline,
                lock.scope.flags(),
                escape_field(&lock.path),
                escape_field(&lock.owner)
            );
        }
        out.with_end()
    }

    pub(crate) fn parse(text: &str) -> Result<TreeRecord, String> {
        let Some(body) = body(text, TREE_MAGIC)? else {
            return Ok(TreeRecord::default());
        };
        let mut record = TreeRecord::default();
        for line in Lines(body) {
            let line = line.strip_suffix('\n').unwrap_or(line);
            let (name, value) = line.split_once(' ').unwrap_or((line, ""));
            match name {
                "space" => record.space = field(value)?.into_owned(),
                "fence" => record.fence = number(value)?,
                "lock" => {
                    let mut parts = value.split(' ');
                    let mut next = || parts.next().ok_or_else(|| format!("a short line {line:?}"));
                    let deadline = number(next()?)?;
                    let flags = next()?;
                    let scope = TreeScope::from_flags(flags)
                        .ok_or_else(|| format!("bad scope flags {flags:?}"))?;
                    let path = field(next()?)?.into_owned();
                    let owner = field(next()?)?.into_owned();
                    record.locks.push(TreeEntryRecord {
                        path,
                        deadline,
                        scope,
                        owner,
                    });
                }
                _ => {}
            }
        }
        Ok(record)
    }
}

/// Ends a record with `end <length of what came before> <its checksum>`: the record is
/// written over the old one in place, so what follows its `end` line is ignored (padding, or
/// an old record's tail), and a record torn inside its write (new bytes, then old ones)
/// never passes for a record.
trait WithEnd {
    fn with_end(self) -> String;
}

impl WithEnd for String {
    fn with_end(mut self) -> String {
        let (len, sum) = (self.len(), checksum(self.as_bytes()));
        self.push_str("end ");
        push_number(&mut self, len as u64);
        self.push(' ');
        for shift in (0..16).rev() {
            self.push(char::from(
                HEX_DIGITS[((sum >> (shift * 4)) & 0xf) as usize],
            ));
        }
        self.push('\n');
        self
    }
}

/// A 64-bit checksum of a record's body, eight bytes at a time (a multiply-rotate over
/// little-endian words, then the length): stable across versions and platforms, and far from
/// cryptographic, which a torn-write check does not need.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        hash = (hash ^ word).wrapping_mul(K).rotate_left(31);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    hash = (hash ^ u64::from_le_bytes(last))
        .wrapping_mul(K)
        .rotate_left(31);
    (hash ^ bytes.len() as u64).wrapping_mul(K)
}

/// Appends `value` escaped ([`escape_field`]), without a copy when nothing needs escaping.
fn push_field(out: &mut String, value: &str) {
    if value
        .bytes()
        .any(|b| b == b'%' || b == b' ' || b < 0x20 || b == 0x7f || b >= 0x80)
    {
        out.push_str(&escape_field(value));
    } else {
        out.push_str(value);
    }
}

/// Appends `n` in decimal.
fn push_number(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The lines between the header and `end` (each ending in a newline); `None` for an empty or
/// incomplete record (read as free), an error for another file or another format version.
fn body<'t>(text: &'t str, magic: &str) -> Result<Option<&'t str>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let Some((header, rest)) = text.split_once('\n') else {
        // A header cut short by a torn write still starts like ours.
        return if format!("{magic} {VERSION}").starts_with(text) {
            Ok(None)
        } else {
            Err(format!(
                "not a cachelock lock file (it starts with {text:?})"
            ))
        };
    };
    match header.split_once(' ') {
        Some((m, VERSION)) if m == magic => {}
        Some((m, version)) if m == magic => {
            return Err(format!(
                "written in format version {version} by another cachelock version (this one reads {VERSION})"
            ))
        }
        _ => return Err(format!("not a cachelock lock file (it starts with {header:?})")),
    }
    let start = header.len() + 1;
    let mut at = start;
    for line in Lines(rest) {
        if let Some(end) = line.strip_prefix("end ") {
            // The first `end` line: the record's own if its length and checksum match the
            // bytes before it; else the record was torn (and this is an older one's end).
            // Its first two fields: a later version may add more after them.
            let mut parts = end.trim_end_matches('\n').split(' ');
            let (len, sum) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let whole = number(len).ok() == u64::try_from(at).ok()
                && u64::from_str_radix(sum, 16).ok() == Some(checksum(&text.as_bytes()[..at]));
            return Ok(whole.then(|| &text[start..at]));
        }
        if !line.ends_with('\n') {
            break; // the last line, cut short
        }
        at += line.len();
    }
    Ok(None)
}

/// Whether `bytes` (a prefix of a lock file) hold a record up to and including its `end`
/// line's newline: then the rest of the file, if any, is ignored by the reader anyway. The
/// checksum is [`body`]'s to check. The same rule as `body`'s: the first line after the
/// header that starts with `end `.
pub(crate) fn holds_whole_record(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(newline) = bytes[from..].iter().position(|&b| b == b'\n') {
        let line = &bytes[from + newline + 1..];
        if line.starts_with(b"end ") {
            return line.contains(&b'\n');
        }
        from += newline + 1;
    }
    false
}

/// The lines of `text`, each with its newline (the last one without, if it has none): a
/// byte loop, which for lines of a few dozen bytes beats `str::split`'s searcher.
struct Lines<'t>(&'t str);

impl<'t> Iterator for Lines<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        if self.0.is_empty() {
            return None;
        }
        let bytes = self.0.as_bytes();
        let len = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |at| at + 1);
        let (line, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(line)
    }
}

/// A field's value, unescaped; borrowed when it has no escapes.
fn field(value: &str) -> Result<Cow<'_, str>, String> {
    unescape_field(value).ok_or_else(|| format!("a badly escaped field {value:?}"))
}

/// A decimal number: ASCII digits only, at most `u64::MAX`.
fn number(value: &str) -> Result<u64, String> {
    let bad = || format!("not a number: {value:?}");
    if value.is_empty() {
        return Err(bad());
    }
    value.bytes().try_fold(0u64, |n, b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(bad)
        } else {
            Err(bad())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_record_reads_as_documented() {
        let text = "cachelock-lock 1\nkey cachelock:nightly-report\nfence 1718000000123456\n\
                    deadline 1718000060123\nowner 3f2a...9c|4242|web-1|backup\n\
                    end 126 3ec1ce76f97eac31\n";
        let record = LockRecord::parse(text).unwrap();
        assert_eq!(record.key, "cachelock:nightly-report");
        assert_eq!(record.deadline, 1_718_000_060_123);
        assert_eq!(record.to_text(), text);
    }

    #[test]
    fn a_record_is_whole_once_its_end_line_has_its_newline() {
        let record = b"cachelock-lock 1\nkey k\nend 23 0011223344556677\n";
        assert!(holds_whole_record(record));
        assert!(holds_whole_record(b"cachelock-lock 1\nend 17 00\n   \n"));
        for cut in 0..record.len() {
            assert!(!holds_whole_record(&record[..cut]), "cut at {cut}");
        }
        // `end` inside a line is no end line.
        assert!(!holds_whole_record(b"cachelock-lock 1\nowner the end x\n"));
    }

    #[test]
    fn records_round_trip() {
        let record = LockRecord {
            key: "cachelock:a key % with\nodd bytes".into(),
            fence: 17,
            deadline: 1_718_000_060_123,
            owner: "0123|42|host|label with spaces".into(),
        };
        assert_eq!(LockRecord::parse(&record.to_text()), Ok(record));
        let tree = TreeRecord {
            space: "cachelock:".to_owned(),
            fence: 9,
            locks: vec![TreeEntryRecord {
                path: "/a b/c".to_owned(),
                deadline: 5,
                scope: TreeScope {
                    lock_parents: true,
                    lock_children: false,
                },
                owner: "t|1|h|".to_owned(),
            }],
        };
        assert_eq!(TreeRecord::parse(&tree.to_text()), Ok(tree));
    }

    #[test]
    fn empty_and_torn_records_are_free_and_foreign_ones_errors() {
        assert_eq!(LockRecord::parse(""), Ok(LockRecord::default()));
        let full = LockRecord {
            key: "k".into(),
            fence: 3,
            deadline: 9,
            owner: "o".into(),
        }
        .to_text();
        for cut in 1..full.len() - 1 {
            let torn = LockRecord::parse(&full[..cut]).expect("torn: free");
            assert_eq!(torn.deadline, 0, "{:?}", &full[..cut]);
        }
        let old = LockRecord {
            owner: "a much longer owner value than before".into(),
            ..LockRecord::parse(&full).unwrap()
        };
        let longer = old.to_text();
        let shorter = LockRecord {
            key: "k".into(),
            fence: 4,
            deadline: 0,
            owner: "".into(),
        };
        let newer = shorter.to_text();
        // A shorter record written over a longer one: the old tail is ignored.
        let over = format!("{newer}{}", &longer[newer.len()..]);
        assert_eq!(LockRecord::parse(&over), Ok(shorter));
        // A record torn over an older one at any byte: never read as a mix (free, or the
        // old record whole where the torn bytes had not changed it).
        for cut in 1..newer.len() {
            let torn = format!("{}{}", &newer[..cut], &longer[cut..]);
            let read = LockRecord::parse(&torn).unwrap();
            assert!(
                read == LockRecord::default() || read == old,
                "{torn:?}: {read:?}"
            );
        }
        // A name without its value is an error, never a field left at its default.
        let body = "cachelock-lock 1\nkey k\ndeadline\n";
        let bare = format!(
            "{body}end {} {:016x}\n",
            body.len(),
            checksum(body.as_bytes())
        );
        assert!(LockRecord::parse(&bare)
            .unwrap_err()
            .contains("not a number"));
        // Fields after the checksum on the `end` line (a later version's) are ignored.
        let later = full.trim_end().to_owned() + " more\n";
        assert_eq!(LockRecord::parse(&later).unwrap().fence, 3);
        assert!(LockRecord::parse("cachelock-lock 2\nend\n")
            .unwrap_err()
            .contains("version 2"));
        assert!(LockRecord::parse("hello\n")
            .unwrap_err()
            .contains("not a cachelock lock file"));
        assert!(TreeRecord::parse(&full).is_err(), "a key's file is no tree");
    }
}
