//! The local gate of a network store: what one store handle (and its clones) already knows
//! about its own claims, so that the server is only asked what this process cannot answer.
//!
//! Two facts are known here without a round trip:
//!
//! - **Held here.** A claim through this handle won `key`, and its holder has neither
//!   released it nor let its lease run out (counted as the guard counts it: from before the
//!   claim was sent, less the lost margin, so before the server's expiry while the clocks run
//!   at about the same rate). The server holds the key with that holder's token, so another
//!   claim of `key` through this handle would be refused: it is refused here, with no command.
//! - **Claimed right now.** A claim of `key` through this handle is in flight. Another claim
//!   of `key` waits for its answer (at most its own reply bound) instead of racing it to the
//!   server: if it won, the key is held (by the sibling); if it was refused, the key is held
//!   (by someone else); either way the waiting claim is refused, when the answer comes back.
//!   A claim that failed, was dropped in flight, or was granted only after its whole TTL lets
//!   the waiting claims ask the server, each for itself. A sync claim on a tokio runtime's
//!   thread never waits here: blocking that thread could keep the claim in flight from ever
//!   finishing.
//!
//! So each refusal is one the server would have given at that moment; the server stays the
//! only authority that *grants* a key, and a key held in another process is still found
//! there. A claim with the token of the holder or of the claim in flight (the same claim sent
//! again by its caller) goes to the server as it is. What it saves: under contention inside
//! one process, the server sees about one claim and one release per hand-over instead of
//! one refused claim per attempt of every worker (W2 in BENCHMARKS.md); an uncontended lock
//! pays three short critical sections of a mutex per acquire + release.
//!
//! The gate trusts its holders: a key the server lost while it was held here (a restart
//! without persistence, a fail-over that dropped the last writes, a `DEL` by hand) stays
//! refused to this handle's other claims until the holder releases it, its renewal finds
//! it gone, or its lease runs out, whichever comes first. That is the holder's own belief:
//! a guard of this handle believes it holds the key, so a second guard of the same handle
//! is not handed it. [`LockAdmin::force_release`](crate::LockAdmin::force_release) through
//! the handle forgets the holder here first.
//!
//! A refusal from the gate yields once (the thread, or the task to its runtime) before
//! it returns, as a refusal that went to the server would have waited for its reply: a
//! worker that tries again in a loop does not starve the holder it waits for.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::claim::{Claim, Claimed};
use crate::lease::default_lost_margin;
use crate::overlap::Extends;
use crate::result::CacheResult;
use crate::token::Token;

/// The gate of one store handle, shared by its clones.
#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Keys held or claimed through this handle right now. foldhash, seeded per map: the map
    /// only ever holds live claims, and a lookup is a few dozen instructions (std's SipHash
    /// took ~300 a lookup, three lookups an acquire + release).
    keys: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// The number of entries at which `enter` next drops the expired ones.
    sweep_at: usize,
}

enum Entry {
    /// A claim by `token` through this handle is in flight; `flight` is what its followers
    /// wait on, made by the first follower (an uncontended claim allocates none).
    Flying {
        token: Token,
        flight: Option<Arc<Flight>>,
    },
    /// Won through this handle: held by `token` until `until` at the latest. `extends`:
    /// the holder's extends, made by its first extend (see [`Gate::extends`]).
    Held {
        token: Token,
        until: Instant,
        extends: Option<Arc<Extends>>,
    },
}

/// How a claim in flight ended, as its followers read it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Landing {
    /// Won or refused: the key is held, the followers are refused.
    Held,
    /// Failed, dropped, or granted only after its whole TTL: the followers ask the server.
    Failed,
}

/// A claim in flight and the claims that wait for its answer.
#[derive(Default)]
struct Flight {
    landing: Mutex<Option<Landing>>,
    condvar: Condvar,
    notify: Notify,
}

/// What a claim of a key does next.
enum Enter<'g> {
    /// Send the claim; the ticket records its answer.
    Lead(Ticket<'g>),
    /// Another claim of the key is in flight: wait for its answer.
    Follow(Arc<Flight>),
    /// Send the claim and leave the gate as it is: a claim sent again with its own token, or
    /// one that may not (or no longer) wait for a claim in flight.
    Direct,
    /// Held through this handle: refused.
    Refuse,
}

