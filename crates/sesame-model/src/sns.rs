//! Sesame's SNS: topics, subscriptions and the notifications delivered to
//! them, with SNS's naming rules, ARNs, errors, the handshake's states and
//! the string a notification's signature covers. What SES feedback needs of
//! SNS, and what an application consuming it relies on.

use crate::error::{Error, ErrorKind, Result};
use crate::scope::Scope;
use crate::{Millis, Tag};
use serde::{Deserialize, Serialize};

/// SNS's default quota of standard topics per account and region.
pub const MAX_TOPICS: u32 = 100_000;
/// Subscriptions per topic (SNS's quota is 12,500,000; Sesame keeps the
/// fan-out of one notification to what one transaction writes comfortably).
pub const MAX_SUBSCRIPTIONS_PER_TOPIC: u32 = 10_000;
/// SNS's largest message: 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// SNS's longest subject.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// The subject of SES's event-publishing notifications.
pub const EVENT_SUBJECT: &str = "Amazon SES Email Event Notification";
/// The message SES publishes to a topic when an event destination is made.
pub const VALIDATION_MESSAGE: &str =
    "Successfully validated SNS topic for Amazon SES event publishing.";
/// What a subscription's ARN reads before it is confirmed.
pub const PENDING_CONFIRMATION: &str = "PendingConfirmation";

/// A topic's ARN: `arn:aws:sns:<region>:<account>:<name>`.
pub fn topic_arn(scope: &Scope, name: &str) -> String {
    format!("arn:aws:sns:{}:{}:{name}", scope.region, scope.account)
}

/// The scope and name an SNS topic ARN names, if it is one.
pub fn parse_topic_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:sns:")?;
    let mut it = rest.splitn(3, ':');
    let (region, account, name) = (it.next()?, it.next()?, it.next()?);
    if region.is_empty() || account.len() != 12 || !is_topic_name(name) {
        return None;
    }
    Some((region, account, name))
}

/// SNS's topic name rule: 1 to 256 letters, digits, `-` and `_`.
pub fn is_topic_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn validate_topic_name(name: &str) -> Result<()> {
    if name.ends_with(".fifo") {
        return Err(invalid_parameter(
            "Invalid parameter: Sesame serves standard topics only; SES cannot publish to FIFO topics",
        ));
    }
    if is_topic_name(name) {
        Ok(())
    } else {
        Err(invalid_parameter(
            "Invalid parameter: Topic Name must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.",
        ))
    }
}

/// SNS's `InvalidParameter`.
pub fn invalid_parameter(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::SnsInvalidParameter, message)
}

pub fn topic_not_found() -> Error {
    Error::new(ErrorKind::SnsNotFound, "Topic does not exist")
}

pub fn subscription_not_found() -> Error {
    Error::new(ErrorKind::SnsNotFound, "Subscription does not exist")
}

