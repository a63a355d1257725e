//! Account use cases: the sandbox and quotas per region, the
//! production-access request (PutAccountDetails) and its review by an
//! operator, and pausing sending.

use crate::{Clock, internal, random};
use sesame_model::{
    Account, AccountDetails, Error, ErrorKind, Millis, Review, ReviewStatus, Scope, SendStatPoint,
};
use sesame_store::Store;
use std::sync::Arc;

pub struct AccountService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// `--no-sandbox`: regions start with production access.
    production_by_default: bool,
}

/// PutAccountDetails' input, validated here.
#[derive(Debug, Clone, Default)]
pub struct DetailsRequest {
    pub mail_type: Option<String>,
    pub website_url: Option<String>,
    pub contact_language: Option<String>,
    pub use_case_description: Option<String>,
    pub additional_contact_email_addresses: Option<Vec<String>>,
    pub production_access_enabled: Option<bool>,
}

/// An account's state together with what it has sent.
#[derive(Debug, Clone)]
pub struct QuotaView {
    pub account: Account,
    pub sent_last_24h: u64,
}

/// The store setting that records whether the deployment's accounts start
/// in production (the server's `--no-sandbox`).
const PRODUCTION_BY_DEFAULT: &str = "accounts.production-by-default";

impl AccountService {
    /// Records this service's default for new accounts in the store, so
    /// that every process creating accounts (the server, the operator CLI)
    /// starts them alike.
    pub async fn record_default(&self) -> Result<(), Error> {
        let value = if self.production_by_default {
            "true"
        } else {
            "false"
        };
        self.store
            .put_setting(PRODUCTION_BY_DEFAULT, value, self.clock.now_ms())
            .await
            .map_err(internal)
    }

