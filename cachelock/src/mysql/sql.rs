//! The statements, built once per store for its table, and the keys of tree lock spaces.
//!
//! Every deadline is `UTC_TIMESTAMP(6)` (the server's clock, fixed for the whole statement,
//! whatever the session's time zone) plus the TTL in microseconds; fences are
//! `max(stored fence + 1, server clock in µs since 1970)`, handed back through
//! `LAST_INSERT_ID(expr)`, which the server returns in the statement's OK packet.

use super::config::quoted_table;

/// The server clock as microseconds since 1970, in UTC.
const US_NOW: &str = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))";
/// The server clock, UTC.
const NOW: &str = "UTC_TIMESTAMP(6)";

/// The longest stored key: the primary key of InnoDB with 16 KiB pages and the DYNAMIC row
/// format (the default since MariaDB 10.2 and MySQL 5.7) may be 3,072 bytes.
pub(crate) const MAX_STORED_KEY: usize = 3072;

/// The longest owner value (`<token>|<pid>|<host>|<label>`): a `BLOB`.
pub(crate) const MAX_OWNER: usize = 65_535;

/// What separates a tree lock space from its paths in a stored key (the tag the Redis
/// backend uses too; [`Lock`](crate::Lock) refuses keys that contain it).
pub(crate) const TREE_TAG: &str = "{cachelock-tree}:";

/// The `scope` of a lock space's own row (its fence counter).
pub(crate) const SPACE_SCOPE: &str = "--";

/// The table's definition, for `CREATE TABLE IF NOT EXISTS`.
pub(crate) fn create_table(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
  lock_key   VARBINARY(3072)  NOT NULL,
  token      VARBINARY(64)    NULL,
  owner      BLOB             NULL,
  scope      VARBINARY(2)     NULL,
  fence      BIGINT UNSIGNED  NOT NULL DEFAULT 0,
  expires_at DATETIME(6)      NOT NULL,
  PRIMARY KEY (lock_key)
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC",
        quoted_table(table)
    )
}

/// The statements of one table.
pub(crate) struct Sql {
    pub(crate) create: String,
    /// key, token, owner, ttl µs, token, owner, token, ttl µs → `LAST_INSERT_ID` = fence or 0.
    pub(crate) claim: String,
    /// key, token → affected rows 1 or 0.
    pub(crate) release: String,
    /// ttl µs, ttl µs, key, token → affected rows 1 or 0.
    pub(crate) extend: String,
    /// key → owner, µs left.
    pub(crate) holder: String,
    /// from (inclusive), to (exclusive) → keys.
    pub(crate) keys_range: String,
    /// from (inclusive) → keys.
    pub(crate) keys_from: String,
    /// key.
    pub(crate) force_release: String,
    /// Starts a tree transaction, reading committed data.
    pub(crate) begin: &'static str,
    /// space key → `LAST_INSERT_ID` = the space's next fence; locks the space row.
    pub(crate) tree_space: String,
    /// key, token, owner, scope, fence, ttl µs, then the same again.
    pub(crate) tree_insert: String,
    /// key, token → affected rows.
    pub(crate) tree_release: String,
    /// ttl µs, ttl µs, key, token → affected rows.
    pub(crate) tree_extend: String,
    /// from, to → key, owner, µs left of every live lock in the range.
    pub(crate) tree_list: String,
    table: String,
}

