//! People waiting for an answer go first. Slack wants every click acknowledged within
//! 3 seconds, while the calls a decision causes (card updates, a DM) only have to follow
//! soon after. So while Slack requests are being handled the delivery worker steps down to
//! a trickle, and a burst of clicks does not share the CPU with the calls it caused; the
//! worker never stops, so deliveries go on under any load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts the Slack requests being handled right now.
#[derive(Debug, Default)]
pub struct Foreground {
    in_flight: AtomicUsize,
}

impl Foreground {
    /// Marks one request as being handled until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Handling {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Handling(Arc::clone(self))
    }

    /// True while any Slack request is being handled.
    pub fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }
}

/// One request being handled (see [`Foreground::enter`]).
#[derive(Debug)]
pub struct Handling(Arc<Foreground>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_a_request_is_handled() {
        let foreground = Arc::new(Foreground::default());
        assert!(!foreground.is_busy());
        let first = foreground.enter();
        let second = foreground.enter();
        drop(first);
        assert!(foreground.is_busy());
        drop(second);
        assert!(!foreground.is_busy());
    }
}
