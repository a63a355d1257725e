//! Configuration sets, in v1 and v2: create, describe, list, delete, their
//! options (`SetOptions`, each carried out) and event destinations. The
//! options Sesame cannot carry out (dedicated pools, Mail Manager
//! archives, VDM's optimized shared delivery, message security) are
//! refused when they are set (`sesame_core::configuration_sets::not_yet`),
//! never stored and ignored; leaving them off is accepted, since that is
//! what Sesame does.

use crate::{Api, R, spell, tags_in, tags_out};
use sesame_core::configuration_sets::{SetOptions, not_yet};
use sesame_model::EventKind;
use sesame_model::configuration_set::{DestinationTarget, Dimension, EventDestination};
use sesame_model::{ConfigurationSet, Error, Scope};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

/// Changes the options `o` names on the set.
async fn configure(api: &Api, s: &Scope, name: &str, o: SetOptions) -> R<()> {
    api.configuration_sets.configure(s, name, o).await
}

// ---------------------------------------------------------------- v1

pub async fn v1_create_configuration_set(
    api: &Api,
    s: &Scope,
    i: v1::CreateConfigurationSetRequest,
) -> R<v1::CreateConfigurationSetResponse> {
    let name = &i.configuration_set.name;
    api.configuration_sets
        .create(s, name, vec![], SetOptions::default())
        .await?;
    Ok(v1::CreateConfigurationSetResponse {})
}

pub async fn v1_describe_configuration_set(
    api: &Api,
    s: &Scope,
    i: v1::DescribeConfigurationSetRequest,
) -> R<v1::DescribeConfigurationSetResponse> {
    let set = api
        .configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    let asked = |a: v1::ConfigurationSetAttribute| {
        i.configuration_set_attribute_names
            .as_ref()
            .is_some_and(|names| names.contains(&a))
    };
    Ok(v1::DescribeConfigurationSetResponse {
        configuration_set: Some(v1::ConfigurationSet {
            name: set.name.clone(),
        }),
        event_destinations: asked(v1::ConfigurationSetAttribute::EventDestinations)
            .then(|| v1_destinations(&set)),
        tracking_options: asked(v1::ConfigurationSetAttribute::TrackingOptions).then(|| {
            v1::TrackingOptions {
                custom_redirect_domain: set.redirect_domain.clone(),
            }
        }),
        delivery_options: asked(v1::ConfigurationSetAttribute::DeliveryOptions).then_some(
            v1::DeliveryOptions {
                tls_policy: Some(if set.tls_required {
                    v1::TlsPolicy::Require
                } else {
                    v1::TlsPolicy::Optional
                }),
            },
        ),
        reputation_options: asked(v1::ConfigurationSetAttribute::ReputationOptions).then_some(
            v1::ReputationOptions {
                sending_enabled: Some(set.sending_enabled),
                reputation_metrics_enabled: Some(set.reputation_metrics),
                last_fresh_start: None,
            },
        ),
    })
}

pub async fn v1_delete_configuration_set(
    api: &Api,
    s: &Scope,
    i: v1::DeleteConfigurationSetRequest,
) -> R<v1::DeleteConfigurationSetResponse> {
    api.configuration_sets
        .delete(s, &i.configuration_set_name)
        .await?;
    Ok(v1::DeleteConfigurationSetResponse {})
}

pub async fn v1_list_configuration_sets(
    api: &Api,
    s: &Scope,
    i: v1::ListConfigurationSetsRequest,
) -> R<v1::ListConfigurationSetsResponse> {
    let max = match i.max_items {
        None => 1000,
        Some(n @ 1..=1000) => n as u32,
        Some(n) => {
            return Err(Error::invalid(format!(
                "MaxItems {n} is out of range: it must be from 1 to 1000."
            )));
        }
    };
    let (sets, next_token) = api
        .configuration_sets
        .list(s, i.next_token.as_deref(), max)
        .await?;
    Ok(v1::ListConfigurationSetsResponse {
        configuration_sets: Some(
            sets.into_iter()
                .map(|c| v1::ConfigurationSet { name: c.name })
                .collect(),
        ),
        next_token,
    })
}

