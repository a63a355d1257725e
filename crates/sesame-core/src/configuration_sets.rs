//! Configuration sets: create, read, list, delete, and the options Sesame
//! carries out: whether sending through the set is enabled (a send naming
//! a paused set is refused, as SES refuses it), and its event destinations
//! on Sesame's SNS (`feedback.rs` publishes to them), suppression options,
//! TlsPolicy REQUIRE and MaxDeliverySeconds (the delivery engine's). Options
//! whose effect Sesame cannot produce yet (other destinations, tracking,
//! dedicated pools,
//! reputation metrics, VDM, archiving) are refused where they are set,
//! with `NotImplemented` naming them, never stored and ignored.

use crate::{Clock, internal};
use sesame_model::configuration_set::{
    DestinationTarget, EventDestination, MAX_CONFIGURATION_SETS, already_exists, does_not_exist,
    validate_name,
};
use sesame_model::sns::{MessageType, TopicMessage, VALIDATION_MESSAGE};
use sesame_model::{ConfigurationSet, Error, ErrorKind, Scope, Tag, tags};
use sesame_store::{Created, Store};
use std::sync::Arc;

pub struct ConfigurationSetService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    targets: Arc<crate::feedback::ExternalTargets>,
}

/// The refusal of an option Sesame does not carry out yet.
pub fn not_yet(option: &str) -> Error {
    Error::new(
        ErrorKind::NotImplemented,
        format!("Sesame does not implement the configuration set option {option} yet."),
    )
}

