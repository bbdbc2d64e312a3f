//! The limits that span connections (section 13.6 and 13.7 of the spec):
//! handshakes per client address and posts per room, each counted over a
//! sliding window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tidewire_protocol::ConnectRate;

/// The instants of the latest events of one counter, at most `limit` of them:
/// older ones can no longer decide anything.
#[derive(Debug, Default)]
pub(crate) struct SlidingWindow {
    events: VecDeque<Instant>,
}

impl SlidingWindow {
    fn expire(&mut self, window: Duration, now: Instant) {
        while let Some(first) = self.events.front() {
            if now.duration_since(*first) >= window {
                self.events.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether `limit` events already lie within `window` before `now`; when
    /// not, counts one at `now`. On refusal, how long until one would be counted.
    pub fn admit(&mut self, limit: usize, window: Duration, now: Instant) -> Result<(), Duration> {
        self.expire(window, now);
        if self.events.len() < limit {
            self.events.push_back(now);
            return Ok(());
        }
        Err(self.wait(window, now))
    }

    /// Counts an event at `now` whether or not it is admitted, keeping the
    /// latest `limit`; on refusal, how long until one would be admitted.
    pub fn record(&mut self, limit: usize, window: Duration, now: Instant) -> Result<(), Duration> {
        self.expire(window, now);
        let over = self.events.len() >= limit;
        self.events.push_back(now);
        while self.events.len() > limit {
            self.events.pop_front();
        }
        if over {
            Err(self.wait(window, now))
        } else {
            Ok(())
        }
    }

    fn wait(&self, window: Duration, now: Instant) -> Duration {
        self.events.front().map_or(Duration::ZERO, |first| {
            (*first + window).saturating_duration_since(now)
        })
    }

    fn is_idle(&self, window: Duration, now: Instant) -> bool {
        self.events
            .back()
            .is_none_or(|last| now.duration_since(*last) >= window)
    }
}

/// Addresses tracked before the idle ones are forgotten.
const FORGET_IDLE_FROM: usize = 1024;

/// Handshakes per client address (TW-QUOTA-2). Refused handshakes count too,
/// so a client that keeps trying stays refused until it pauses.
pub(crate) struct ConnectAttempts {
    rate: ConnectRate,
    by_address: Mutex<HashMap<IpAddr, SlidingWindow>>,
}

impl ConnectAttempts {
    pub fn new(rate: ConnectRate) -> ConnectAttempts {
        ConnectAttempts {
            rate,
            by_address: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a handshake from `address`; on refusal, how long until one would be accepted.
    pub fn attempt(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let window = Duration::from_millis(self.rate.window_ms);
        let mut by_address = self.by_address.lock();
        if by_address.len() >= FORGET_IDLE_FROM {
            by_address.retain(|_, attempts| !attempts.is_idle(window, now));
        }
        by_address
            .entry(address)
            .or_default()
            .record(self.rate.attempts as usize, window, now)
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

/// Whole milliseconds for `retry_after_ms`: rounded up, at least 1.
pub(crate) fn retry_after_ms(wait: Duration) -> u64 {
    wait.as_micros().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_the_oldest_expires() {
        let start = Instant::now();
        let mut window = SlidingWindow::default();
        for _ in 0..3 {
            assert_eq!(window.admit(3, SECOND, start), Ok(()));
        }
        let later = start + Duration::from_millis(400);
        assert_eq!(
            window.admit(3, SECOND, later),
            Err(Duration::from_millis(600))
        );
        assert_eq!(window.admit(3, SECOND, start + SECOND), Ok(()));
    }

    #[test]
    fn refused_handshakes_count_and_idle_addresses_are_forgotten() {
        let attempts = ConnectAttempts::new(ConnectRate {
            attempts: 2,
            window_ms: 1000,
        });
        let start = Instant::now();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(attempts.attempt(client, start).is_ok());
        assert!(attempts.attempt(client, start).is_ok());
        assert!(attempts.attempt(other, start).is_ok());
        let half = start + Duration::from_millis(500);
        assert_eq!(
            attempts.attempt(client, half),
            Err(Duration::from_millis(500))
        );
        let nearly = start + Duration::from_millis(900);
        assert_eq!(
            attempts.attempt(client, nearly),
            Err(Duration::from_millis(600))
        );
        // Both accepted handshakes have left the window; the refused ones keep it full.
        let later = start + Duration::from_millis(1400);
        assert!(attempts.attempt(client, later).is_err());
        assert!(attempts.attempt(client, later + SECOND * 2).is_ok());
        for n in 0..FORGET_IDLE_FROM as u32 + 8 {
            let address = IpAddr::from(n.to_be_bytes());
            let _ = attempts.attempt(address, start + SECOND * 10);
        }
        assert!(attempts.by_address.lock().len() <= FORGET_IDLE_FROM + 8);
    }

    #[test]
    fn waits_round_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_ms(Duration::ZERO), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(1500)), 2);
    }
}