/// A standard topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub arn: String,
    pub created_at: Millis,
    pub display_name: String,
    /// 1 (SHA1withRSA, SNS's default) or 2 (SHA256withRSA).
    pub signature_version: u8,
    /// The access policy, kept as given (Sesame authorises by account).
    #[serde(default)]
    pub policy: Option<String>,
    /// Always `None`: a topic's delivery policy is refused when set
    /// (Sesame retries by its own); kept for stored topics' shape.
    #[serde(default)]
    pub delivery_policy: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Topic {
    pub fn new(scope: &Scope, name: &str, created_at: Millis) -> Self {
        Self {
            name: name.to_owned(),
            arn: topic_arn(scope, name),
            created_at,
            display_name: String::new(),
            signature_version: 1,
            policy: None,
            delivery_policy: None,
            tags: vec![],
        }
    }

    /// Sets one attribute as SetTopicAttributes (or CreateTopic's
    /// `Attributes`) names it. Attributes SNS has that Sesame cannot carry
    /// out are refused by name.
    pub fn set_attribute(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "DisplayName" => {
                if value.chars().count() > 100 {
                    return Err(invalid_parameter(
                        "Invalid parameter: DisplayName must be at most 100 characters",
                    ));
                }
                self.display_name = value.to_owned();
            }
            "SignatureVersion" => {
                self.signature_version = match value {
                    "1" => 1,
                    "2" => 2,
                    _ => {
                        return Err(invalid_parameter(
                            "Invalid parameter: Attributes Reason: SignatureVersion: Invalid value. Valid values are 1 and 2",
                        ));
                    }
                }
            }
            // Kept and returned, so that tools that set a topic's policy
            // (to let SES publish, say) work; Sesame authorises by account
            // and does not evaluate it (documented in the README).
            "Policy" => self.policy = Some(value.to_owned()),
            "FifoTopic" | "ContentBasedDeduplication" if value == "false" => {}
            // Sesame retries by its own policy (1 s doubling to 60 s, for a
            // day); a topic's own would not be honoured, so it is refused.
            "DeliveryPolicy"
            | "KmsMasterKeyId"
            | "TracingConfig"
            | "FifoTopic"
            | "ContentBasedDeduplication"
            | "ArchivePolicy"
            | "DataProtectionPolicy"
            | "FifoThroughputScope" => {
                return Err(Error::new(
                    ErrorKind::NotImplemented,
                    format!("Sesame's SNS does not carry out the topic attribute {name}."),
                ));
            }
            _ => {
                return Err(invalid_parameter(format!(
                    "Invalid parameter: AttributeName: {name}"
                )));
            }
        }
        Ok(())
    }
}

/// The protocols Sesame delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    Http,
    Https,
    Email,
    EmailJson,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Email => "email",
            Self::EmailJson => "email-json",
        }
    }

    /// A Subscribe call's protocol; SNS's others are refused by name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "http" => Self::Http,
            "https" => Self::Https,
            "email" => Self::Email,
            "email-json" => Self::EmailJson,
            "sqs" | "lambda" | "sms" | "application" | "firehose" => {
                return Err(Error::new(
                    ErrorKind::NotImplemented,
                    format!("Sesame's SNS does not deliver to the {s} protocol."),
                ));
            }
            _ => return Err(invalid_parameter("Invalid parameter: Protocol")),
        })
    }

    pub fn is_email(self) -> bool {
        matches!(self, Self::Email | Self::EmailJson)
    }

    /// Checks a subscription endpoint for this protocol, as SNS does.
    pub fn check_endpoint(self, endpoint: &str) -> Result<()> {
        let ok = match self {
            Self::Http => endpoint.len() > 7 && endpoint[..7].eq_ignore_ascii_case("http://"),
            Self::Https => endpoint.len() > 8 && endpoint[..8].eq_ignore_ascii_case("https://"),
            Self::Email | Self::EmailJson => crate::Mailbox::parse(endpoint).is_ok(),
        };
        let url_ok = match self {
            Self::Http | Self::Https => {
                endpoint.len() <= 2048
                    && !endpoint
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
            }
            _ => true,
        };
        if ok && url_ok {
            Ok(())
        } else {
            Err(invalid_parameter(format!(
                "Invalid parameter: Endpoint Reason: {endpoint} is not a valid {} endpoint",
                self.as_str()
            )))
        }
    }
}

/// A subscription of an endpoint to a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    pub owner: String,
    pub protocol: Protocol,
    pub endpoint: String,
    /// The confirmation token; `None` once confirmed.
    pub token: Option<String>,
    pub confirmed: bool,
    pub raw_message_delivery: bool,
    pub created_at: Millis,
}

impl Subscription {
    /// The ARN as listings show it: `PendingConfirmation` until confirmed.
    pub fn listed_arn(&self) -> &str {
        if self.confirmed {
            &self.arn
        } else {
            PENDING_CONFIRMATION
        }
    }