pub async fn v1_update_configuration_set_sending_enabled(
    api: &Api,
    s: &Scope,
    i: v1::UpdateConfigurationSetSendingEnabledRequest,
) -> R<()> {
    let o = SetOptions {
        sending_enabled: Some(i.enabled),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await
}

pub async fn v1_update_configuration_set_reputation_metrics_enabled(
    api: &Api,
    s: &Scope,
    i: v1::UpdateConfigurationSetReputationMetricsEnabledRequest,
) -> R<()> {
    let o = SetOptions {
        reputation_metrics: Some(i.enabled),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await
}

pub async fn v1_put_configuration_set_delivery_options(
    api: &Api,
    s: &Scope,
    i: v1::PutConfigurationSetDeliveryOptionsRequest,
) -> R<v1::PutConfigurationSetDeliveryOptionsResponse> {
    let tls = i.delivery_options.and_then(|d| d.tls_policy) == Some(v1::TlsPolicy::Require);
    let o = SetOptions {
        tls_required: Some(tls),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v1::PutConfigurationSetDeliveryOptionsResponse {})
}

// ---------------------------------------------------------------- v2

/// v2 DeliveryOptions as Sesame carries them out: TLS required, and how
/// long delivery is retried. Dedicated IP pools are refused by name.
fn v2_delivery(d: v2::DeliveryOptions) -> R<(bool, Option<u32>)> {
    if d.sending_pool_name.is_some() {
        return Err(not_yet("SendingPoolName"));
    }
    Ok((
        d.tls_policy == Some(v2::TlsPolicy::Require),
        d.max_delivery_seconds.map(|s| s as u32),
    ))
}

pub async fn v2_create_configuration_set(
    api: &Api,
    s: &Scope,
    i: v2::CreateConfigurationSetRequest,
) -> R<v2::CreateConfigurationSetResponse> {
    if i.message_security_options.is_some() {
        return Err(not_yet("MessageSecurityOptions"));
    }
    archiving_in(i.archiving_options.and_then(|a| a.archive_arn))?;
    let (tls_required, max_delivery_seconds) = match i.delivery_options.map(v2_delivery) {
        Some(d) => {
            let (tls, max) = d?;
            (Some(tls), Some(max))
        }
        None => (None, None),
    };
    let suppressed_reasons = match i.suppression_options {
        Some(o) => Some(suppression_in(
            o.suppressed_reasons,
            o.suppression_scope,
            o.validation_options.is_some(),
        )?),
        None => None,
    };
    let options = SetOptions {
        sending_enabled: i.sending_options.and_then(|o| o.sending_enabled),
        suppressed_reasons,
        tracking: i
            .tracking_options
            .map(|t| (Some(t.custom_redirect_domain), v2_https(t.https_policy))),
        tls_required,
        max_delivery_seconds,
        reputation_metrics: i
            .reputation_options
            .and_then(|r| r.reputation_metrics_enabled),
        engagement_metrics: i.vdm_options.map(vdm_in).transpose()?,
    };
    api.configuration_sets
        .create(s, &i.configuration_set_name, tags_in(i.tags), options)
        .await?;
    Ok(v2::CreateConfigurationSetResponse {})
}

/// VdmOptions as Sesame carries them out: EngagementMetrics (opens and
/// clicks tracked for GetMessageInsights; absent follows the account's
/// VDM settings, which are off). Optimized shared delivery needs AWS's
/// shared IP pools, so turning it on is refused by name.
fn vdm_in(v: v2::VdmOptions) -> R<Option<bool>> {
    if v.guardian_options.and_then(|g| g.optimized_shared_delivery)
        == Some(v2::FeatureStatus::Enabled)
    {
        return Err(not_yet(
            "VdmOptions GuardianOptions OptimizedSharedDelivery",
        ));
    }
    Ok(v.dashboard_options
        .and_then(|d| d.engagement_metrics)
        .map(|e| e == v2::FeatureStatus::Enabled))
}

/// ArchivingOptions: archiving to a Mail Manager archive, which Sesame
/// does not have; no archive (what Sesame does) is accepted.
fn archiving_in(archive_arn: Option<String>) -> R<()> {
    match archive_arn.filter(|a| !a.is_empty()) {
        Some(arn) => Err(Error::new(
            sesame_model::ErrorKind::NotImplemented,
            format!(
                "Sesame does not implement Mail Manager archives yet, so it cannot archive to {arn}."
            ),
        )),
        None => Ok(()),
    }
}

pub async fn v2_put_configuration_set_vdm_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetVdmOptionsRequest,
) -> R<v2::PutConfigurationSetVdmOptionsResponse> {
    let o = SetOptions {
        engagement_metrics: Some(i.vdm_options.map(vdm_in).transpose()?.flatten()),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v2::PutConfigurationSetVdmOptionsResponse {})
}

pub async fn v2_put_configuration_set_archiving_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetArchivingOptionsRequest,
) -> R<v2::PutConfigurationSetArchivingOptionsResponse> {
    api.configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    archiving_in(i.archive_arn)?;
    Ok(v2::PutConfigurationSetArchivingOptionsResponse {})
}

