//! The core of the etcd store: the client (made on the private runtime on first use), the
//! settings, leases (their TTL in whole seconds, their ids), the owner check as a
//! transaction comparison, timeouts, the one resend after a dead connection, and errors.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, LeaseGrantOptions};

use super::config::{Settings, Target};
use super::runtime;
use crate::error::BoxError;
use crate::result::CacheResult;

/// The bits of a lease id that carry its TTL in seconds (see [`lease_id`]): 22 bits, up to
/// 48 days, more than [`MAX_TTL`](crate::MAX_TTL).
const TTL_BITS: u32 = 22;
const TTL_MASK: i64 = (1 << TTL_BITS) - 1;

/// The mark of every key of a tree lock space (`tree.rs`): [`Lock`](crate::Lock) refuses
/// such keys and the listings of plain locks skip them.
pub(crate) const MARK: &str = "{cachelock-tree}:";

/// How many revisions of keys seen held are remembered for the watches of waiters.
const SEEN_MAX: usize = 4096;

pub(crate) struct Inner {
    /// The client: set by `from_client`, else made on first use (and made again after a
    /// failed first connection, e.g. a user's authentication against a member that was down).
    client: tokio::sync::OnceCell<Client>,
    /// Where to connect (`None` for a store made from a client).
    target: Option<Target>,
    pub(crate) settings: Settings,
    /// Where it connects, credentials redacted (for `Debug`).
    pub(crate) shown: String,
    /// The server's minimum lease TTL in seconds, learnt from a grant it raised (0: none
    /// seen yet).
    server_min_secs: AtomicI64,
    /// key (or tree space) -> the revision at which a claim of this store found it held:
    /// a waiter's watch starts after it, so a release in between is not missed.
    seen: Mutex<HashMap<String, i64>>,
}

/// The etcd store's core; clones share it.
#[derive(Clone)]
pub(crate) struct Core(Arc<Inner>);

impl std::ops::Deref for Core {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Core {
    pub(crate) fn new(
        target: Option<Target>,
        client: Option<Client>,
        settings: Settings,
        shown: String,
    ) -> Core {
        Core(Arc::new(Inner {
            client: tokio::sync::OnceCell::new_with(client),
            target,
            settings,
            shown,
            server_min_secs: AtomicI64::new(0),
            seen: Mutex::new(HashMap::new()),
        }))
    }

    /// The client, connected on first use (on the private runtime, where its channel's
    /// tasks then live).
    pub(crate) async fn client(&self) -> CacheResult<Client> {
        let client = self
            .client
            .get_or_try_init(|| async {
                let target = self
                    .target
                    .as_ref()
                    .ok_or("the etcd store has no client and no endpoints")?;
                let mut options =
                    ConnectOptions::new().with_connect_timeout(self.settings.connect_timeout);
                if let Some((user, password)) = &target.user {
                    options = options
                        .with_user(user.clone(), password.clone())
                        .with_auto_token_refresh(true);
                }
                Client::connect(&target.endpoints, Some(options))
                    .await
                    .map_err(|e| failed("connect", e))
            })
            .await?;
        Ok(client.clone())
    }

    /// The key as stored: with the store's own prefix.
    pub(crate) fn key(&self, key: &str) -> String {
        self.settings.key(key).into_owned()
    }

    /// The lease TTL, in whole seconds, of a lock with `ttl`: rounded up, at least 1 s and
    /// at least the server's minimum once a grant has shown it.
    pub(crate) fn lease_secs(&self, ttl: Duration) -> i64 {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs).unwrap_or(TTL_MASK).clamp(1, TTL_MASK);
        secs.max(self.server_min_secs.load(Ordering::Relaxed))
    }

    /// The shortest lease this store can count on etcd to keep as asked: etcd's default
    /// minimum (2 s), or the longer minimum a grant showed.
    pub(crate) fn min_lease(&self) -> Duration {
        let secs = self.server_min_secs.load(Ordering::Relaxed).max(2);
        Duration::from_secs(secs.unsigned_abs())
    }

    /// The whole-operation bound of a claim or extend asking for a `secs` lease.
    pub(crate) fn lease_timeout(&self, secs: i64) -> Duration {
        self.settings
            .operation_timeout(Some(Duration::from_secs(secs.unsigned_abs())))
    }

    /// The whole-operation bound of any other operation.
    pub(crate) fn timeout(&self) -> Duration {
        self.settings.operation_timeout(None)
    }

    /// Whether a lease granted for `lease_id` (whose low bits carry the TTL asked for) keeps
    /// keys for `secs` when renewed, as this store grants them now.
    pub(crate) fn renews_for(&self, lease_id: i64, secs: i64) -> bool {
        let asked = lease_id & TTL_MASK;
        asked > 0 && asked.max(self.server_min_secs.load(Ordering::Relaxed)) == secs
    }