/// The right and the duty to record a claim's answer; dropped without one (a panic, a
/// future dropped in flight), it records a failure.
struct Ticket<'g> {
    gate: &'g Gate,
    key: &'g str,
    landed: bool,
}

/// Fewest entries before the gate sweeps out expired ones.
const SWEEP_MIN: usize = 64;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Until when a grant of `ttl` sent at `started` is surely still held on the server: the
/// guard's own count ([`default_lost_margin`] early, for clocks that run at slightly
/// different rates).
fn held_until(started: Instant, ttl: Duration) -> Instant {
    started + ttl.saturating_sub(default_lost_margin(ttl))
}

impl Gate {
    /// A claim of `key` through the store's own `send` (sync). A claim in flight is waited
    /// for at most `wait` (the claim's own reply bound), and only off a tokio runtime's
    /// thread: a thread of the runtime blocked here could be the one the claim in flight
    /// needs to finish.
    pub(crate) fn claim(
        &self,
        key: &str,
        claim: &Claim<'_>,
        wait: Duration,
        send: impl Fn() -> CacheResult<Option<Claimed>>,
    ) -> CacheResult<Option<Claimed>> {
        let mut may_follow = tokio::runtime::Handle::try_current().is_err();
        loop {
            match self.enter(key, claim.owner_token(), may_follow) {
                Enter::Lead(ticket) => {
                    let result = send();
                    ticket.land(&result, claim);
                    return result;
                }
                Enter::Direct => return send(),
                Enter::Follow(flight) => match flight.wait(wait) {
                    Some(Landing::Held) => return Ok(None),
                    // Failed or still in flight: this claim asks the server itself.
                    _ => may_follow = false,
                },
                Enter::Refuse => {
                    std::thread::yield_now();
                    return Ok(None);
                }
            }
        }
    }

    /// Async twin of [`Gate::claim`] (a claim in flight is waited for at most `wait`).
    pub(crate) async fn claim_async<F>(
        &self,
        key: &str,
        claim: &Claim<'_>,
        wait: Duration,
        send: impl Fn() -> F,
    ) -> CacheResult<Option<Claimed>>
    where
        F: std::future::Future<Output = CacheResult<Option<Claimed>>>,
    {
        let mut may_follow = true;
        loop {
            match self.enter(key, claim.owner_token(), may_follow) {
                Enter::Lead(ticket) => {
                    let result = send().await;
                    ticket.land(&result, claim);
                    return result;
                }
                Enter::Direct => return send().await,
                Enter::Follow(flight) => match flight.wait_async(wait).await {
                    Some(Landing::Held) => return Ok(None),
                    _ => may_follow = false,
                },
                Enter::Refuse => {
                    tokio::task::yield_now().await;
                    return Ok(None);
                }
            }
        }
    }

    /// `token` is about to release `key`: from now on, claims of `key` go to the server
    /// (the release may land before them).
    pub(crate) fn release(&self, key: &str, token: &str) {
        let mut state = lock(&self.state);
        if let Some((key, entry)) = state.keys.remove_entry(key) {
            // Another claim's entry (a stale guard releasing after its lease): put it back.
            if !matches!(&entry, Entry::Held { token: held, .. } if held.as_str() == token) {
                state.keys.insert(key, entry);
            }
        }
        state.after_remove();
    }

    /// The extends of `key`'s holder `token` through this handle, if it holds it here: an
    /// extend begins one ([`Extends::begin`]) before it is sent, and tells
    /// [`Gate::extended`] whether it overlapped another.
    pub(crate) fn extends(&self, key: &str, token: &str) -> Option<Arc<Extends>> {
        let mut state = lock(&self.state);
        match state.keys.get_mut(key) {
            Some(Entry::Held {
                token: held,
                extends,
                ..
            }) if held.as_str() == token => {
                Some(Arc::clone(extends.get_or_insert_with(Arc::default)))
            }
            _ => None,
        }
    }

