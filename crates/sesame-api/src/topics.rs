//! SNS's operations that SES feedback needs: topics, subscriptions with
//! their handshake, their attributes, and Publish. Everything else SNS has
//! (SMS, mobile push, FIFO, data protection, permissions) keeps the
//! generated default, which answers NotImplemented naming it.

use crate::{Api, R};
use sesame_model::Scope;
use sesame_model::sns::invalid_parameter;
use sesame_wire::generated::sns;

fn pairs(a: Option<Vec<(String, String)>>) -> Vec<(String, String)> {
    a.unwrap_or_default()
}

fn subscription_out(s: sesame_model::sns::Subscription) -> sns::Subscription {
    sns::Subscription {
        subscription_arn: Some(s.listed_arn().to_owned()),
        owner: Some(s.owner),
        protocol: Some(s.protocol.as_str().to_owned()),
        endpoint: Some(s.endpoint),
        topic_arn: Some(s.topic_arn),
    }
}

pub async fn sns_create_topic(
    api: &Api,
    s: &Scope,
    i: sns::CreateTopicInput,
) -> R<sns::CreateTopicResponse> {
    if i.data_protection_policy.is_some() {
        return Err(sesame_core::configuration_sets::not_yet(
            "DataProtectionPolicy (SNS)",
        ));
    }
    let tags = i
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| sesame_model::Tag {
            key: t.key,
            value: t.value,
        })
        .collect();
    let arn = api
        .sns
        .create_topic(s, &i.name, &pairs(i.attributes), tags)
        .await?;
    Ok(sns::CreateTopicResponse {
        topic_arn: Some(arn),
    })
}

pub async fn sns_delete_topic(api: &Api, s: &Scope, i: sns::DeleteTopicInput) -> R<()> {
    api.sns.delete_topic(s, &i.topic_arn).await
}

pub async fn sns_list_topics(
    api: &Api,
    s: &Scope,
    i: sns::ListTopicsInput,
) -> R<sns::ListTopicsResponse> {
    let (topics, next_token) = api.sns.list_topics(s, i.next_token.as_deref()).await?;
    Ok(sns::ListTopicsResponse {
        topics: Some(
            topics
                .into_iter()
                .map(|t| sns::Topic {
                    topic_arn: Some(t.arn),
                })
                .collect(),
        ),
        next_token,
    })
}

pub async fn sns_get_topic_attributes(
    api: &Api,
    s: &Scope,
    i: sns::GetTopicAttributesInput,
) -> R<sns::GetTopicAttributesResponse> {
    Ok(sns::GetTopicAttributesResponse {
        attributes: Some(api.sns.topic_attributes(s, &i.topic_arn).await?),
    })
}

pub async fn sns_set_topic_attributes(
    api: &Api,
    s: &Scope,
    i: sns::SetTopicAttributesInput,
) -> R<()> {
    let value = i.attribute_value.unwrap_or_default();
    api.sns
        .set_topic_attribute(s, &i.topic_arn, &i.attribute_name, &value)
        .await
}

pub async fn sns_subscribe(
    api: &Api,
    s: &Scope,
    i: sns::SubscribeInput,
) -> R<sns::SubscribeResponse> {
    let arn = api
        .sns
        .subscribe(
            s,
            &i.topic_arn,
            &i.protocol,
            i.endpoint.as_deref(),
            &pairs(i.attributes),
            i.return_subscription_arn.unwrap_or(false),
        )
        .await?;
    Ok(sns::SubscribeResponse {
        subscription_arn: Some(arn),
    })
}

pub async fn sns_confirm_subscription(
    api: &Api,
    s: &Scope,
    i: sns::ConfirmSubscriptionInput,
) -> R<sns::ConfirmSubscriptionResponse> {
    // Confirming needs no credentials in SNS; a signed call must still
    // name a topic of the caller's.
    api.sns.topic(s, &i.topic_arn).await?;
    let arn = api.sns.confirm(&i.topic_arn, &i.token).await?;
    Ok(sns::ConfirmSubscriptionResponse {
        subscription_arn: Some(arn),
    })
}

pub async fn sns_unsubscribe(api: &Api, s: &Scope, i: sns::UnsubscribeInput) -> R<()> {
    api.sns.unsubscribe(Some(s), &i.subscription_arn).await
}

pub async fn sns_list_subscriptions(
    api: &Api,
    s: &Scope,
    i: sns::ListSubscriptionsInput,
) -> R<sns::ListSubscriptionsResponse> {
    let (subs, next_token) = api
        .sns
        .list_subscriptions(s, None, i.next_token.as_deref())
        .await?;
    Ok(sns::ListSubscriptionsResponse {
        subscriptions: Some(subs.into_iter().map(subscription_out).collect()),
        next_token,
    })
}

pub async fn sns_list_subscriptions_by_topic(
    api: &Api,
    s: &Scope,
    i: sns::ListSubscriptionsByTopicInput,
) -> R<sns::ListSubscriptionsByTopicResponse> {
    let (subs, next_token) = api
        .sns
        .list_subscriptions(s, Some(&i.topic_arn), i.next_token.as_deref())
        .await?;
    Ok(sns::ListSubscriptionsByTopicResponse {
        subscriptions: Some(subs.into_iter().map(subscription_out).collect()),
        next_token,
    })
}

pub async fn sns_get_subscription_attributes(
    api: &Api,
    s: &Scope,
    i: sns::GetSubscriptionAttributesInput,
) -> R<sns::GetSubscriptionAttributesResponse> {
    Ok(sns::GetSubscriptionAttributesResponse {
        attributes: Some(
            api.sns
                .subscription_attributes(s, &i.subscription_arn)
                .await?,
        ),
    })
}

pub async fn sns_set_subscription_attributes(
    api: &Api,
    s: &Scope,
    i: sns::SetSubscriptionAttributesInput,
) -> R<()> {
    let value = i.attribute_value.unwrap_or_default();
    api.sns
        .set_subscription_attribute(s, &i.subscription_arn, &i.attribute_name, &value)
        .await
}

pub async fn sns_publish(api: &Api, s: &Scope, i: sns::PublishInput) -> R<sns::PublishResponse> {
    if i.phone_number.is_some() {
        return Err(sesame_core::configuration_sets::not_yet(
            "Publish to a PhoneNumber (SMS)",
        ));
    }
    if i.message_structure.is_some() {
        return Err(sesame_core::configuration_sets::not_yet(
            "MessageStructure json",
        ));
    }
    if i.message_attributes.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(sesame_core::configuration_sets::not_yet(
            "MessageAttributes",
        ));
    }
    if i.message_group_id.is_some() || i.message_deduplication_id.is_some() {
        return Err(invalid_parameter(
            "Invalid parameter: The MessageGroupId and MessageDeduplicationId parameters are only for FIFO topics",
        ));
    }
    let topic = match (i.topic_arn, i.target_arn) {
        (Some(t), None) | (None, Some(t)) => t,
        (Some(_), Some(_)) => {
            return Err(invalid_parameter(
                "Invalid parameter: TopicArn or TargetArn Reason: Only one of TopicArn or TargetArn may be specified",
            ));
        }
        (None, None) => {
            return Err(invalid_parameter(
                "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
            ));
        }
    };
    let id = api
        .sns
        .publish(s, &topic, i.subject.as_deref(), &i.message)
        .await?;
    Ok(sns::PublishResponse {
        message_id: Some(id),
        sequence_number: None,
    })
}
