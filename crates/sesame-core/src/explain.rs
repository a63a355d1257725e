//! `sesame explain`: why a send was refused (found by its request ID) or
//! what became of a message (by its MessageId) or of mail to an address,
//! with the fix as a command. SES's error stays as SES words it; this says
//! which identity failed which check in which region, whether it is
//! verified in another region, whether production access is pending, the
//! state of the quotas, and the suppression list.

use crate::{AccountService, Clock, internal};
use sesame_model::delivery::BounceSubType;
use sesame_model::identity::{IdentityKind, VerificationStatus};
use sesame_model::scope::SES_REGIONS;
use sesame_model::{Error, EventDetail, EventFilter, EventKind, Mailbox, Rejection, Scope};
use sesame_store::Store;
use std::sync::Arc;

/// What `explain` found: a title, the facts, and the commands that fix it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    pub title: String,
    pub facts: Vec<String>,
    pub fixes: Vec<String>,
}

pub struct ExplainService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    accounts: AccountService,
}

impl ExplainService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, production_by_default: bool) -> Self {
        Self {
            accounts: AccountService::new(store.clone(), clock.clone(), production_by_default),
            store,
            clock,
        }
    }

    /// Explains a request ID, a MessageId or an address; `None` when it is
    /// none Sesame knows.
    pub async fn explain(&self, what: &str) -> Result<Option<Explanation>, Error> {
        if let Some((scope, r)) = self.store.find_rejection(what).await.map_err(internal)? {
            return Ok(Some(self.rejection(&scope, &r).await?));
        }
        if self
            .store
            .get_message(what)
            .await
            .map_err(internal)?
            .is_some()
        {
            return Ok(Some(self.message(what).await?));
        }
        if what.contains('@') {
            return self.address(what).await;
        }
        Ok(None)
    }

    /// A refused send: its rule, then what each named identity lacks.
    async fn rejection(&self, scope: &Scope, r: &Rejection) -> Result<Explanation, Error> {
        let mut x = Explanation {
            title: format!(
                "{} refused in account {} region {} at {}: {}",
                r.operation,
                scope.account,
                scope.region,
                sesame_model::iso8601(r.created_at),
                r.message
            ),
            ..Default::default()
        };
        let region = scope.region.as_str();
        match r.rule.as_str() {
            "sender-not-verified" | "sandbox-recipient-not-verified" => {
                let account = self.accounts.quota(scope).await?.account;
                for who in &r.identities {
                    let as_sender = r.senders.contains(who);
                    self.identity_facts(scope, who, as_sender, &mut x).await?;
                }
                if !account.production_access && r.identities.iter().any(|i| !r.senders.contains(i))
                {
                    x.facts.push(format!(
                        "The account is in the sandbox in {region}: every recipient must be verified there too."
                    ));
                    self.production_facts(scope, &account, &mut x);
                }
            }
            "mail-from-domain-not-verified" => {
                for d in &r.identities {
                    x.facts.push(format!(
                        "The custom MAIL FROM domain {d} has no MX record pointing at Sesame, and its identity says to reject mail when that is so (BehaviorOnMxFailure RejectMessage)."
                    ));
                }
                for s in &r.senders {
                    x.fixes.push(format!(
                        "sesame identities records --account {} --region {region} {s}   # the MX and SPF records to publish",
                        scope.account
                    ));
                    x.fixes.push(format!(
                        "aws sesv2 put-email-identity-mail-from-attributes --email-identity {s} --behavior-on-mx-failure USE_DEFAULT_VALUE --region {region}"
                    ));
                }
            }
            "daily-quota-exceeded" | "maximum-send-rate-exceeded" => {
                let q = self.accounts.quota(scope).await?;
                x.facts.push(format!(
                    "Quotas in {region}: {} of {} recipients sent in the last 24 hours; at most {} a second.",
                    q.sent_last_24h,
                    quota_text(q.account.max_24h_send),
                    q.account.max_send_rate
                ));
                if !q.account.production_access {
                    x.facts
                        .push("The sandbox's quotas apply (200 a day, 1 a second).".into());
                    self.production_facts(scope, &q.account, &mut x);
                }
                x.fixes.push(format!(
                    "sesame accounts set-quota --account {} --region {region} --max-24h-send N --max-send-rate N   # an operator raises them",
                    scope.account
                ));
            }
            "account-sending-paused" => {
                x.facts
                    .push(format!("Sending is paused for the account in {region}."));
                x.fixes.push(format!(
                    "aws sesv2 put-account-sending-attributes --sending-enabled --region {region}"
                ));
            }
            "configuration-set-sending-paused" => {
                for cs in &r.identities {
                    x.fixes.push(format!(
                        "aws sesv2 put-configuration-set-sending-options --configuration-set-name {cs} --sending-enabled --region {region}"
                    ));
                }
            }
            "configuration-set-does-not-exist" => {
                for cs in &r.identities {
                    x.facts.push(format!(
                        "No configuration set {cs} in {region} (sets are per region)."
                    ));
                    x.fixes.push(format!(
                        "aws sesv2 create-configuration-set --configuration-set-name {cs} --region {region}"
                    ));
                }
            }
            other => x.facts.push(format!("Refused by the rule {other}.")),
        }
        Ok(x)
    }

    /// Whether `who` (a sender or a recipient) is verified in this region,
    /// pending, or verified only elsewhere, with the fix.
    async fn identity_facts(
        &self,
        scope: &Scope,
        who: &str,
        as_sender: bool,
        x: &mut Explanation,
    ) -> Result<(), Error> {
        let role = if as_sender { "sender" } else { "recipient" };
        let region = scope.region.as_str();
        let Ok(mailbox) = Mailbox::parse(who) else {
            x.facts
                .push(format!("The {role} {who} is not an email address."));
            return Ok(());
        };
        let names = mailbox.covering_identities();
        let here = self
            .store
            .get_identities(scope, &names)
            .await
            .map_err(internal)?;
        match here
            .iter()
            .find(|i| i.verification_status != VerificationStatus::Success)
        {
            Some(i) => {
                x.facts.push(format!(
                    "The {role} {who} is covered by identity {} in {region}, whose verification status is {}.",
                    i.name,
                    i.verification_status.as_str()
                ));
                for d in &i.dns.diagnoses {
                    x.facts.push(format!("  the verifier found: {}", d.message));
                }
                x.fixes.push(match i.name.kind() {
                    IdentityKind::Domain => format!(
                        "sesame identities records --account {} --region {region} {}   # publish these, then: sesame identities check --account {} --region {region} {}",
                        scope.account, i.name, scope.account, i.name
                    ),
                    IdentityKind::EmailAddress => format!(
                        "aws ses verify-email-identity --email-address {} --region {region}   # sends the verification email again; open its link",
                        i.name
                    ),
                });
            }
            None => {
                x.facts.push(format!(
                    "The {role} {who} is not verified in {region}: no identity {} exists there.",
                    names.join(" or ")
                ));
                x.fixes.push(format!(
                    "aws sesv2 create-email-identity --email-identity {} --region {region}   # or its domain, {}",
                    mailbox.address,
                    mailbox.domain()
                ));
            }
        }
        // Verified in another region: SES's identities are per region.
        let mut elsewhere = vec![];
        for r in SES_REGIONS.iter().filter(|r| **r != region) {
            let Ok(other) = sesame_model::Region::parse(r) else {
                continue;
            };
            let there = Scope::new(scope.account.clone(), other);
            let found = self
                .store
                .get_identities(&there, &names)
                .await
                .map_err(internal)?;
            if found
                .iter()
                .any(|i| i.verification_status == VerificationStatus::Success)
            {
                elsewhere.push(r.to_string());
            }
        }
        if !elsewhere.is_empty() {
            x.facts.push(format!(
                "{who} is verified in {}, not in {region}: identities are verified per region (the region mismatch).",
                elsewhere.join(", ")
            ));
            x.fixes.push(format!(
                "aws sesv2 send-email … --region {}   # send through the region where it is verified",
                elsewhere[0]
            ));
        }
        Ok(())
    }

    /// Where the account's production access stands, with the next step.
    fn production_facts(&self, scope: &Scope, a: &sesame_model::Account, x: &mut Explanation) {
        let region = scope.region.as_str();
        match a.details.as_ref().and_then(|d| d.review.as_ref()) {
            Some(r) => {
                x.facts.push(format!(
                    "Production access was requested at {} (case {}): {}.",
                    sesame_model::iso8601(r.requested_at),
                    r.case_id,
                    r.status.as_str()
                ));
                x.fixes.push(format!(
                    "sesame accounts approve --account {} --region {region}   # an operator grants it",
                    scope.account
                ));
            }
            None => {
                x.facts.push(format!(
                    "Production access has not been requested in {region}."
                ));
                x.fixes.push(format!(
                    "aws sesv2 put-account-details --production-access-enabled --mail-type TRANSACTIONAL --website-url https://example.com --use-case-description \"…\" --region {region}"
                ));
            }
        }
    }

    /// What became of a message, recipient by recipient.
    async fn message(&self, id: &str) -> Result<Explanation, Error> {
        let m = self
            .store
            .get_message(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Error::internal("the message went away"))?;
        let events = self
            .store
            .list_events(&EventFilter {
                scope: Some(m.scope.clone()),
                message_id: Some(id.to_owned()),
                kind: None,
                limit: 1000,
            })
            .await
            .map_err(internal)?;
        let region = m.scope.region.as_str();
        let mut x = Explanation {
            title: format!(
                "Message {id} from {} in account {} region {}, accepted at {}",
                m.message.source,
                m.scope.account,
                region,
                sesame_model::iso8601(m.message.created_at)
            ),
            ..Default::default()
        };
        for e in &events {
            let to = e.recipients.join(", ");
            match &e.detail {
                EventDetail::Delivery { smtp_response, .. } => {
                    x.facts.push(format!("Delivered to {to}: {smtp_response}"));
                }
                EventDetail::Bounce {
                    bounce_type,
                    sub_type,
                    bounced,
                    ..
                } => {
                    for b in bounced {
                        x.facts.push(format!(
                            "Bounced ({} {}) for {}: {}",
                            bounce_type.as_str(),
                            sub_type.as_str(),
                            b.address,
                            b.diagnostic_code
                        ));
                        if *sub_type == BounceSubType::OnAccountSuppressionList {
                            x.facts.push(format!(
                                "{} is on the account's suppression list in {region}, so no delivery was attempted.",
                                b.address
                            ));
                            x.fixes.push(format!(
                                "aws sesv2 delete-suppressed-destination --email-address {} --region {region}",
                                b.address
                            ));
                        }
                    }
                }
                EventDetail::Complaint { feedback_type, .. } => {
                    x.facts
                        .push(format!("Complaint ({feedback_type}) from {to}."));
                }
                EventDetail::DeliveryDelay { delayed, .. } => {
                    for d in delayed {
                        x.facts
                            .push(format!("Delayed for {}: {}", d.address, d.diagnostic_code));
                    }
                }
                EventDetail::RenderingFailure { error_message, .. } => {
                    x.facts
                        .push(format!("The template did not render: {error_message}"));
                }
                _ => {}
            }
        }
        if !events.iter().any(|e| !matches!(e.kind, EventKind::Send)) {
            x.facts
                .push("No outcome yet: see `sesame queue list` for its deliveries.".into());
        }
        Ok(x)
    }

    /// Mail to or from an address: where it is verified, whether it is
    /// suppressed, and its refusals in the last day.
    async fn address(&self, address: &str) -> Result<Option<Explanation>, Error> {
        let Ok(mailbox) = Mailbox::parse(address) else {
            return Ok(None);
        };
        let names = mailbox.covering_identities();
        let mut x = Explanation {
            title: format!("The address {}", mailbox.address),
            ..Default::default()
        };
        let scopes = self.scopes().await?;
        let since = self.clock.now_ms() - 24 * 3600 * 1000;
        for s in &scopes {
            let found = self
                .store
                .get_identities(s, &names)
                .await
                .map_err(internal)?;
            for i in found.iter() {
                x.facts.push(format!(
                    "Identity {} in account {} region {}: {}.",
                    i.name,
                    s.account,
                    s.region,
                    i.verification_status.as_str()
                ));
            }
            if let Some(d) = self
                .store
                .get_suppressed(s, &mailbox.address)
                .await
                .map_err(internal)?
            {
                x.facts.push(format!(
                    "On the suppression list of account {} region {} ({}) since {}.",
                    s.account,
                    s.region,
                    d.reason.as_str(),
                    sesame_model::iso8601(d.last_update)
                ));
                x.fixes.push(format!(
                    "aws sesv2 delete-suppressed-destination --email-address {} --region {}",
                    mailbox.address, s.region
                ));
            }
            let refused = self
                .store
                .list_rejections(s, 1000)
                .await
                .map_err(internal)?;
            for r in refused.iter().filter(|r| {
                r.created_at >= since
                    && r.identities.iter().any(|i| {
                        i.eq_ignore_ascii_case(&mailbox.address) || i.eq_ignore_ascii_case(address)
                    })
            }) {
                let request = r.request_id.as_deref().unwrap_or("-");
                x.facts.push(format!(
                    "Refused {} in account {} region {} (request {request}): {}",
                    sesame_model::iso8601(r.created_at),
                    s.account,
                    s.region,
                    r.message
                ));
                if r.request_id.is_some() {
                    x.fixes.push(format!("sesame explain {request}"));
                }
            }
        }
        if x.facts.is_empty() {
            x.facts.push(
                "No identity, suppression entry or recent refusal names it in any account.".into(),
            );
        }
        Ok(Some(x))
    }

    /// Every scope that has identities.
    async fn scopes(&self) -> Result<Vec<Scope>, Error> {
        let all = crate::audit::identities_by_scope(&*self.store, &Default::default()).await?;
        Ok(all.into_values().map(|(s, _)| s).collect())
    }
}

fn quota_text(max: f64) -> String {
    if max < 0.0 {
        "unlimited".into()
    } else {
        format!("{max}")
    }
}
