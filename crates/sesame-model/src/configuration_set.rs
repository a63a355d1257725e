//! Configuration sets: named groups of sending rules a send may name. What
//! a set says that Sesame carries out is here; options Sesame cannot carry
//! out yet are refused where they are set (in the use case), never stored
//! and ignored.

use crate::error::{Error, ErrorKind, Result};
use crate::{EventKind, Millis, Tag};
use serde::{Deserialize, Serialize};

/// SES's quota of configuration sets per account and region.
pub const MAX_CONFIGURATION_SETS: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigurationSet {
    pub name: String,
    pub created_at: Millis,
    /// When false, sends that name the set are refused.
    pub sending_enabled: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Where the set publishes its events.
    #[serde(default)]
    pub event_destinations: Vec<EventDestination>,
    /// SuppressionOptions: the reasons the suppression list is honoured
    /// and fed for sends through this set, instead of the account's.
    #[serde(default)]
    pub suppressed_reasons: Option<Vec<crate::suppression::Reason>>,
    /// TlsPolicy REQUIRE: messages go to receivers over TLS or not at all.
    #[serde(default)]
    pub tls_required: bool,
    /// MaxDeliverySeconds: how long delivery of a message is retried.
    #[serde(default)]
    pub max_delivery_seconds: Option<u32>,
    /// TrackingOptions: the domain tracked links and the pixel use instead
    /// of Sesame's public URL (pointed at Sesame by its owner).
    #[serde(default)]
    pub redirect_domain: Option<String>,
    /// TrackingOptions' HttpsPolicy: `https://` for the redirect domain
    /// (REQUIRE, REQUIRE_OPEN_ONLY) rather than `http://` (OPTIONAL).
    #[serde(default)]
    pub redirect_https: bool,
    /// ReputationOptions' ReputationMetricsEnabled: the set's bounce and
    /// complaint rates are kept as series on `/_sesame/metrics`.
    #[serde(default)]
    pub reputation_metrics: bool,
    /// VdmOptions' EngagementMetrics: opens and clicks are tracked (for
    /// GetMessageInsights) even when no destination publishes them; `None`
    /// follows the account's VDM settings, which are off in Sesame.
    #[serde(default)]
    pub engagement_metrics: Option<bool>,
}

/// SES's quota of event destinations per configuration set.
pub const MAX_EVENT_DESTINATIONS: usize = 10;

/// One place a configuration set publishes events to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDestination {
    pub name: String,
    pub enabled: bool,
    /// The event types published; never empty.
    pub matching: Vec<EventKind>,
    pub target: DestinationTarget,
}

/// Where an event destination publishes. Only destinations Sesame can
/// serve are ever stored; the others are refused when they are set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationTarget {
    /// A topic of Sesame's own SNS.
    Sns { topic_arn: String },
    /// CloudWatch metrics, as Prometheus series on `/_sesame/metrics`: one
    /// counter per event type, with the set's name and these dimensions
    /// (each a message tag, or its default) as labels.
    CloudWatch { dimensions: Vec<Dimension> },
    /// An EventBridge bus the operator mapped to an HTTP endpoint
    /// (`[feedback.eventbridge]`): each event in EventBridge's envelope.
    EventBridge { bus_arn: String },
    /// A Firehose delivery stream the operator mapped to an HTTP endpoint
    /// or a JSON-lines file (`[feedback.firehose]`): each event record.
    Firehose {
        stream_arn: String,
        role_arn: String,
    },
}

/// A CloudWatch dimension whose value is a message tag's (SES's
/// `messageTag` source; the other sources are refused when set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub default: String,
}

impl ConfigurationSet {
    /// Which tracking sends through the set get: opens and clicks are
    /// tracked when an enabled destination publishes them, as in SES.
    pub fn tracking(&self) -> (bool, bool) {
        let engaged = self.engagement_metrics == Some(true);
        let wants = |k| engaged || self.event_destinations.iter().any(|d| d.publishes(k));
        (wants(EventKind::Open), wants(EventKind::Click))
    }
}

