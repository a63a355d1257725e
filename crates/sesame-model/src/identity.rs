//! Identities: the email addresses and domains an account may send from.
//!
//! SES's naming rules live here: domains are case-insensitive (stored
//! lower-case), email addresses are case-sensitive (stored as given), DNS
//! labels are at most 63 characters and names at most 255.

use crate::Millis;
use crate::error::{Error, Result};
use crate::tags::Tag;
use crate::verification::{DnsPublishing, DnsState, Expected, ExpectedValue, RecordType};
use serde::{Deserialize, Serialize};
use std::fmt;

/// SES's limit of identities (addresses and domains together) per account and region.
pub const MAX_IDENTITIES: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityKind {
    EmailAddress,
    Domain,
}

/// A parsed identity name. Constructed only through [`IdentityName::parse`]
/// and its siblings, so every value in the system obeys SES's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityName {
    /// An email address, exactly as given (case-sensitive).
    Email(String),
    /// A domain, lower-case, without a trailing dot.
    Domain(String),
}

impl IdentityName {
    /// Parses an identity as SESv2 does: with an `@` it is an address, else a domain.
    pub fn parse(s: &str) -> Result<Self> {
        if s.contains('@') {
            Self::email(s)
        } else {
            Self::domain(s)
        }
    }

    /// Parses an email address identity. SES answers a bad one with
    /// `Invalid email address<value>.` (observed on VerifyEmailIdentity).
    pub fn email(s: &str) -> Result<Self> {
        let invalid = || Error::invalid(format!("Invalid email address{s}."));
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || s.len() > 320 {
            return Err(invalid());
        }
        if local.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(
                "Local address contains control or whitespace",
            ));
        }
        if local.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"', '@']) {
            return Err(Error::invalid("Local address contains illegal character"));
        }
        if domain.is_empty() {
            return Err(Error::invalid("Missing domain"));
        }
        check_domain(domain)?;
        Ok(Self::Email(s.to_owned()))
    }

    /// Parses a domain identity; stored lower-case.
    pub fn domain(s: &str) -> Result<Self> {
        let s = s.strip_suffix('.').unwrap_or(s);
        check_domain(s)?;
        Ok(Self::Domain(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(s) | Self::Domain(s) => s,
        }
    }

    pub fn kind(&self) -> IdentityKind {
        match self {
            Self::Email(_) => IdentityKind::EmailAddress,
            Self::Domain(_) => IdentityKind::Domain,
        }
    }

    /// The domain an address is at, lower-case; a domain's own name.
    pub fn domain_part(&self) -> String {
        match self {
            Self::Email(s) => s
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or(s)
                .to_ascii_lowercase(),
            Self::Domain(d) => d.clone(),
        }
    }

    /// The domain itself and every parent domain, most specific first
    /// (`a.b.example.com`, `b.example.com`, `example.com`, `com`).
    pub fn domain_ancestors(&self) -> Vec<String> {
        let d = self.domain_part();
        let mut out = vec![];
        let mut rest = d.as_str();
        loop {
            out.push(rest.to_owned());
            match rest.split_once('.') {
                Some((_, r)) if !r.is_empty() => rest = r,
                _ => break,
            }
        }
        out
    }
}

impl fmt::Display for IdentityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn check_domain(d: &str) -> Result<()> {
    if d.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid("Domain contains control or whitespace"));
    }
    let invalid = || Error::invalid(format!("Invalid domain name <{d}>."));
    if d.is_empty() || d.len() > 255 {
        return Err(invalid());
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid());
        }
    }
    Ok(())
}

/// The identity whose settings govern mail from an address (its custom
/// MAIL FROM domain, its DKIM signing): the most specific verified one of
/// those covering the address, given most specific first (the order of
/// `Mailbox::covering_identities`: the address, then its domain, then each
/// parent). The one place this is decided, at send time and at delivery.
pub fn most_specific_verified<'a, I>(
    covering: impl IntoIterator<Item = &'a I>,
) -> Option<&'a Identity>
where
    I: std::borrow::Borrow<Identity> + 'a,
{
    covering
        .into_iter()
        .map(std::borrow::Borrow::borrow)
        .find(|i: &&Identity| i.is_verified())
}

