//! Delivery: the outbound queue's records, what a delivery attempt can
//! report per recipient, the retry schedule, the mailbox simulator's
//! outcomes, and the events (delivery, bounce, complaint) delivery records
//! with SES's fields.

use crate::Millis;
use crate::address::SIMULATOR_DOMAIN;
use crate::message::NewMessage;
use crate::scope::Scope;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An envelope recipient's domain as written (compare it ASCII case-blind),
/// empty when it has none.
pub fn recipient_domain(recipient: &str) -> &str {
    recipient
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>'))
        .unwrap_or_default()
}

/// Groups envelope recipients by their domain (lower-cased), in first-seen
/// order. Each group is one delivery in the queue.
pub fn group_by_domain(recipients: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![];
    for r in recipients {
        let domain = recipient_domain(r).to_ascii_lowercase();
        match out.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, v)) => v.push(r.clone()),
            None => out.push((domain, vec![r.clone()])),
        }
    }
    out
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Queued,
    /// Claimed by a delivery worker; an attempt is under way.
    Sending,
    /// Every recipient has been handed over.
    Delivered,
    /// Finished with at least one recipient that could not be delivered.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One claimed delivery: a message's recipients at one domain, with the
/// message itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDelivery {
    pub id: i64,
    pub scope: Scope,
    pub message_id: String,
    /// The envelope sender the message was accepted with.
    pub source: String,
    /// All of the message's recipients, for the event's `mail` object.
    pub destinations: Vec<String>,
    pub subject: Option<String>,
    pub domain: String,
    /// The recipients still to deliver at `domain`.
    pub recipients: Vec<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the message was accepted.
    pub accepted_at: Millis,
    /// The message as accepted, shared (not copied) by the deliveries of
    /// one message to its several domains.
    pub raw: bytes::Bytes,
    /// The operation that sent it.
    pub operation: String,
    pub meta: MessageMeta,
}

impl QueuedDelivery {
    /// The `mail` object of this delivery's events.
    pub fn mail(&self) -> MailInfo {
        MailInfo {
            source: self.source.clone(),
            destinations: self.destinations.clone(),
            subject: self.subject.clone(),
            sent_at: self.accepted_at,
            operation: self.operation.clone(),
            meta: self.meta.clone(),
            headers: None,
        }
    }
}

/// How a delivery attempt ends, recorded by the store in one transaction
/// together with its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryUpdate {
    /// Nothing is left to do: `failed` says whether any recipient failed.
    Finished { id: i64, failed: bool, at: Millis },
    /// Some recipients are to be tried again at `at`.
    Retry {
        id: i64,
        recipients: Vec<String>,
        at: Millis,
        error: String,
    },
}

/// A queue entry as `sesame queue` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: i64,
    pub scope: Scope,
    pub message_id: String,
    pub domain: String,
    pub recipients: Vec<String>,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    pub accepted_at: Millis,
    pub last_error: Option<String>,
    /// The node whose claim it is in flight under, where several nodes
    /// share the queue (`None` otherwise).
    pub claimed_by: Option<String>,
}

/// The queue at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSummary {
    pub queued: u64,
    pub sending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// When the oldest unfinished message was accepted.
    pub oldest_unfinished: Option<Millis>,
    /// The earliest scheduled attempt among queued deliveries.
    pub next_attempt: Option<Millis>,
}

/// The retry schedule: the first retry after `initial_ms`, then doubling up
/// to `max_interval_ms`, until the message is `max_age_ms` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial_ms: Millis,
    pub max_interval_ms: Millis,
    pub max_age_ms: Millis,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_ms: 60_000,
            max_interval_ms: 3_600_000,
            max_age_ms: 14 * 3_600_000,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failed attempts (1 = the first
    /// failed), or `None` when the message would be too old by then.
    /// This policy with its retries bounded by `max_age_ms` as well (a
    /// configuration set's MaxDeliverySeconds), never longer.
    pub fn within(&self, max_age_ms: Option<Millis>) -> Self {
        Self {
            max_age_ms: max_age_ms.map_or(self.max_age_ms, |m| m.min(self.max_age_ms)),
            ..*self
        }
    }

    pub fn next_attempt(&self, attempts: u32, now: Millis, accepted_at: Millis) -> Option<Millis> {
        let shift = attempts.saturating_sub(1).min(30);
        let delay = self
            .initial_ms
            .saturating_mul(1i64 << shift)
            .min(self.max_interval_ms)
            .max(1);
        let at = now.saturating_add(delay);
        (at - accepted_at <= self.max_age_ms).then_some(at)
    }
}