    /// Grants a lease of `secs` seconds, with an id of our choosing ([`lease_id`]); a taken
    /// id is drawn again.
    pub(crate) async fn grant(&self, client: &Client, secs: i64) -> CacheResult<i64> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let id = lease_id(secs);
            let options = LeaseGrantOptions::new().with_id(id);
            let granted = resend_once("lease grant", || {
                let mut lease = client.lease_client();
                let options = options.clone();
                async move { lease.grant(secs, Some(options)).await }
            })
            .await;
            match granted {
                Ok(granted) => {
                    if granted.ttl() > secs {
                        // The server raised it to its minimum lease TTL.
                        self.server_min_secs
                            .fetch_max(granted.ttl(), Ordering::Relaxed);
                    }
                    return Ok(granted.id());
                }
                // A resend of a grant that landed, or an id drawn twice: draw another.
                Err(error) if attempts < 3 && lease_exists(&error) => continue,
                Err(error) => return Err(failed("lease grant", error)),
            }
        }
    }

    /// Revokes `lease` in the background: the clean-up after a release or a lost claim (a
    /// lease left behind holds no key and runs out by itself).
    pub(crate) fn revoke_later(&self, client: &Client, lease: i64) {
        if lease == 0 {
            return;
        }
        let mut leases = client.lease_client();
        let limit = self.timeout();
        runtime::spawn_detached(async move {
            if let Ok(Err(error)) = tokio::time::timeout(limit, leases.revoke(lease)).await {
                tracing::debug!(%error, lease, "etcd lease revoke failed (it runs out by its TTL)");
            }
        });
    }

    /// Remembers that `key` was found held at `revision`.
    pub(crate) fn saw_held(&self, key: &str, revision: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SEEN_MAX && !seen.contains_key(key) {
            seen.clear();
        }
        seen.insert(key.to_owned(), revision);
    }

    /// The revision at which `key` was last found held, forgotten as it is read.
    pub(crate) fn take_seen(&self, key: &str) -> Option<i64> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }
}

/// A fresh lease id that carries `secs` in its low [`TTL_BITS`] bits, 40 random bits above
/// them; positive. Whoever reads a lock's lease id knows the TTL its lease was granted for,
/// without asking the server: an extend with the same TTL renews it with a keep-alive.
fn lease_id(secs: i64) -> i64 {
    let random = (rand::random::<u64>() >> 24) as i64; // 40 bits
    (random << TTL_BITS) | (secs & TTL_MASK)
}

/// Whether a grant failed because the id is taken.
fn lease_exists(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(status) if status.message().contains("lease already exists"))
}

/// The comparisons under which `key` holds a value whose token part is `token`: the value
/// lies between `token|` and `token}` (`}` follows `|` in ASCII, so exactly the values that
/// start with `token|` do; tokens are 32 hex digits, values always go on after the `|`).
/// `None` for a token no stored value can carry (empty, or holding a `|`).
pub(crate) fn owned_by(key: &str, token: &str) -> Option<[Compare; 2]> {
    if token.is_empty() || token.contains('|') {
        return None;
    }
    Some([
        Compare::value(key, CompareOp::Greater, format!("{token}|")),
        Compare::value(key, CompareOp::Less, format!("{token}}}")),
    ])
}

/// Whether the error says the connection died (the server restarted, the link was cut):
/// the request may or may not have run, and a new connection is made on the next one.
fn dead_connection(error: &etcd_client::Error) -> bool {
    use tonic::Code;
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        _ => false,
    }
}

/// Runs the request `send` makes; if the connection was found dead, sends it once more on
/// a new one. Every request of this store is safe to send twice: the claims recognise
/// their own value, the rest are reads, keep-alives, or compare on the owner.
pub(crate) async fn resend_once<T, F, Fut>(what: &str, mut send: F) -> Result<T, etcd_client::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    match send().await {
        Err(error) if dead_connection(&error) => {
            tracing::debug!(%error, what, "etcd connection is dead; sending once more");
            send().await
        }
        outcome => outcome,
    }
}

/// An etcd request that failed.
#[derive(Debug)]
pub(crate) struct EtcdError {
    what: &'static str,
    source: etcd_client::Error,
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "etcd {} failed: {}", self.what, self.source)
    }
}

impl std::error::Error for EtcdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

pub(crate) fn failed(what: &'static str, source: etcd_client::Error) -> BoxError {
    Box::new(EtcdError { what, source })
}

/// Runs `fut` bounded by `limit`: past it, a `TimedOut` I/O error (so that
/// [`Error::is_timeout`](crate::Error::is_timeout) is true).
pub(crate) async fn timed<T>(
    what: &'static str,
    limit: Duration,
    fut: impl Future<Output = CacheResult<T>>,
) -> CacheResult<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("etcd {what} timed out after {limit:?}"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_carry_their_ttl_and_are_positive() {
        for secs in [1, 2, 59, 2_592_000] {
            let id = lease_id(secs);
            assert!(id > 0);
            assert_eq!(id & TTL_MASK, secs);
        }
        assert_ne!(lease_id(1), lease_id(1));
    }

    #[test]
    fn lease_secs_round_up() {
        let core = Core::new(None, None, Settings::default(), String::new());
        assert_eq!(core.lease_secs(Duration::from_millis(1)), 1);
        assert_eq!(core.lease_secs(Duration::from_millis(1000)), 1);
        assert_eq!(core.lease_secs(Duration::from_millis(1001)), 2);
        assert_eq!(core.lease_secs(crate::MAX_TTL), 2_592_000);
        core.server_min_secs.store(2, Ordering::Relaxed);
        assert_eq!(core.lease_secs(Duration::from_millis(150)), 2);
        assert!(core.renews_for(lease_id(1), 2));
        assert!(core.renews_for(lease_id(2), 2));
        assert!(!core.renews_for(lease_id(3), 2));
        assert!(!core.renews_for(0, 2));
    }
}