    /// The deployment's default for new accounts as its server recorded
    /// it; `None` before a server has run on the store.
    pub async fn recorded_default(store: &dyn Store) -> Result<Option<bool>, Error> {
        Ok(store
            .get_setting(PRODUCTION_BY_DEFAULT)
            .await
            .map_err(internal)?
            .map(|v| v == "true"))
    }

    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, production_by_default: bool) -> Self {
        Self {
            store,
            clock,
            production_by_default,
        }
    }

    /// The account in this region; a region never touched is in its first state.
    pub async fn get(&self, scope: &Scope) -> Result<Account, Error> {
        Ok(self
            .store
            .get_account(scope)
            .await
            .map_err(internal)?
            .unwrap_or_else(|| Account::new(self.production_by_default)))
    }

    pub async fn quota(&self, scope: &Scope) -> Result<QuotaView, Error> {
        let account = self.get(scope).await?;
        let sent_last_24h = self
            .store
            .sent_last_24h(scope, self.clock.now_ms())
            .await
            .map_err(internal)?;
        Ok(QuotaView {
            account,
            sent_last_24h,
        })
    }

    /// v1 GetSendStatistics: per 15-minute interval over the last two
    /// weeks, the recipients sent to and the bounces and complaints that
    /// delivery recorded.
    pub async fn statistics(&self, scope: &Scope) -> Result<Vec<SendStatPoint>, Error> {
        let since = self.clock.now_ms() - 14 * 24 * 3600 * 1000;
        self.store
            .send_statistics(scope, since)
            .await
            .map_err(internal)
    }

    /// Applies `change` to the stored account, retrying if another writer won.
    async fn modify(
        &self,
        scope: &Scope,
        mut change: impl FnMut(&mut Account, Millis) -> Result<(), Error>,
    ) -> Result<Account, Error> {
        for _ in 0..5 {
            let mut account = self.get(scope).await?;
            change(&mut account, self.clock.now_ms())?;
            if self
                .store
                .save_account(scope, &account)
                .await
                .map_err(internal)?
            {
                account.version += 1;
                return Ok(account);
            }
        }
        Err(Error::new(
            ErrorKind::ConcurrentModification,
            "The account is being modified concurrently; try again.",
        ))
    }

    /// v1 UpdateAccountSendingEnabled / v2 PutAccountSendingAttributes.
    pub async fn set_sending_enabled(&self, scope: &Scope, enabled: bool) -> Result<(), Error> {
        self.modify(scope, |a, _| {
            a.sending_enabled = enabled;
            Ok(())
        })
        .await
        .map(drop)
    }

    /// PutAccountSuppressionAttributes: the reasons the account-level
    /// suppression list keeps addresses for (none: it is off).
    pub async fn set_suppressed_reasons(
        &self,
        scope: &Scope,
        reasons: Vec<sesame_model::suppression::Reason>,
    ) -> Result<(), Error> {
        self.modify(scope, |a, _| {
            a.suppressed_reasons = Some(reasons.clone());
            Ok(())
        })
        .await
        .map(drop)
    }

    /// v2 PutAccountDetails: records the details and, with
    /// `ProductionAccessEnabled`, a production-access request for review.
    pub async fn put_details(&self, scope: &Scope, req: DetailsRequest) -> Result<Account, Error> {
        let details = validate(&req)?;
        let wants_production = req.production_access_enabled == Some(true);
        self.modify(scope, |a, now| {
            if a.review_pending() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "An account details update is already under review.",
                ));
            }
            let mut d = details.clone();
            d.review = a.details.as_ref().and_then(|old| old.review.clone());
            if wants_production && !a.production_access {
                d.review = Some(Review {
                    status: ReviewStatus::Pending,
                    case_id: random::string_from(b"0123456789", 10),
                    requested_at: now,
                    decided_at: None,
                });
            }
            a.details = Some(d);
            Ok(())
        })
        .await
    }

    /// Operator: every production-access request waiting for review, by
    /// account and region (at most 10,000 accounts are looked at).
    pub async fn pending_reviews(&self) -> Result<Vec<(Scope, Account)>, Error> {
        let mut out = vec![];
        let mut after: Option<Scope> = None;
        for _ in 0..10 {
            let page = self
                .store
                .list_accounts(after.as_ref(), 1000)
                .await
                .map_err(internal)?;
            let full = page.len() == 1000;
            after = page.last().map(|(s, _)| s.clone());
            out.extend(page.into_iter().filter(|(_, a)| a.review_pending()));
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Operator: grant production access in this region.
    pub async fn approve(&self, scope: &Scope) -> Result<Account, Error> {
        self.modify(scope, |a, now| {
            a.grant_production(now);
            Ok(())
        })
        .await
    }

    /// Operator: deny a pending production-access request.
    pub async fn deny(&self, scope: &Scope) -> Result<Account, Error> {
        self.modify(scope, |a, now| {
            if !a.review_pending() {
                return Err(Error::invalid(format!(
                    "Account {} has no pending production-access request in {}.",
                    scope.account, scope.region
                )));
            }
            a.deny_production(now);
            Ok(())
        })
        .await
    }

    /// Operator: set quotas, as AWS raises them on request. A negative
    /// daily quota means unlimited.
    pub async fn set_quota(
        &self,
        scope: &Scope,
        max_24h: Option<f64>,
        max_rate: Option<f64>,
    ) -> Result<Account, Error> {
        if max_rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return Err(Error::invalid(
                "The maximum send rate must be greater than 0.",
            ));
        }
        if max_24h.is_some_and(|d| d.is_nan()) {
            return Err(Error::invalid("The 24-hour quota must be a number."));
        }
        self.modify(scope, |a, _| {
            if let Some(d) = max_24h {
                a.max_24h_send = if d < 0.0 { -1.0 } else { d };
            }
            if let Some(r) = max_rate {
                a.max_send_rate = r;
            }
            Ok(())
        })
        .await
    }
}

/// The details as stored. Their spellings and sizes (the mail type and
/// language enums, the URL's and description's lengths, the contacts' count
/// and form) are the model's constraints, checked by the wire layer's
/// decoder before a request gets here.
fn validate(req: &DetailsRequest) -> Result<AccountDetails, Error> {
    let mail_type = req
        .mail_type
        .clone()
        .ok_or_else(|| Error::missing("MailType"))?;
    let website_url = req
        .website_url
        .clone()
        .ok_or_else(|| Error::missing("WebsiteURL"))?;
    let contacts = req
        .additional_contact_email_addresses
        .clone()
        .unwrap_or_default();
    Ok(AccountDetails {
        mail_type,
        website_url,
        contact_language: req.contact_language.clone(),
        use_case_description: req.use_case_description.clone(),
        additional_contact_email_addresses: contacts,
        review: None,
    })
}
