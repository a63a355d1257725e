//! Rates that keep one caller from spamming through Sesame:
//!
//! - [`ApiRate`]: SES's API call rate. Every action but the sends is
//!   limited to a number of calls a second per account and region (SES: 1),
//!   as a token bucket that holds one second of calls; over it the call is
//!   `RateExceeded` (v1 `Throttling`, v2 `TooManyRequestsException`).
//! - [`Pacer`]: verification emails, SES's own and custom ones, go to one
//!   address at most once an interval (60 s by default), whatever account
//!   or region asks, so that nobody can flood an inbox that is not theirs.
//!
//! Both are in memory: each server process keeps its own. Both are bounded:
//! entries that no longer restrict anything are dropped once there are many.

use crate::Clock;
use sesame_model::{Error, ErrorKind, Millis, Scope};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Entries kept before those that restrict nothing any more are dropped.
const PRUNE_AT: usize = 16_384;

fn throttled(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::RateExceeded, message)
}

/// A token bucket of `rate` tokens a second that holds at most `rate`.
/// Pure: the time is given. Tokens are kept in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    milli_tokens: u64,
    at: Millis,
}

impl Bucket {
    pub fn full(rate: u32, now: Millis) -> Self {
        Self {
            milli_tokens: u64::from(rate) * 1000,
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: u32, now: Millis) -> bool {
        let cap = u64::from(rate) * 1000;
        let elapsed = now.saturating_sub(self.at).max(0) as u64;
        self.milli_tokens = (self.milli_tokens + elapsed.saturating_mul(u64::from(rate))).min(cap);
        self.at = now.max(self.at);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now` (so it restricts nothing).
    fn is_full(&self, rate: u32, now: Millis) -> bool {
        let elapsed = now.saturating_sub(self.at).max(0) as u64;
        self.milli_tokens + elapsed.saturating_mul(u64::from(rate)) >= u64::from(rate) * 1000
    }
}

/// SES's API call rate per account and region.
pub struct ApiRate {
    /// Calls a second; `None` is off.
    rate: Option<u32>,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<Scope, Bucket>>,
}

impl ApiRate {
    pub fn new(rate: Option<u32>, clock: Arc<dyn Clock>) -> Self {
        Self {
            rate,
            clock,
            buckets: Mutex::default(),
        }
    }

    /// Counts one call in `scope`; `RateExceeded` when it is over the rate.
    pub fn admit(&self, scope: &Scope) -> Result<(), Error> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut buckets, |b| b.is_full(rate, now));
        let bucket = buckets
            .entry(scope.clone())
            .or_insert_with(|| Bucket::full(rate, now));
        if bucket.take(rate, now) {
            Ok(())
        } else {
            tracing::info!(
                account = %scope.account,
                region = %scope.region,
                rate,
                "API call throttled: over the account's API call rate in this region (sends are not counted)"
            );
            Err(throttled("Rate exceeded"))
        }
    }
}

/// At most one verification email an interval to each address.
pub struct Pacer {
    interval: Option<Millis>,
    clock: Arc<dyn Clock>,
    last: Mutex<HashMap<String, Millis>>,
}

impl Pacer {
    /// `interval` in milliseconds; `None` is off.
    pub fn new(interval: Option<Millis>, clock: Arc<dyn Clock>) -> Self {
        Self {
            interval,
            clock,
            last: Mutex::default(),
        }
    }

    pub fn off(clock: Arc<dyn Clock>) -> Self {
        Self::new(None, clock)
    }

    /// Takes `address`'s turn: refused when a verification email went to it
    /// less than the interval ago.
    pub fn reserve(&self, address: &str) -> Result<(), Error> {
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let key = address.to_ascii_lowercase();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut last, |at| now - *at >= interval);
        match last.get(&key) {
            Some(at) if now - at < interval => {
                let wait = (interval - (now - at) + 999) / 1000;
                tracing::info!(
                    wait_s = wait,
                    "verification email refused: one went to this address less than the interval ago"
                );
                Err(throttled(format!(
                    "Rate exceeded: a verification email was sent to this address less than {} seconds ago; try again in {wait} seconds.",
                    interval / 1000
                )))
            }
            _ => {
                last.insert(key, now);
                Ok(())
            }
        }
    }
}

/// Drops the entries `idle` says restrict nothing, once there are many.
fn prune<K: Hash + Eq, V>(map: &mut HashMap<K, V>, idle: impl Fn(&V) -> bool) {
    if map.len() >= PRUNE_AT {
        map.retain(|_, v| !idle(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use sesame_model::{AccountId, Region};

    fn scope(region: &str) -> Scope {
        Scope::new(
            AccountId::parse("111111111111").unwrap(),
            Region::parse(region).unwrap(),
        )
    }

    #[test]
    fn one_call_a_second_per_account_and_region() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let rate = ApiRate::new(Some(1), clock.clone());
        let east = scope("us-east-1");
        assert!(rate.admit(&east).is_ok());
        let e = rate.admit(&east).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::RateExceeded, "Rate exceeded")
        );
        assert!(
            rate.admit(&scope("eu-west-1")).is_ok(),
            "another region has its own"
        );
        clock.advance(500);
        assert!(rate.admit(&east).is_err(), "half a token");
        clock.advance(500);
        assert!(rate.admit(&east).is_ok(), "a second later");
        clock.advance(10_000);
        assert!(rate.admit(&east).is_ok());
        assert!(
            rate.admit(&east).is_err(),
            "no burst beyond one second's calls"
        );
        let off = ApiRate::new(None, clock);
        for _ in 0..10 {
            assert!(off.admit(&east).is_ok());
        }
    }

    #[test]
    fn buckets_that_restrict_nothing_are_dropped() {
        let clock = Arc::new(ManualClock::new(0));
        let rate = ApiRate::new(Some(1), clock.clone());
        for i in 0..PRUNE_AT {
            let s = Scope::new(
                AccountId::parse(&format!("{i:012}")).unwrap(),
                Region::parse("us-east-1").unwrap(),
            );
            rate.admit(&s).unwrap();
        }
        clock.advance(1_000);
        rate.admit(&scope("us-east-1")).unwrap();
        assert_eq!(rate.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn one_verification_email_an_interval_to_an_address() {
        let clock = Arc::new(ManualClock::new(0));
        let pacer = Pacer::new(Some(60_000), clock.clone());
        pacer.reserve("a@example.com").unwrap();
        let e = pacer.reserve("A@Example.com").unwrap_err();
        assert_eq!(e.kind, ErrorKind::RateExceeded);
        assert!(
            e.message.contains("try again in 60 seconds"),
            "{}",
            e.message
        );
        pacer.reserve("b@example.com").unwrap();
        clock.advance(59_999);
        assert!(pacer.reserve("a@example.com").is_err());
        clock.advance(1);
        pacer.reserve("a@example.com").unwrap();
        let off = Pacer::off(clock);
        off.reserve("a@example.com").unwrap();
        off.reserve("a@example.com").unwrap();
    }
}