impl ConfigurationSetService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            targets: Arc::default(),
        }
    }

    /// The operator's EventBridge buses and Firehose streams, which
    /// destinations may name.
    pub fn with_targets(mut self, targets: Arc<crate::feedback::ExternalTargets>) -> Self {
        self.targets = targets;
        self
    }

    /// Creates a set; `sending_enabled` is true unless the caller says.
    pub async fn create(
        &self,
        scope: &Scope,
        name: &str,
        sending_enabled: Option<bool>,
        new_tags: Vec<Tag>,
    ) -> Result<(), Error> {
        validate_name(name)?;
        let mut set = ConfigurationSet::new(name, self.clock.now_ms());
        set.sending_enabled = sending_enabled.unwrap_or(true);
        tags::merge(&mut set.tags, new_tags)?;
        match self
            .store
            .insert_configuration_set(scope, &set, MAX_CONFIGURATION_SETS)
            .await
            .map_err(internal)?
        {
            Created::Created => Ok(()),
            Created::Exists => Err(already_exists(name)),
            Created::LimitReached => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Maximum number of configuration sets ({MAX_CONFIGURATION_SETS}) reached in region {}.",
                    scope.region
                ),
            )),
        }
    }

    pub async fn get(&self, scope: &Scope, name: &str) -> Result<ConfigurationSet, Error> {
        self.store
            .get_configuration_set(scope, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| does_not_exist(name))
    }

    pub async fn delete(&self, scope: &Scope, name: &str) -> Result<(), Error> {
        if self
            .store
            .delete_configuration_set(scope, name)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(does_not_exist(name))
        }
    }

    pub async fn list(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<ConfigurationSet>, Option<String>), Error> {
        crate::paging::list(next_token, max, |after, limit| {
            self.store.list_configuration_sets(scope, after, limit)
        })
        .await
    }

    /// Stores a changed set; SES's error when it was deleted meanwhile.
    async fn save(&self, scope: &Scope, set: &ConfigurationSet) -> Result<(), Error> {
        if self
            .store
            .update_configuration_set(scope, set)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(does_not_exist(&set.name))
        }
    }

    /// SuppressionOptions: the reasons the suppression list is honoured and
    /// fed for sends through the set; `None` falls back to the account's.
    pub async fn set_suppression(
        &self,
        scope: &Scope,
        name: &str,
        reasons: Option<Vec<sesame_model::suppression::Reason>>,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        set.suppressed_reasons = reasons;
        self.save(scope, &set).await
    }

    /// DeliveryOptions: TlsPolicy REQUIRE (`tls_required`) and
    /// MaxDeliverySeconds, both carried out by the delivery engine for
    /// messages sent through the set.
    pub async fn set_delivery(
        &self,
        scope: &Scope,
        name: &str,
        tls_required: bool,
        max_delivery_seconds: Option<u32>,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        set.tls_required = tls_required;
        set.max_delivery_seconds = max_delivery_seconds;
        self.save(scope, &set).await
    }

    /// TrackingOptions: a custom redirect domain for tracked links and the
    /// pixel (`None` removes it), and whether it is reached over HTTPS.
    pub async fn set_tracking(
        &self,
        scope: &Scope,
        name: &str,
        domain: Option<String>,
        https: bool,
    ) -> Result<(), Error> {
        if let Some(d) = &domain
            && sesame_model::IdentityName::parse(d).map(|n| n.kind())
                != Ok(sesame_model::IdentityKind::Domain)
        {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("Invalid custom redirect domain: {d}"),
            ));
        }
        let mut set = self.get(scope, name).await?;
        set.redirect_domain = domain.map(|d| d.to_ascii_lowercase());
        set.redirect_https = https;
        self.save(scope, &set).await
    }

    /// Enables or pauses sending through the set.
    pub async fn set_sending_enabled(
        &self,
        scope: &Scope,
        name: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        set.sending_enabled = enabled;
        self.save(scope, &set).await
    }

    /// Adds an event destination (`add`) or replaces the one of its name.
    /// Its SNS topic must be one of the caller's; a new destination gets
    /// SES's validation message published to its topic, as SES does.
    pub async fn put_destination(
        &self,
        scope: &Scope,
        name: &str,
        d: EventDestination,
        add: bool,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        let topic_arn = match &d.target {
            DestinationTarget::Sns { topic_arn } => Some(topic_arn.clone()),
            DestinationTarget::CloudWatch { .. } => None,
            DestinationTarget::EventBridge { bus_arn } => {
                external(
                    scope,
                    bus_arn,
                    "events",
                    &self.targets.eventbridge,
                    "eventbridge",
                )?;
                None
            }
            DestinationTarget::Firehose { stream_arn, .. } => {
                external(
                    scope,
                    stream_arn,
                    "firehose",
                    &self.targets.firehose,
                    "firehose",
                )?;
                None
            }
        };
        if let Some(topic_arn) = &topic_arn {
            match self.store.get_topic(topic_arn).await.map_err(internal)? {
                Some((owner, _)) if owner == *scope => {}
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidSnsDestination,
                        format!("SNS topic <{topic_arn}> not found."),
                    ));
                }
            }
        }
        if add {
            set.add_destination(d)?;
        } else {
            set.update_destination(d)?;
        }
        self.save(scope, &set).await?;
        if add && let Some(topic_arn) = topic_arn {
            let now = self.clock.now_ms();
            let m = TopicMessage {
                id: uuid::Uuid::new_v4().to_string(),
                kind: MessageType::Notification,
                topic_arn,
                subject: None,
                message: VALIDATION_MESSAGE.to_owned(),
                created_at: now,
                to: None,
            };
            self.store
                .publish_messages(&[m], None, now)
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    pub async fn delete_destination(
        &self,
        scope: &Scope,
        name: &str,
        destination: &str,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        set.remove_destination(destination)?;
        self.save(scope, &set).await
    }
}

/// An EventBridge bus or Firehose stream a destination names: the caller's
/// own (by the ARN's account and region), and mapped by the operator to
/// somewhere Sesame can deliver; otherwise refused, naming what is missing.
fn external(
    scope: &Scope,
    arn: &str,
    service: &str,
    mapped: &std::collections::HashMap<String, String>,
    section: &str,
) -> Result<(), Error> {
    let mut parts = arn.splitn(6, ':');
    let owned = parts.next() == Some("arn")
        && parts.next() == Some("aws")
        && parts.next() == Some(service)
        && parts.next() == Some(scope.region.as_str())
        && parts.next() == Some(scope.account.as_str());
    if !owned {
        return Err(Error::invalid(format!(
            "{arn} is not a {service} ARN of account {} in {}.",
            scope.account, scope.region
        )));
    }
    if !mapped.contains_key(arn) {
        return Err(Error::new(
            ErrorKind::NotImplemented,
            format!(
                "Sesame cannot deliver to {arn}: the operator has not mapped it to an endpoint ([feedback.{section}] in the config file)."
            ),
        ));
    }
    Ok(())
}
