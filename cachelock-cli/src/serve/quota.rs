//! `--max-locks-per-client`: how many locks one client address may hold at once (429
//! beyond).
//!
//! The service counts the locks it granted per client IP address, from `canhaz` to
//! `nowant` or the end of their TTL (`stillwant` moves it). A lock released by another
//! address still leaves its taker's count. The count is this process's: `serve` processes
//! sharing a store count apart.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::reply::ApiError;

/// What a handler did to a lock, set on its response for the count.
#[derive(Clone, Debug)]
pub enum Change {
    /// `canhaz` granted a lock with this token for this long.
    Granted {
        /// The new lock's token.
        token: String,
        /// Its TTL.
        ttl: Duration,
    },
    /// `stillwant` reset the TTL of this token's lock.
    Extended {
        /// The lock's token.
        token: String,
        /// Its new TTL.
        ttl: Duration,
    },
    /// `nowant` released this token's lock.
    Released {
        /// The lock's token.
        token: String,
    },
}

/// The locks each client address holds.
#[derive(Clone)]
pub struct Quota {
    max: usize,
    books: Arc<Mutex<Books>>,
}

#[derive(Default)]
struct Books {
    /// Per address: the tokens it holds and when each lock ends, and the `canhaz`
    /// requests in flight (counted until they are answered).
    clients: HashMap<IpAddr, Client>,
    /// Which address took each token.
    owners: HashMap<String, IpAddr>,
    /// Changes since the last sweep of every client.
    since_sweep: usize,
}

#[derive(Default)]
struct Client {
    held: HashMap<String, Instant>,
    pending: usize,
}

impl Client {
    fn prune(&mut self, now: Instant, owners: &mut HashMap<String, IpAddr>) {
        self.held.retain(|token, until| {
            let live = *until > now;
            if !live {
                owners.remove(token);
            }
            live
        });
    }
}

impl Quota {
    /// At most `max` locks per client address.
    pub fn new(max: usize) -> Quota {
        Quota {
            max,
            books: Arc::default(),
        }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // A panic while holding the lock leaves plain counters: still usable.
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a `canhaz` in flight for `ip`, or `false` if `ip` is at its limit.
    fn reserve(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut books = self.books();
        let Books {
            clients, owners, ..
        } = &mut *books;
        let client = clients.entry(ip).or_default();
        client.prune(now, owners);
        if client.held.len() + client.pending >= self.max {
            return false;
        }
        client.pending += 1;
        true
    }

    fn unreserve(&self, ip: IpAddr) {
        let mut books = self.books();
        if let Some(client) = books.clients.get_mut(&ip) {
            client.pending = client.pending.saturating_sub(1);
        }
    }

    fn record(&self, ip: IpAddr, change: &Change) {
        let now = Instant::now();
        let mut books = self.books();
        let Books {
            clients,
            owners,
            since_sweep,
        } = &mut *books;
        match change {
            Change::Granted { token, ttl } => {
                clients
                    .entry(ip)
                    .or_default()
                    .held
                    .insert(token.clone(), now + *ttl);
                owners.insert(token.clone(), ip);
            }
            Change::Extended { token, ttl } => {
                if let Some(client) = owners.get(token).and_then(|o| clients.get_mut(o)) {
                    if let Some(until) = client.held.get_mut(token) {
                        *until = now + *ttl;
                    }
                }
            }
            Change::Released { token } => {
                if let Some(owner) = owners.remove(token) {
                    if let Some(client) = clients.get_mut(&owner) {
                        client.held.remove(token);
                    }
                }
            }
        }
        // Now and then, forget the clients whose locks all ended.
        *since_sweep += 1;
        if *since_sweep >= 1024 {
            *since_sweep = 0;
            clients.retain(|_, client| {
                client.prune(now, owners);
                !client.held.is_empty() || client.pending > 0
            });
        }
    }
}

/// Releases a reservation when the request ends, answered or not.
struct Reservation<'a> {
    quota: &'a Quota,
    ip: IpAddr,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.quota.unreserve(self.ip);
    }
}

/// 429 for a `canhaz` from a client at its limit; records what the handlers changed.
pub async fn count(State(quota): State<Quota>, request: Request, next: Next) -> Response {
    // Set by the accept loop on every request.
    let Some(&ConnectInfo(address)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return next.run(request).await;
    };
    let ip = address.ip().to_canonical();
    let _reservation = if request.uri().path().starts_with("/canhaz/") {
        if !quota.reserve(ip) {
            return too_many(quota.max);
        }
        Some(Reservation { quota: &quota, ip })
    } else {
        None
    };
    let response = next.run(request).await;
    if let Some(change) = response.extensions().get::<Change>() {
        quota.record(ip, change);
    }
    response
}

fn too_many(max: usize) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "this client address already holds {max} locks (--max-locks-per-client): release some first"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(token: &str, ttl: Duration) -> Change {
        Change::Granted {
            token: token.to_owned(),
            ttl,
        }
    }

    #[test]
    fn a_client_holds_at_most_max_and_a_release_frees_a_place() {
        let quota = Quota::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let hour = Duration::from_secs(3600);
        for token in ["a", "b"] {
            assert!(quota.reserve(ip));
            quota.record(ip, &granted(token, hour));
            quota.unreserve(ip);
        }
        assert!(!quota.reserve(ip), "a third is refused");
        assert!(quota.reserve(other), "another address has its own count");
        quota.unreserve(other);
        // Released from another address: still the taker's place that is freed.
        quota.record(
            other,
            &Change::Released {
                token: "a".to_owned(),
            },
        );
        assert!(quota.reserve(ip));
    }

    #[test]
    fn an_expired_lock_frees_its_place_and_pending_requests_count() {
        let quota = Quota::new(1);
        let ip: IpAddr = "::1".parse().unwrap();
        quota.record(ip, &granted("a", Duration::ZERO));
        assert!(quota.reserve(ip), "the TTL ran out");
        assert!(!quota.reserve(ip), "one canhaz in flight fills the place");
    }
}
