//! The per-connection sliding-window rate limit.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Over the limit: refuse this message; the oldest counted message leaves
    /// the window after this long.
    Limited {
        retry_after_ms: u64,
    },
    /// More than twice the limit arrived within one window.
    Abuse,
}

pub(crate) struct RateWindow {
    limit: usize,
    window: Duration,
    /// Messages processed within the window.
    accepted: VecDeque<Instant>,
    /// Every message received within the window, processed or not.
    received: VecDeque<Instant>,
    /// How many times `limit` frames within the window are abuse.
    abuse_factor: usize,
}

impl RateWindow {
    pub fn new(messages: u32, window_ms: u64) -> RateWindow {
        RateWindow {
            limit: messages as usize,
            window: Duration::from_millis(window_ms),
            accepted: VecDeque::new(),
            received: VecDeque::new(),
            abuse_factor: 2,
        }
    }

    /// The window with abuse only beyond `factor` times its limit.
    pub fn abuse_after(self, factor: usize) -> RateWindow {
        RateWindow {
            abuse_factor: factor,
            ..self
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let expired = |queue: &mut VecDeque<Instant>| {
            while queue
                .front()
                .is_some_and(|at| now.duration_since(*at) >= self.window)
            {
                queue.pop_front();
            }
        };
        expired(&mut self.accepted);
        expired(&mut self.received);
        self.received.push_back(now);
        if self.received.len() > self.abuse_factor * self.limit {
            return Verdict::Abuse;
        }
        if self.accepted.len() < self.limit {
            self.accepted.push_back(now);
            return Verdict::Allow;
        }
        let oldest = *self.accepted.front().expect("the window is full");
        let wait = self.window.saturating_sub(now.duration_since(oldest));
        Verdict::Limited {
            retry_after_ms: (wait.as_millis() as u64).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_limits_then_calls_abuse() {
        let start = Instant::now();
        let mut window = RateWindow::new(3, 1000);
        for _ in 0..3 {
            assert_eq!(window.check(start), Verdict::Allow);
        }
        let later = start + Duration::from_millis(400);
        assert_eq!(
            window.check(later),
            Verdict::Limited {
                retry_after_ms: 600
            }
        );
        assert!(matches!(window.check(later), Verdict::Limited { .. }));
        assert!(matches!(window.check(later), Verdict::Limited { .. }));
        assert_eq!(window.check(later), Verdict::Abuse);
    }

    #[test]
    fn the_window_slides() {
        let start = Instant::now();
        let mut window = RateWindow::new(2, 100);
        assert_eq!(window.check(start), Verdict::Allow);
        assert_eq!(
            window.check(start + Duration::from_millis(50)),
            Verdict::Allow
        );
        assert!(matches!(
            window.check(start + Duration::from_millis(60)),
            Verdict::Limited { .. }
        ));
        assert_eq!(
            window.check(start + Duration::from_millis(100)),
            Verdict::Allow
        );
    }
}
