//! The store's operations as exchanges on one connection, written once for the sync and the
//! async connection ([`Exchange`]).
//!
//! | operation | first try | when that cannot decide |
//! |---|---|---|
//! | claim | `ms <key> <len> T<exp> ME c` (add: stored only if absent; answers the CAS) | sent again after a lost reply: `NS` → `mg <key> v c`, and the key holding this claim's own token is its win |
//! | release | `md <key> C<cas>` with the CAS this store got from the claim, on a connection to the same server run | `mg <key> v c`, compare the token, `md <key> C<cas>` on the same connection |
//! | extend | `ms <key> <len> T<exp> C<cas> c` with the claim's value and CAS | `mg <key> v c`, compare the token, `ms ... C<cas>` on the same connection |
//! | holder | `mg <key> v t` | |
//! | force-release | `md <key>` | |
//!
//! A compare on the CAS is atomic in memcached: `md`/`ms` with `C<cas>` act only while the
//! item is the very one that was read (or stored), so a release or an extend never touches
//! another owner's lock. A CAS is only compared on a connection to the server run it came
//! from (the two exchanges of a fallback share their connection; a known CAS is used only if
//! the connection's run marker is the one of the claim's connection), since a restarted
//! server counts its CAS values from 1 again.

use std::io;
use std::time::Duration;

use super::conn::Exchange;
use super::proto::{self, unexpected, Code, Reply, Session};
use crate::owner::is_owned_by;

/// The longest relative expiry memcached takes: 30 days. A larger number is a Unix time.
pub(super) const MAX_RELATIVE_EXPIRY: u64 = 60 * 60 * 24 * 30;

/// The CAS and the owner value this store stored at a key, from its claim or last extend,
/// and the server run it was stored in.
#[derive(Clone, Debug)]
pub(super) struct Known {
    pub(super) cas: u64,
    pub(super) run: u64,
    pub(super) value: String,
}

/// One operation, its key already mapped to a memcached key.
pub(super) enum Op<'a> {
    Claim {
        key: &'a str,
        value: &'a str,
        token: &'a str,
        ttl: Duration,
    },
    Release {
        key: &'a str,
        token: &'a str,
        known: Option<Known>,
    },
    Extend {
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        known: Option<Known>,
    },
    Holder {
        key: &'a str,
    },
    Delete {
        key: &'a str,
    },
}

impl Op<'_> {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Op::Claim { .. } => "claim",
            Op::Release { .. } => "release",
            Op::Extend { .. } => "extend",
            Op::Holder { .. } => "holder lookup",
            Op::Delete { .. } => "force-release",
        }
    }

    /// The lock TTL that bounds the operation's wait (claim and extend).
    pub(super) fn lock_ttl(&self) -> Option<Duration> {
        match self {
            Op::Claim { ttl, .. } | Op::Extend { ttl, .. } => Some(*ttl),
            _ => None,
        }
    }
}

/// An item stored: its CAS, and the run of the connection that stored it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grant {
    pub(super) cas: u64,
    pub(super) session: Session,
}

impl Grant {
    /// The fencing token: the server's start time in µs plus the item's CAS.
    pub(super) fn fence(&self) -> u64 {
        self.session.epoch_micros.saturating_add(self.cas)
    }
}

pub(super) enum Outcome {
    Claimed(Option<Grant>),
    Released(bool),
    Extended(Option<Grant>),
    Holder(Option<(String, Option<Duration>)>),
    Deleted,
}

/// The expiry to send for a lock of `ttl`: whole seconds rounded up, plus one second
/// because memcached's clock ticks once a second (an expiry of N seconds ends after N - 1
/// to N seconds); past 30 days, the Unix time by the server's clock (learned when the
/// connection opened), with one more second for the estimate.
pub(super) fn expiry(ttl: Duration, session: Session, opened: std::time::Instant) -> u64 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .saturating_add(1);
    if secs <= MAX_RELATIVE_EXPIRY {
        return secs;
    }
    let since_open = opened.elapsed();
    let server_now = session
        .server_time
        .saturating_add(since_open.as_secs())
        .saturating_add(u64::from(since_open.subsec_nanos() > 0));
    server_now.saturating_add(secs).saturating_add(1)
}

fn grant(what: &str, reply: &Reply, session: Session) -> io::Result<Grant> {
    match reply.cas {
        Some(cas) if cas != 0 => Ok(Grant { cas, session }),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("memcached stored the {what} without answering its CAS"),
        )),
    }
}

/// Whether a `VA` reply holds a value owned by `token`.
fn owned(reply: &Reply, token: &str) -> bool {
    reply
        .value
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .is_some_and(|v| is_owned_by(v, token))
}

/// `known`, if it may be compared on this connection (same server run).
fn usable(known: &Option<Known>, session: Session) -> Option<&Known> {
    known.as_ref().filter(|k| k.run == session.run)
}

