//! What the compliance audit finds (`sesame-core`'s `audit.rs` looks).

use crate::{Millis, Scope};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// An identity that is not verified.
    Unverified,
    /// A sender refused (not verified, or its MAIL FROM domain not
    /// verified) in the last 24 hours.
    RefusedSender,
    /// A verified domain that does not sign with DKIM.
    NoDkim,
    /// A custom MAIL FROM domain that is not verified.
    MailFromUnverified,
    /// In production, bounces or complaints of an identity reach nobody:
    /// no topic, feedback forwarding off, and no destination of its
    /// default configuration set publishes them.
    NoFeedback,
}

impl FindingKind {
    pub const ALL: [FindingKind; 5] = [
        Self::Unverified,
        Self::RefusedSender,
        Self::NoDkim,
        Self::MailFromUnverified,
        Self::NoFeedback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverified => "unverified",
            Self::RefusedSender => "refused-sender",
            Self::NoDkim => "no-dkim",
            Self::MailFromUnverified => "mail-from-unverified",
            Self::NoFeedback => "no-feedback",
        }
    }
}

/// One thing the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub scope: Scope,
    /// The identity (or refused address) it is about.
    pub subject: String,
    /// What is wrong, in a sentence.
    pub detail: String,
    /// How long the identity has existed, for unverified ones.
    pub age_ms: Option<Millis>,
    /// The verifier's diagnosis, most useful first.
    pub diagnosis: Vec<String>,
}