    /// The answer of an extend of `key` by `token` for `ttl`, sent at `started`: a success
    /// moves the holder's end (only ever earlier if it `overlapped` another extend: the
    /// store may have run that one last, see `overlap.rs`); a refusal (the key is no longer
    /// `token`'s) forgets the holder; an error (it may have landed, setting a shorter TTL)
    /// keeps the earlier of the two ends.
    pub(crate) fn extended(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        started: Instant,
        overlapped: bool,
        result: &CacheResult<bool>,
    ) {
        let mut state = lock(&self.state);
        let Some(Entry::Held {
            token: held, until, ..
        }) = state.keys.get_mut(key)
        else {
            return;
        };
        if held.as_str() != token {
            return;
        }
        match result {
            Ok(true) if !overlapped => *until = held_until(started, ttl),
            Ok(true) | Err(_) => *until = (*until).min(held_until(started, ttl)),
            Ok(false) => {
                state.keys.remove(key);
                state.after_remove();
            }
        }
    }

    /// `key` is being force-released through this handle: forget its holder here (before
    /// the `DEL`, so that a `DEL` whose reply is lost still opens the gate).
    pub(crate) fn forget(&self, key: &str) {
        let mut state = lock(&self.state);
        if matches!(state.keys.get(key), Some(Entry::Held { .. })) {
            state.keys.remove(key);
            state.after_remove();
        }
    }

    /// Where a claim of `key` with `token` goes. A claim with the token of the holder or of
    /// the claim in flight is that claim sent again by its caller (tokens are fresh for every
    /// claim): it goes to the server as it is, which counts the key holding its token as its
    /// win (the [`LockStore::claim`](crate::LockStore::claim) contract), and the entry stays.
    ///
    /// The clock is read only to compare with a holder's end, and to sweep: an uncontended
    /// claim reads it not at all here (35 ns a read in a tight loop on the bench machine,
    /// ~0.1 µs in the middle of an op by `perf`).
    fn enter<'g>(&'g self, key: &'g str, token: Token, may_follow: bool) -> Enter<'g> {
        let mut state = lock(&self.state);
        match state.keys.get_mut(key) {
            Some(Entry::Held { token: held, .. } | Entry::Flying { token: held, .. })
                if *held == token =>
            {
                return Enter::Direct;
            }
            Some(Entry::Held { until, .. }) if *until > Instant::now() => return Enter::Refuse,
            Some(Entry::Flying { flight, .. }) if may_follow => {
                return Enter::Follow(Arc::clone(flight.get_or_insert_with(Arc::default)));
            }
            Some(Entry::Flying { .. }) => return Enter::Direct,
            Some(entry) => {
                *entry = Entry::Flying {
                    token,
                    flight: None,
                }
            }
            None => {
                state.keys.insert(
                    key.to_owned(),
                    Entry::Flying {
                        token,
                        flight: None,
                    },
                );
                state.sweep();
            }
        }
        Enter::Lead(Ticket {
            gate: self,
            key,
            landed: false,
        })
    }

    /// Entries right now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.state).keys.len()
    }
}

impl State {
    /// Drops the holders whose lease ran out, once the map has doubled since the last sweep:
    /// a holder that never released (a guard leaked with `mem::forget`, a claim made
    /// through the store directly) costs memory only until the next sweep after its lease.
    fn sweep(&mut self) {
        if self.keys.len() < self.sweep_at.max(SWEEP_MIN) {
            return;
        }
        let now = Instant::now();
        self.keys
            .retain(|_, entry| !matches!(entry, Entry::Held { until, .. } if *until <= now));
        self.sweep_at = self.keys.len() * 2;
    }

    /// After a removal: an empty map starts over (its sweep threshold, and the memory a burst
    /// of keys left behind).
    fn after_remove(&mut self) {
        if self.keys.is_empty() {
            self.sweep_at = 0;
            if self.keys.capacity() > 4 * SWEEP_MIN {
                self.keys.shrink_to_fit();
            }
        }
    }
}