/// Runs `op` on `con`, each exchange within `timeout`. `resent`: the operation was sent
/// before on a connection that died, and may have run there.
pub(super) async fn execute<C: Exchange>(
    con: &mut C,
    op: &Op<'_>,
    resent: bool,
    timeout: Duration,
) -> io::Result<Outcome> {
    let session = con.session();
    match op {
        Op::Claim {
            key,
            value,
            token,
            ttl,
        } => {
            let exp = expiry(*ttl, session, con.opened());
            let reply = con
                .exchange(&proto::add(key, value.as_bytes(), exp), timeout)
                .await?;
            match reply.code {
                Code::Hd => Ok(Outcome::Claimed(Some(grant("claim", &reply, session)?))),
                Code::Ns if resent => {
                    // The first send may have stored it, its reply lost.
                    let reply = con.exchange(&proto::get_cas(key), timeout).await?;
                    match reply.code {
                        Code::Va if owned(&reply, token) => {
                            Ok(Outcome::Claimed(Some(grant("claim", &reply, session)?)))
                        }
                        Code::Va | Code::En => Ok(Outcome::Claimed(None)),
                        _ => Err(unexpected("a claim's check", &reply)),
                    }
                }
                Code::Ns => Ok(Outcome::Claimed(None)),
                _ => Err(unexpected("a claim", &reply)),
            }
        }
        Op::Release { key, token, known } => {
            if let Some(known) = usable(known, session) {
                let reply = con
                    .exchange(&proto::delete(key, Some(known.cas)), timeout)
                    .await?;
                match reply.code {
                    Code::Hd => return Ok(Outcome::Released(true)),
                    Code::Nf => return Ok(Outcome::Released(false)),
                    // Another item, or this one with a CAS this store missed (an extend
                    // whose reply was lost): read it.
                    Code::Ex => {}
                    _ => return Err(unexpected("a release", &reply)),
                }
            }
            let reply = con.exchange(&proto::get_cas(key), timeout).await?;
            match reply.code {
                Code::En => Ok(Outcome::Released(false)),
                Code::Va if !owned(&reply, token) => Ok(Outcome::Released(false)),
                Code::Va => {
                    let cas = grant("lock", &reply, session)?.cas;
                    let reply = con
                        .exchange(&proto::delete(key, Some(cas)), timeout)
                        .await?;
                    match reply.code {
                        Code::Hd => Ok(Outcome::Released(true)),
                        Code::Nf | Code::Ex => Ok(Outcome::Released(false)),
                        _ => Err(unexpected("a release", &reply)),
                    }
                }
                _ => Err(unexpected("a release's read", &reply)),
            }
        }
        Op::Extend {
            key,
            token,
            ttl,
            known,
        } => {
            let exp = expiry(*ttl, session, con.opened());
            if let Some(known) = usable(known, session) {
                let request = proto::replace_cas(key, known.value.as_bytes(), exp, known.cas);
                let reply = con.exchange(&request, timeout).await?;
                match reply.code {
                    Code::Hd => {
                        return Ok(Outcome::Extended(Some(grant("extend", &reply, session)?)))
                    }
                    Code::Nf => return Ok(Outcome::Extended(None)),
                    Code::Ex => {}
                    _ => return Err(unexpected("an extend", &reply)),
                }
            }
            let reply = con.exchange(&proto::get_cas(key), timeout).await?;
            match reply.code {
                Code::En => Ok(Outcome::Extended(None)),
                Code::Va if !owned(&reply, token) => Ok(Outcome::Extended(None)),
                Code::Va => {
                    let cas = grant("lock", &reply, session)?.cas;
                    let value = reply.value.unwrap_or_default();
                    let reply = con
                        .exchange(&proto::replace_cas(key, &value, exp, cas), timeout)
                        .await?;
                    match reply.code {
                        Code::Hd => Ok(Outcome::Extended(Some(grant("extend", &reply, session)?))),
                        Code::Nf | Code::Ex => Ok(Outcome::Extended(None)),
                        _ => Err(unexpected("an extend", &reply)),
                    }
                }
                _ => Err(unexpected("an extend's read", &reply)),
            }
        }
        Op::Holder { key } => {
            let reply = con.exchange(&proto::get_ttl(key), timeout).await?;
            match reply.code {
                Code::En => Ok(Outcome::Holder(None)),
                Code::Va => {
                    let value = String::from_utf8_lossy(reply.value.as_deref().unwrap_or_default())
                        .into_owned();
                    // Memcached's seconds left count the second the store adds for its
                    // clock's tick; the holder's own TTL is one less.
                    let left = reply
                        .ttl
                        .and_then(|t| u64::try_from(t).ok())
                        .map(|t| Duration::from_secs(t.saturating_sub(1)));
                    Ok(Outcome::Holder(Some((value, left))))
                }
                _ => Err(unexpected("a holder lookup", &reply)),
            }
        }
        Op::Delete { key } => {
            let reply = con.exchange(&proto::delete(key, None), timeout).await?;
            match reply.code {
                Code::Hd | Code::Nf => Ok(Outcome::Deleted),
                _ => Err(unexpected("a force-release", &reply)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn session() -> Session {
        Session {
            run: 1,
            epoch_micros: 0,
            server_time: 1_700_000_000,
        }
    }

    #[test]
    fn expiries_round_up_and_add_the_clock_tick() {
        let s = session();
        let now = Instant::now();
        let e = |ms: u64| expiry(Duration::from_millis(ms), s, now);
        assert_eq!(e(1), 2);
        assert_eq!(e(150), 2);
        assert_eq!(e(1_000), 2);
        assert_eq!(e(1_500), 3);
        assert_eq!(e(30_000), 31);
        // Up to 30 days relative; past it, a Unix time by the server's clock.
        let month = MAX_RELATIVE_EXPIRY * 1_000;
        assert_eq!(e(month - 2_000), MAX_RELATIVE_EXPIRY - 1);
        assert_eq!(e(month - 1_000), MAX_RELATIVE_EXPIRY);
        let past = e(month);
        assert!(past > s.server_time + MAX_RELATIVE_EXPIRY, "{past}");
        assert!(past <= s.server_time + MAX_RELATIVE_EXPIRY + 4, "{past}");
        assert!(e(month - 500) > s.server_time);
    }
}