/// Verification status, shared by identities and DKIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerificationStatus {
    Pending,
    Success,
    Failed,
    TemporaryFailure,
    NotStarted,
}

impl VerificationStatus {
    /// The domain's name for the status (also its stored form). Each API's
    /// spelling is the wire layer's.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Success => "Success",
            Self::Failed => "Failed",
            Self::TemporaryFailure => "TemporaryFailure",
            Self::NotStarted => "NotStarted",
        }
    }
}

/// Where an identity's DKIM key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DkimOrigin {
    /// Easy DKIM: Sesame made the key and publishes it under three tokens.
    AwsSes,
    /// BYODKIM: the user brought the key and publishes it under a selector.
    External,
}

impl DkimOrigin {
    /// The domain's name for where the key comes from.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsSes => "Easy DKIM",
            Self::External => "BYODKIM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyLength {
    Rsa1024,
    Rsa2048,
}

impl KeyLength {
    pub fn bits(self) -> usize {
        match self {
            Self::Rsa1024 => 1024,
            Self::Rsa2048 => 2048,
        }
    }
}

/// A DKIM signing key: PKCS#8 DER private key and SubjectPublicKeyInfo DER
/// public key, both base64 (the public one is what goes after `p=` in DNS).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimSigningKey {
    pub private_pkcs8_b64: String,
    pub public_spki_b64: String,
    pub bits: usize,
}

impl fmt::Debug for DkimSigningKey {
    // The private key never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigningKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// An identity's DKIM state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimState {
    pub signing_enabled: bool,
    pub status: VerificationStatus,
    pub origin: DkimOrigin,
    /// Easy DKIM's three tokens (empty for BYODKIM and email addresses).
    pub tokens: Vec<String>,
    /// BYODKIM's selector.
    pub selector: Option<String>,
    pub key: Option<DkimSigningKey>,
    pub next_key_length: KeyLength,
    pub current_key_length: Option<KeyLength>,
    pub last_key_generation: Option<Millis>,
    /// When the key length was last changed on request, for SES's
    /// once-per-24-hours rule.
    pub key_length_changed_at: Option<Millis>,
}

impl DkimState {
    /// DKIM as an email address identity or a v1-verified domain starts:
    /// not set up.
    pub fn not_started(next_key_length: KeyLength) -> Self {
        Self {
            signing_enabled: false,
            status: VerificationStatus::NotStarted,
            origin: DkimOrigin::AwsSes,
            tokens: vec![],
            selector: None,
            key: None,
            next_key_length,
            current_key_length: None,
            last_key_generation: None,
            key_length_changed_at: None,
        }
    }
    pub fn is_set_up(&self) -> bool {
        self.status != VerificationStatus::NotStarted
    }
}

/// An identity and everything SES keeps about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: IdentityName,
    pub created_at: Millis,
    pub verification_status: VerificationStatus,
    /// The `_amazonses` TXT token; domains only.
    pub verification_token: Option<String>,
    pub dkim: DkimState,
    pub feedback_forwarding: bool,
    pub configuration_set: Option<String>,
    pub tags: Vec<Tag>,
    /// The outstanding verification link of an email address identity.
    #[serde(default)]
    pub email_link: Option<EmailLink>,
    /// The custom MAIL FROM domain, if any.
    #[serde(default)]
    pub mail_from: MailFrom,
    /// What the DNS verifier found, and when.
    #[serde(default)]
    pub dns: DnsState,
    /// The SNS topics its bounces, complaints and deliveries go to.
    #[serde(default)]
    pub notifications: Notifications,
    /// The records Sesame published for it by dynamic update (`sesame
    /// identities publish`, `[dns.publish]`), which deleting it withdraws.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<PublishedRecord>,
    /// Optimistic-concurrency version, bumped by the store on each update.
    pub version: i64,
}