impl Ticket<'_> {
    /// Records the answer of `claim`: a win makes the key held here, counted from when the
    /// claim was made (see [`held_until`]); any other answer removes the entry. Wakes the
    /// followers, if any came: refused if the key is held (won or refused), asking the
    /// server themselves if the claim failed or its grant came back only after its whole
    /// TTL (the caller gives such a grant back, `acquire.rs`).
    ///
    /// The clock is read only when followers wait: with none, a late grant is recorded
    /// like any other, and refuses nothing, since its end (less than its TTL after the claim
    /// was made) has passed.
    fn land(mut self, result: &CacheResult<Option<Claimed>>, claim: &Claim<'_>) {
        self.finish(|followers| match result {
            Ok(Some(_)) if followers && claim.made_at().elapsed() >= claim.ttl() => {
                (Landing::Failed, None)
            }
            Ok(Some(_)) => (
                Landing::Held,
                Some(Entry::Held {
                    token: claim.owner_token(),
                    until: held_until(claim.made_at(), claim.ttl()),
                    extends: None,
                }),
            ),
            Ok(None) => (Landing::Held, None),
            Err(_) => (Landing::Failed, None),
        });
    }

    /// Replaces the ticket's `Flying` entry (only its leader replaces or removes it) with
    /// the entry `decide` gives, or removes it; then wakes the followers, if any came, with
    /// the landing `decide` gives. `decide` is told whether followers came.
    fn finish(&mut self, decide: impl FnOnce(bool) -> (Landing, Option<Entry>)) {
        self.landed = true;
        let landed = {
            let mut state = lock(&self.gate.state);
            let Some(entry) = state.keys.get_mut(self.key) else {
                debug_assert!(false, "a flying entry is removed only by its leader");
                return;
            };
            let Entry::Flying { flight, .. } = entry else {
                debug_assert!(false, "a flying entry is replaced only by its leader");
                return;
            };
            let flight = flight.take();
            let (landing, held) = decide(flight.is_some());
            match held {
                Some(held) => *entry = held,
                None => {
                    state.keys.remove(self.key);
                    state.after_remove();
                }
            }
            flight.map(|flight| (flight, landing))
        };
        if let Some((flight, landing)) = landed {
            flight.land(landing);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.finish(|_| (Landing::Failed, None));
        }
    }
}

impl Flight {
    fn land(&self, landing: Landing) {
        *lock(&self.landing) = Some(landing);
        self.condvar.notify_all();
        self.notify.notify_waiters();
    }

    /// How the flight landed, or `None` if it has not within `limit`.
    fn wait(&self, limit: Duration) -> Option<Landing> {
        let landing = lock(&self.landing);
        let (landing, _) = self
            .condvar
            .wait_timeout_while(landing, limit, |landing| landing.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *landing
    }

    /// Async twin of [`Flight::wait`].
    async fn wait_async(&self, limit: Duration) -> Option<Landing> {
        let mut notified = std::pin::pin!(self.notify.notified());
        notified.as_mut().enable();
        if let Some(landing) = *lock(&self.landing) {
            return Some(landing);
        }
        let _ = tokio::time::timeout(limit, notified).await;
        *lock(&self.landing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const TTL: Duration = Duration::from_secs(30);
    /// How long a claim waits for one in flight, unless a test says otherwise.
    const WAIT: Duration = Duration::from_secs(30);

    /// A server that grants every claim it is sent, counting them.
    fn granting(sent: &AtomicUsize) -> impl Fn() -> CacheResult<Option<Claimed>> + '_ {
        move || {
            sent.fetch_add(1, Ordering::SeqCst);
            Ok(Some(Claimed::new(1)))
        }
    }

    /// Whether a claim of `key` through `gate`, sent (if it is) to a granting server, won.
    fn won(gate: &Gate, key: &str, claim: &Claim<'_>, sent: &AtomicUsize) -> bool {
        gate.claim(key, claim, WAIT, granting(sent))
            .unwrap()
            .is_some()
    }

    #[test]
    fn a_key_held_through_the_gate_is_refused_without_a_command_until_released() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let first = Claim::new(TTL);
        assert!(won(&gate, "k", &first, &sent));
        let second = Claim::new(TTL);
        assert!(!won(&gate, "k", &second, &sent));
        assert_eq!(sent.load(Ordering::SeqCst), 1, "the refusal sent nothing");

        gate.release("k", second.token());
        assert!(
            !won(&gate, "k", &second, &sent),
            "another token's release keeps the holder"
        );
        gate.release("k", first.token());
        assert!(won(&gate, "k", &second, &sent));
        assert_eq!(
            sent.load(Ordering::SeqCst),
            2,
            "after the release the claim went out"
        );
    }

    #[test]
    fn a_claim_sent_again_with_its_own_token_goes_to_the_server() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let claim = Claim::new(TTL);
        assert!(won(&gate, "k", &claim, &sent));
        assert!(won(&gate, "k", &claim, &sent));
        assert_eq!(
            sent.load(Ordering::SeqCst),
            2,
            "the server answers a resent claim"
        );
        assert!(!won(&gate, "k", &Claim::new(TTL), &sent));
        assert_eq!(sent.load(Ordering::SeqCst), 2, "still held here");
    }

