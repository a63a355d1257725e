//! Sesame's SNS: topics, subscriptions with SNS's confirmation handshake,
//! and Publish. Messages are stored with their deliveries (one per
//! confirmed subscription) in one transaction; `notify.rs` delivers them.
//!
//! - `sns/signing.rs`: the key notifications are signed with and the
//!   certificate served at `SigningCertURL`.

pub mod signing;

use crate::{Clock, internal, paging};
use sesame_model::sns::{
    self, MessageType, Protocol, Subscription, Topic, TopicMessage, invalid_parameter,
    subscription_not_found, topic_not_found,
};
use sesame_model::{Error, ErrorKind, Scope, Tag};
use sesame_store::{Created, Store};
use std::sync::Arc;

/// Where Sesame's SNS is reached from outside: the base of `SubscribeURL`,
/// `UnsubscribeURL` and `SigningCertURL`.
#[derive(Debug, Clone)]
pub struct SnsUrls {
    /// e.g. `http://127.0.0.1:4579`.
    pub public_url: String,
}

impl SnsUrls {
    fn base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
    /// A GET of this confirms the subscription, as SNS's `SubscribeURL` does.
    pub fn subscribe(&self, topic_arn: &str, token: &str) -> String {
        format!(
            "{}/_sesame/sns/confirm?TopicArn={}&Token={}",
            self.base(),
            enc(topic_arn),
            enc(token)
        )
    }
    pub fn unsubscribe(&self, subscription_arn: &str) -> String {
        format!(
            "{}/_sesame/sns/unsubscribe?SubscriptionArn={}",
            self.base(),
            enc(subscription_arn)
        )
    }
    pub fn signing_cert(&self, name: &str) -> String {
        format!("{}/_sesame/sns/{name}", self.base())
    }
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct SnsService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// SNS's page size for ListTopics and ListSubscriptions.
const PAGE: u32 = 100;

impl SnsService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// A topic the caller owns. SNS answers NotFound for a topic that does
    /// not exist, and AuthorizationError for another account's.
    pub async fn topic(&self, scope: &Scope, arn: &str) -> Result<Topic, Error> {
        match self.store.get_topic(arn).await.map_err(internal)? {
            Some((owner, t)) if owner == *scope => Ok(t),
            Some(_) => Err(not_authorized(arn)),
            None => Err(topic_not_found()),
        }
    }

    /// CreateTopic: idempotent for a name that exists with the same
    /// attributes, as in SNS.
    pub async fn create_topic(
        &self,
        scope: &Scope,
        name: &str,
        attributes: &[(String, String)],
        tags: Vec<Tag>,
    ) -> Result<String, Error> {
        sns::validate_topic_name(name)?;
        let mut topic = Topic::new(scope, name, self.clock.now_ms());
        for (k, v) in attributes {
            topic.set_attribute(k, v)?;
        }
        topic.tags = tags;
        match self
            .store
            .insert_topic(scope, &topic, sns::MAX_TOPICS)
            .await
            .map_err(internal)?
        {
            Created::Created => Ok(topic.arn),
            Created::Exists => {
                let existing = self.topic(scope, &topic.arn).await?;
                let same = existing.display_name == topic.display_name
                    && existing.signature_version == topic.signature_version
                    && existing.policy == topic.policy
                    && existing.delivery_policy == topic.delivery_policy;
                if attributes.is_empty() || same {
                    Ok(existing.arn)
                } else {
                    Err(invalid_parameter(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                    ))
                }
            }
            Created::LimitReached => {
                Err(Error::new(ErrorKind::LimitExceeded, "Topic limit exceeded"))
            }
        }
    }

