//! Accepted messages and refused sends, as the use cases hand them to the
//! store and read them back.

use crate::Millis;
use crate::scope::Scope;
use serde::{Deserialize, Serialize};

/// A message accepted for delivery: the envelope and the full MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// SES-format MessageId.
    pub id: String,
    /// The operation that sent it (`SendEmail`, `SendRawEmail`, …).
    pub operation: String,
    /// Envelope sender (MAIL FROM) address.
    pub source: String,
    /// Envelope recipients (RCPT TO) addresses.
    pub destinations: Vec<String>,
    pub subject: Option<String>,
    pub created_at: Millis,
    pub raw: Vec<u8>,
    /// The configuration set, tags and headers its events carry.
    pub meta: crate::delivery::MessageMeta,
    /// Events recorded in the acceptance's own transaction (a Send event,
    /// when a configuration set publishes them).
    pub events: Vec<crate::delivery::Event>,
}

/// A stored message with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub scope: Scope,
    pub message: NewMessage,
}

/// The quota rules one acceptance must respect, decided by the use case and
/// applied atomically by the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaCheck {
    pub now: Millis,
    /// Recipients per rolling 24 hours; negative means unlimited.
    pub max_24h: f64,
    /// Recipients per second.
    pub max_rate: f64,
    /// Recipients that count toward the daily quota (simulator ones do not).
    pub daily_recipients: u32,
    /// Recipients that count toward the send rate (all of them).
    pub rate_recipients: u32,
}

/// What the store decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accepted,
    DailyQuotaExceeded,
    RateExceeded,
}

/// Why a send was refused, recorded for explanations later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub created_at: Millis,
    /// The API request refused (`x-amzn-RequestId`), when known.
    #[serde(default)]
    pub request_id: Option<String>,
    pub operation: String,
    /// The wire-neutral rule that refused it, e.g. `sandbox-recipient-not-verified`.
    pub rule: String,
    /// The message SES's error carried.
    pub message: String,
    /// The identities (or addresses) the rule names.
    pub identities: Vec<String>,
    /// The senders refused as senders (not verified, or their MAIL FROM
    /// domain not verified); recipients the sandbox refused are not here.
    #[serde(default)]
    pub senders: Vec<String>,
}

/// Filters for listing captured messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub recipient: Option<String>,
    pub sender: Option<String>,
    pub account: Option<String>,
    pub limit: u32,
}
