//! Identity use cases for both APIs. The v1 and v2 operations differ in
//! idempotence (v1 verify calls succeed again; v2 create says
//! `AlreadyExistsException`) and are kept as separate methods so each keeps
//! SES's behaviour.
//!
//! # Layout
//! - this file: the service, creating, reading, listing, deleting, tagging
//!   and custom MAIL FROM domains;
//! - `dkim.rs`: Easy DKIM, BYODKIM, signing on and off;
//! - `links.rs`: verification emails and their links;
//! - `tests.rs`: the tests of all three.

use crate::{Clock, dkim_keys, internal, random};
use base64::Engine;
use sesame_model::identity::MAX_IDENTITIES;
use sesame_model::verification::Track;
use sesame_model::{
    DkimOrigin, DkimState, Error, ErrorKind, EventKind, Identity, IdentityKind, IdentityName,
    KeyLength, Millis, Scope, Tag, VerificationStatus, tags,
};
use sesame_store::{IdentityQuery, Insert, Store};
use std::sync::Arc;

mod dkim;
mod links;
pub mod publish;

use links::*;
pub use links::{LinkOutcome, LinkSettings};

const DAY_MS: Millis = 24 * 3600 * 1000;

/// How a v2 caller wants DKIM set up on a new domain, or changed on one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimRequest {
    /// Easy DKIM, optionally with a key length.
    Easy(Option<KeyLength>),
    /// BYODKIM: a selector and a base64 DER private key.
    External {
        selector: String,
        private_key: String,
    },
}

#[derive(Debug, Clone)]
pub struct CreateIdentity {
    pub name: String,
    pub tags: Vec<Tag>,
    pub configuration_set: Option<String>,
    pub dkim: Option<DkimRequest>,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub identities: Vec<Identity>,
    pub next_token: Option<String>,
}

pub struct IdentityService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// `--auto-verify`: new identities (and their DKIM) start verified.
    auto_verify: bool,
    /// Where verification links point and who sends them; `None` sends none.
    links: Option<LinkSettings>,
    /// The send path verification emails take, as any mail does.
    mailer: Option<Arc<crate::SendService>>,
    /// At most one verification email an interval to an address.
    pacer: Arc<crate::rate::Pacer>,
    /// Where domains' records are published, if the operator set it up.
    publishing: Option<publish::Publishing>,
}

pub fn not_found(name: &str) -> Error {
    Error::not_found(format!("Email identity {name} does not exist."))
}

/// The stored form of a name as given: domains are case-insensitive.
pub(crate) fn lookup_key(name: &str) -> String {
    if name.contains('@') {
        name.to_owned()
    } else {
        name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
    }
}