    /// DeleteTopic: deleting a topic that does not exist succeeds, as in SNS.
    pub async fn delete_topic(&self, scope: &Scope, arn: &str) -> Result<(), Error> {
        match self.topic(scope, arn).await {
            Ok(_) => {
                self.store.delete_topic(arn).await.map_err(internal)?;
                Ok(())
            }
            Err(e) if e.kind == ErrorKind::SnsNotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn list_topics(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
    ) -> Result<(Vec<Topic>, Option<String>), Error> {
        paging::list(next_token, PAGE, |after, limit| {
            self.store.list_topics(scope, after, limit)
        })
        .await
    }

    /// GetTopicAttributes, in SNS's names.
    pub async fn topic_attributes(
        &self,
        scope: &Scope,
        arn: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let t = self.topic(scope, arn).await?;
        let subs = self.subscriptions_of(scope, arn).await?;
        let confirmed = subs.iter().filter(|s| s.confirmed).count();
        let mut out = vec![
            ("TopicArn".to_owned(), t.arn.clone()),
            ("Owner".to_owned(), scope.account.as_str().to_owned()),
            ("DisplayName".to_owned(), t.display_name.clone()),
            ("SubscriptionsConfirmed".to_owned(), confirmed.to_string()),
            (
                "SubscriptionsPending".to_owned(),
                (subs.len() - confirmed).to_string(),
            ),
            ("SubscriptionsDeleted".to_owned(), "0".to_owned()),
            (
                "SignatureVersion".to_owned(),
                t.signature_version.to_string(),
            ),
            (
                "Policy".to_owned(),
                t.policy
                    .clone()
                    .unwrap_or_else(|| default_policy(scope, &t.arn)),
            ),
        ];
        if let Some(p) = &t.delivery_policy {
            out.push(("DeliveryPolicy".to_owned(), p.clone()));
        }
        Ok(out)
    }

    pub async fn set_topic_attribute(
        &self,
        scope: &Scope,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), Error> {
        let mut t = self.topic(scope, arn).await?;
        t.set_attribute(name, value)?;
        if !self.store.update_topic(&t).await.map_err(internal)? {
            return Err(topic_not_found());
        }
        Ok(())
    }

    async fn subscriptions_of(&self, scope: &Scope, arn: &str) -> Result<Vec<Subscription>, Error> {
        Ok(self
            .store
            .list_subscriptions(scope, Some(arn), 0, sns::MAX_SUBSCRIPTIONS_PER_TOPIC)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// Subscribe: the subscription is pending until its endpoint confirms
    /// it; its confirmation message is stored with it. An endpoint already
    /// subscribed to the topic by the same protocol gets its subscription
    /// back. The answer is the ARN, or `pending confirmation` as SNS says
    /// unless `return_arn`.
    pub async fn subscribe(
        &self,
        scope: &Scope,
        topic_arn: &str,
        protocol: &str,
        endpoint: Option<&str>,
        attributes: &[(String, String)],
        return_arn: bool,
    ) -> Result<String, Error> {
        let protocol = Protocol::parse(protocol)?;
        let endpoint = endpoint.ok_or_else(|| invalid_parameter("Invalid parameter: Endpoint"))?;
        protocol.check_endpoint(endpoint)?;
        self.topic(scope, topic_arn).await?;
        if let Some(s) = self
            .subscriptions_of(scope, topic_arn)
            .await?
            .into_iter()
            .find(|s| s.protocol == protocol && s.endpoint == endpoint)
        {
            return Ok(if s.confirmed || return_arn {
                s.arn
            } else {
                "pending confirmation".to_owned()
            });
        }
        let now = self.clock.now_ms();
        let mut sub = Subscription {
            arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
            topic_arn: topic_arn.to_owned(),
            owner: scope.account.as_str().to_owned(),
            protocol,
            endpoint: endpoint.to_owned(),
            token: Some(crate::random::string_from(b"0123456789abcdef", 128)),
            confirmed: false,
            raw_message_delivery: false,
            created_at: now,
        };
        for (k, v) in attributes {
            sub.set_attribute(k, v)?;
        }
        let confirmation = TopicMessage {
            id: uuid::Uuid::new_v4().to_string(),
            kind: MessageType::SubscriptionConfirmation,
            topic_arn: topic_arn.to_owned(),
            subject: None,
            message: sns::confirmation_text(topic_arn),
            created_at: now,
            to: Some(sub.arn.clone()),
        };
        match self
            .store
            .insert_subscription(
                scope,
                &sub,
                sns::MAX_SUBSCRIPTIONS_PER_TOPIC,
                Some(&confirmation),
                now,
            )
            .await
            .map_err(internal)?
        {
            Created::Created => {}
            Created::Exists => return Err(topic_not_found()),
            Created::LimitReached => {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    "Subscription limit exceeded",
                ));
            }
        }
        tracing::info!(topic = %topic_arn, protocol = protocol.as_str(), "subscription pending confirmation");
        Ok(if return_arn {
            sub.arn
        } else {
            "pending confirmation".to_owned()
        })
    }

    /// ConfirmSubscription (and a GET of `SubscribeURL`): the token must be
    /// the subscription's outstanding one. Needs no credentials, as in SNS.
    pub async fn confirm(&self, topic_arn: &str, token: &str) -> Result<String, Error> {
        let (owner, _) = self
            .store
            .get_topic(topic_arn)
            .await
            .map_err(internal)?
            .ok_or_else(topic_not_found)?;
        let subs = self.subscriptions_of(&owner, topic_arn).await?;
        let found = subs
            .into_iter()
            .find(|s| !token.is_empty() && s.token.as_deref() == Some(token));
        let Some(mut sub) = found else {
            return Err(Error::new(ErrorKind::SnsInvalidParameter, "Invalid token"));
        };
        sub.confirmed = true;
        sub.token = None;
        self.save_subscription(&sub).await?;
        tracing::info!(subscription = %sub.arn, "subscription confirmed");
        Ok(sub.arn)
    }

    async fn save_subscription(&self, sub: &Subscription) -> Result<(), Error> {
        if self
            .store
            .update_subscription(sub, None, self.clock.now_ms())
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(subscription_not_found())
        }
    }

    /// A subscription the caller owns (or anyone, for `None`: the
    /// unauthenticated `UnsubscribeURL`).
    async fn subscription(&self, scope: Option<&Scope>, arn: &str) -> Result<Subscription, Error> {
        match self.store.get_subscription(arn).await.map_err(internal)? {
            Some((owner, s)) if scope.is_none_or(|c| *c == owner) => Ok(s),
            Some(_) => Err(not_authorized(arn)),
            None => Err(subscription_not_found()),
        }
    }

    /// Unsubscribe, by the owner or through `UnsubscribeURL` (`scope` None).
    pub async fn unsubscribe(&self, scope: Option<&Scope>, arn: &str) -> Result<(), Error> {
        if arn == sns::PENDING_CONFIRMATION {
            return Err(invalid_parameter("Invalid parameter: SubscriptionArn"));
        }
        self.subscription(scope, arn).await?;
        self.store
            .delete_subscription(arn, None, self.clock.now_ms())
            .await
            .map_err(internal)?;
        tracing::info!(subscription = %arn, "unsubscribed");
        Ok(())
    }

    pub async fn subscription_attributes(
        &self,
        scope: &Scope,
        arn: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let s = self.subscription(Some(scope), arn).await?;
        Ok(vec![
            ("SubscriptionArn".to_owned(), s.arn.clone()),
            ("TopicArn".to_owned(), s.topic_arn.clone()),
            ("Owner".to_owned(), s.owner.clone()),
            ("Protocol".to_owned(), s.protocol.as_str().to_owned()),
            ("Endpoint".to_owned(), s.endpoint.clone()),
            ("PendingConfirmation".to_owned(), (!s.confirmed).to_string()),
            (
                "ConfirmationWasAuthenticated".to_owned(),
                "false".to_owned(),
            ),
            (
                "RawMessageDelivery".to_owned(),
                s.raw_message_delivery.to_string(),
            ),
        ])
    }

    pub async fn set_subscription_attribute(
        &self,
        scope: &Scope,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), Error> {
        let mut s = self.subscription(Some(scope), arn).await?;
        s.set_attribute(name, value)?;
        self.save_subscription(&s).await
    }

    pub async fn list_subscriptions(
        &self,
        scope: &Scope,
        topic_arn: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<(Vec<Subscription>, Option<String>), Error> {
        if let Some(t) = topic_arn {
            self.topic(scope, t).await?;
        }
        paging::list(next_token, PAGE, |after, limit| {
            self.store
                .list_subscriptions(scope, topic_arn, after, limit)
        })
        .await
    }

    /// A topic the operator declares (in the config file) with its
    /// subscriptions: made if missing, attributes set as declared, and
    /// each subscription stored confirmed, since the operator, not a
    /// caller, named its endpoint.
    pub async fn declare(
        &self,
        scope: &Scope,
        name: &str,
        attributes: &[(String, String)],
        subscriptions: &[(String, String, bool)],
    ) -> Result<String, Error> {
        sns::validate_topic_name(name)?;
        let arn = sns::topic_arn(scope, name);
        match self.store.get_topic(&arn).await.map_err(internal)? {
            Some(_) => {
                for (k, v) in attributes {
                    self.set_topic_attribute(scope, &arn, k, v).await?;
                }
            }
            None => {
                self.create_topic(scope, name, attributes, vec![]).await?;
            }
        }
        let existing = self.subscriptions_of(scope, &arn).await?;
        for (protocol, endpoint, raw) in subscriptions {
            let protocol = Protocol::parse(protocol)?;
            protocol.check_endpoint(endpoint)?;
            let now = self.clock.now_ms();
            let mut sub = match existing
                .iter()
                .find(|s| s.protocol == protocol && &s.endpoint == endpoint)
            {
                Some(s) => s.clone(),
                None => Subscription {
                    arn: format!("{arn}:{}", uuid::Uuid::new_v4()),
                    topic_arn: arn.clone(),
                    owner: scope.account.as_str().to_owned(),
                    protocol,
                    endpoint: endpoint.clone(),
                    token: None,
                    confirmed: true,
                    raw_message_delivery: *raw,
                    created_at: now,
                },
            };
            sub.confirmed = true;
            sub.token = None;
            sub.raw_message_delivery = *raw;
            if !self
                .store
                .update_subscription(&sub, None, now)
                .await
                .map_err(internal)?
            {
                self.store
                    .insert_subscription(scope, &sub, sns::MAX_SUBSCRIPTIONS_PER_TOPIC, None, now)
                    .await
                    .map_err(internal)?;
            }
        }
        Ok(arn)
    }

    /// Publish: the message is stored with one delivery per confirmed
    /// subscription of the topic, in one transaction. Its MessageId.
    pub async fn publish(
        &self,
        scope: &Scope,
        topic_arn: &str,
        subject: Option<&str>,
        message: &str,
    ) -> Result<String, Error> {
        check_message(subject, message)?;
        self.topic(scope, topic_arn).await?;
        let m = TopicMessage {
            id: uuid::Uuid::new_v4().to_string(),
            kind: MessageType::Notification,
            topic_arn: topic_arn.to_owned(),
            subject: subject.map(str::to_owned),
            message: message.to_owned(),
            created_at: self.clock.now_ms(),
            to: None,
        };
        self.store
            .publish_messages(std::slice::from_ref(&m), None, m.created_at)
            .await
            .map_err(internal)?;
        Ok(m.id)
    }
}

/// SNS's checks on a published message and subject.
pub fn check_message(subject: Option<&str>, message: &str) -> Result<(), Error> {
    if message.is_empty() {
        return Err(invalid_parameter("Invalid parameter: Empty message"));
    }
    if message.len() > sns::MAX_MESSAGE_BYTES {
        return Err(invalid_parameter("Invalid parameter: Message too long"));
    }
    if let Some(s) = subject {
        let printable = s.chars().all(|c| !c.is_control() || c == ' ');
        if s.is_empty() || s.chars().count() > sns::MAX_SUBJECT_CHARS || !printable {
            return Err(invalid_parameter("Invalid parameter: Subject"));
        }
    }
    Ok(())
}

fn not_authorized(arn: &str) -> Error {
    Error::new(
        ErrorKind::SnsAuthorization,
        format!("User is not authorized to access this resource: {arn}"),
    )
}

/// The policy SNS gives a topic that was not given one: the owner may do
/// everything.
fn default_policy(scope: &Scope, arn: &str) -> String {
    format!(
        r#"{{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"{arn}","Condition":{{"StringEquals":{{"AWS:SourceOwner":"{}"}}}}}}]}}"#,
        scope.account
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded() {
        let u = SnsUrls {
            public_url: "http://h:1/".into(),
        };
        assert_eq!(
            u.subscribe("arn:aws:sns:us-east-1:123456789012:t", "ab"),
            "http://h:1/_sesame/sns/confirm?TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Token=ab"
        );
    }

    #[test]
    fn messages_are_checked() {
        assert!(check_message(None, "x").is_ok());
        assert!(check_message(None, "").is_err());
        assert!(check_message(Some("a\nb"), "x").is_err());
        assert!(check_message(None, &"x".repeat(sns::MAX_MESSAGE_BYTES + 1)).is_err());
    }
}
