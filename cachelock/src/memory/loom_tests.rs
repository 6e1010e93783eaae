//! The slot protocol (slot.rs, "Why a held lock is never handed out twice") model-checked with
//! loom: every interleaving of 2–3 threads over claim, release and extend through the handle
//! and by lookup, expiry, the sweep marking a free slot dead and removing it, and a retake of
//! the key, up to `LOOM_MAX_PREEMPTIONS` preemptions (2 when unset).
//!
//! Run: `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test -p cachelock --release --lib
//! loom` (`.ci/run` does, in its own target directory: about 25 s on 2 cores; 2 preemptions
//! take 2 s, 4 take minutes).
//!
//! What is modelled: the slot's mutex, the sweep's counters and lists (loom's), moka (the
//! stand-in of `loom_map.rs`: atomic per-key compute, a `get` whose slot may be removed
//! before it is used) and time: the clock stands still unless a test calls `advance`, so an
//! expiry is one step of the model, which loom places between any two others. Every lock
//! here is claimed for `TTL`, and a test that expires it advances the clock by `TTL`.
//! Not modelled, as no part of the exclusion: the slot's `Arc` is std's (a `Handle` is a std
//! `Arc<dyn Any>`, which loom's `Arc` cannot become; its count decides nothing), and so are
//! the process-wide fence counter, the wake-up board and the background thread's spawning and
//! condvar (a test runs the sweep's pass itself, on a model thread).
//!
//! The invariants are asserted inside the threads, at the step they concern: `owners` counts
//! the live owners (up on a won claim; down when an owner gives the key up, just before its
//! release, or when the test's clock runs its lock out) and never exceeds 1; a release or
//! extend by a token that is not the live owner (a stranger, an owner whose lock ran out, a
//! stale handle) answers `false`; and the last owner still holds the key at the end (so
//! nothing freed or took it behind its back).

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::Arc;
use loom::thread;

use super::sweep::Sweep;
use super::sync::advance;
use super::MemoryCache;
use crate::claim::{Claim, Claimed, Handle};
use crate::store::{LockAdmin, LockStore};

const KEY: &str = "job";
const TTL: Duration = Duration::from_millis(10);

/// Runs `model` over every interleaving, preemptions bounded by `LOOM_MAX_PREEMPTIONS` or 2.
fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(model);
}

/// A sweep pass, as the background thread or `entry_count` runs it.
fn sweep(cache: &MemoryCache, how: Sweep) {
    cache.shared.sweeper.sweep(&cache.shared.moka, how);
}

/// The handle of a won claim.
fn handle(claimed: &Claimed) -> &Handle {
    claimed
        .handle
        .as_ref()
        .expect("the memory store hands back its slot")
}

/// Counts a new live owner: at most one at any step.
fn one_more_owner(owners: &AtomicUsize) {
    let now = owners.fetch_add(1, SeqCst) + 1;
    assert!(now <= 1, "{now} live owners of one key");
}

/// Claims `KEY` for a new owner; counts it if it won.
fn try_claim(cache: &MemoryCache, owners: &AtomicUsize) -> Option<(Claim<'static>, Claimed)> {
    let claim = Claim::new(TTL);
    let claimed = cache.claim(KEY, &claim).unwrap()?;
    one_more_owner(owners);
    Some((claim, claimed))
}

/// `claim` still holds `KEY`: the key's slot in the map is its (by lookup), and its handle is
/// that slot (a release through it frees the key).
fn still_holds(cache: &MemoryCache, claim: &Claim<'_>, claimed: &Claimed) {
    assert!(
        cache.extend(KEY, claim.token(), TTL, None).unwrap(),
        "the last owner lost the key"
    );
    assert!(
        cache
            .release(KEY, claim.token(), Some(handle(claimed)))
            .unwrap(),
        "the last owner's handle is not the key's slot"
    );
    assert_eq!(cache.holder(KEY).unwrap(), None);
}

/// A key with a free slot in the map (claimed and released once), so a claim's `get` can
/// find a slot that the sweep is removing.
fn cache_with_a_free_slot() -> MemoryCache {
    let cache = MemoryCache::new();
    let claim = Claim::new(TTL);
    let claimed = cache.claim(KEY, &claim).unwrap().unwrap();
    assert!(cache
        .release(KEY, claim.token(), Some(handle(&claimed)))
        .unwrap());
    cache
}

/// (1) Two claims of one key, while a sweep removes its free slot: exactly one wins, and the
/// winner's slot is the one in the map.
#[test]
fn loom_two_claims_one_winner_while_the_sweep_removes_the_free_slot() {
    check(|| {
        let cache = cache_with_a_free_slot();
        let owners = Arc::new(AtomicUsize::new(0));
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let (cache, owners) = (cache.clone(), Arc::clone(&owners));
                thread::spawn(move || try_claim(&cache, &owners))
            })
            .collect();
        let sweeper = {
            let cache = cache.clone();
            thread::spawn(move || sweep(&cache, Sweep::Full))
        };
        let mut winners: Vec<_> = claimers
            .into_iter()
            .filter_map(|claimer| claimer.join().unwrap())
            .collect();
        sweeper.join().unwrap();
        assert_eq!(winners.len(), 1, "exactly one of two claims wins");
        let (claim, claimed) = winners.pop().unwrap();
        still_holds(&cache, &claim, &claimed);
    });
}

