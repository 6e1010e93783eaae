//! The SQL text of every operation, built once per store for its table names.
//!
//! Every statement that decides something is ONE statement run in autocommit, and reads the
//! clock with `clock_timestamp()` (the time now, not `now()`, which is the start of the
//! transaction: a statement that waited on a row lock would otherwise compare against a
//! time from before its wait). Tree claims are the one exception: a short transaction that
//! takes the space's transaction-scoped advisory lock, then checks and inserts in a second
//! statement (so its snapshot is taken after the lock is granted).

/// The `NOTIFY` channel of plain lock releases; the payload is the key.
pub(crate) const RELEASED: &str = "cachelock_released";

/// The `NOTIFY` channel of tree lock releases; the payload is `<space>\n<path>`.
pub(crate) const TREE_RELEASED: &str = "cachelock_tree_released";

/// Evaluated by a release that deleted a lock: its transaction commits without waiting for
/// its WAL flush. Safe: a release lost in a crash leaves the lock held until its deadline
/// (nobody else can take it meanwhile), and a later claim's synchronous commit flushes the
/// release with it. Claims and extends always wait for their flush.
const ASYNC_COMMIT: &str = "set_config('synchronous_commit', 'off', true)";

/// The longest table name: PostgreSQL cuts identifiers at 63 bytes, and the sequence and
/// the tree table add `_fence` and `_tree`.
pub(crate) const MAX_TABLE_NAME: usize = 63 - "_fence".len();

/// `"name"`, with `"` doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with `'` doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQL of one store.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    /// The qualified, quoted names (for the docs and errors).
    pub(crate) table: String,
    pub(crate) tree_table: String,
    /// The three names as `to_regclass` takes them, for the existence check.
    pub(crate) names: [String; 3],
    pub(crate) exists: String,
    pub(crate) create: String,
    pub(crate) claim: String,
    pub(crate) release: String,
    pub(crate) extend: String,
    pub(crate) holder: String,
    pub(crate) keys: String,
    pub(crate) force_release: String,
    pub(crate) tree_lock: String,
    pub(crate) tree_claim: String,
    pub(crate) tree_release: String,
    pub(crate) tree_extend: String,
    pub(crate) tree_holder: String,
    pub(crate) tree_list: String,
}

/// A live tree lock `c` of space `$1` that conflicts with a lock on `$2` wanting
/// (lock_parents, lock_children) = (`$p`, `$c`): see [`crate::tree::conflicts`].
fn tree_conflict(p: &str, c: &str) -> String {
    format!(
        "c.space = $1 AND c.expires_at > clock_timestamp() AND (\
         c.path = $2 \
         OR ({p} AND c.lock_children AND (c.path = '/' OR starts_with($2, c.path || '/'))) \
         OR ({c} AND c.lock_parents AND ($2 = '/' OR starts_with(c.path, $2 || '/'))))"
    )
}