fn v2_view(set: ConfigurationSet) -> v2::GetConfigurationSetResponse {
    v2::GetConfigurationSetResponse {
        configuration_set_name: Some(set.name),
        delivery_options: Some(v2::DeliveryOptions {
            tls_policy: Some(if set.tls_required {
                v2::TlsPolicy::Require
            } else {
                v2::TlsPolicy::Optional
            }),
            sending_pool_name: None,
            max_delivery_seconds: set.max_delivery_seconds.map(i64::from),
        }),
        reputation_options: Some(v2::ReputationOptions {
            reputation_metrics_enabled: Some(set.reputation_metrics),
            last_fresh_start: None,
        }),
        vdm_options: set.engagement_metrics.map(|e| v2::VdmOptions {
            dashboard_options: Some(v2::DashboardOptions {
                engagement_metrics: Some(if e {
                    v2::FeatureStatus::Enabled
                } else {
                    v2::FeatureStatus::Disabled
                }),
            }),
            guardian_options: None,
        }),
        sending_options: Some(v2::SendingOptions {
            sending_enabled: Some(set.sending_enabled),
        }),
        tracking_options: set.redirect_domain.clone().map(|d| v2::TrackingOptions {
            custom_redirect_domain: d,
            https_policy: Some(if set.redirect_https {
                v2::HttpsPolicy::Require
            } else {
                v2::HttpsPolicy::Optional
            }),
        }),
        suppression_options: set
            .suppressed_reasons
            .as_ref()
            .map(|r| v2::SuppressionOptions {
                suppressed_reasons: Some(r.iter().map(|r| spell::v2_reason(*r)).collect()),
                suppression_scope: None,
                validation_options: None,
            }),
        tags: Some(tags_out(&set.tags)),
        ..Default::default()
    }
}

/// A set's SuppressionOptions: the reasons (absent: the account's). A
/// tenant scope and auto-validation options are refused by name (the
/// account scope is the only one Sesame has).
fn suppression_in(
    reasons: Option<Vec<v2::SuppressionListReason>>,
    scope: Option<v2::SuppressionListScope>,
    validation: bool,
) -> R<Option<Vec<sesame_model::suppression::Reason>>> {
    if validation {
        return Err(not_yet("SuppressionOptions ValidationOptions"));
    }
    if scope == Some(v2::SuppressionListScope::Tenant) {
        return Err(not_yet("SuppressionOptions SuppressionScope TENANT"));
    }
    Ok(reasons.map(spell::v2_reasons_in))
}

pub async fn v2_put_configuration_set_suppression_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetSuppressionOptionsRequest,
) -> R<v2::PutConfigurationSetSuppressionOptionsResponse> {
    let reasons = suppression_in(
        i.suppressed_reasons,
        i.suppression_scope,
        i.validation_options.is_some(),
    )?;
    let o = SetOptions {
        suppressed_reasons: Some(reasons),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v2::PutConfigurationSetSuppressionOptionsResponse {})
}

pub async fn v2_get_configuration_set(
    api: &Api,
    s: &Scope,
    i: v2::GetConfigurationSetRequest,
) -> R<v2::GetConfigurationSetResponse> {
    let set = api
        .configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    Ok(v2_view(set))
}

