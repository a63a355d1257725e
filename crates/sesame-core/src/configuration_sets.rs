//! Configuration sets: create, read, list, delete, and the options Sesame
//! carries out: whether sending through the set is enabled (a send naming
//! a paused set is refused, as SES refuses it), and its event destinations
//! on Sesame's SNS (`feedback.rs` publishes to them), suppression options,
//! TlsPolicy REQUIRE and MaxDeliverySeconds (the delivery engine's),
//! tracking, reputation metrics and VDM's engagement metrics ([`SetOptions`]).
//! Options whose effect Sesame cannot produce (dedicated pools, archiving,
//! VDM's optimized shared delivery) are refused where they are set, with
//! `NotImplemented` naming them, never stored and ignored.

use crate::{Clock, internal};
use sesame_model::configuration_set::{
    DestinationTarget, EventDestination, MAX_CONFIGURATION_SETS, already_exists, does_not_exist,
    validate_name,
};
use sesame_model::sns::{MessageType, TopicMessage, VALIDATION_MESSAGE};
use sesame_model::{ConfigurationSet, Error, ErrorKind, Scope, Tag, tags};
use sesame_store::{Created, Store};
use std::sync::Arc;

/// A set's options as CreateConfigurationSet or a Put… operation gives
/// them; each `None` leaves that option as it is. All are carried out:
/// sending enabled or paused (a send naming a paused set is refused),
/// suppression reasons, tracking's redirect domain, TlsPolicy REQUIRE and
/// MaxDeliverySeconds (the delivery engine's), reputation metrics (series
/// on `/_sesame/metrics`) and VDM's engagement metrics (opens and clicks
/// tracked for GetMessageInsights).
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    pub sending_enabled: Option<bool>,
    pub suppressed_reasons: Option<Option<Vec<sesame_model::suppression::Reason>>>,
    /// TrackingOptions: the redirect domain (`None` removes it) and
    /// whether it is reached over HTTPS.
    pub tracking: Option<(Option<String>, bool)>,
    pub tls_required: Option<bool>,
    pub max_delivery_seconds: Option<Option<u32>>,
    pub reputation_metrics: Option<bool>,
    pub engagement_metrics: Option<Option<bool>>,
}

impl SetOptions {
    fn apply(self, set: &mut ConfigurationSet) -> Result<(), Error> {
        if let Some((domain, https)) = self.tracking {
            if let Some(d) = &domain
                && sesame_model::IdentityName::parse(d).map(|n| n.kind())
                    != Ok(sesame_model::IdentityKind::Domain)
            {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("Invalid custom redirect domain: {d}"),
                ));
            }
            set.redirect_domain = domain.map(|d| d.to_ascii_lowercase());
            set.redirect_https = https;
        }
        if let Some(e) = self.sending_enabled {
            set.sending_enabled = e;
        }
        if let Some(r) = self.suppressed_reasons {
            set.suppressed_reasons = r;
        }
        if let Some(t) = self.tls_required {
            set.tls_required = t;
        }
        if let Some(m) = self.max_delivery_seconds {
            set.max_delivery_seconds = m;
        }
        if let Some(r) = self.reputation_metrics {
            set.reputation_metrics = r;
        }
        if let Some(e) = self.engagement_metrics {
            set.engagement_metrics = e;
        }
        Ok(())
    }
}

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

    /// Creates a set with its options, in one write; sending is enabled
    /// unless the options say otherwise.
    pub async fn create(
        &self,
        scope: &Scope,
        name: &str,
        new_tags: Vec<Tag>,
        options: SetOptions,
    ) -> Result<(), Error> {
        validate_name(name)?;
        let mut set = ConfigurationSet::new(name, self.clock.now_ms());
        tags::merge(&mut set.tags, new_tags)?;
        options.apply(&mut set)?;
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

    /// Changes a set's options (those `options` names), in one read and
    /// one write.
    pub async fn configure(
        &self,
        scope: &Scope,
        name: &str,
        options: SetOptions,
    ) -> Result<(), Error> {
        let mut set = self.get(scope, name).await?;
        options.apply(&mut set)?;
        self.save(scope, &set).await
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