/// What happened to one recipient in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// The receiving server took responsibility for the message.
    Delivered { response: String },
    /// A transient failure; try again later.
    Deferred { reason: String },
    /// A permanent failure: `status` is the enhanced status (`5.1.1`),
    /// `diagnostic` the receiver's reply as SES reports it, and `sub_type`
    /// what the transport that heard it made of it (SES's bounce subtype).
    Failed {
        status: String,
        diagnostic: String,
        sub_type: BounceSubType,
    },
}

/// The result of one attempt at one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The host that answered (MX, relay, or a local name).
    pub remote: String,
    pub outcomes: Vec<(String, RecipientOutcome)>,
    /// The local address of the connection that carried the transaction,
    /// when there was one.
    pub local: Option<std::net::IpAddr>,
}

/// The same outcome for every recipient.
pub fn for_all(recipients: &[String], o: &RecipientOutcome) -> Vec<(String, RecipientOutcome)> {
    recipients.iter().map(|r| (r.clone(), o.clone())).collect()
}

impl AttemptReport {
    /// The same outcome for every recipient.
    pub fn all(remote: impl Into<String>, recipients: &[String], o: RecipientOutcome) -> Self {
        Self {
            remote: remote.into(),
            outcomes: for_all(recipients, &o),
            local: None,
        }
    }
}

/// What the mailbox simulator does for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatorScenario {
    Success,
    Bounce,
    OutOfOffice,
    Complaint,
    SuppressionList,
}

impl SimulatorScenario {
    /// The scenario for an address at the simulator domain, by its local
    /// part without a `+label`; `None` for any other domain. Unknown local
    /// parts are delivered, as SES does.
    pub fn for_address(address: &str) -> Option<Self> {
        let (local, domain) = address.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(SIMULATOR_DOMAIN) {
            return None;
        }
        let base = local
            .split('+')
            .next()
            .unwrap_or(local)
            .to_ascii_lowercase();
        Some(match base.as_str() {
            "bounce" => Self::Bounce,
            "ooto" => Self::OutOfOffice,
            "complaint" => Self::Complaint,
            "suppressionlist" => Self::SuppressionList,
            _ => Self::Success,
        })
    }
}

// ---------------------------------------------------------------- events

/// The kinds of event Sesame records and publishes, SES's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Send,
    /// SES rejects a message it finds a virus in; Sesame scans for none,
    /// so it records none, but a destination may still ask for them.
    Reject,
    Bounce,
    Complaint,
    Delivery,
    /// A 4xx deferral: the delivery is retried.
    DeliveryDelay,
    RenderingFailure,
    Open,
    Click,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        Self::Send,
        Self::Reject,
        Self::Bounce,
        Self::Complaint,
        Self::Delivery,
        Self::DeliveryDelay,
        Self::RenderingFailure,
        Self::Open,
        Self::Click,
    ];

    /// SES's `eventType` (note the space in `Rendering Failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "Send",
            Self::Reject => "Reject",
            Self::Bounce => "Bounce",
            Self::Complaint => "Complaint",
            Self::Delivery => "Delivery",
            Self::DeliveryDelay => "DeliveryDelay",
            Self::RenderingFailure => "Rendering Failure",
            Self::Open => "Open",
            Self::Click => "Click",
        }
    }
    /// The kind an `eventType` (or a filter naming one) names, in any case;
    /// `RenderingFailure` is accepted without the space.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("RenderingFailure") {
            return Some(Self::RenderingFailure);
        }
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
    /// Whether identity notifications (SetIdentityNotificationTopic) carry
    /// this kind: bounces, complaints and deliveries only.
    pub fn is_identity_notification(self) -> bool {
        matches!(self, Self::Bounce | Self::Complaint | Self::Delivery)
    }
}

/// SES's `bounceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BounceType {
    Permanent,
    Transient,
    Undetermined,
}

impl BounceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "Permanent",
            Self::Transient => "Transient",
            Self::Undetermined => "Undetermined",
        }
    }
}

/// SES's `bounceSubType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BounceSubType {
    General,
    NoEmail,
    Suppressed,
    OnAccountSuppressionList,
    MailboxFull,
    MessageTooLarge,
    ContentRejected,
    AttachmentRejected,
    Undetermined,
}

