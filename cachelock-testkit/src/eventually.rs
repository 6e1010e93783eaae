//! [`eventually`]: waits, with a generous bound, until a condition holds.

/// Waits until `condition` holds, polling every 10 ms; panics with `never: {what}` after 30 s.
///
/// The bound is there so that a broken build fails instead of hanging, not to assert speed:
/// tests in this workspace never assert that something happens by a deadline.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
