//! Identity use cases for both APIs. The v1 and v2 operations differ in
//! idempotence (v1 verify calls succeed again; v2 create says
//! `AlreadyExistsException`) and are kept as separate methods so each keeps
//! SES's behaviour.

use crate::{Clock, dkim_keys, internal, random};
use base64::Engine;
use sesame_model::identity::MAX_IDENTITIES;
use sesame_model::verification::Track;
use sesame_model::{
    DkimOrigin, DkimState, Error, ErrorKind, Identity, IdentityKind, IdentityName, KeyLength,
    Millis, Scope, Tag, VerificationStatus, tags,
};
use sesame_store::{IdentityQuery, Insert, Store};
use std::sync::Arc;

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
}

/// Verification emails: the base of the links and the sender.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// e.g. `http://127.0.0.1:4579`; links are `{public_url}/_sesame/verify/{token}`.
    pub public_url: String,
    /// The system address verification emails come from.
    pub from: String,
}

/// What opening a verification link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Verified {
        identity: String,
        region: String,
        /// A custom verification template's SuccessRedirectionURL.
        redirect: Option<String>,
    },
    /// The link was older than 24 hours; the identity is now `Failed`.
    Expired {
        identity: String,
        /// A custom verification template's FailureRedirectionURL.
        redirect: Option<String>,
    },
    /// No outstanding link has this token (never sent, or already used).
    Unknown,
    /// A custom verification link opened a second time.
    Used {
        /// The template's FailureRedirectionURL.
        redirect: Option<String>,
    },
}

/// An address whose link is older than 24 hours and was never opened has
/// failed verification, as in SES; read paths report it so.
fn expire(mut i: Identity, now: Millis) -> Identity {
    if i.link_expired(now) {
        i.verification_status = VerificationStatus::Failed;
    }
    i
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("Email identity {name} does not exist."))
}