pub async fn v2_delete_configuration_set(
    api: &Api,
    s: &Scope,
    i: v2::DeleteConfigurationSetRequest,
) -> R<v2::DeleteConfigurationSetResponse> {
    api.configuration_sets
        .delete(s, &i.configuration_set_name)
        .await?;
    Ok(v2::DeleteConfigurationSetResponse {})
}

pub async fn v2_list_configuration_sets(
    api: &Api,
    s: &Scope,
    i: v2::ListConfigurationSetsRequest,
) -> R<v2::ListConfigurationSetsResponse> {
    let size = match i.page_size {
        None | Some(0) => 100,
        Some(n @ 1..=1000) => n as u32,
        Some(n) => {
            return Err(Error::invalid(format!(
                "PageSize {n} is out of range: it must be from 0 to 1000."
            )));
        }
    };
    let contains: Vec<String> = i
        .filter
        .unwrap_or_default()
        .into_iter()
        .map(|(v2::ConfigurationSetFilterKey::ConfigurationSetNameContains, v)| v)
        .collect();
    let (sets, next_token) = api
        .configuration_sets
        .list(s, i.next_token.as_deref(), size)
        .await?;
    Ok(v2::ListConfigurationSetsResponse {
        configuration_sets: Some(
            sets.into_iter()
                .map(|c| c.name)
                .filter(|n| contains.iter().all(|c| n.contains(c.as_str())))
                .collect(),
        ),
        next_token,
    })
}

pub async fn v2_put_configuration_set_sending_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetSendingOptionsRequest,
) -> R<v2::PutConfigurationSetSendingOptionsResponse> {
    let o = SetOptions {
        sending_enabled: Some(i.sending_enabled.unwrap_or(false)),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v2::PutConfigurationSetSendingOptionsResponse {})
}

pub async fn v2_put_configuration_set_delivery_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetDeliveryOptionsRequest,
) -> R<v2::PutConfigurationSetDeliveryOptionsResponse> {
    let (tls, max) = v2_delivery(v2::DeliveryOptions {
        tls_policy: i.tls_policy,
        sending_pool_name: i.sending_pool_name,
        max_delivery_seconds: i.max_delivery_seconds,
    })?;
    let o = SetOptions {
        tls_required: Some(tls),
        max_delivery_seconds: Some(max),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v2::PutConfigurationSetDeliveryOptionsResponse {})
}

pub async fn v2_put_configuration_set_reputation_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetReputationOptionsRequest,
) -> R<v2::PutConfigurationSetReputationOptionsResponse> {
    let o = SetOptions {
        reputation_metrics: Some(i.reputation_metrics_enabled.unwrap_or(false)),
        ..Default::default()
    };
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v2::PutConfigurationSetReputationOptionsResponse {})
}

// ---------------------------------------------------- event destinations