impl BounceSubType {
    /// SES's subtype for a permanent failure's enhanced status code (RFC
    /// 3463), whether an SMTP reply or a DSN reported it: the one place
    /// failures are classified.
    pub fn of_status(status: &str) -> Self {
        match status {
            "5.1.1" | "5.1.0" | "5.1.10" => Self::NoEmail,
            "5.2.2" => Self::MailboxFull,
            "5.3.4" | "5.2.3" => Self::MessageTooLarge,
            "5.7.1" => Self::ContentRejected,
            _ => Self::General,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "General",
            Self::NoEmail => "NoEmail",
            Self::Suppressed => "Suppressed",
            Self::OnAccountSuppressionList => "OnAccountSuppressionList",
            Self::MailboxFull => "MailboxFull",
            Self::MessageTooLarge => "MessageTooLarge",
            Self::ContentRejected => "ContentRejected",
            Self::AttachmentRejected => "AttachmentRejected",
            Self::Undetermined => "Undetermined",
        }
    }
}

/// One entry of SES's `bouncedRecipients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncedRecipient {
    pub address: String,
    /// `failed`, as in a DSN.
    pub action: String,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// e.g. `smtp; 550 5.1.1 user unknown`.
    pub diagnostic_code: String,
}

/// One entry of SES's `delayedRecipients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayedRecipient {
    pub address: String,
    pub status: String,
    pub diagnostic_code: String,
}

/// What an event says beyond its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventDetail {
    Send,
    Delivery {
        processing_time_ms: Millis,
        smtp_response: String,
        reporting_mta: String,
        remote_mta: String,
        /// The local address the message left from: SES's automatic
        /// `ses:outgoing-ip` tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outgoing_ip: Option<String>,
    },
    Bounce {
        bounce_type: BounceType,
        sub_type: BounceSubType,
        bounced: Vec<BouncedRecipient>,
        reporting_mta: String,
        feedback_id: String,
    },
    Complaint {
        feedback_type: String,
        user_agent: String,
        feedback_id: String,
    },
    DeliveryDelay {
        /// SES's `delayType`: `TransientCommunicationFailure`,
        /// `MailboxFull`, `RecipientServerError`, `General`, ….
        delay_type: String,
        delayed: Vec<DelayedRecipient>,
        /// When SES stops retrying.
        expires_at: Millis,
        reporting_mta: String,
    },
    RenderingFailure {
        template_name: String,
        error_message: String,
    },
    Open {
        ip_address: String,
        user_agent: String,
    },
    Click {
        ip_address: String,
        user_agent: String,
        link: String,
    },
}

/// What a message's events carry beyond its envelope: the configuration
/// set that publishes them, the send's tags, and the header addresses of
/// SES's `commonHeaders`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_set: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<crate::Tag>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Recipients on the suppression list when the message was accepted:
    /// they bounce (`OnAccountSuppressionList`) without a delivery attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<String>,
    /// The suppression reasons in force for the message (its configuration
    /// set's, else the account's): which of its bounces and complaints put
    /// their addresses on the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_for: Option<Vec<crate::suppression::Reason>>,
    /// TlsPolicy REQUIRE: delivered over TLS or not at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
    /// MaxDeliverySeconds: retries stop this long after acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delivery_ms: Option<Millis>,
    /// Open and click tracking, when its configuration set asks for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked: Option<Tracked>,
    /// The address the send request came from: SES's automatic
    /// `ses:source-ip` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
}

/// What tracking a message carries: the pixel, and the links its tracked
/// links redirect to, by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    pub opens: bool,
    pub clicks: bool,
    #[serde(default)]
    pub links: Vec<String>,
}

/// The message an event is about: SES's `mail` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailInfo {
    pub source: String,
    pub destinations: Vec<String>,
    pub subject: Option<String>,
    /// When the message was accepted.
    pub sent_at: Millis,
    /// The operation that sent it (`SendEmail`, …): SES's `ses:operation` tag.
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub meta: MessageMeta,
    /// The message's header fields, filled in when the event is published
    /// (never stored with it): `mail.headers` and `headersTruncated`.
    #[serde(skip)]
    pub headers: Option<(Vec<(String, String)>, bool)>,
}

impl MailInfo {
    /// The `mail` object of an accepted message's events.
    pub fn of(m: &NewMessage) -> Self {
        Self {
            source: m.source.clone(),
            destinations: m.destinations.clone(),
            subject: m.subject.clone(),
            sent_at: m.created_at,
            operation: m.operation.clone(),
            meta: m.meta.clone(),
            headers: None,
        }
    }
}