/// (2) The holder releases through its handle, the background sweep's own pass (scan and
/// remove) runs, and another thread retakes the key: one owner at every step, the holder's
/// handle is stale after its release (its release and extend answer `false` and free
/// nothing), and a retaker keeps the key.
#[test]
fn loom_release_through_the_handle_sweep_and_retake() {
    check(|| {
        let cache = cache_with_a_free_slot();
        let owners = Arc::new(AtomicUsize::new(0));
        let first = Claim::new(TTL);
        let held = cache.claim(KEY, &first).unwrap().unwrap();
        one_more_owner(&owners);

        let holder = {
            let (cache, owners) = (cache.clone(), Arc::clone(&owners));
            thread::spawn(move || {
                let slot = handle(&held);
                owners.fetch_sub(1, SeqCst); // giving the key up
                assert!(
                    cache.release(KEY, first.token(), Some(slot)).unwrap(),
                    "the clock stands still: the holder still held the key"
                );
                assert!(
                    !cache.release(KEY, first.token(), Some(slot)).unwrap(),
                    "a release through a stale handle freed the key"
                );
                assert!(
                    !cache.extend(KEY, first.token(), TTL, Some(slot)).unwrap(),
                    "an extend through a stale handle held the key"
                );
            })
        };
        let sweeper = {
            let cache = cache.clone();
            thread::spawn(move || sweep(&cache, Sweep::Idle))
        };
        let retaker = {
            let (cache, owners) = (cache.clone(), Arc::clone(&owners));
            thread::spawn(move || try_claim(&cache, &owners))
        };
        holder.join().unwrap();
        sweeper.join().unwrap();
        match retaker.join().unwrap() {
            Some((claim, claimed)) => still_holds(&cache, &claim, &claimed),
            None => assert_eq!(cache.holder(KEY).unwrap(), None),
        }
    });
}

/// (3) A token that does not hold the key never extends (nor releases) it, by lookup or
/// through the holder's own handle: once the clock passes the holder's deadline, the key is
/// free for the next claim.
#[test]
fn loom_extend_by_a_non_owner_never_extends() {
    check(|| {
        let cache = MemoryCache::new();
        let owners = Arc::new(AtomicUsize::new(0));
        let (_, held) = try_claim(&cache, &owners).unwrap();
        let slot = handle(&held).clone();

        let stranger = {
            let cache = cache.clone();
            thread::spawn(move || {
                let claim = Claim::new(TTL);
                let long = TTL * 100;
                assert!(
                    !cache.extend(KEY, claim.token(), long, None).unwrap(),
                    "a non-owner extended the key"
                );
                assert!(
                    !cache.extend(KEY, claim.token(), long, Some(&slot)).unwrap(),
                    "a non-owner extended the key through the holder's handle"
                );
                assert!(
                    !cache.release(KEY, claim.token(), Some(&slot)).unwrap(),
                    "a non-owner released the key through the holder's handle"
                );
            })
        };
        let next = {
            let (cache, owners) = (cache.clone(), Arc::clone(&owners));
            thread::spawn(move || {
                advance(TTL);
                owners.fetch_sub(1, SeqCst); // the holder's lock ran out
                try_claim(&cache, &owners).expect("nobody extended the expired lock")
            })
        };
        stranger.join().unwrap();
        let (claim, claimed) = next.join().unwrap();
        still_holds(&cache, &claim, &claimed);
    });
}

/// (4) The holder's lock expires and another thread retakes the key, while the expired
/// holder extends and releases through its handle and the sweep runs: once the lock ran out,
/// its holder's extend and release answer `false`, and the new owner keeps the key.
#[test]
fn loom_expiry_then_retake_with_a_late_release_through_the_handle() {
    check(|| {
        let cache = MemoryCache::new();
        let owners = Arc::new(AtomicUsize::new(0));
        let (first, held) = try_claim(&cache, &owners).unwrap();
        // Set once the clock has run the first lock out (an extend cannot prevent that here:
        // it runs at the clock's start, so it sets the same deadline).
        let expired = Arc::new(AtomicBool::new(false));

        let late = {
            let cache = cache.clone();
            let expired = Arc::clone(&expired);
            thread::spawn(move || {
                let slot = handle(&held);
                let gone = expired.load(SeqCst);
                let extended = cache.extend(KEY, first.token(), TTL, Some(slot)).unwrap();
                assert!(!(gone && extended), "an expired owner extended the key");
                let gone = expired.load(SeqCst);
                let released = cache.release(KEY, first.token(), Some(slot)).unwrap();
                assert!(!(gone && released), "an expired owner released the key");
            })
        };
        let next = {
            let (cache, owners) = (cache.clone(), Arc::clone(&owners));
            thread::spawn(move || {
                advance(TTL);
                expired.store(true, SeqCst);
                // The first holder's ownership has ended by now (it ran out, if it was not
                // released before).
                owners.fetch_sub(1, SeqCst);
                try_claim(&cache, &owners).expect("the first lock ran out or was released")
            })
        };
        let sweeper = {
            let cache = cache.clone();
            thread::spawn(move || sweep(&cache, Sweep::Full))
        };
        late.join().unwrap();
        sweeper.join().unwrap();
        let (claim, claimed) = next.join().unwrap();
        still_holds(&cache, &claim, &claimed);
    });
}