fn not_dkim_verified(domain: &str) -> Error {
    Error::invalid(format!("Domain {domain} is not verified for DKIM signing."))
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
            clock,
        }
    }

    /// Paces verification emails (SES's and custom ones) to each address.
    pub fn with_pacer(mut self, pacer: Arc<crate::rate::Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    /// Takes `name`'s turn for a verification email before anything is
    /// written, when asking for it would send one: an email address that
    /// is not verified in `scope`, while links are sent.
    async fn pace(&self, scope: &Scope, name: &IdentityName) -> Result<(), Error> {
        if self.links.is_none() || self.auto_verify || name.kind() != IdentityKind::EmailAddress {
            return Ok(());
        }
        let existing = self
            .store
            .get_identity(scope, name.as_str())
            .await
            .map_err(internal)?;
        if existing.is_some_and(|i| i.is_verified()) {
            return Ok(());
        }
        self.pacer.reserve(name.as_str())
    }

    /// Sends verification emails for new email address identities,
    /// through `mailer`, the send path all mail takes.
    pub fn with_links(mut self, links: LinkSettings, mailer: Arc<crate::SendService>) -> Self {
        self.links = Some(links);
        self.mailer = Some(mailer);
        self
    }

    /// A fresh link for `identity`, if links are sent and it is unverified.
    fn new_link(&self, identity: &mut Identity) -> bool {
        if self.links.is_none()
            || identity.kind() != IdentityKind::EmailAddress
            || identity.is_verified()
        {
            return false;
        }
        identity.email_link = Some(self.fresh_link(None));
        identity.verification_status = VerificationStatus::Pending;
        true
    }

    fn fresh_link(&self, redirect: Option<sesame_model::LinkRedirect>) -> sesame_model::EmailLink {
        sesame_model::EmailLink {
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::bytes::<32>()),
            sent_at: self.clock.now_ms(),
            redirect,
            used_at: None,
        }
    }

    /// The URL of `link`.
    fn link_url(&self, link: &sesame_model::EmailLink) -> Option<String> {
        self.links.as_ref().map(|l| {
            format!(
                "{}/_sesame/verify/{}",
                l.public_url.trim_end_matches('/'),
                link.token
            )
        })
    }

    /// Hands the verification email for `identity`'s link to delivery. It is
    /// system mail: outside the sandbox rules and the account's quotas.
    async fn send_link(&self, scope: &Scope, identity: &Identity) -> Result<(), Error> {
        let (Some(links), Some(link)) = (&self.links, &identity.email_link) else {
            return Ok(());
        };
        let Some(url) = self.link_url(link) else {
            return Ok(());
        };
        let region = scope.region.upper();
        let text = format!(
            "Dear Sesame customer,\r\n\r\nWe have received a request to authorize this email address for use with Sesame in region {region}. If you requested this verification, please go to the following URL to confirm that you are authorized to use this email address:\r\n\r\n{url}\r\n\r\nYour request will not be processed unless you confirm the address using this URL. This link expires 24 hours after your original verification request.\r\n\r\nIf you did NOT request to verify this email address, do not click on the link.\r\n"
        );
        let subject = format!("Sesame – Email Address Verification Request in region {region}");
        self.send_system_mail(
            scope,
            "VerificationEmail",
            &links.from,
            identity.name.as_str(),
            &subject,
            Some(&text),
            None,
            false,
        )
        .await?;
        Ok(())
    }

    /// Sends a message of Sesame's own (verification mail) from `from`
    /// to `to` through the send path; returns its MessageId.
    #[allow(clippy::too_many_arguments)]
    async fn send_system_mail(
        &self,
        scope: &Scope,
        operation: &'static str,
        from: &str,
        to: &str,
        subject: &str,
        text: Option<&str>,
        html: Option<&str>,
        counts_against_quota: bool,
    ) -> Result<String, Error> {
        let mailer = self
            .mailer
            .as_ref()
            .ok_or_else(|| Error::internal("verification emails are not configured"))?;
        let mut out = crate::sending::Outgoing::new(
            operation,
            crate::sending::Content::Simple {
                subject: subject.to_owned(),
                text: text.map(str::to_owned),
                html: html.map(str::to_owned),
                headers: vec![],
                attachments: vec![],
            },
        );
        out.source = Some(from.to_owned());
        out.to = vec![to.to_owned()];
        out.system = Some(crate::sending::SystemMail {
            counts_against_quota,
        });
        mailer.send(scope, out).await
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

    /// SendCustomVerificationEmail, once the template and the account have
    /// been checked: creates the address identity if needed, gives it a new
    /// single-use link that redirects to the template's URLs, and sends the
    /// template's content with the link and SES's disclaimer.
    pub async fn send_custom_verification(
        &self,
        scope: &Scope,
        address: &str,
        template: &sesame_model::CustomVerificationTemplate,
    ) -> Result<String, Error> {
        let name = IdentityName::email(address)?;
        self.pacer.reserve(name.as_str())?;
        let redirect = Some(sesame_model::LinkRedirect {
            success: template.success_redirection_url.clone(),
            failure: template.failure_redirection_url.clone(),
        });
        let mut fresh = self.new_identity(name);
        let link = self.fresh_link(redirect.clone());
        fresh.email_link = Some(link.clone());
        let link = match self.insert(scope, &fresh).await? {
            Insert::Inserted => link,
            _ => {
                let updated = self
                    .modify(
                        scope,
                        address,
                        || not_found(address),
                        |i| {
                            i.email_link = Some(link.clone());
                            if !i.is_verified() {
                                i.verification_status = VerificationStatus::Pending;
                            }
                            Ok(())
                        },
                    )
                    .await?;
                updated.email_link.unwrap_or(link)
            }
        };
        let url = self
            .link_url(&link)
            .ok_or_else(|| Error::internal("verification links are not configured"))?;
        let html = format!(
            "{}\r\n<p><a href=\"{url}\">{url}</a></p>\r\n<p>{}</p>\r\n",
            template.content,
            sesame_model::custom_verification::DISCLAIMER
        );
        let text = format!(
            "Open this link to verify {address}:\r\n\r\n{url}\r\n\r\n{}\r\n",
            sesame_model::custom_verification::DISCLAIMER
        );
        self.send_system_mail(
            scope,
            "SendCustomVerificationEmail",
            &template.from_email_address,
            address,
            &template.subject,
            Some(&text),
            Some(&html),
            true,
        )
        .await
    }

    /// Opening a verification link: verifies its identity if the link is
    /// under 24 hours old, else marks it `Failed`. A link works once.
    pub async fn open_link(&self, token: &str) -> Result<LinkOutcome, Error> {
        let Some((scope, identity)) = self
            .store
            .find_identity_by_link(token)
            .await
            .map_err(internal)?
        else {
            return Ok(LinkOutcome::Unknown);
        };
        let now = self.clock.now_ms();
        let fresh = identity
            .email_link
            .as_ref()
            .is_some_and(|l| !l.expired(now));
        let name = identity.name.to_string();
        let redirect = identity
            .email_link
            .as_ref()
            .and_then(|l| l.redirect.clone());
        if identity
            .email_link
            .as_ref()
            .is_some_and(|l| l.used_at.is_some())
        {
            // Only links with redirects are kept once used: clicked again,
            // they are invalid and lead to the FailureRedirectionURL.
            return Ok(LinkOutcome::Used {
                redirect: redirect.map(|r| r.failure),
            });
        }
        self.modify(
            &scope,
            &name,
            || not_found(&name),
            |i| {
                if i.email_link.as_ref().map(|l| l.token.as_str()) != Some(token) {
                    return Err(not_found(&name));
                }
                match &mut i.email_link {
                    Some(l) if l.redirect.is_some() => l.used_at = Some(now),
                    _ => i.email_link = None,
                }
                i.verification_status = if fresh {
                    VerificationStatus::Success
                } else {
                    VerificationStatus::Failed
                };
                Ok(())
            },
        )
        .await?;
        Ok(if fresh {
            LinkOutcome::Verified {
                identity: name,
                region: scope.region.to_string(),
                redirect: redirect.map(|r| r.success),
            }
        } else {
            LinkOutcome::Expired {
                identity: name,
                redirect: redirect.map(|r| r.failure),
            }
        })
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
            version: 0,
        }
    }

    /// Sets up Easy DKIM on `identity` with a freshly generated key.
    async fn easy_dkim(&self, identity: &mut Identity, length: KeyLength) -> Result<(), Error> {
        let key = dkim_keys::generate(length).await?;
        let now = self.clock.now_ms();
        let d = &mut identity.dkim;
        d.origin = DkimOrigin::AwsSes;
        if d.tokens.is_empty() {
            d.tokens = (0..3).map(|_| random::dkim_token()).collect();
        }
        d.selector = None;
        d.key = Some(key);
        d.next_key_length = length;
        d.current_key_length = Some(length);
        d.last_key_generation = Some(now);
        d.signing_enabled = true;
        d.status = self.initial_status();
        identity.dns.dkim = Track::restart(now);
        Ok(())
    }

    fn byo_dkim(
        &self,
        identity: &mut Identity,
        selector: &str,
        private_key: &str,
    ) -> Result<(), Error> {
        check_selector(selector)?;
        let key = dkim_keys::from_private_b64(private_key)?;
        let d = &mut identity.dkim;
        d.current_key_length = match key.bits {
            1024 => Some(KeyLength::Rsa1024),
            2048 => Some(KeyLength::Rsa2048),
            _ => None,
        };
        d.origin = DkimOrigin::External;
        d.tokens = vec![];
        d.selector = Some(selector.to_owned());
        d.key = Some(key);
        d.last_key_generation = Some(self.clock.now_ms());
        d.signing_enabled = true;
        d.status = self.initial_status();
        identity.dns.dkim = Track::restart(self.clock.now_ms());
        Ok(())
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
            _ => Ok(identity.verification_token.unwrap_or_default()),
        }
    }

    /// v1 VerifyDomainDkim: creates the domain if needed and sets up Easy
    /// DKIM; returns the three tokens.
    pub async fn verify_domain_dkim(
        &self,
        scope: &Scope,
        domain: &str,
    ) -> Result<Vec<String>, Error> {
        let name = IdentityName::domain(domain)?;
        let mut fresh = self.new_identity(name.clone());
        self.easy_dkim(&mut fresh, KeyLength::Rsa2048).await?;
        match self.insert(scope, &fresh).await? {
            Insert::Inserted => Ok(fresh.dkim.tokens),
            Insert::Exists(existing)
                if existing.dkim.origin == DkimOrigin::AwsSes
                    && !existing.dkim.tokens.is_empty() =>
            {
                Ok(existing.dkim.tokens)
            }
            Insert::Exists(_) => {
                let dkim = fresh.dkim.clone();
                let updated = self
                    .modify(
                        scope,
                        name.as_str(),
                        || not_found(name.as_str()),
                        |i| {
                            i.dkim = dkim.clone();
                            Ok(())
                        },
                    )
                    .await?;
                Ok(updated.dkim.tokens)
            }
            Insert::LimitReached => unreachable!("insert maps LimitReached to an error"),
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
        self.store
            .delete_identity(scope, &lookup_key(name))
            .await
            .map_err(internal)
    }

    /// v1 SetIdentityDkimEnabled and v2 PutEmailIdentityDkimAttributes.
    /// Enabling needs DKIM set up on the domain (for an address: on its domain).
    pub async fn set_dkim_enabled(
        &self,
        scope: &Scope,
        name: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        let key = lookup_key(name);
        let domain = key
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or(key.clone());
        if enabled && key.contains('@') {
            let parent = self
                .store
                .get_identity(scope, &domain)
                .await
                .map_err(internal)?;
            if !parent.is_some_and(|p| p.dkim.is_set_up()) {
                return Err(not_dkim_verified(&domain));
            }
        }
        self.modify(
            scope,
            &key,
            || not_dkim_verified(&domain),
            |i| {
                if enabled && i.kind() == IdentityKind::Domain && !i.dkim.is_set_up() {
                    return Err(not_dkim_verified(&domain));
                }
                i.dkim.signing_enabled = enabled;
                Ok(())
            },
        )
        .await?;
        Ok(())
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
            // Sesame has no configuration sets yet, so none can be named.
            return Err(Error::not_found(format!(
                "Configuration set <{cs}> does not exist."
            )));
        }
        let mut identity = self.new_identity(name);
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

    /// v2 PutEmailIdentityDkimSigningAttributes: switch between Easy DKIM
    /// and BYODKIM, or change Easy DKIM's key length (at most once a day).
    pub async fn put_dkim_signing(
        &self,
        scope: &Scope,
        name: &str,
        req: DkimRequest,
    ) -> Result<Identity, Error> {
        let current = self.get(scope, name).await?;
        if current.kind() != IdentityKind::Domain {
            return Err(Error::invalid(format!(
                "DKIM signing attributes can only be set on a domain identity; {name} is an email address."
            )));
        }
        let now = self.clock.now_ms();
        let mut staged = current.clone();
        match &req {
            DkimRequest::External {
                selector,
                private_key,
            } => self.byo_dkim(&mut staged, selector, private_key)?,
            DkimRequest::Easy(len) => {
                let d = &current.dkim;
                let easy_now = d.origin == DkimOrigin::AwsSes && d.key.is_some();
                let wanted = len.unwrap_or(d.next_key_length);
                if easy_now {
                    match len {
                        None => return Ok(current),
                        Some(l) if *l == d.next_key_length => {
                            return Err(Error::invalid(format!(
                                "The input you provided is invalid: the signing key length is already {} bits.",
                                l.bits()
                            )));
                        }
                        Some(_) => {
                            if d.key_length_changed_at.is_some_and(|t| now - t < DAY_MS) {
                                return Err(Error::invalid(
                                    "The input you provided is invalid: the signing key length can be changed only once every 24 hours.",
                                ));
                            }
                        }
                    }
                }
                self.easy_dkim(&mut staged, wanted).await?;
                if easy_now {
                    staged.dkim.key_length_changed_at = Some(now);
                }
            }
        }
        let dkim = staged.dkim;
        self.modify(
            scope,
            name,
            || not_found(name),
            |i| {
                i.dkim = dkim.clone();
                Ok(())
            },
        )
        .await
    }

    /// v1 SetIdentityMailFromDomain and v2 PutEmailIdentityMailFromAttributes:
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

fn check_selector(s: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid DKIM selector {s}: it must be 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen."
        )))
    }
}

#[cfg(test)]
mod tests;