/// An event about one message, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub scope: Scope,
    pub message_id: String,
    pub at: Millis,
    /// The recipients the event is about.
    pub recipients: Vec<String>,
    pub mail: MailInfo,
    pub detail: EventDetail,
}

/// SES's `ses:caller-identity` for a request signed with an account's own
/// (root) credentials, which are the only kind Sesame has: every access
/// key acts for its account as a whole.
pub const CALLER_IDENTITY: &str = "root";

impl Event {
    /// SES's automatic tags, in SES's order: `ses:operation`,
    /// `ses:configuration-set`, `ses:source-ip` (when the request's peer
    /// is known), `ses:from-domain`, `ses:caller-identity`, and
    /// `ses:outgoing-ip` on a Delivery that left over a connection.
    pub fn automatic_tags(&self) -> Vec<(&'static str, String)> {
        let mut t = vec![];
        if !self.mail.operation.is_empty() {
            t.push(("ses:operation", self.mail.operation.clone()));
        }
        if let Some(cs) = &self.mail.meta.configuration_set {
            t.push(("ses:configuration-set", cs.clone()));
        }
        if let Some(ip) = &self.mail.meta.source_ip {
            t.push(("ses:source-ip", ip.clone()));
        }
        let domain = self.mail.source.rsplit_once('@').map(|(_, d)| d);
        t.push((
            "ses:from-domain",
            domain.unwrap_or(&self.mail.source).to_ascii_lowercase(),
        ));
        t.push(("ses:caller-identity", CALLER_IDENTITY.to_owned()));
        if let EventDetail::Delivery {
            outgoing_ip: Some(ip),
            ..
        } = &self.detail
        {
            t.push(("ses:outgoing-ip", ip.clone()));
        }
        t
    }
}

/// Filters for listing events; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub scope: Option<Scope>,
    pub message_id: Option<String>,
    pub kind: Option<EventKind>,
    pub limit: u32,
}

/// Sending activity in one 15-minute interval, as GetSendStatistics shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStatPoint {
    pub start: Millis,
    pub delivery_attempts: u64,
    pub bounces: u64,
    pub complaints: u64,
    pub rejects: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_group_by_domain_in_order() {
        let r = ["a@X.com", "b@y.com", "c@x.com"].map(String::from);
        let g = group_by_domain(&r);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, "x.com");
        assert_eq!(g[0].1, vec!["a@X.com", "c@x.com"]);
        assert_eq!(g[1].1, vec!["b@y.com"]);
    }

    #[test]
    fn retries_double_then_cap_then_stop_at_max_age() {
        let p = RetryPolicy {
            initial_ms: 1_000,
            max_interval_ms: 4_000,
            max_age_ms: 20_000,
        };
        assert_eq!(p.next_attempt(1, 0, 0), Some(1_000));
        assert_eq!(p.next_attempt(2, 0, 0), Some(2_000));
        assert_eq!(p.next_attempt(3, 0, 0), Some(4_000));
        assert_eq!(p.next_attempt(9, 0, 0), Some(4_000));
        assert_eq!(p.next_attempt(9, 17_000, 0), None);
        assert_eq!(p.next_attempt(u32::MAX, 0, 0), Some(4_000));
    }

    #[test]
    fn max_delivery_seconds_only_shortens_the_retries() {
        let p = RetryPolicy {
            initial_ms: 1_000,
            max_interval_ms: 4_000,
            max_age_ms: 20_000,
        };
        assert_eq!(p.within(None), p);
        assert_eq!(p.within(Some(5_000)).max_age_ms, 5_000);
        assert_eq!(p.within(Some(50_000)).max_age_ms, 20_000);
        assert_eq!(p.within(Some(5_000)).next_attempt(1, 4_500, 0), None);
    }

    #[test]
    fn simulator_scenarios_follow_the_local_part() {
        use SimulatorScenario::*;
        let s = |a| SimulatorScenario::for_address(a);
        assert_eq!(s("success@simulator.amazonses.com"), Some(Success));
        assert_eq!(s("bounce+x1@simulator.amazonses.com"), Some(Bounce));
        assert_eq!(s("OOTO@Simulator.AmazonSES.com"), Some(OutOfOffice));
        assert_eq!(s("complaint@simulator.amazonses.com"), Some(Complaint));
        assert_eq!(
            s("suppressionlist@simulator.amazonses.com"),
            Some(SuppressionList)
        );
        assert_eq!(s("anything@simulator.amazonses.com"), Some(Success));
        assert_eq!(s("bounce@example.com"), None);
    }
}
