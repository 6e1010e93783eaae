//! The checker can fail: overlaps, fence inversions, torn lines.

use super::checker::{fence_inversions, overlaps};
use super::log::{has_open_hold, read_holds, Hold};
use super::run::{TempDir, MARGIN_NS};

const MS: u64 = 1_000_000;

fn h(key: &str, who: &str, fence: u64, claim: u64, enter: u64, exit: Option<u64>) -> Hold {
    Hold {
        key: key.to_owned(),
        who: who.to_owned(),
        fence,
        claim_ns: claim * MS,
        enter_ns: enter * MS,
        exit_ns: exit.map(|e| e * MS),
    }
}

#[test]
fn checker_reports_two_holders_inside_at_once() {
    let holds = [
        h("k", "a", 1, 0, 1, Some(50)),
        h("k", "b", 2, 20, 30, Some(60)), // entered while a was inside
    ];
    let found = overlaps(&holds, 1_000 * MS, MARGIN_NS);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0.who.as_str(), found[0].1.who.as_str()),
        ("a", "b")
    );
}

#[test]
fn checker_reports_entry_into_a_killed_holders_lock_before_its_ttl() {
    let holds = [
        h("k", "killed", 1, 0, 1, None),
        h("k", "early", 2, 400, 500, Some(520)), // TTL 1000 ms had not run out
    ];
    assert_eq!(overlaps(&holds, 1_000 * MS, MARGIN_NS).len(), 1);
}

#[test]
fn checker_accepts_one_after_another_and_entry_after_a_killed_holders_ttl() {
    let holds = [
        h("k", "a", 1, 0, 1, Some(50)),
        h("k", "b", 2, 49, 51, Some(90)),
        h("k", "killed", 3, 95, 100, None),
        h("k", "after-ttl", 4, 1_096, 1_097, Some(1_100)),
        h("k", "paused", 5, 1_101, 1_102, Some(3_000)), // window cut at its TTL
        h("k", "after-pause", 6, 2_200, 2_201, Some(2_210)),
        h("other", "c", 1, 0, 10, Some(2_000)), // another key: no conflict
    ];
    assert!(overlaps(&holds, 1_000 * MS, MARGIN_NS).is_empty());
    assert!(fence_inversions(&holds).is_empty());
}

#[test]
fn checker_reports_a_later_hold_with_a_lower_or_equal_fence() {
    let lower = [
        h("k", "a", 7, 0, 1, Some(50)),
        h("k", "b", 6, 60, 61, Some(90)),
    ];
    let found = fence_inversions(&lower);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].0.who.as_str(), found[0].1.who.as_str()),
        ("a", "b")
    );
    let equal = [
        h("k", "a", 7, 0, 1, Some(50)),
        h("k", "b", 7, 60, 61, Some(90)),
    ];
    assert_eq!(fence_inversions(&equal).len(), 1);
    // Claims in flight together: no order, but equal fences are still reported.
    let concurrent_equal = [
        h("k", "a", 7, 0, 5, Some(50)),
        h("k", "b", 7, 1, 4, Some(90)),
    ];
    assert_eq!(fence_inversions(&concurrent_equal).len(), 1);
}

#[test]
fn checker_does_not_order_a_hold_whose_claim_was_sent_before_the_other_entered() {
    // `b` was granted (lower fence) before `a`, but was paused before logging its entry.
    let holds = [
        h("k", "a", 9, 1_500, 1_501, Some(1_510)),
        h("k", "b", 8, 0, 1_600, Some(1_610)),
    ];
    assert!(fence_inversions(&holds).is_empty());
}

#[test]
fn checker_reads_logs_and_skips_a_torn_line() {
    let dir = TempDir::new("reader");
    std::fs::write(
        dir.0.join("w0-t0-1.log"),
        "E 0 k 1 10 20\nX 0 30\nE 1 k 3 40 50\nX 1 6",
    )
    .expect("write");
    std::fs::write(dir.0.join("w1-t0-2.log"), "E 0 k 2 25 26\nX 0 29\n").expect("write");
    let mut holds = read_holds(&dir.0);
    holds.sort_by_key(|h| h.enter_ns);
    assert_eq!(holds.len(), 3);
    assert_eq!(holds[1].exit_ns, Some(29));
    assert_eq!(holds[1].fence, 2);
    assert_eq!(holds[2].exit_ns, None, "the torn exit line is skipped");
    assert!(has_open_hold(&dir.0, 0));
    assert!(!has_open_hold(&dir.0, 1));
    // w1's holder entered at 26 while w0's was inside until 30.
    assert_eq!(overlaps(&holds, 1_000, 0).len(), 1);
}