    #[test]
    fn other_keys_are_not_gated() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        assert!(won(&gate, "a", &Claim::new(TTL), &sent));
        assert!(won(&gate, "b", &Claim::new(TTL), &sent));
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_refused_or_failed_claim_leaves_nothing_held() {
        let gate = Gate::default();
        assert!(gate
            .claim("k", &Claim::new(TTL), WAIT, || Ok(None))
            .unwrap()
            .is_none());
        assert_eq!(gate.len(), 0);
        assert!(gate
            .claim("k", &Claim::new(TTL), WAIT, || Err("down".into()))
            .is_err());
        assert_eq!(gate.len(), 0);
        let sent = AtomicUsize::new(0);
        assert!(won(&gate, "k", &Claim::new(TTL), &sent));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_holder_whose_lease_ran_out_no_longer_refuses() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let short = Claim::new(Duration::from_millis(20));
        assert!(won(&gate, "k", &short, &sent));
        std::thread::sleep(Duration::from_millis(30));
        assert!(won(&gate, "k", &Claim::new(TTL), &sent));
        assert_eq!(
            sent.load(Ordering::SeqCst),
            2,
            "the second claim asked the server"
        );
    }

    #[test]
    fn an_extend_moves_the_end_and_a_refused_extend_forgets_the_holder() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let claim = Claim::new(Duration::from_millis(20));
        assert!(won(&gate, "k", &claim, &sent));
        gate.extended("k", claim.token(), TTL, Instant::now(), false, &Ok(true));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!won(&gate, "k", &Claim::new(TTL), &sent), "extended");

        gate.extended(
            "k",
            Claim::new(TTL).token(),
            TTL,
            Instant::now(),
            false,
            &Ok(false),
        );
        assert!(
            !won(&gate, "k", &Claim::new(TTL), &sent),
            "another token's extend changes nothing"
        );
        gate.extended(
            "k",
            claim.token(),
            TTL,
            Instant::now(),
            false,
            &Err("down".into()),
        );
        assert!(
            !won(&gate, "k", &Claim::new(TTL), &sent),
            "an extend that failed changes nothing"
        );
        gate.extended("k", claim.token(), TTL, Instant::now(), false, &Ok(false));
        assert!(won(&gate, "k", &Claim::new(TTL), &sent), "lost: forgotten");
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_force_release_forgets_the_holder() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        assert!(won(&gate, "k", &Claim::new(TTL), &sent));
        gate.forget("k");
        assert!(won(&gate, "k", &Claim::new(TTL), &sent));
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    /// Claims of one key while a first is in flight: `answer` is the first's answer; returns
    /// the followers' answers and how many claims were sent in all.
    fn followers_of(answer: CacheResult<Option<Claimed>>) -> (Vec<bool>, usize) {
        followers_of_leader(Claim::new(TTL), Duration::ZERO, answer)
    }

    /// [`followers_of`] a leader making `claim` that answers `late_by` after the followers
    /// wait.
    fn followers_of_leader(
        claim: Claim<'_>,
        late_by: Duration,
        answer: CacheResult<Option<Claimed>>,
    ) -> (Vec<bool>, usize) {
        let gate = Gate::default();
        let sent = AtomicUsize::new(0);
        // The server: one holder at a time. A leader that won or was refused leaves the key
        // held; one that failed leaves it free.
        let held = AtomicBool::new(answer.is_ok());
        let exclusive = || {
            sent.fetch_add(1, Ordering::SeqCst);
            let won = held
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            Ok(won.then(|| Claimed::new(2)))
        };
        let (in_flight, go) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        let answer = Mutex::new(Some(answer));
        std::thread::scope(|scope| {
            let leader = scope.spawn(|| {
                gate.claim("k", &claim, WAIT, || {
                    sent.fetch_add(1, Ordering::SeqCst);
                    in_flight.wait();
                    go.wait();
                    std::thread::sleep(late_by);
                    lock(&answer).take().unwrap()
                })
            });
            in_flight.wait();
            let followers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        gate.claim("k", &Claim::new(TTL), WAIT, exclusive)
                            .unwrap()
                            .is_some()
                    })
                })
                .collect();
            // Until the three followers wait on the flight (its `Arc`: the entry's and theirs).
            let followers_waiting = || match lock(&gate.state).keys.get("k") {
                Some(Entry::Flying {
                    flight: Some(flight),
                    ..
                }) => Arc::strong_count(flight) == 4,
                _ => false,
            };
            while !followers_waiting() {
                std::thread::yield_now();
            }
            go.wait();
            let _ = leader.join().unwrap();
            let won = followers.into_iter().map(|f| f.join().unwrap()).collect();
            (won, sent.load(Ordering::SeqCst))
        })
    }

    #[test]
    fn claims_behind_a_winning_claim_are_refused_without_a_command() {
        let (won, sent) = followers_of(Ok(Some(Claimed::new(1))));
        assert_eq!(won, [false, false, false]);
        assert_eq!(sent, 1);
    }

    #[test]
    fn claims_behind_a_refused_claim_are_refused_without_a_command() {
        let (won, sent) = followers_of(Ok(None));
        assert_eq!(won, [false, false, false]);
        assert_eq!(sent, 1);
    }

    #[test]
    fn claims_behind_a_failed_claim_ask_the_server_at_once() {
        let (won, sent) = followers_of(Err("down".into()));
        assert_eq!(
            won.iter().filter(|won| **won).count(),
            1,
            "one of them wins"
        );
        // They do not queue behind one another: each that finds a claim in flight again
        // sends its own (or finds the key held here by then).
        assert!((2..=4).contains(&sent), "{sent} claims sent");
    }

    /// Starts a claim of "k" that stays in flight until `release` is passed: returns once it
    /// is in flight (`in_flight` passed).
    fn stuck_leader<'s>(
        scope: &'s std::thread::Scope<'s, '_>,
        gate: &'s Gate,
        in_flight: &'s std::sync::Barrier,
        release: &'s std::sync::Barrier,
    ) {
        scope.spawn(move || {
            gate.claim("k", &Claim::new(TTL), WAIT, || {
                in_flight.wait();
                release.wait();
                Ok(Some(Claimed::new(1)))
            })
        });
        in_flight.wait();
    }

    #[test]
    fn a_claim_waits_for_one_in_flight_no_longer_than_its_bound() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let (in_flight, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            stuck_leader(scope, &gate, &in_flight, &release);
            let short = Duration::from_millis(20);
            let won = gate.claim("k", &Claim::new(TTL), short, granting(&sent));
            assert!(won.unwrap().is_some(), "asked the server itself");
            assert_eq!(sent.load(Ordering::SeqCst), 1);
            release.wait();
        });
    }

    #[test]
    fn a_sync_claim_on_a_runtime_thread_does_not_wait_for_one_in_flight() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let (in_flight, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        std::thread::scope(|scope| {
            stuck_leader(scope, &gate, &in_flight, &release);
            // Waiting here could block the thread the claim in flight needs: it asks itself.
            let won =
                rt.block_on(async { gate.claim("k", &Claim::new(TTL), WAIT, granting(&sent)) });
            assert!(won.unwrap().is_some());
            assert_eq!(sent.load(Ordering::SeqCst), 1);
            release.wait();
        });
    }

    #[test]
    fn a_grant_that_came_back_after_its_ttl_refuses_nothing() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let short = Claim::new(Duration::from_millis(5));
        let late = gate.claim("k", &short, WAIT, || {
            std::thread::sleep(Duration::from_millis(10));
            Ok(Some(Claimed::new(1)))
        });
        assert!(
            late.unwrap().is_some(),
            "the caller sees it (and gives it back)"
        );
        assert!(won(&gate, "k", &Claim::new(TTL), &sent));
        assert_eq!(
            sent.load(Ordering::SeqCst),
            1,
            "the next claim asked the server"
        );
    }

    #[test]
    fn claims_behind_a_grant_that_came_back_after_its_ttl_ask_the_server() {
        let short = Claim::new(Duration::from_millis(1));
        let late_by = Duration::from_millis(5);
        let (won, sent) = followers_of_leader(short, late_by, Ok(Some(Claimed::new(1))));
        assert_eq!(sent, 4, "the late leader, then each follower for itself");
        assert_eq!(won, [false; 3], "the server still holds the late grant");
    }

    #[test]
    fn an_extend_that_failed_keeps_the_earlier_end() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let claim = Claim::new(TTL);
        assert!(won(&gate, "k", &claim, &sent));
        // A failed extend to 1 ms may have landed: the key may be free 1 ms from now.
        let short = Duration::from_millis(1);
        gate.extended(
            "k",
            claim.token(),
            short,
            Instant::now(),
            false,
            &Err("lost reply".into()),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(won(&gate, "k", &Claim::new(TTL), &sent));
        assert_eq!(sent.load(Ordering::SeqCst), 2, "asked the server");
    }

    #[test]
    fn crossing_extends_keep_the_earlier_end() {
        let (gate, sent) = (Gate::default(), AtomicUsize::new(0));
        let claim = Claim::new(TTL);
        assert!(won(&gate, "k", &claim, &sent));
        let extends = gate.extends("k", claim.token()).expect("held here");
        assert!(
            gate.extends("k", Claim::new(TTL).token()).is_none(),
            "not its holder"
        );
        // A long extend and a short one in flight together; the store ran the short one
        // last, but the long one answers last.
        let long = extends.begin();
        let short = extends.begin();
        let started = Instant::now();
        let brief = Duration::from_millis(1);
        gate.extended(
            "k",
            claim.token(),
            brief,
            started,
            short.overlapped(),
            &Ok(true),
        );
        drop(short);
        gate.extended(
            "k",
            claim.token(),
            TTL,
            started,
            long.overlapped(),
            &Ok(true),
        );
        drop(long);
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            won(&gate, "k", &Claim::new(TTL), &sent),
            "the short TTL may be the one the store kept: the gate lets the next claim ask"
        );
        assert_eq!(sent.load(Ordering::SeqCst), 2, "asked the server");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_dropped_in_flight_lets_its_followers_ask() {
        let gate = Arc::new(Gate::default());
        let never = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let claim = Claim::new(TTL);
                gate.claim_async("k", &claim, WAIT, std::future::pending)
                    .await
            })
        };
        while gate.len() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let claim = Claim::new(TTL);
                gate.claim_async("k", &claim, WAIT, || async { Ok(Some(Claimed::new(2))) })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!follower.is_finished(), "waits for the claim in flight");
        never.abort();
        let _ = never.await;
        let won = follower.await.unwrap().unwrap();
        assert!(won.is_some(), "the follower asked the server itself");
    }

    #[test]
    fn expired_holders_are_swept_out() {
        let gate = Gate::default();
        let short = Duration::from_millis(1);
        for i in 0..SWEEP_MIN - 1 {
            let claim = Claim::new(short);
            let _ = gate.claim(&format!("k{i}"), &claim, WAIT, || Ok(Some(Claimed::new(0))));
        }
        std::thread::sleep(Duration::from_millis(5));
        let _ = gate.claim("last", &Claim::new(TTL), WAIT, || Ok(Some(Claimed::new(0))));
        assert_eq!(gate.len(), 1, "only the live holder is left");
    }
}
