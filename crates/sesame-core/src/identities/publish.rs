//! Publishing an identity's DNS records to the operator's own
//! authoritative server, as Route 53 publishes them for SES users whose
//! domain it hosts: one RFC 2136 dynamic update signed with TSIG (sent by
//! `sesame-dns`), the records it added kept on the identity, withdrawn
//! (those only) when the identity is deleted, and the domain checked at
//! once afterwards.

use super::*;
use sesame_model::identity::PublishedRecord;
use sesame_model::verification::DnsPublishing;
use std::time::Duration;

/// The operator's primary DNS server, updated by RFC 2136 with TSIG.
#[async_trait::async_trait]
pub trait RecordPublisher: Send + Sync + 'static {
    /// Adds the records under `domain` in one update; why not, with the
    /// server's rcode.
    async fn add(&self, domain: &str, records: &[PublishedRecord]) -> Result<(), String>;
    /// Deletes exactly these records in one update.
    async fn remove(&self, domain: &str, records: &[PublishedRecord]) -> Result<(), String>;
}

/// How identities' records are published.
#[derive(Clone)]
pub struct Publishing {
    pub publisher: Arc<dyn RecordPublisher>,
    /// Which records an identity has (the DKIM zone, the MAIL FROM host).
    pub records: DnsPublishing,
    /// `[dns.publish] on_create`: a new domain's records are published when
    /// it is created.
    pub on_create: bool,
    /// Checks the domain at once after a publish.
    pub verifier: Option<Arc<crate::Verifier>>,
}

/// How long publishing on creation may hold up the creating call.
const ON_CREATE_WAIT: Duration = Duration::from_secs(5);

impl IdentityService {
    /// Publishes through `p` (`sesame identities publish`, and on creation
    /// when `p.on_create`).
    pub fn with_publishing(mut self, p: Publishing) -> Self {
        self.publishing = Some(p);
        self
    }

    /// [`Self::with_publishing`] when the operator set a server up.
    pub fn with_publishing_if(self, p: Option<Publishing>) -> Self {
        match p {
            Some(p) => self.with_publishing(p),
            None => self,
        }
    }

    /// `sesame identities publish`: sends a domain identity's records (the
    /// `_amazonses` TXT, the DKIM CNAMEs or TXT keys, the MAIL FROM MX and
    /// SPF) to the operator's server in one update, records what it added,
    /// and has the verifier check the domain at once.
    pub async fn publish(&self, scope: &Scope, name: &str) -> Result<Identity, Error> {
        let p = self.publishing.as_ref().ok_or_else(|| {
            Error::invalid(
                "No DNS server to publish to is configured (--dns-update-server or [dns.publish]).",
            )
        })?;
        let identity = self.get(scope, name).await?;
        if identity.kind() != IdentityKind::Domain {
            return Err(Error::invalid(format!(
                "{name} is an email address: it is verified by the link emailed to it, not by DNS."
            )));
        }
        let records: Vec<PublishedRecord> = identity
            .dns_records(&p.records)
            .iter()
            .map(PublishedRecord::from)
            .collect();
        let domain = identity.name.as_str().to_owned();
        p.publisher.add(&domain, &records).await.map_err(|why| {
            tracing::warn!(%domain, %why, "the DNS server refused the records' update");
            Error::invalid(format!(
                "The DNS server refused to publish the records of {domain}: {why}"
            ))
        })?;
        tracing::info!(%domain, records = records.len(), "records published by dynamic update");
        let mut updated = self
            .modify(
                scope,
                &domain,
                || not_found(&domain),
                |i| {
                    for r in &records {
                        if !i.published.contains(r) {
                            i.published.push(r.clone());
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        if let Some(v) = &p.verifier {
            updated = v.check(scope, &domain).await?;
        }
        Ok(updated)
    }

    /// After a domain identity is created: publishes its records when the
    /// operator asked for that. A failure is logged with the server's
    /// answer and leaves the identity as it is (the call that created it
    /// still succeeds, as SES's does when Route 53 is not involved).
    pub(super) async fn publish_new(&self, scope: &Scope, identity: &Identity) {
        let Some(p) = &self.publishing else {
            return;
        };
        if !p.on_create || identity.kind() != IdentityKind::Domain {
            return;
        }
        let name = identity.name.as_str();
        match tokio::time::timeout(ON_CREATE_WAIT, self.publish(scope, name)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(domain = %name, error = %e.message, "records not published on creation");
            }
            Err(_) => {
                tracing::warn!(domain = %name, "records not published on creation: the DNS server did not answer in time");
            }
        }
    }

    /// Before an identity is deleted: withdraws the records Sesame
    /// published for it, and only those. A failure is logged.
    pub(super) async fn withdraw(&self, identity: &Identity) {
        let (Some(p), false) = (&self.publishing, identity.published.is_empty()) else {
            return;
        };
        let domain = identity.name.as_str();
        match p.publisher.remove(domain, &identity.published).await {
            Ok(()) => {
                tracing::info!(%domain, records = identity.published.len(), "published records withdrawn");
            }
            Err(why) => {
                tracing::warn!(%domain, %why, "published records not withdrawn: remove them by hand");
            }
        }
    }
}
