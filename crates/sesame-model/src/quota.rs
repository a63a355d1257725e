//! SES's sending quotas as one scope's state: the recipients counted over
//! the rolling 24 hours (kept per minute) and the send-rate token bucket.
//! A store keeps one per account and region and asks it to decide each
//! message in the transaction that stores it; the rules are here, with no
//! storage, so that every backend applies the same ones.

use crate::{Acceptance, Millis, QuotaCheck};
use std::collections::VecDeque;

/// The rolling window, in minutes.
pub const DAY_MINUTES: i64 = 24 * 60;

/// The minute a moment falls in.
pub fn minute_of(ms: Millis) -> i64 {
    ms.div_euclid(60_000)
}

/// A rate bucket: its tokens at a moment (ms).
pub type Bucket = (Millis, f64);

/// One scope's quota state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaState {
    /// Counted recipients per minute over the last 24 hours, oldest first.
    minutes: VecDeque<(i64, i64)>,
    /// Their sum.
    sent: i64,
    /// The rate bucket; `None` means full (so a restart starts full: one
    /// second's worth of sending).
    bucket: Option<Bucket>,
}

impl QuotaState {
    /// The state a ledger gives: counted recipients per minute, in order,
    /// those within the 24 hours before the minute it is read at.
    pub fn from_ledger(minutes: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let minutes: VecDeque<(i64, i64)> = minutes.into_iter().collect();
        let sent = minutes.iter().map(|(_, n)| n).sum();
        Self {
            minutes,
            sent,
            bucket: None,
        }
    }

    /// Recipients counted in the window as last rolled.
    pub fn sent(&self) -> i64 {
        self.sent
    }

    pub fn bucket(&self) -> Option<Bucket> {
        self.bucket
    }

    /// Puts the bucket back as it was (a batch that did not commit).
    pub fn set_bucket(&mut self, bucket: Option<Bucket>) {
        self.bucket = bucket;
    }

    /// Forgets minutes that have left the 24-hour window at `minute`.
    pub fn roll(&mut self, minute: i64) {
        while let Some(&(m, n)) = self.minutes.front() {
            if m > minute - DAY_MINUTES {
                break;
            }
            self.sent -= n;
            self.minutes.pop_front();
        }
    }

    /// Takes back `n` recipients counted in `minute`.
    pub fn uncount(&mut self, minute: i64, n: i64) {
        if let Some((_, m)) = self.minutes.iter_mut().rev().find(|(m, _)| *m == minute) {
            *m -= n;
            self.sent -= n;
        }
    }

    /// Decides one message and, if it is accepted, counts it.
    ///
    /// - The daily quota counts recipients over the rolling 24 hours; a
    ///   negative quota is unlimited, and recipients that do not count
    ///   (the mailbox simulator's) never exceed it.
    /// - The rate is a token bucket holding one second's worth. A message
    ///   needs as many tokens as it has recipients (at most a full bucket)
    ///   and takes them all, so a large message waits out its debt after.
    pub fn decide(&mut self, q: &QuotaCheck) -> Acceptance {
        let minute = minute_of(q.now);
        self.roll(minute);
        let daily = i64::from(q.daily_recipients);
        if q.max_24h >= 0.0 && daily > 0 && (self.sent + daily) as f64 > q.max_24h {
            return Acceptance::DailyQuotaExceeded;
        }
        let cap = q.max_rate;
        let tokens = match self.bucket {
            None => cap,
            Some((at, t)) => (t + (q.now - at).max(0) as f64 / 1000.0 * q.max_rate).min(cap),
        };
        let want = f64::from(q.rate_recipients);
        if tokens < want.min(cap) {
            return Acceptance::RateExceeded;
        }
        self.bucket = Some((q.now, tokens - want));
        if daily > 0 {
            self.sent += daily;
            match self.minutes.back_mut() {
                Some((m, n)) if *m >= minute => *n += daily,
                _ => self.minutes.push_back((minute, daily)),
            }
        }
        Acceptance::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(now: Millis, max_24h: f64, max_rate: f64, recipients: u32) -> QuotaCheck {
        QuotaCheck {
            now,
            max_24h,
            max_rate,
            daily_recipients: recipients,
            rate_recipients: recipients,
        }
    }

    const T0: Millis = 1_700_000_000_000;

    #[test]
    fn the_sandbox_day_is_200_recipients() {
        let mut q = QuotaState::default();
        for i in 0..200 {
            assert_eq!(
                q.decide(&check(T0 + i * 1000, 200.0, 1.0, 1)),
                Acceptance::Accepted
            );
        }
        assert_eq!(
            q.decide(&check(T0 + 200_000, 200.0, 1.0, 1)),
            Acceptance::DailyQuotaExceeded
        );
        assert_eq!(q.sent(), 200);
        // A day after the first ones, they have rolled out.
        let later = T0 + DAY_MINUTES * 60_000 + 60_000;
        assert_eq!(q.decide(&check(later, 200.0, 1.0, 1)), Acceptance::Accepted);
        assert!(q.sent() < 200);
    }

    #[test]
    fn unlimited_and_uncounted_recipients() {
        let mut q = QuotaState::default();
        assert_eq!(
            q.decide(&check(T0, -1.0, 1000.0, 500)),
            Acceptance::Accepted
        );
        let simulator = QuotaCheck {
            daily_recipients: 0,
            ..check(T0 + 1000, 0.0, 1000.0, 1)
        };
        assert_eq!(q.decide(&simulator), Acceptance::Accepted, "nothing counts");
    }

    #[test]
    fn the_rate_is_a_bucket_of_one_second() {
        let mut q = QuotaState::default();
        assert_eq!(q.decide(&check(T0, 200.0, 1.0, 1)), Acceptance::Accepted);
        assert_eq!(
            q.decide(&check(T0 + 500, 200.0, 1.0, 1)),
            Acceptance::RateExceeded
        );
        assert_eq!(
            q.decide(&check(T0 + 1000, 200.0, 1.0, 1)),
            Acceptance::Accepted
        );
        // Ten recipients at 14/s take ten tokens; a big message (50 at 14/s)
        // goes when the bucket is full and leaves a debt to wait out.
        let mut p = QuotaState::default();
        assert_eq!(
            p.decide(&check(T0, 50_000.0, 14.0, 50)),
            Acceptance::Accepted
        );
        assert_eq!(
            p.decide(&check(T0 + 1000, 50_000.0, 14.0, 1)),
            Acceptance::RateExceeded,
            "still in debt after a second"
        );
        assert_eq!(
            p.decide(&check(T0 + 3000, 50_000.0, 14.0, 1)),
            Acceptance::Accepted
        );
    }

    #[test]
    fn a_batch_taken_back_leaves_no_trace() {
        let mut q = QuotaState::from_ledger([(minute_of(T0) - 10, 5)]);
        assert_eq!(q.sent(), 5);
        let before = q.clone();
        assert_eq!(q.decide(&check(T0, 200.0, 10.0, 3)), Acceptance::Accepted);
        q.uncount(minute_of(T0), 3);
        q.set_bucket(before.bucket());
        assert_eq!(q.sent(), before.sent());
        assert_eq!(q.bucket(), None);
    }
}
