//! Jittered, capped exponential backoff for waiting on a held key.

use std::time::{Duration, Instant};

use rand::Rng;

/// First pause between attempts.
const FIRST: Duration = Duration::from_millis(2);
/// Longest pause between attempts.
const CAP: Duration = Duration::from_millis(100);

/// Pauses between claim attempts until a deadline.
pub(crate) struct Backoff {
    ceiling: Duration,
    deadline: Instant,
}

impl Backoff {
    pub(crate) fn until(deadline: Instant) -> Self {
        Backoff {
            ceiling: FIRST,
            deadline,
        }
    }

    /// The next pause ("full jitter": uniform in [ceiling/2, ceiling]), cut so that it ends at
    /// the deadline; `None` once the deadline has passed.
    pub(crate) fn next_pause(&mut self) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        let ceiling = self.ceiling;
        self.ceiling = (ceiling * 2).min(CAP);
        let pause = rand::rng().random_range(ceiling / 2..=ceiling);
        Some(pause.min(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_up_to_the_cap_and_never_pass_the_deadline() {
        let mut backoff = Backoff::until(Instant::now() + Duration::from_secs(3600));
        let pauses: Vec<Duration> = (0..20).map(|_| backoff.next_pause().unwrap()).collect();
        assert!(pauses[0] <= FIRST && pauses[0] >= FIRST / 2);
        assert!(pauses.iter().all(|p| *p <= CAP));
        assert!(pauses[19] >= CAP / 2);

        let mut short = Backoff::until(Instant::now() + Duration::from_micros(500));
        if let Some(pause) = short.next_pause() {
            assert!(pause <= Duration::from_micros(500));
        }
        let mut past = Backoff::until(Instant::now());
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(past.next_pause(), None);
    }
}