impl EventDestination {
    /// Whether this destination publishes an event of `kind`.
    pub fn publishes(&self, kind: EventKind) -> bool {
        self.enabled && self.matching.contains(&kind)
    }
}

impl ConfigurationSet {
    /// Adds a destination; SES's errors for a duplicate name or a full set.
    pub fn add_destination(&mut self, d: EventDestination) -> Result<()> {
        validate_destination(&d)?;
        if self.event_destinations.iter().any(|e| e.name == d.name) {
            return Err(Error::new(
                ErrorKind::EventDestinationAlreadyExists,
                format!(
                    "Event destination {} already exists in configuration set <{}>.",
                    d.name, self.name
                ),
            ));
        }
        if self.event_destinations.len() >= MAX_EVENT_DESTINATIONS {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Configuration set <{}> has the maximum of {MAX_EVENT_DESTINATIONS} event destinations.",
                    self.name
                ),
            ));
        }
        self.event_destinations.push(d);
        Ok(())
    }

    /// Replaces the destination of the same name.
    pub fn update_destination(&mut self, d: EventDestination) -> Result<()> {
        validate_destination(&d)?;
        let slot = self
            .event_destinations
            .iter_mut()
            .find(|e| e.name == d.name)
            .ok_or_else(|| destination_not_found(&d.name))?;
        *slot = d;
        Ok(())
    }

    pub fn remove_destination(&mut self, name: &str) -> Result<()> {
        let before = self.event_destinations.len();
        self.event_destinations.retain(|e| e.name != name);
        if self.event_destinations.len() == before {
            return Err(destination_not_found(name));
        }
        Ok(())
    }
}

/// SES's words for a missing destination (no angle brackets, as observed).
pub fn destination_not_found(name: &str) -> Error {
    Error::new(
        ErrorKind::EventDestinationDoesNotExist,
        format!("No EventDestination found for {name}"),
    )
}

fn validate_destination(d: &EventDestination) -> Result<()> {
    if !crate::template::is_ses_name(&d.name) {
        return Err(Error::invalid(format!(
            "Event destination name <{}> is invalid: it must have 1 to 64 characters: letters, digits, '_' and '-'.",
            d.name
        )));
    }
    if d.matching.is_empty() {
        return Err(Error::invalid(
            "Event destination must match at least one event type.",
        ));
    }
    Ok(())
}

impl ConfigurationSet {
    pub fn new(name: &str, created_at: Millis) -> Self {
        Self {
            name: name.to_owned(),
            created_at,
            sending_enabled: true,
            tags: vec![],
            event_destinations: vec![],
            suppressed_reasons: None,
            tls_required: false,
            max_delivery_seconds: None,
            redirect_domain: None,
            redirect_https: false,
            reputation_metrics: false,
            engagement_metrics: None,
        }
    }
}

/// SES's rule for configuration set names: letters, digits, `_` and `-`,
/// 1 to 64 characters.
pub fn validate_name(name: &str) -> Result<()> {
    if crate::template::is_ses_name(name) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidConfigurationSet,
            format!(
                "Configuration set name <{name}> is invalid: it must have 1 to 64 characters: letters, digits, '_' and '-'."
            ),
        ))
    }
}

pub fn does_not_exist(name: &str) -> Error {
    Error::new(
        ErrorKind::ConfigurationSetDoesNotExist,
        format!("Configuration set <{name}> does not exist."),
    )
}

pub fn already_exists(name: &str) -> Error {
    Error::new(
        ErrorKind::ConfigurationSetAlreadyExists,
        format!("Configuration set <{name}> already exists."),
    )
}

/// A send naming a set whose sending is disabled.
pub fn sending_paused(name: &str) -> Error {
    Error::new(
        ErrorKind::ConfigurationSetSendingPaused,
        format!("Sending is paused for the configuration set <{name}>."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("my-set_1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        assert_eq!(
            validate_name("a.b").unwrap_err().kind,
            ErrorKind::InvalidConfigurationSet
        );
    }
}
