//! Verification emails and their links: pacing, sending (through the send
//! path, as system mail), custom verification emails, and opening a link.

use super::*;

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
pub(super) fn expire(mut i: Identity, now: Millis) -> Identity {
    if i.link_expired(now) {
        i.verification_status = VerificationStatus::Failed;
    }
    i
}

impl IdentityService {
    /// Takes `name`'s turn for a verification email before anything is
    /// written, when asking for it would send one: an email address that
    /// is not verified in `scope`, while links are sent.
    pub(super) async fn pace(&self, scope: &Scope, name: &IdentityName) -> Result<(), Error> {
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
    pub(super) fn new_link(&self, identity: &mut Identity) -> bool {
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

    pub(super) fn fresh_link(
        &self,
        redirect: Option<sesame_model::LinkRedirect>,
    ) -> sesame_model::EmailLink {
        sesame_model::EmailLink {
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::bytes::<32>()),
            sent_at: self.clock.now_ms(),
            redirect,
            used_at: None,
        }
    }

    /// The URL of `link`.
    pub(super) fn link_url(&self, link: &sesame_model::EmailLink) -> Option<String> {
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
    pub(super) async fn send_link(&self, scope: &Scope, identity: &Identity) -> Result<(), Error> {
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
            vec![],
        )
        .await?;
        Ok(())
    }

    /// Sends a message of Sesame's own (verification mail) from `from`
    /// to `to` through the send path; returns its MessageId.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send_system_mail(
        &self,
        scope: &Scope,
        operation: &'static str,
        from: &str,
        to: &str,
        subject: &str,
        text: Option<&str>,
        html: Option<&str>,
        counts_against_quota: bool,
        attachments: Vec<crate::compose::Attachment>,
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
                attachments,
            },
        );
        out.source = Some(from.to_owned());
        out.to = vec![to.to_owned()];
        out.system = Some(crate::sending::SystemMail {
            counts_against_quota,
        });
        mailer.send(scope, out).await
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
        // Embedded `data:` images travel as inline parts, as SES sends them.
        let (content, images) = crate::custom_verification::inline_images(&template.content)?;
        let html = format!(
            "{content}\r\n<p><a href=\"{url}\">{url}</a></p>\r\n<p>{}</p>\r\n",
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
            images,
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
}