/// An identity's notification settings (SetIdentityNotificationTopic,
/// SetIdentityHeadersInNotificationsEnabled): a topic per notification
/// type, and whether the message's headers go with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    pub bounce_topic: Option<String>,
    pub complaint_topic: Option<String>,
    pub delivery_topic: Option<String>,
    pub headers_in_bounce: bool,
    pub headers_in_complaint: bool,
    pub headers_in_delivery: bool,
}

impl Notifications {
    /// The topic and header setting for an event of `kind`, if it has one.
    pub fn topic_for(&self, kind: crate::EventKind) -> Option<(&str, bool)> {
        use crate::EventKind as K;
        match kind {
            K::Bounce => self
                .bounce_topic
                .as_deref()
                .map(|t| (t, self.headers_in_bounce)),
            K::Complaint => self
                .complaint_topic
                .as_deref()
                .map(|t| (t, self.headers_in_complaint)),
            K::Delivery => self
                .delivery_topic
                .as_deref()
                .map(|t| (t, self.headers_in_delivery)),
            _ => None,
        }
    }

    /// Sets or clears one kind's topic (bounce, complaint or delivery).
    pub fn set_topic(&mut self, kind: crate::EventKind, topic: Option<String>) {
        use crate::EventKind as K;
        match kind {
            K::Bounce => self.bounce_topic = topic,
            K::Complaint => self.complaint_topic = topic,
            K::Delivery => self.delivery_topic = topic,
            _ => {}
        }
    }

    pub fn set_headers(&mut self, kind: crate::EventKind, on: bool) {
        use crate::EventKind as K;
        match kind {
            K::Bounce => self.headers_in_bounce = on,
            K::Complaint => self.headers_in_complaint = on,
            K::Delivery => self.headers_in_delivery = on,
            _ => {}
        }
    }

    /// Whether bounces and complaints both have a topic: only then may
    /// feedback forwarding by email be turned off, as in SES.
    pub fn covers_feedback(&self) -> bool {
        self.bounce_topic.is_some() && self.complaint_topic.is_some()
    }

    /// SES's rule: feedback forwarding may go off only once bounces and
    /// complaints have topics.
    pub fn check_forwarding(&self, identity: &str, enabled: bool) -> Result<()> {
        if !enabled && !self.covers_feedback() {
            return Err(Error::invalid(format!(
                "Feedback forwarding cannot be disabled for identity {identity}: set SNS topics for its bounce and complaint notifications first."
            )));
        }
        Ok(())
    }
}

/// An identity's custom MAIL FROM setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailFrom {
    /// A subdomain of the identity's domain; `None` uses the default.
    pub domain: Option<String>,
    /// `Pending` until its MX record is found; never `NotStarted` while set.
    pub status: Option<VerificationStatus>,
    /// `RejectMessage` (true) or `UseDefaultValue` (false) while the
    /// domain is not verified.
    pub reject_on_mx_failure: bool,
}

impl MailFrom {
    /// The domain to use for return paths, when it is set and verified.
    pub fn verified_domain(&self) -> Option<&str> {
        match (&self.domain, self.status) {
            (Some(d), Some(VerificationStatus::Success)) => Some(d),
            _ => None,
        }
    }
    /// Whether sending must be refused: set, not verified, and the
    /// behaviour on MX failure is to reject.
    pub fn rejects_sending(&self) -> bool {
        self.domain.is_some()
            && self.reject_on_mx_failure
            && self.status != Some(VerificationStatus::Success)
    }
}

/// How long a verification link works, as in SES.
pub const EMAIL_LINK_TTL_MS: Millis = 24 * 3600 * 1000;