impl Sql {
    pub(crate) fn new(table: &str) -> Sql {
        let t = quoted_table(table);
        Sql {
            create: create_table(table),
            claim: format!(
                "INSERT INTO {t} (lock_key, token, owner, scope, fence, expires_at) \
                 VALUES (?, ?, ?, NULL, LAST_INSERT_ID({US_NOW}), {NOW} + INTERVAL ? MICROSECOND) \
                 ON DUPLICATE KEY UPDATE \
                 fence = IF(expires_at > {NOW}, \
                            IF(token = ?, LAST_INSERT_ID(fence), fence + LAST_INSERT_ID(0)), \
                            LAST_INSERT_ID(GREATEST(fence + 1, {US_NOW}))), \
                 owner = IF(expires_at > {NOW}, owner, ?), \
                 token = IF(expires_at > {NOW}, token, ?), \
                 expires_at = IF(expires_at > {NOW}, expires_at, {NOW} + INTERVAL ? MICROSECOND)"
            ),
            release: format!(
                "UPDATE {t} SET token = NULL, owner = NULL, expires_at = {NOW} \
                 WHERE lock_key = ? AND token = ? AND expires_at > {NOW} AND scope IS NULL"
            ),
            extend: extend(&t, "scope IS NULL"),
            holder: format!(
                "SELECT owner, TIMESTAMPDIFF(MICROSECOND, {NOW}, expires_at) FROM {t} \
                 WHERE lock_key = ? AND token IS NOT NULL AND scope IS NULL AND expires_at > {NOW}"
            ),
            keys_range: format!(
                "SELECT lock_key FROM {t} WHERE lock_key >= ? AND lock_key < ? \
                 AND token IS NOT NULL AND scope IS NULL AND expires_at > {NOW}"
            ),
            keys_from: format!(
                "SELECT lock_key FROM {t} WHERE lock_key >= ? \
                 AND token IS NOT NULL AND scope IS NULL AND expires_at > {NOW}"
            ),
            force_release: format!(
                "UPDATE {t} SET token = NULL, owner = NULL, expires_at = LEAST(expires_at, {NOW}) \
                 WHERE lock_key = ? AND scope IS NULL"
            ),
            begin: "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION",
            tree_space: format!(
                "INSERT INTO {t} (lock_key, token, owner, scope, fence, expires_at) \
                 VALUES (?, NULL, NULL, '{SPACE_SCOPE}', LAST_INSERT_ID({US_NOW}), '1970-01-01 00:00:00') \
                 ON DUPLICATE KEY UPDATE fence = LAST_INSERT_ID(GREATEST(fence + 1, {US_NOW}))"
            ),
            tree_insert: format!(
                "INSERT INTO {t} (lock_key, token, owner, scope, fence, expires_at) \
                 VALUES (?, ?, ?, ?, ?, {NOW} + INTERVAL ? MICROSECOND) \
                 ON DUPLICATE KEY UPDATE token = ?, owner = ?, scope = ?, fence = ?, \
                 expires_at = {NOW} + INTERVAL ? MICROSECOND"
            ),
            tree_release: format!(
                "DELETE FROM {t} WHERE lock_key = ? AND token = ? AND expires_at > {NOW} \
                 AND scope IS NOT NULL"
            ),
            tree_extend: extend(&t, "scope IS NOT NULL"),
            tree_list: format!(
                "SELECT lock_key, owner, TIMESTAMPDIFF(MICROSECOND, {NOW}, expires_at) FROM {t} \
                 WHERE lock_key >= ? AND lock_key < ? AND token IS NOT NULL \
                 AND scope IS NOT NULL AND expires_at > {NOW}"
            ),
            table: t,
        }
    }

    /// The tree candidates of a claim or holder lookup: the rows at `points` keys (the path
    /// and its ancestors) and in one key range (its descendants). `locking`: the claim's
    /// form, which reads the newest committed rows and locks them (`FOR UPDATE`) so that a
    /// concurrent extend or release of one of them waits for the claim to end. Columns: key,
    /// token, owner, scope, fence, live (0/1), µs left.
    pub(crate) fn tree_candidates(&self, points: usize, locking: bool) -> String {
        let marks = vec!["?"; points.max(1)].join(", ");
        format!(
            "SELECT lock_key, token, owner, scope, fence, expires_at > {NOW}, \
             TIMESTAMPDIFF(MICROSECOND, {NOW}, expires_at) FROM {t} \
             WHERE (lock_key IN ({marks}) OR (lock_key >= ? AND lock_key < ?)) \
             AND scope IS NOT NULL AND scope <> '{SPACE_SCOPE}'{lock}",
            t = self.table,
            lock = if locking { " FOR UPDATE" } else { "" },
        )
    }

    /// Deletes expired tree locks among `points` keys (found by a claim, which holds their
    /// rows).
    pub(crate) fn tree_purge(&self, points: usize) -> String {
        let marks = vec!["?"; points.max(1)].join(", ");
        format!(
            "DELETE FROM {t} WHERE lock_key IN ({marks}) AND expires_at <= {NOW} \
             AND scope IS NOT NULL AND scope <> '{SPACE_SCOPE}'",
            t = self.table
        )
    }
}

/// The owner-checked extend: the new deadline, one microsecond later if it equals the old
/// one (so the row always changes and the affected-row count is 1 whatever the client's
/// `CLIENT_FOUND_ROWS` flag says).
fn extend(t: &str, scope: &str) -> String {
    format!(
        "UPDATE {t} SET expires_at = IF(expires_at = {NOW} + INTERVAL ? MICROSECOND, \
         expires_at + INTERVAL 1 MICROSECOND, {NOW} + INTERVAL ? MICROSECOND) \
         WHERE lock_key = ? AND token = ? AND expires_at > {NOW} AND {scope}"
    )
}

/// The first key after every key that starts with `prefix`, or `None` if there is none
/// (the prefix is all `0xFF` bytes, or empty).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The stored key of `path` in the lock space `space`: `<space>{cachelock-tree}:<path>`.
pub(crate) fn tree_key(space: &str, path: &str) -> String {
    let mut key = String::with_capacity(space.len() + TREE_TAG.len() + path.len());
    key.push_str(space);
    key.push_str(TREE_TAG);
    key.push_str(path);
    key
}

/// A TTL in whole microseconds, at least 1.
pub(crate) fn ttl_us(ttl: std::time::Duration) -> u64 {
    u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_are_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"x/"), Some(b"x0".to_vec()));
    }
}
