//! Per-client token buckets for the ingest routes (429 with `Retry-After` when empty).
//! A request takes one token to pass; a request carrying several alerts is then charged
//! one per alert (the bucket may go into debt, so a large group is accepted once and the
//! client waits for the refill afterwards: the rate counts alerts, not requests).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket per client address for the ingest routes.
#[derive(Debug)]
pub struct RateLimit {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<std::net::IpAddr, (f64, Instant)>>,
}

impl RateLimit {
    /// `per_sec` requests a second per client, bursts of twice that; 0 turns it off.
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(per_sec) * 2.0,
            buckets: Mutex::default(),
        }
    }

    /// `Err(seconds to wait)` when the client is over its rate.
    pub(super) fn check(&self, ip: std::net::IpAddr) -> Result<(), u64> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 10_000 {
            // Forget clients that have been quiet long enough to be full again.
            let full_after = Duration::from_secs_f64(self.burst / self.per_sec);
            b.retain(|_, (_, at)| now.duration_since(*at) < full_after);
        }
        let (tokens, at) = b.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }

    /// Charges `alerts` more tokens to a client that already passed [`Self::check`].
    pub(super) fn charge(&self, ip: std::net::IpAddr, alerts: usize) {
        if self.per_sec <= 0.0 || alerts == 0 {
            return;
        }
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tokens, _)) = b.get_mut(&ip) {
            *tokens -= alerts as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_charged_after_the_request_passes() {
        let rl = RateLimit::new(10);
        let ip: std::net::IpAddr = [10, 0, 0, 1].into();
        assert!(rl.check(ip).is_ok());
        rl.charge(ip, 99);
        // 20 - 1 - 99 = -80 tokens: about 8 s before the next request passes.
        let wait = rl.check(ip).expect_err("over the rate");
        assert!((8..=9).contains(&wait), "{wait}");
        assert!(
            rl.check([10, 0, 0, 2].into()).is_ok(),
            "others are not charged"
        );
    }
}
