//! An account's sending state in one region: sandbox or production access,
//! quotas, whether sending is enabled, and the production-access request.

use crate::Millis;
use serde::{Deserialize, Serialize};

/// SES's sandbox quotas: 200 recipients per rolling 24 hours, 1 per second.
pub const SANDBOX_MAX_24H: f64 = 200.0;
pub const SANDBOX_MAX_RATE: f64 = 1.0;
/// The default quotas once production access is granted.
pub const PRODUCTION_MAX_24H: f64 = 50_000.0;
pub const PRODUCTION_MAX_RATE: f64 = 14.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewStatus {
    Pending,
    Failed,
    Granted,
    Denied,
}

impl ReviewStatus {
    /// The domain's name for the review's state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Granted => "granted",
            Self::Denied => "denied",
        }
    }
}

/// What PutAccountDetails recorded, and the review of a production-access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetails {
    pub mail_type: String,
    pub website_url: String,
    pub contact_language: Option<String>,
    pub use_case_description: Option<String>,
    pub additional_contact_email_addresses: Vec<String>,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub status: ReviewStatus,
    pub case_id: String,
    pub requested_at: Millis,
    pub decided_at: Option<Millis>,
}

/// An account's settings in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub production_access: bool,
    pub sending_enabled: bool,
    /// Recipients per rolling 24 hours; -1 means unlimited, as in SES.
    pub max_24h_send: f64,
    /// Recipients per second.
    pub max_send_rate: f64,
    pub details: Option<AccountDetails>,
    /// The reasons the account-level suppression list keeps addresses
    /// for; `None` is SES's default for a new account (both).
    #[serde(default)]
    pub suppressed_reasons: Option<Vec<crate::suppression::Reason>>,
    /// Optimistic-concurrency version; 0 for an account never stored.
    #[serde(default)]
    pub version: i64,
}

impl Account {
    /// A region's first state: the sandbox, or production access when the
    /// operator started Sesame with `--no-sandbox`.
    pub fn new(production: bool) -> Self {
        let (max_24h_send, max_send_rate) = if production {
            (PRODUCTION_MAX_24H, PRODUCTION_MAX_RATE)
        } else {
            (SANDBOX_MAX_24H, SANDBOX_MAX_RATE)
        };
        Self {
            production_access: production,
            sending_enabled: true,
            max_24h_send,
            max_send_rate,
            details: None,
            suppressed_reasons: None,
            version: 0,
        }
    }

    /// An operator granted production access: the sandbox is lifted and the
    /// quotas rise to production defaults (never lowered if already higher).
    pub fn grant_production(&mut self, now: Millis) {
        self.production_access = true;
        if self.max_24h_send >= 0.0 && self.max_24h_send < PRODUCTION_MAX_24H {
            self.max_24h_send = PRODUCTION_MAX_24H;
        }
        if self.max_send_rate < PRODUCTION_MAX_RATE {
            self.max_send_rate = PRODUCTION_MAX_RATE;
        }
        if let Some(r) = self.details.as_mut().and_then(|d| d.review.as_mut()) {
            r.status = ReviewStatus::Granted;
            r.decided_at = Some(now);
        }
    }

    pub fn deny_production(&mut self, now: Millis) {
        if let Some(r) = self.details.as_mut().and_then(|d| d.review.as_mut()) {
            r.status = ReviewStatus::Denied;
            r.decided_at = Some(now);
        }
    }

    pub fn review_pending(&self) -> bool {
        self.details
            .as_ref()
            .and_then(|d| d.review.as_ref())
            .is_some_and(|r| r.status == ReviewStatus::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_then_production() {
        let mut a = Account::new(false);
        assert!(!a.production_access);
        assert_eq!((a.max_24h_send, a.max_send_rate), (200.0, 1.0));
        a.details = Some(AccountDetails {
            mail_type: "TRANSACTIONAL".into(),
            website_url: "https://example.com".into(),
            contact_language: None,
            use_case_description: None,
            additional_contact_email_addresses: vec![],
            review: Some(Review {
                status: ReviewStatus::Pending,
                case_id: "1".into(),
                requested_at: 0,
                decided_at: None,
            }),
        });
        assert!(a.review_pending());
        a.grant_production(5);
        assert!(a.production_access && !a.review_pending());
        assert_eq!((a.max_24h_send, a.max_send_rate), (50_000.0, 14.0));
        let mut big = Account::new(false);
        big.max_24h_send = 1_000_000.0;
        big.grant_production(5);
        assert_eq!(
            big.max_24h_send, 1_000_000.0,
            "granting never lowers a raised quota"
        );
    }
}
