//! Waits between Socket Mode reconnections: doubling from a base, capped, and jittered so
//! that many replicas (or many connections) that lost Slack at once do not return at once.

use std::time::Duration;

use rand::Rng;

/// The longest wait, whatever the base: a bot deaf for longer than this is worse than the
/// load its attempts put on Slack.
const LONGEST_WAIT: Duration = Duration::from_secs(300);
/// The wait stops doubling at this multiple of the base.
const MAX_GROWTH: u32 = 64;

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(base: Duration) -> Backoff {
        let cap = base.saturating_mul(MAX_GROWTH).min(LONGEST_WAIT).max(base);
        Backoff {
            base,
            cap,
            next: base,
        }
    }

    /// The wait before the next attempt: between half and all of the current step, which
    /// then doubles (up to the cap).
    pub fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = step.saturating_mul(2).min(self.cap);
        let half = step / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    /// A connection worked: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.next = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_within_their_jitter_and_stop_at_the_cap() {
        let base = Duration::from_millis(100);
        let mut backoff = Backoff::new(base);
        let mut step = base;
        for _ in 0..12 {
            let wait = backoff.next_wait();
            assert!(
                wait >= step / 2 && wait <= step,
                "{wait:?} outside {step:?}"
            );
            step = (step * 2).min(base * MAX_GROWTH);
        }
        backoff.reset();
        assert!(backoff.next_wait() <= base);
    }

    #[test]
    fn a_long_base_is_capped_at_five_minutes_but_never_below_itself() {
        let mut backoff = Backoff::new(Duration::from_secs(60));
        for _ in 0..10 {
            assert!(backoff.next_wait() <= LONGEST_WAIT);
        }
        let huge = Duration::from_secs(600);
        assert_eq!(Backoff::new(huge).cap, huge);
    }
}
