//! [`Extends`]: whether an extend of one holder overlapped another.
//!
//! Two extends of one lock in flight at once (a renewal and a manual `extend_for`, or two
//! threads extending one guard) can reach the store in one order and answer in the other:
//! on a connection pool each goes out on its own connection. The store keeps the TTL of
//! the one it ran last; the holder, recording each answer as it comes, would keep the end of
//! the one that answered last, and could believe the lock held after the store let it go.
//! So the end an extend records is its own only when no other extend of the holder was in
//! flight at any moment of it; an extend that overlapped another records the earlier of its
//! end and the one recorded before. That is never later than the store's: the store kept
//! one of the overlapping TTLs, each set no earlier than its extend was sent. It can be
//! earlier (the lock is then declared lost early, or renewed again), never later.

use std::sync::atomic::{AtomicU64, Ordering};

/// The extends of one holder: how many began, and how many are in flight, in one atomic
/// word (begun in the high 32 bits, in flight in the low 32), so that one read sees both.
#[derive(Debug, Default)]
pub(crate) struct Extends {
    word: AtomicU64,
}

/// One extend in flight, from before it is sent until its answer is recorded; dropped (its
/// answer recorded, or the extend abandoned), it is no longer in flight.
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    extends: &'a Extends,
    /// The number of extends begun before this one (wrapping at 2^32).
    number: u32,
    /// Another extend was in flight when this one began.
    joined: bool,
}

const ONE_BEGUN: u64 = 1 << 32;

impl Extends {
    /// An extend begins: call before it is sent, keep the result until its answer is
    /// recorded.
    pub(crate) fn begin(&self) -> InFlight<'_> {
        let before = self.word.fetch_add(ONE_BEGUN + 1, Ordering::AcqRel);
        InFlight {
            extends: self,
            number: (before >> 32) as u32,
            joined: before as u32 != 0,
        }
    }
}

impl InFlight<'_> {
    /// Whether another extend of the holder was in flight at some moment of this one: one
    /// was when this began, or one began since.
    pub(crate) fn overlapped(&self) -> bool {
        let begun = (self.extends.word.load(Ordering::Acquire) >> 32) as u32;
        self.joined || begun != self.number.wrapping_add(1)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.extends.word.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_one_after_the_other_do_not_overlap() {
        let extends = Extends::default();
        for _ in 0..3 {
            let first = extends.begin();
            assert!(!first.overlapped());
        }
    }

    #[test]
    fn extends_in_flight_together_both_overlap_whichever_answers_first() {
        let extends = Extends::default();
        let first = extends.begin();
        let second = extends.begin();
        assert!(second.overlapped(), "began while the first was in flight");
        drop(second);
        assert!(first.overlapped(), "another began while it was in flight");
        drop(first);
        assert!(
            !extends.begin().overlapped(),
            "both answered: the next is alone"
        );
    }

    #[test]
    fn an_extend_overlaps_one_that_began_and_ended_during_it() {
        let extends = Extends::default();
        let long = extends.begin();
        drop(extends.begin());
        assert!(long.overlapped());
    }

    #[test]
    fn an_abandoned_extend_is_no_longer_in_flight() {
        let extends = Extends::default();
        drop(extends.begin());
        let next = extends.begin();
        assert!(!next.overlapped());
    }
}