impl IdentityService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, auto_verify: bool) -> Self {
        Self {
            store,
            auto_verify,
            links: None,
            mailer: None,
            pacer: Arc::new(crate::rate::Pacer::off(clock.clone())),
            publishing: None,
            clock,
        }
    }

    /// Paces verification emails (SES's and custom ones) to each address.
    pub fn with_pacer(mut self, pacer: Arc<crate::rate::Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    /// Whether a verified identity (the address, or a domain it is in)
    /// covers `address`.
    pub async fn covers(&self, scope: &Scope, address: &str) -> Result<bool, Error> {
        let Ok(m) = sesame_model::Mailbox::parse(address) else {
            return Ok(false);
        };
        let verified = crate::sending::verified_among(&*self.store, scope, &[&m]).await?;
        Ok(!verified.is_empty())
    }

    fn initial_status(&self) -> VerificationStatus {
        if self.auto_verify {
            VerificationStatus::Success
        } else {
            VerificationStatus::Pending
        }
    }

    fn new_identity(&self, name: IdentityName) -> Identity {
        let domain = name.kind() == IdentityKind::Domain;
        Identity {
            verification_token: domain.then(random::verification_token),
            // SES reports a 1024-bit next key length on a new address (moto #9771).
            dkim: DkimState::not_started(if domain {
                KeyLength::Rsa2048
            } else {
                KeyLength::Rsa1024
            }),
            name,
            created_at: self.clock.now_ms(),
            verification_status: self.initial_status(),
            feedback_forwarding: true,
            configuration_set: None,
            tags: vec![],
            email_link: None,
            mail_from: Default::default(),
            dns: Default::default(),
            notifications: Default::default(),
            published: vec![],
            version: 0,
        }
    }

    async fn insert(&self, scope: &Scope, identity: &Identity) -> Result<Insert, Error> {
        match self
            .store
            .insert_identity(scope, identity, MAX_IDENTITIES)
            .await
            .map_err(internal)?
        {
            Insert::LimitReached => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Maximum number of identities ({MAX_IDENTITIES}) reached in region {}.",
                    scope.region
                ),
            )),
            other => Ok(other),
        }
    }

    /// Reads, changes and writes back an identity, retrying when another
    /// writer got there first.
    async fn modify(
        &self,
        scope: &Scope,
        name: &str,
        missing: impl Fn() -> Error,
        mut change: impl FnMut(&mut Identity) -> Result<(), Error>,
    ) -> Result<Identity, Error> {
        let key = lookup_key(name);
        for _ in 0..5 {
            let mut identity = self
                .store
                .get_identity(scope, &key)
                .await
                .map_err(internal)?
                .ok_or_else(&missing)?;
            change(&mut identity)?;
            if self
                .store
                .update_identity(scope, &identity)
                .await
                .map_err(internal)?
            {
                identity.version += 1;
                return Ok(identity);
            }
        }
        Err(Error::new(
            ErrorKind::ConcurrentModification,
            format!("Identity {name} is being modified concurrently; try again."),
        ))
    }

    // ------------------------------------------------------------ v1

    /// v1 VerifyEmailIdentity / VerifyEmailAddress: idempotent.
    pub async fn verify_email(&self, scope: &Scope, address: &str) -> Result<(), Error> {
        let name = IdentityName::email(address)?;
        self.pace(scope, &name).await?;
        let mut identity = self.new_identity(name);
        self.new_link(&mut identity);
        match self.insert(scope, &identity).await? {
            Insert::Inserted => self.send_link(scope, &identity).await,
            // Asking again for an unverified address sends a new link, as SES resends.
            Insert::Exists(existing) if !existing.is_verified() && self.links.is_some() => {
                let mut link = None;
                let updated = self
                    .modify(
                        scope,
                        address,
                        || not_found(address),
                        |i| {
                            if self.new_link(i) {
                                link = i.email_link.clone();
                            }
                            Ok(())
                        },
                    )
                    .await?;
                match link {
                    Some(_) => self.send_link(scope, &updated).await,
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// v1 VerifyDomainIdentity: returns the `_amazonses` TXT token, the same
    /// one again on a repeated call.
    pub async fn verify_domain(&self, scope: &Scope, domain: &str) -> Result<String, Error> {
        let name = IdentityName::domain(domain)?;
        let identity = self.new_identity(name);
        match self.insert(scope, &identity).await? {
            // Asking again for a domain whose verification failed starts it
            // over: `Pending`, with another 72 hours.
            Insert::Exists(existing)
                if existing.verification_status == VerificationStatus::Failed =>
            {
                let now = self.clock.now_ms();
                let updated = self
                    .modify(
                        scope,
                        domain,
                        || not_found(domain),
                        |i| {
                            i.verification_status = VerificationStatus::Pending;
                            i.dns.identity = Track::restart(now);
                            Ok(())
                        },
                    )
                    .await?;
                updated
                    .verification_token
                    .ok_or_else(|| Error::internal("stored domain has no verification token"))
            }
            Insert::Exists(existing) => existing
                .verification_token
                .ok_or_else(|| Error::internal("stored domain has no verification token")),
            _ => {
                self.publish_new(scope, &identity).await;
                Ok(identity.verification_token.unwrap_or_default())
            }
        }
    }

    /// v1 ListVerifiedEmailAddresses.
    pub async fn verified_addresses(&self, scope: &Scope) -> Result<Vec<String>, Error> {
        let q = IdentityQuery {
            kind: Some(IdentityKind::EmailAddress),
            status: Some(VerificationStatus::Success),
            name_contains: None,
        };
        let rows = self
            .store
            .list_identities(scope, &q, 0, MAX_IDENTITIES)
            .await
            .map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|l| l.identity.name.to_string())
            .collect())
    }

    /// v1 DeleteIdentity / DeleteVerifiedEmailAddress: succeeds whether or
    /// not the identity existed. Returns whether it did.
    pub async fn delete_v1(&self, scope: &Scope, name: &str) -> Result<bool, Error> {
        let key = lookup_key(name);
        // What was published for it is withdrawn first (network I/O, outside
        // any transaction).
        if self.publishing.is_some()
            && let Some(i) = self
                .store
                .get_identity(scope, &key)
                .await
                .map_err(internal)?
        {
            self.withdraw(&i).await;
        }
        self.store
            .delete_identity(scope, &key)
            .await
            .map_err(internal)
    }

    /// v1 ListIdentities and v2 ListEmailIdentities.
    pub async fn list(
        &self,
        scope: &Scope,
        query: &IdentityQuery,
        next_token: Option<&str>,
        page_size: u32,
    ) -> Result<Page, Error> {
        let after = crate::paging::after(next_token)?;
        let rows = self
            .store
            .list_identities(scope, query, after, page_size + 1)
            .await
            .map_err(internal)?;
        let now = self.clock.now_ms();
        let (identities, next_token) = crate::paging::page(
            rows.into_iter()
                .map(|l| (l.seq, expire(l.identity, now)))
                .collect(),
            page_size,
            after,
        );
        Ok(Page {
            identities,
            next_token,
        })
    }

    /// v1 GetIdentityVerificationAttributes / GetIdentityDkimAttributes:
    /// the known identities among `names`; unknown ones are left out.
    pub async fn get_many(&self, scope: &Scope, names: &[String]) -> Result<Vec<Identity>, Error> {
        if names.len() > 100 {
            return Err(Error::constraint(
                "Identities",
                &format!("[{} identities]", names.len()),
                "Member must have length less than or equal to 100",
            ));
        }
        let keys: Vec<String> = names.iter().map(|n| lookup_key(n)).collect();
        let found = self
            .store
            .get_identities(scope, &keys)
            .await
            .map_err(internal)?;
        Ok(found.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    // ------------------------------------------------------------ v2

    /// v2 CreateEmailIdentity.
    pub async fn create(&self, scope: &Scope, req: CreateIdentity) -> Result<Identity, Error> {
        let name = IdentityName::parse(&req.name)?;
        if let Some(cs) = &req.configuration_set {
            // A default configuration set must exist; no identity is made
            // otherwise.
            self.default_set_exists(scope, cs).await?;
        }
        let mut identity = self.new_identity(name);
        identity.configuration_set = req.configuration_set.clone();
        tags::merge(&mut identity.tags, req.tags)?;
        match (identity.kind(), req.dkim) {
            (IdentityKind::EmailAddress, Some(_)) => {
                return Err(Error::invalid(
                    "DkimSigningAttributes can only be given for a domain identity.",
                ));
            }
            (IdentityKind::EmailAddress, None) => {}
            (IdentityKind::Domain, None) => {
                self.easy_dkim(&mut identity, KeyLength::Rsa2048).await?
            }
            (IdentityKind::Domain, Some(DkimRequest::Easy(len))) => {
                self.easy_dkim(&mut identity, len.unwrap_or(KeyLength::Rsa2048))
                    .await?
            }
            (
                IdentityKind::Domain,
                Some(DkimRequest::External {
                    selector,
                    private_key,
                }),
            ) => self.byo_dkim(&mut identity, &selector, &private_key)?,
        }
        self.pace(scope, &identity.name).await?;
        self.new_link(&mut identity);
        match self.insert(scope, &identity).await? {
            Insert::Exists(_) => Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("Email identity {} already exist.", identity.name),
            )),
            _ => {
                self.send_link(scope, &identity).await?;
                self.publish_new(scope, &identity).await;
                Ok(identity)
            }
        }
    }

    /// v2 GetEmailIdentity.
    pub async fn get(&self, scope: &Scope, name: &str) -> Result<Identity, Error> {
        let now = self.clock.now_ms();
        self.store
            .get_identity(scope, &lookup_key(name))
            .await
            .map_err(internal)?
            .map(|i| expire(i, now))
            .ok_or_else(|| not_found(name))
    }

    /// v2 DeleteEmailIdentity: `NotFoundException` when absent.
    pub async fn delete(&self, scope: &Scope, name: &str) -> Result<(), Error> {
        if self.delete_v1(scope, name).await? {
            Ok(())
        } else {
            Err(not_found(name))
        }
    }

    /// v1 SetIdentityMailFromDomain and v2 PutEmailIdentityMailFromAttributes:
    /// An identity's default configuration set must exist (v2's NotFound).
    async fn default_set_exists(&self, scope: &Scope, cs: &str) -> Result<(), Error> {
        self.store
            .get_configuration_set(scope, cs)
            .await
            .map_err(internal)?
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("Configuration set <{cs}> does not exist.")))
    }

    /// PutEmailIdentityConfigurationSetAttributes: the identity's default
    /// configuration set (which must exist), or none.
    pub async fn set_configuration_set(
        &self,
        scope: &Scope,
        name: &str,
        set: Option<String>,
    ) -> Result<(), Error> {
        if let Some(cs) = &set {
            self.default_set_exists(scope, cs).await?;
        }
        self.modify(
            scope,
            name,
            || not_found(name),
            |i| {
                i.configuration_set = set.clone();
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// SetIdentityNotificationTopic: where the identity's bounces,
    /// complaints or deliveries (`kind`) go, or nowhere. The topic must be
    /// one of the caller's. Removing a bounce or complaint topic while
    /// feedback forwarding is off turns forwarding back on, as in SES.
    pub async fn set_notification_topic(
        &self,
        scope: &Scope,
        name: &str,
        kind: EventKind,
        topic: Option<String>,
    ) -> Result<(), Error> {
        if let Some(arn) = &topic {
            match self.store.get_topic(arn).await.map_err(internal)? {
                Some((owner, _)) if owner == *scope => {}
                _ => {
                    return Err(Error::invalid(format!("SNS topic <{arn}> not found.")));
                }
            }
        }
        self.modify(
            scope,
            name,
            || not_verified_or_missing(name),
            |i| {
                i.notifications.set_topic(kind, topic.clone());
                if !i.notifications.covers_feedback() {
                    i.feedback_forwarding = true;
                }
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// SetIdentityHeadersInNotificationsEnabled.
    pub async fn set_headers_in_notifications(
        &self,
        scope: &Scope,
        name: &str,
        kind: EventKind,
        enabled: bool,
    ) -> Result<(), Error> {
        self.modify(
            scope,
            name,
            || not_verified_or_missing(name),
            |i| {
                i.notifications.set_headers(kind, enabled);
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// SetIdentityFeedbackForwardingEnabled and v2's
    /// PutEmailIdentityFeedbackAttributes: forwarding bounces and
    /// complaints by email may only be turned off while both have a topic.
    pub async fn set_feedback_forwarding(
        &self,
        scope: &Scope,
        name: &str,
        enabled: bool,
        missing: impl Fn() -> Error,
    ) -> Result<(), Error> {
        self.modify(scope, name, missing, |i| {
            i.notifications.check_forwarding(name, enabled)?;
            i.feedback_forwarding = enabled;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// sets (or with `None` removes) the custom MAIL FROM domain, which must
    /// be a subdomain of the identity's domain. A new domain starts
    /// `Pending` (`Success` under `--auto-verify`).
    pub async fn set_mail_from(
        &self,
        scope: &Scope,
        name: &str,
        domain: Option<&str>,
        reject_on_mx_failure: bool,
    ) -> Result<Identity, Error> {
        let key = lookup_key(name);
        let own = key
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_else(|| key.to_ascii_lowercase());
        let domain = match domain.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if IdentityName::parse(&d).map(|n| n.kind()) != Ok(IdentityKind::Domain)
                    || !d.ends_with(&format!(".{own}"))
                {
                    return Err(Error::invalid(format!(
                        "Provided MAIL-FROM domain '{d}' is not subdomain of the domain of the identity '{name}'."
                    )));
                }
                Some(d)
            }
        };
        let status = self.initial_status();
        let now = self.clock.now_ms();
        self.modify(
            scope,
            &key,
            || not_found(name),
            |i| {
                let changed = i.mail_from.domain != domain;
                i.mail_from.reject_on_mx_failure = reject_on_mx_failure;
                if changed {
                    i.mail_from.status = domain.as_ref().map(|_| status);
                    i.mail_from.domain = domain.clone();
                    i.dns.mail_from = Track::restart(now);
                }
                Ok(())
            },
        )
        .await
    }

    /// Operator action (`sesame identities verify`): marks an identity, and
    /// its DKIM and custom MAIL FROM if set up, verified.
    pub async fn mark_verified(&self, scope: &Scope, name: &str) -> Result<Identity, Error> {
        self.modify(
            scope,
            name,
            || not_found(name),
            |i| {
                i.verification_status = VerificationStatus::Success;
                if i.dkim.is_set_up() {
                    i.dkim.status = VerificationStatus::Success;
                }
                if i.mail_from.domain.is_some() {
                    i.mail_from.status = Some(VerificationStatus::Success);
                }
                Ok(())
            },
        )
        .await
    }

    // ------------------------------------------------------------ tags

    fn identity_from_arn(scope: &Scope, arn: &str) -> Result<String, Error> {
        let missing = || Error::not_found(format!("Resource {arn} does not exist."));
        let prefix = scope.arn("identity/");
        let name = arn.strip_prefix(&prefix).ok_or_else(|| {
            if arn.starts_with("arn:") {
                missing()
            } else {
                Error::invalid(format!("Invalid resource ARN: {arn}"))
            }
        })?;
        if name.is_empty() {
            return Err(missing());
        }
        Ok(name.to_owned())
    }

    pub async fn tag(&self, scope: &Scope, arn: &str, new: Vec<Tag>) -> Result<(), Error> {
        let name = Self::identity_from_arn(scope, arn)?;
        let missing = || Error::not_found(format!("Resource {arn} does not exist."));
        self.modify(scope, &name, missing, |i| {
            tags::merge(&mut i.tags, new.clone())
        })
        .await?;
        Ok(())
    }

    pub async fn untag(&self, scope: &Scope, arn: &str, keys: &[String]) -> Result<(), Error> {
        let name = Self::identity_from_arn(scope, arn)?;
        for k in keys {
            tags::validate_key(k)?;
        }
        let missing = || Error::not_found(format!("Resource {arn} does not exist."));
        self.modify(scope, &name, missing, |i| {
            i.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .await?;
        Ok(())
    }

    pub async fn list_tags(&self, scope: &Scope, arn: &str) -> Result<Vec<Tag>, Error> {
        let name = Self::identity_from_arn(scope, arn)?;
        self.store
            .get_identity(scope, &lookup_key(&name))
            .await
            .map_err(internal)?
            .map(|i| i.tags)
            .ok_or_else(|| Error::not_found(format!("Resource {arn} does not exist.")))
    }
}

#[cfg(test)]
mod tests;

/// SES's answer for notification settings of an identity it does not
/// have (observed: `MessageRejected`, not NotFound).
pub fn not_verified_or_missing(name: &str) -> Error {
    Error::new(
        ErrorKind::MessageRejected,
        format!("Identity {name} is not verified or does not exist."),
    )
}