    pub fn set_attribute(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "RawMessageDelivery" => {
                self.raw_message_delivery = match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(invalid_parameter(
                            "Invalid parameter: RawMessageDelivery: Invalid value [must be true or false]",
                        ));
                    }
                }
            }
            "DeliveryPolicy"
            | "FilterPolicy"
            | "FilterPolicyScope"
            | "RedrivePolicy"
            | "SubscriptionRoleArn"
            | "ReplayPolicy" => {
                return Err(Error::new(
                    ErrorKind::NotImplemented,
                    format!("Sesame's SNS does not carry out the subscription attribute {name}."),
                ));
            }
            _ => {
                return Err(invalid_parameter(format!(
                    "Invalid parameter: AttributeName: {name}"
                )));
            }
        }
        Ok(())
    }
}

/// What kind of message an SNS delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Notification,
            Self::SubscriptionConfirmation,
            Self::UnsubscribeConfirmation,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A message as SNS delivers it to one endpoint, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub kind: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    /// ISO 8601 with milliseconds and `Z`.
    pub timestamp: String,
    pub signature_version: u8,
    pub signature: String,
    pub signing_cert_url: String,
    /// Notifications only.
    pub unsubscribe_url: Option<String>,
    /// Confirmations only.
    pub subscribe_url: Option<String>,
    pub token: Option<String>,
    pub subscription_arn: Option<String>,
}

impl Envelope {
    /// The string SNS signs: `Name\nValue\n` for each field the message
    /// type signs, in byte order of the names.
    pub fn string_to_sign(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, value: &str| {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        put("Message", &self.message);
        put("MessageId", &self.message_id);
        match self.kind {
            MessageType::Notification => {
                if let Some(s) = &self.subject {
                    put("Subject", s);
                }
                put("Timestamp", &self.timestamp);
                put("TopicArn", &self.topic_arn);
            }
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
                put("SubscribeURL", self.subscribe_url.as_deref().unwrap_or(""));
                put("Timestamp", &self.timestamp);
                put("Token", self.token.as_deref().unwrap_or(""));
                put("TopicArn", &self.topic_arn);
            }
        }
        put("Type", self.kind.as_str());
        out
    }
}

/// A message published to a topic (or, for a confirmation, sent to one
/// subscription), as stored until every delivery of it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    /// SNS's MessageId (a UUID).
    pub id: String,
    pub kind: MessageType,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    pub created_at: Millis,
    /// A confirmation goes to this subscription only, confirmed or not; a
    /// notification goes to every confirmed subscription of the topic.
    pub to: Option<String>,
}

/// Where a message goes that is not an SNS subscription: an operator's
/// EventBridge or Firehose endpoint, named in the message's recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// POST the message (an EventBridge envelope) to this URL.
    EventBridge(String),
    /// Deliver the message (an event record) to this target: an `http(s)`
    /// URL, or `file://` and a path to append it to as one line.
    Firehose(String),
}

const EXTERNAL: &str = "sesame-external:";

impl External {
    /// The recipient a topic message carries for this target.
    pub fn recipient(&self) -> String {
        match self {
            Self::EventBridge(u) => format!("{EXTERNAL}eventbridge:{u}"),
            Self::Firehose(t) => format!("{EXTERNAL}firehose:{t}"),
        }
    }
    pub fn parse(recipient: &str) -> Option<Self> {
        let rest = recipient.strip_prefix(EXTERNAL)?;
        if let Some(u) = rest.strip_prefix("eventbridge:") {
            Some(Self::EventBridge(u.to_owned()))
        } else {
            rest.strip_prefix("firehose:")
                .map(|t| Self::Firehose(t.to_owned()))
        }
    }
}

/// SES's EventBridge `detail-type` for an event type.
pub fn eventbridge_detail_type(kind: crate::EventKind) -> &'static str {
    use crate::EventKind as K;
    match kind {
        K::Send => "Email Sent",
        K::Delivery => "Email Delivered",
        K::Bounce => "Email Bounced",
        K::Complaint => "Email Complaint Received",
        K::Reject => "Email Rejected",
        K::Open => "Email Opened",
        K::Click => "Email Clicked",
        K::RenderingFailure => "Email Rendering Failed",
        K::DeliveryDelay => "Email Delivery Delayed",
    }
}