impl Sql {
    /// The statements for `table` in `schema` (or the `search_path` when `None`).
    pub(crate) fn new(schema: Option<&str>, table: &str) -> Sql {
        let qualify = |name: &str| match schema {
            Some(schema) => format!("{}.{}", ident(schema), ident(name)),
            None => ident(name),
        };
        let t = qualify(table);
        let tree = qualify(&format!("{table}_tree"));
        let seq = qualify(&format!("{table}_fence"));
        let next = format!("nextval({})", literal(&seq));
        let ttl = "$4 * interval '1 microsecond'";
        let create = format!(
            "BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended({lock}, 0));
CREATE TABLE IF NOT EXISTS {t} (
    key        text COLLATE \"C\" PRIMARY KEY,
    token      text NOT NULL,
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL,
    fence      bigint NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS {seq} AS bigint;
CREATE TABLE IF NOT EXISTS {tree} (
    space         text COLLATE \"C\" NOT NULL,
    path          text COLLATE \"C\" NOT NULL,
    token         text NOT NULL,
    owner         text NOT NULL,
    lock_parents  boolean NOT NULL,
    lock_children boolean NOT NULL,
    expires_at    timestamptz NOT NULL,
    fence         bigint NOT NULL,
    PRIMARY KEY (space, path)
);
COMMIT;",
            lock = literal(&format!("cachelock-create {t}")),
        );
        let claim = format!(
            "INSERT INTO {t} AS t (key, token, owner, expires_at, fence) \
             VALUES ($1, $2, $3, clock_timestamp() + {ttl}, {next}) \
             ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, owner = EXCLUDED.owner, \
             expires_at = clock_timestamp() + {ttl}, fence = GREATEST({next}, t.fence + 1) \
             WHERE t.expires_at <= clock_timestamp() OR t.token = EXCLUDED.token \
             RETURNING fence"
        );
        let release = format!(
            "WITH released AS (UPDATE {t} SET expires_at = '-infinity' \
             WHERE key = $1 AND token = $2 AND expires_at > clock_timestamp() RETURNING key) \
             SELECT pg_notify('{RELEASED}', key), {ASYNC_COMMIT} FROM released"
        );
        let extend = format!(
            "UPDATE {t} SET expires_at = clock_timestamp() + $3 * interval '1 microsecond' \
             WHERE key = $1 AND token = $2 AND expires_at > clock_timestamp()"
        );
        let micros_left = "(extract(epoch FROM expires_at - clock_timestamp()) * 1000000)::int8";
        let holder = format!(
            "SELECT owner, {micros_left} FROM {t} WHERE key = $1 AND expires_at > clock_timestamp()"
        );
        let keys = format!(
            "SELECT key FROM {t} WHERE key LIKE $1 ESCAPE E'\\\\' AND expires_at > clock_timestamp()"
        );
        let force_release = format!(
            "WITH released AS (UPDATE {t} SET expires_at = '-infinity' \
             WHERE key = $1 AND expires_at > clock_timestamp() RETURNING key) \
             SELECT pg_notify('{RELEASED}', key), {ASYNC_COMMIT} FROM released"
        );
        let tree_lock = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))".to_owned();
        let tree_claim = format!(
            "INSERT INTO {tree} AS t \
             (space, path, token, owner, lock_parents, lock_children, expires_at, fence) \
             SELECT $1, $2, $3, $4, $5, $6, clock_timestamp() + $7 * interval '1 microsecond', {next} \
             WHERE NOT EXISTS (SELECT 1 FROM {tree} c WHERE {conflict} AND c.token <> $3) \
             ON CONFLICT (space, path) DO UPDATE SET token = EXCLUDED.token, \
             owner = EXCLUDED.owner, lock_parents = EXCLUDED.lock_parents, \
             lock_children = EXCLUDED.lock_children, expires_at = EXCLUDED.expires_at, \
             fence = GREATEST(EXCLUDED.fence, t.fence + 1) \
             RETURNING fence",
            conflict = tree_conflict("$5", "$6"),
        );
        let tree_release = format!(
            "WITH released AS (UPDATE {tree} SET expires_at = '-infinity' \
             WHERE space = $1 AND path = $2 AND token = $3 AND expires_at > clock_timestamp() \
             RETURNING space, path) \
             SELECT pg_notify('{TREE_RELEASED}', space || E'\\n' || path), {ASYNC_COMMIT} FROM released"
        );
        let tree_extend = format!(
            "UPDATE {tree} SET expires_at = clock_timestamp() + $4 * interval '1 microsecond' \
             WHERE space = $1 AND path = $2 AND token = $3 AND expires_at > clock_timestamp()"
        );
        let tree_holder = format!(
            "SELECT c.path, c.owner, {micros_left} FROM {tree} c WHERE {conflict} \
             ORDER BY c.path = $2 DESC, c.path LIMIT 1",
            micros_left = micros_left.replace("expires_at", "c.expires_at"),
            conflict = tree_conflict("$3", "$4"),
        );
        let tree_list = format!(
            "SELECT path, owner, {micros_left} FROM {tree} \
             WHERE space = $1 AND expires_at > clock_timestamp()"
        );
        let exists = "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL \
                      AND to_regclass($3) IS NOT NULL"
            .to_owned();
        Sql {
            names: [t.clone(), tree.clone(), seq.clone()],
            table: t,
            tree_table: tree,
            exists,
            create,
            claim,
            release,
            extend,
            holder,
            keys,
            force_release,
            tree_lock,
            tree_claim,
            tree_release,
            tree_extend,
            tree_holder,
            tree_list,
        }
    }
}

/// A `LIKE` pattern for the keys that start with `prefix` (`\`, `%` and `_` escaped).
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_patterns_escaped() {
        let sql = Sql::new(Some("app"), "lo\"cks");
        assert_eq!(sql.table, "\"app\".\"lo\"\"cks\"");
        assert_eq!(sql.names[2], "\"app\".\"lo\"\"cks_fence\"");
        assert!(sql.claim.contains("nextval('\"app\".\"lo\"\"cks_fence\"')"));
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
        assert_eq!(Sql::new(None, "t").tree_table, "\"t_tree\"");
    }
}
