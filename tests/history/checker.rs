//! The checker: overlapping protected windows and fence inversions, per key.
//!
//! A holder's protected window is `[enter, end)` with
//! `end = min(exit, claim_sent + TTL - margin)`: the store starts the TTL after the claim was
//! sent, so until `claim_sent + TTL` the lock is certainly still alive (the margin covers
//! millisecond rounding). A holder killed inside has no exit: its window runs to the TTL; a
//! holder paused past its TTL has its window cut there.
//!
//! A fence inversion is a pair of holds of one key where `b`'s claim was sent after `a` had
//! entered (so the store granted `b` after `a`) and `b.fence <= a.fence`, or two holds of one
//! key with the same fence.

use std::collections::{BTreeMap, HashMap};

use super::log::Hold;

impl Hold {
    /// The end of the window in which nobody else may be inside.
    pub fn protected_end(&self, ttl_ns: u64, margin_ns: u64) -> u64 {
        let expiry = (self.claim_ns + ttl_ns).saturating_sub(margin_ns);
        self.exit_ns.map_or(expiry, |exit| exit.min(expiry))
    }
}

fn by_key(holds: &[Hold]) -> BTreeMap<&str, Vec<&Hold>> {
    let mut by_key: BTreeMap<&str, Vec<&Hold>> = BTreeMap::new();
    for hold in holds {
        by_key.entry(&hold.key).or_default().push(hold);
    }
    by_key
}

/// Pairs of holds of one key whose protected windows overlap.
pub fn overlaps(holds: &[Hold], ttl_ns: u64, margin_ns: u64) -> Vec<(Hold, Hold)> {
    let mut found = Vec::new();
    for mut list in by_key(holds).into_values() {
        list.sort_by_key(|h| h.enter_ns);
        for (n, a) in list.iter().enumerate() {
            let a_end = a.protected_end(ttl_ns, margin_ns);
            // Sorted by entry: only later entries before `a_end` can overlap `a`.
            for b in list[n + 1..].iter().take_while(|b| b.enter_ns < a_end) {
                if b.enter_ns < b.protected_end(ttl_ns, margin_ns) {
                    found.push(((*a).clone(), (*b).clone()));
                }
            }
        }
    }
    found
}

/// Pairs `(earlier, later)` of holds of one key where the later one's fence is not above the
/// earlier one's; one pair per later hold (with the earlier hold of the highest fence).
pub fn fence_inversions(holds: &[Hold]) -> Vec<(Hold, Hold)> {
    let mut found = Vec::new();
    for list in by_key(holds).into_values() {
        let mut entered = list.clone();
        entered.sort_by_key(|h| h.enter_ns);
        let mut claimed = list.clone();
        claimed.sort_by_key(|h| h.claim_ns);
        // Sweep: `best` is the hold of the highest fence among those entered before the
        // current hold's claim was sent.
        let mut best: Option<&Hold> = None;
        let mut next = 0;
        let mut flagged = std::collections::HashSet::new();
        for b in &claimed {
            while next < entered.len() && entered[next].enter_ns <= b.claim_ns {
                if best.is_none_or(|x| entered[next].fence > x.fence) {
                    best = Some(entered[next]);
                }
                next += 1;
            }
            if let Some(a) = best {
                if b.fence <= a.fence {
                    flagged.insert(b.who.as_str());
                    found.push(((*a).clone(), (*b).clone()));
                }
            }
        }
        // Equal fences, whatever the order.
        let mut seen: HashMap<u64, &Hold> = HashMap::new();
        for h in &entered {
            if let Some(first) = seen.insert(h.fence, h) {
                if !flagged.contains(h.who.as_str()) {
                    flagged.insert(h.who.as_str());
                    found.push(((*first).clone(), (*h).clone()));
                }
            }
        }
    }
    found
}

/// What one run found.
pub struct Report {
    pub holds: usize,
    pub overlaps: Vec<(Hold, Hold)>,
    pub inversions: Vec<(Hold, Hold)>,
    /// Holders with no exit (killed or abandoned inside).
    pub unfinished: usize,
}

impl Report {
    pub fn check(holds: &[Hold], ttl_ns: u64, margin_ns: u64) -> Report {
        Report {
            holds: holds.len(),
            overlaps: overlaps(holds, ttl_ns, margin_ns),
            inversions: fence_inversions(holds),
            unfinished: holds.iter().filter(|h| h.exit_ns.is_none()).count(),
        }
    }

    /// The one summary line, then the first few violations in full.
    pub fn print(&self, store: &str, fault: &str, extra: &str) {
        println!(
            "history store={store} fault={fault} holds={} overlaps={} fence_inversions={} ({} unfinished{extra})",
            self.holds,
            self.overlaps.len(),
            self.inversions.len(),
            self.unfinished,
        );
        for (a, b) in self.overlaps.iter().take(3) {
            println!("  overlap: {a:?}\n       and {b:?}");
        }
        for (a, b) in self.inversions.iter().take(3) {
            println!("  fence inversion: {a:?}\n            then {b:?}");
        }
    }
}