/// A single-use verification link sent to an email address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailLink {
    /// At least 128 random bits, URL-safe.
    pub token: String,
    pub sent_at: Millis,
    /// Where to send the user after the click, for a link sent by
    /// SendCustomVerificationEmail.
    #[serde(default)]
    pub redirect: Option<LinkRedirect>,
    /// When it was opened, for a link kept after use (one with a redirect).
    #[serde(default)]
    pub used_at: Option<Millis>,
}

/// A custom verification template's redirection URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRedirect {
    pub success: String,
    pub failure: String,
}

impl EmailLink {
    /// Whether the link is more than 24 hours old at `now`.
    pub fn expired(&self, now: Millis) -> bool {
        now - self.sent_at > EMAIL_LINK_TTL_MS
    }
}

impl fmt::Debug for EmailLink {
    // The token is a credential for the identity; it never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailLink")
            .field("sent_at", &self.sent_at)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn kind(&self) -> IdentityKind {
        self.name.kind()
    }
    /// Verified for sending: `Success`, or `TemporaryFailure`, the 72-hour
    /// grace a verified domain gets when its records disappear.
    pub fn is_verified(&self) -> bool {
        matches!(
            self.verification_status,
            VerificationStatus::Success | VerificationStatus::TemporaryFailure
        )
    }
    /// A pending address whose link is older than 24 hours and was never
    /// opened: SES counts its verification as failed.
    pub fn link_expired(&self, now: Millis) -> bool {
        self.verification_status == VerificationStatus::Pending
            && self.email_link.as_ref().is_some_and(|l| l.expired(now))
    }
    /// SES resource name segment: `identity/{name}`.
    pub fn resource(&self) -> String {
        format!("identity/{}", self.name)
    }

    /// The DNS records a domain owner publishes for this identity: the
    /// `_amazonses` verification TXT; for Easy DKIM a CNAME per token to
    /// Sesame's DKIM zone, or (with no zone served) the public key as a TXT
    /// under each token; for BYODKIM the key under the selector; for a
    /// custom MAIL FROM domain its MX and SPF records (the only records of
    /// an email address identity).
    pub fn dns_records(&self, publishing: &DnsPublishing) -> Vec<DnsRecord> {
        let checks = self.dns_checks(publishing);
        let mut out: Vec<DnsRecord> = checks
            .identity
            .into_iter()
            .chain(checks.dkim.into_iter().map(|(e, _)| e))
            .chain(checks.mail_from)
            .map(|e| DnsRecord {
                name: e.name,
                kind: e.kind.as_str(),
                // An MX record's value carries its preference.
                value: match e.kind {
                    RecordType::Mx => format!("10 {}", e.value.shown()),
                    _ => e.value.shown(),
                },
            })
            .collect();
        if let Some(d) = &self.mail_from.domain {
            out.push(DnsRecord {
                name: d.clone(),
                kind: "TXT",
                value: publishing.spf(),
            });
        }
        out
    }

    /// What the DNS verifier looks for. Each DKIM check carries the TXT
    /// alternative to its CNAME (the key itself under the token's name).
    pub fn dns_checks(&self, publishing: &DnsPublishing) -> DnsChecks {
        let mut out = DnsChecks::default();
        if let Some(d) = &self.mail_from.domain {
            out.mail_from = Some(Expected {
                name: d.clone(),
                kind: RecordType::Mx,
                value: ExpectedValue::Exact(publishing.mail_from_mx.clone()),
            });
        }
        // An email address is verified by its link; only its custom MAIL
        // FROM domain is checked in DNS.
        if self.kind() != IdentityKind::Domain {
            return out;
        }
        let domain = self.name.as_str();
        if let Some(token) = &self.verification_token {
            out.identity = Some(Expected {
                name: format!("_amazonses.{domain}"),
                kind: RecordType::Txt,
                value: ExpectedValue::Exact(token.clone()),
            });
        }
        if let Some(key) = &self.dkim.key {
            let key_txt = |s: &str| Expected {
                name: format!("{s}._domainkey.{domain}"),
                kind: RecordType::Txt,
                value: ExpectedValue::DkimKey(key.public_spki_b64.clone()),
            };
            match self.dkim.origin {
                DkimOrigin::AwsSes => {
                    for t in &self.dkim.tokens {
                        out.dkim.push(match &publishing.cname_zone {
                            Some(zone) => (
                                Expected {
                                    name: format!("{t}._domainkey.{domain}"),
                                    kind: RecordType::Cname,
                                    value: ExpectedValue::Exact(format!("{t}.{zone}")),
                                },
                                Some(key_txt(t)),
                            ),
                            None => (key_txt(t), None),
                        });
                    }
                }
                DkimOrigin::External => {
                    out.dkim
                        .extend(self.dkim.selector.iter().map(|s| (key_txt(s), None)));
                }
            }
        }
        out
    }
}