/// One claimed delivery of a message to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDelivery {
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub message: TopicMessage,
    /// `None` when the subscription was deleted since (nothing to
    /// deliver), or when the message goes to an [`External`] target.
    pub subscription: Option<Subscription>,
}

/// How a delivery attempt to a subscription ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicDeliveryOutcome {
    Delivered,
    Retry {
        at: Millis,
        error: String,
    },
    /// Given up: expired, or the subscription is gone.
    Failed {
        error: String,
    },
}

/// The confirmation message's text, as SNS writes it.
pub fn confirmation_text(topic_arn: &str) -> String {
    format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    )
}

pub fn unsubscribe_text(topic_arn: &str) -> String {
    format!(
        "You have chosen to deactivate subscription {topic_arn}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        assert!(validate_topic_name("ses-bounces_1").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("a.b").is_err());
        assert!(validate_topic_name("x.fifo").is_err());
        assert!(validate_topic_name(&"a".repeat(257)).is_err());
        let scope = Scope::new(
            crate::AccountId::parse("123456789012").unwrap(),
            crate::Region::parse("us-east-1").unwrap(),
        );
        let arn = topic_arn(&scope, "t");
        assert_eq!(arn, "arn:aws:sns:us-east-1:123456789012:t");
        assert_eq!(
            parse_topic_arn(&arn),
            Some(("us-east-1", "123456789012", "t"))
        );
        assert_eq!(
            parse_topic_arn("arn:aws:sqs:us-east-1:123456789012:t"),
            None
        );
    }

    #[test]
    fn notification_signs_its_fields_in_order() {
        let e = Envelope {
            kind: MessageType::Notification,
            message_id: "id".into(),
            topic_arn: "arn".into(),
            subject: None,
            message: "m".into(),
            timestamp: "t".into(),
            signature_version: 1,
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: Some("u".into()),
            subscribe_url: None,
            token: None,
            subscription_arn: None,
        };
        assert_eq!(
            e.string_to_sign(),
            "Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
        );
        let c = Envelope {
            kind: MessageType::SubscriptionConfirmation,
            subscribe_url: Some("s".into()),
            token: Some("k".into()),
            ..e
        };
        assert_eq!(
            c.string_to_sign(),
            "Message\nm\nMessageId\nid\nSubscribeURL\ns\nTimestamp\nt\nToken\nk\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn attributes_sesame_cannot_honour_are_refused() {
        let scope = Scope::new(
            crate::AccountId::parse("123456789012").unwrap(),
            crate::Region::parse("us-east-1").unwrap(),
        );
        let mut t = Topic::new(&scope, "t", 0);
        assert!(t.set_attribute("Policy", "{}").is_ok());
        assert!(t.set_attribute("SignatureVersion", "2").is_ok());
        assert_eq!(
            t.set_attribute("DeliveryPolicy", "{}").unwrap_err().kind,
            ErrorKind::NotImplemented
        );
        assert_eq!(
            t.set_attribute("Nonsense", "x").unwrap_err().kind,
            ErrorKind::SnsInvalidParameter
        );
    }

    #[test]
    fn protocols_and_endpoints() {
        assert_eq!(Protocol::parse("http").unwrap(), Protocol::Http);
        assert_eq!(
            Protocol::parse("sqs").unwrap_err().kind,
            ErrorKind::NotImplemented
        );
        assert!(Protocol::parse("carrier-pigeon").is_err());
        assert!(
            Protocol::Http
                .check_endpoint("http://127.0.0.1:9/x")
                .is_ok()
        );
        assert!(Protocol::Http.check_endpoint("https://a").is_err());
        assert!(Protocol::Https.check_endpoint("https://a.example/").is_ok());
        assert!(Protocol::Email.check_endpoint("ops@example.com").is_ok());
        assert!(Protocol::Email.check_endpoint("not an address").is_err());
    }
}