/// A destination's CloudWatch dimensions, each `(name, from a message tag,
/// its source's spelling, default)` as either API gives it.
fn dimensions(
    list: impl Iterator<Item = (String, bool, &'static str, String)>,
) -> R<Vec<Dimension>> {
    list.map(|(name, tag, source, default)| dimension(name, tag, source, default))
        .collect()
}

/// A CloudWatch dimension Sesame can fill: from a message tag (or SES's
/// automatic `ses:` tags), else its default. Header and link-tag sources
/// are refused by name.
fn dimension(name: String, message_tag: bool, source: &str, default: String) -> R<Dimension> {
    if !message_tag {
        return Err(not_yet(&format!("CloudWatch dimension source {source}")));
    }
    let ok = |s: &str| {
        (1..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-:.@".contains(&b))
    };
    if !ok(&name) || !ok(&default) {
        return Err(Error::invalid(format!(
            "Invalid CloudWatch dimension {name}: names and default values have 1 to 256 letters, digits, '_', '-', ':', '.' or '@'."
        )));
    }
    Ok(Dimension { name, default })
}

/// What a request names as an event destination.
struct Named {
    sns: Option<String>,
    cloudwatch: Option<Vec<Dimension>>,
    firehose: Option<(String, String)>,
    eventbridge: Option<String>,
    pinpoint: bool,
}

/// A destination Sesame can serve: an SNS topic of its own SNS, CloudWatch
/// (as Prometheus series), or an EventBridge bus or Firehose stream the
/// operator mapped (checked by the use case). Pinpoint is refused by name.
fn target(n: Named) -> R<DestinationTarget> {
    if n.pinpoint {
        return Err(not_yet("PinpointDestination"));
    }
    match (n.sns, n.cloudwatch, n.firehose, n.eventbridge) {
        (Some(topic_arn), None, None, None) => Ok(DestinationTarget::Sns { topic_arn }),
        (None, Some(dimensions), None, None) => Ok(DestinationTarget::CloudWatch { dimensions }),
        (None, None, Some((stream_arn, role_arn)), None) => Ok(DestinationTarget::Firehose {
            stream_arn,
            role_arn,
        }),
        (None, None, None, Some(bus_arn)) => Ok(DestinationTarget::EventBridge { bus_arn }),
        _ => Err(Error::invalid(
            "An event destination must name exactly one destination.",
        )),
    }
}

fn v1_destination(d: v1::EventDestination) -> R<EventDestination> {
    Ok(EventDestination {
        target: target(Named {
            sns: d.sns_destination.map(|s| s.topic_arn),
            cloudwatch: d
                .cloud_watch_destination
                .map(|c| {
                    dimensions(c.dimension_configurations.into_iter().map(|d| {
                        let tag = d.dimension_value_source == v1::DimensionValueSource::MessageTag;
                        let source = d.dimension_value_source.as_str();
                        (d.dimension_name, tag, source, d.default_dimension_value)
                    }))
                })
                .transpose()?,
            firehose: d
                .kinesis_firehose_destination
                .map(|f| (f.delivery_stream_arn, f.iam_role_arn)),
            eventbridge: None,
            pinpoint: false,
        })?,
        name: d.name,
        enabled: d.enabled.unwrap_or(false),
        matching: dedup(d.matching_event_types.into_iter().map(spell::v1_event_kind)),
    })
}

fn dedup(kinds: impl Iterator<Item = EventKind>) -> Vec<EventKind> {
    let mut out = vec![];
    for k in kinds {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

fn v2_destination(name: String, d: v2::EventDestinationDefinition) -> R<EventDestination> {
    let mut matching = vec![];
    for t in d.matching_event_types.unwrap_or_default() {
        matching.push(
            spell::v2_event_kind(t).ok_or_else(|| not_yet("MatchingEventTypes SUBSCRIPTION"))?,
        );
    }
    Ok(EventDestination {
        target: target(Named {
            sns: d.sns_destination.map(|s| s.topic_arn),
            cloudwatch: d
                .cloud_watch_destination
                .map(|c| {
                    dimensions(c.dimension_configurations.into_iter().map(|d| {
                        let tag = d.dimension_value_source == v2::DimensionValueSource::MessageTag;
                        let source = d.dimension_value_source.as_str();
                        (d.dimension_name, tag, source, d.default_dimension_value)
                    }))
                })
                .transpose()?,
            firehose: d
                .kinesis_firehose_destination
                .map(|f| (f.delivery_stream_arn, f.iam_role_arn)),
            eventbridge: d.event_bridge_destination.map(|e| e.event_bus_arn),
            pinpoint: d.pinpoint_destination.is_some(),
        })?,
        name,
        enabled: d.enabled.unwrap_or(false),
        matching: dedup(matching.into_iter()),
    })
}

pub async fn v1_create_configuration_set_event_destination(
    api: &Api,
    s: &Scope,
    i: v1::CreateConfigurationSetEventDestinationRequest,
) -> R<v1::CreateConfigurationSetEventDestinationResponse> {
    api.configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    let d = v1_destination(i.event_destination)?;
    api.configuration_sets
        .put_destination(s, &i.configuration_set_name, d, true)
        .await?;
    Ok(v1::CreateConfigurationSetEventDestinationResponse {})
}

pub async fn v1_update_configuration_set_event_destination(
    api: &Api,
    s: &Scope,
    i: v1::UpdateConfigurationSetEventDestinationRequest,
) -> R<v1::UpdateConfigurationSetEventDestinationResponse> {
    api.configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    let d = v1_destination(i.event_destination)?;
    api.configuration_sets
        .put_destination(s, &i.configuration_set_name, d, false)
        .await?;
    Ok(v1::UpdateConfigurationSetEventDestinationResponse {})
}

pub async fn v1_delete_configuration_set_event_destination(
    api: &Api,
    s: &Scope,
    i: v1::DeleteConfigurationSetEventDestinationRequest,
) -> R<v1::DeleteConfigurationSetEventDestinationResponse> {
    api.configuration_sets
        .delete_destination(s, &i.configuration_set_name, &i.event_destination_name)
        .await?;
    Ok(v1::DeleteConfigurationSetEventDestinationResponse {})
}

pub async fn v2_create_configuration_set_event_destination(
    api: &Api,
    s: &Scope,
    i: v2::CreateConfigurationSetEventDestinationRequest,
) -> R<v2::CreateConfigurationSetEventDestinationResponse> {
    api.configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    let d = v2_destination(i.event_destination_name, i.event_destination)?;
    api.configuration_sets
        .put_destination(s, &i.configuration_set_name, d, true)
        .await?;
    Ok(v2::CreateConfigurationSetEventDestinationResponse {})
}

pub async fn v2_update_configuration_set_event_destination(
    api: &Api,
    s: &Scope,
    i: v2::UpdateConfigurationSetEventDestinationRequest,
) -> R<v2::UpdateConfigurationSetEventDestinationResponse> {
    api.configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    let d = v2_destination(i.event_destination_name, i.event_destination)?;
    api.configuration_sets
        .put_destination(s, &i.configuration_set_name, d, false)
        .await?;
    Ok(v2::UpdateConfigurationSetEventDestinationResponse {})
}

pub async fn v2_delete_configuration_set_event_destination(
    api: &Api,
    s: &Scope,
    i: v2::DeleteConfigurationSetEventDestinationRequest,
) -> R<v2::DeleteConfigurationSetEventDestinationResponse> {
    api.configuration_sets
        .delete_destination(s, &i.configuration_set_name, &i.event_destination_name)
        .await?;
    Ok(v2::DeleteConfigurationSetEventDestinationResponse {})
}

pub async fn v2_get_configuration_set_event_destinations(
    api: &Api,
    s: &Scope,
    i: v2::GetConfigurationSetEventDestinationsRequest,
) -> R<v2::GetConfigurationSetEventDestinationsResponse> {
    let set = api
        .configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    Ok(v2::GetConfigurationSetEventDestinationsResponse {
        event_destinations: Some(
            set.event_destinations
                .into_iter()
                .map(|d| {
                    let mut out = v2::EventDestination::default();
                    match d.target {
                        DestinationTarget::Sns { topic_arn } => {
                            out.sns_destination = Some(v2::SnsDestination { topic_arn });
                        }
                        DestinationTarget::CloudWatch { dimensions } => {
                            out.cloud_watch_destination = Some(v2::CloudWatchDestination {
                                dimension_configurations: dimensions
                                    .into_iter()
                                    .map(|d| v2::CloudWatchDimensionConfiguration {
                                        dimension_name: d.name,
                                        dimension_value_source:
                                            v2::DimensionValueSource::MessageTag,
                                        default_dimension_value: d.default,
                                    })
                                    .collect(),
                            });
                        }
                        DestinationTarget::EventBridge { bus_arn } => {
                            out.event_bridge_destination = Some(v2::EventBridgeDestination {
                                event_bus_arn: bus_arn,
                            });
                        }
                        DestinationTarget::Firehose {
                            stream_arn,
                            role_arn,
                        } => {
                            out.kinesis_firehose_destination =
                                Some(v2::KinesisFirehoseDestination {
                                    iam_role_arn: role_arn,
                                    delivery_stream_arn: stream_arn,
                                });
                        }
                    }
                    v2::EventDestination {
                        name: d.name,
                        enabled: Some(d.enabled),
                        matching_event_types: d
                            .matching
                            .into_iter()
                            .map(spell::v2_event_type)
                            .collect(),
                        ..out
                    }
                })
                .collect(),
        ),
    })
}

/// v1's view of a set's destinations (DescribeConfigurationSet).
fn v1_destinations(set: &ConfigurationSet) -> Vec<v1::EventDestination> {
    set.event_destinations
        .iter()
        .filter_map(|d| {
            let mut out = v1::EventDestination::default();
            match &d.target {
                DestinationTarget::Sns { topic_arn } => {
                    out.sns_destination = Some(v1::SNSDestination {
                        topic_arn: topic_arn.clone(),
                    });
                }
                DestinationTarget::CloudWatch { dimensions } => {
                    out.cloud_watch_destination = Some(v1::CloudWatchDestination {
                        dimension_configurations: dimensions
                            .iter()
                            .map(|d| v1::CloudWatchDimensionConfiguration {
                                dimension_name: d.name.clone(),
                                dimension_value_source: v1::DimensionValueSource::MessageTag,
                                default_dimension_value: d.default.clone(),
                            })
                            .collect(),
                    });
                }
                DestinationTarget::Firehose {
                    stream_arn,
                    role_arn,
                } => {
                    out.kinesis_firehose_destination = Some(v1::KinesisFirehoseDestination {
                        iam_role_arn: role_arn.clone(),
                        delivery_stream_arn: stream_arn.clone(),
                    });
                }
                // v1 has no EventBridge destinations to show.
                DestinationTarget::EventBridge { .. } => return None,
            }
            Some(v1::EventDestination {
                name: d.name.clone(),
                enabled: Some(d.enabled),
                matching_event_types: d
                    .matching
                    .iter()
                    .filter_map(|k| spell::v1_event_type(*k))
                    .collect(),
                ..out
            })
        })
        .collect()
}

// ---------------------------------------------------------- tracking

/// HTTPS for the redirect domain under REQUIRE and REQUIRE_OPEN_ONLY;
/// plain HTTP under OPTIONAL or no policy.
fn v2_https(p: Option<v2::HttpsPolicy>) -> bool {
    matches!(
        p,
        Some(v2::HttpsPolicy::Require | v2::HttpsPolicy::RequireOpenOnly)
    )
}

/// TrackingOptions: the redirect domain (`None` removes it) and HTTPS.
fn tracking(domain: Option<String>, https: bool) -> SetOptions {
    SetOptions {
        tracking: Some((domain, https)),
        ..Default::default()
    }
}

pub async fn v2_put_configuration_set_tracking_options(
    api: &Api,
    s: &Scope,
    i: v2::PutConfigurationSetTrackingOptionsRequest,
) -> R<v2::PutConfigurationSetTrackingOptionsResponse> {
    let domain = i.custom_redirect_domain.filter(|d| !d.is_empty());
    let o = tracking(domain, v2_https(i.https_policy));
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v2::PutConfigurationSetTrackingOptionsResponse {})
}

pub async fn v1_create_configuration_set_tracking_options(
    api: &Api,
    s: &Scope,
    i: v1::CreateConfigurationSetTrackingOptionsRequest,
) -> R<v1::CreateConfigurationSetTrackingOptionsResponse> {
    let set = api
        .configuration_sets
        .get(s, &i.configuration_set_name)
        .await?;
    if set.redirect_domain.is_some() {
        return Err(Error::new(
            sesame_model::ErrorKind::AlreadyExists,
            format!(
                "Tracking options already exist for configuration set <{}>.",
                set.name
            ),
        ));
    }
    let o = tracking(i.tracking_options.custom_redirect_domain, false);
    configure(api, s, &set.name, o).await?;
    Ok(v1::CreateConfigurationSetTrackingOptionsResponse {})
}

pub async fn v1_update_configuration_set_tracking_options(
    api: &Api,
    s: &Scope,
    i: v1::UpdateConfigurationSetTrackingOptionsRequest,
) -> R<v1::UpdateConfigurationSetTrackingOptionsResponse> {
    let o = tracking(i.tracking_options.custom_redirect_domain, false);
    configure(api, s, &i.configuration_set_name, o).await?;
    Ok(v1::UpdateConfigurationSetTrackingOptionsResponse {})
}

pub async fn v1_delete_configuration_set_tracking_options(
    api: &Api,
    s: &Scope,
    i: v1::DeleteConfigurationSetTrackingOptionsRequest,
) -> R<v1::DeleteConfigurationSetTrackingOptionsResponse> {
    configure(api, s, &i.configuration_set_name, tracking(None, false)).await?;
    Ok(v1::DeleteConfigurationSetTrackingOptionsResponse {})
}