/// The records a domain identity's verification looks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsChecks {
    /// The `_amazonses` TXT record.
    pub identity: Option<Expected>,
    /// One per Easy DKIM token or BYODKIM selector, with an accepted
    /// alternative.
    pub dkim: Vec<(Expected, Option<Expected>)>,
    /// The custom MAIL FROM domain's MX record.
    pub mail_from: Option<Expected>,
}

/// One DNS record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    /// `TXT`, `CNAME`, `MX`.
    pub kind: &'static str,
    pub value: String,
}

/// A record Sesame published to the operator's DNS for an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRecord {
    pub name: String,
    /// `TXT`, `CNAME`, `MX`.
    pub kind: String,
    pub value: String,
}

impl From<&DnsRecord> for PublishedRecord {
    fn from(r: &DnsRecord) -> Self {
        Self {
            name: r.name.clone(),
            kind: r.kind.to_owned(),
            value: r.value.clone(),
        }
    }
}

/// The records as SES's console downloads them ("Download .csv record
/// set"): a `Type,Name,Value` header, then a row each, quoted as CSV.
pub fn records_csv(records: &[DnsRecord]) -> String {
    let quote = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_owned()
        }
    };
    let mut out = String::from("Type,Name,Value\r\n");
    for r in records {
        out.push_str(&format!(
            "{},{},{}\r\n",
            r.kind,
            quote(&r.name),
            quote(&r.value)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lowercased_and_emails_kept() {
        assert_eq!(
            IdentityName::parse("Example.COM").unwrap(),
            IdentityName::Domain("example.com".into())
        );
        assert_eq!(
            IdentityName::parse("Sender@EXAMPLE.com").unwrap(),
            IdentityName::Email("Sender@EXAMPLE.com".into())
        );
    }

    #[test]
    fn domain_rules() {
        assert!(IdentityName::domain(&format!("{}.com", "a".repeat(63))).is_ok());
        assert!(IdentityName::domain(&format!("{}.com", "a".repeat(64))).is_err());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > 255);
        assert!(IdentityName::domain(&long).is_err());
        assert_eq!(
            IdentityName::domain("exa mple.com").unwrap_err().message,
            "Domain contains control or whitespace"
        );
        assert!(IdentityName::domain("a..b").is_err());
        assert!(IdentityName::domain("-a.com").is_err());
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            IdentityName::email("<STUB>").unwrap_err().message,
            "Invalid email address<STUB>."
        );
        assert_eq!(
            IdentityName::email("a@").unwrap_err().message,
            "Missing domain"
        );
        assert_eq!(
            IdentityName::email("a b@x.com").unwrap_err().message,
            "Local address contains control or whitespace"
        );
        assert!(IdentityName::email("user+label@example.com").is_ok());
    }

    #[test]
    fn ancestors() {
        let n = IdentityName::parse("u@a.b.Example.com").unwrap();
        assert_eq!(
            n.domain_ancestors(),
            vec!["a.b.example.com", "b.example.com", "example.com", "com"]
        );
    }
}
