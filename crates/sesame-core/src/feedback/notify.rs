//! Delivers topic messages to subscriptions: HTTP(S) endpoints get SNS's
//! signed JSON envelope and headers through a [`Webhook`]; email and
//! email-json endpoints get mail through Sesame's own send path. A failed
//! attempt is retried with backoff until the message is
//! [`NotifySettings::retry`]'s `max_age_ms` old; a claimed delivery whose
//! process died is claimed again when its lease runs out.

use super::FeedbackFormat;
use crate::sending::{Content, Outgoing, SystemMail};
use crate::sns::SnsUrls;
use crate::sns::signing::Signer;
use crate::{Clock, SendService};
use sesame_model::sns::{
    Envelope, External, MessageType, Protocol, TopicDelivery, TopicDeliveryOutcome,
};
use sesame_model::{Millis, RetryPolicy};
use sesame_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Where notifications leave the domain (the binary's HTTP client and
/// files).
#[async_trait::async_trait]
pub trait Webhook: Send + Sync {
    /// POSTs `body` with `headers`; `Err` with a reason unless the endpoint
    /// answered 2xx. A `trusted` endpoint is the operator's (from the
    /// config file) and may be on a private network; a subscriber's is not.
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: String,
        trusted: bool,
    ) -> Result<(), String>;
    /// Appends `line` and a newline to the file at `path` (an operator's
    /// Firehose target).
    async fn append(&self, path: &str, line: &str) -> Result<(), String>;
}

#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Backoff between attempts, and how long a message is kept trying.
    pub retry: RetryPolicy,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// The From address of email subscriptions' mail.
    pub email_from: String,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            // SNS's default HTTP policy gives up after 3 retries 20 s apart;
            // Sesame keeps a notification for a day, backing off to a
            // minute between attempts, so an endpoint down for an hour
            // loses nothing.
            retry: RetryPolicy {
                initial_ms: 1_000,
                max_interval_ms: 60_000,
                max_age_ms: 24 * 3600 * 1000,
            },
            concurrency: 16,
            email_from: "no-reply@sns.sesame.invalid".into(),
        }
    }
}

pub struct Notifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    signer: Arc<Signer>,
    urls: SnsUrls,
    format: Arc<dyn FeedbackFormat>,
    webhook: Arc<dyn Webhook>,
    sending: Arc<SendService>,
    settings: NotifySettings,
    delivered: metrics::Counter,
    failed: metrics::Counter,
}

/// How long a claim holds a delivery before another may take it.
const LEASE_MS: Millis = 120_000;

impl Notifier {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        signer: Arc<Signer>,
        urls: SnsUrls,
        format: Arc<dyn FeedbackFormat>,
        webhook: Arc<dyn Webhook>,
        sending: Arc<SendService>,
        settings: NotifySettings,
    ) -> Self {
        Self {
            store,
            clock,
            signer,
            urls,
            format,
            webhook,
            sending,
            settings,
            delivered: metrics::counter!("sesame_notifications_delivered_total"),
            failed: metrics::counter!("sesame_notifications_failed_total"),
        }
    }

    /// Delivers until `stop` turns true; attempts in flight then finish.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let signal = self.store.topic_signal();
        loop {
            if *stop.borrow() {
                return;
            }
            let now = self.clock.now_ms();
            let claimed = match self
                .store
                .claim_topic_deliveries(now, now + LEASE_MS, self.settings.concurrency as u32 * 4)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming notifications failed");
                    vec![]
                }
            };
            if claimed.is_empty() {
                let wait = match self.store.next_topic_delivery_due().await {
                    Ok(Some(at)) => Duration::from_millis((at - now).clamp(10, 1_000) as u64),
                    _ => Duration::from_secs(1),
                };
                tokio::select! {
                    _ = signal.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let outcomes = self.attempt_all(claimed).await;
            if let Err(e) = self
                .store
                .finish_topic_deliveries(&outcomes, self.clock.now_ms())
                .await
            {
                tracing::warn!(error = %e, "recording notification outcomes failed; their leases will expire and they will be retried");
            }
        }
    }

    /// Attempts every claimed delivery, at most `concurrency` at once, each
    /// on its own task (signing is CPU work).
    async fn attempt_all(
        self: &Arc<Self>,
        claimed: Vec<TopicDelivery>,
    ) -> Vec<(i64, TopicDeliveryOutcome)> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.settings.concurrency));
        let mut set = tokio::task::JoinSet::new();
        let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
        for d in claimed {
            let (sem, me) = (sem.clone(), self.clone());
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let id = d.id;
                (id, me.attempt(d).await)
            });
        }
        let mut out = Vec::with_capacity(ids.len());
        while let Some(r) = set.join_next().await {
            match r {
                Ok(done) => out.push(done),
                Err(e) => tracing::error!(error = %e, "a notification attempt failed"),
            }
        }
        out
    }

    /// One attempt at one delivery.
    pub async fn attempt(&self, d: TopicDelivery) -> TopicDeliveryOutcome {
        let Some(sub) = &d.subscription else {
            return match d.message.to.as_deref().and_then(External::parse) {
                Some(target) => self.external(&d, target).await,
                None => TopicDeliveryOutcome::Failed {
                    error: "the subscription was deleted".into(),
                },
            };
        };
        let m = &d.message;
        if m.kind == MessageType::Notification && !sub.confirmed {
            return TopicDeliveryOutcome::Failed {
                error: "the subscription is not confirmed".into(),
            };
        }
        let confirmation = m.kind != MessageType::Notification;
        let mut e = Envelope {
            kind: m.kind,
            message_id: m.id.clone(),
            topic_arn: m.topic_arn.clone(),
            subject: m.subject.clone(),
            message: m.message.clone(),
            timestamp: sesame_model::iso8601(m.created_at),
            signature_version: 1,
            signature: String::new(),
            signing_cert_url: self.urls.signing_cert(self.signer.cert_name()),
            unsubscribe_url: (!confirmation).then(|| self.urls.unsubscribe(&sub.arn)),
            subscribe_url: sub
                .token
                .as_deref()
                .filter(|_| confirmation)
                .map(|t| self.urls.subscribe(&m.topic_arn, t)),
            token: sub.token.clone().filter(|_| confirmation),
            subscription_arn: (!confirmation).then(|| sub.arn.clone()),
        };
        if confirmation && e.token.is_none() {
            // Confirmed since the confirmation was queued.
            return TopicDeliveryOutcome::Delivered;
        }
        if let Ok(Some((_, topic))) = self.store.get_topic(&m.topic_arn).await {
            e.signature_version = topic.signature_version;
        }
        e.signature = match self.signer.sign(&e) {
            Ok(s) => s,
            Err(err) => return self.retry(&d, err.message),
        };
        let result = match sub.protocol {
            Protocol::Http | Protocol::Https => {
                let mut headers = vec![
                    ("x-amz-sns-message-type", m.kind.as_str().to_owned()),
                    ("x-amz-sns-message-id", m.id.clone()),
                    ("x-amz-sns-topic-arn", m.topic_arn.clone()),
                ];
                if !confirmation {
                    headers.push(("x-amz-sns-subscription-arn", sub.arn.clone()));
                }
                let body = if sub.raw_message_delivery && !confirmation {
                    headers.push(("x-amz-sns-rawdelivery", "true".to_owned()));
                    m.message.clone()
                } else {
                    self.format.envelope(&e)
                };
                self.webhook.post(&sub.endpoint, headers, body, false).await
            }
            Protocol::Email | Protocol::EmailJson => self.email(sub, &e).await,
        };
        match result {
            Ok(()) => {
                self.delivered.increment(1);
                TopicDeliveryOutcome::Delivered
            }
            Err(why) => {
                tracing::info!(subscription = %sub.arn, attempt = d.attempts + 1, error = %why, "notification not delivered");
                self.retry(&d, why)
            }
        }
    }

    /// An operator's EventBridge or Firehose target: the message as it is.
    async fn external(&self, d: &TopicDelivery, target: External) -> TopicDeliveryOutcome {
        let json = || vec![("content-type", "application/json".to_owned())];
        let body = d.message.message.clone();
        let result = match &target {
            External::EventBridge(url) => self.webhook.post(url, json(), body, true).await,
            External::Firehose(t) => match t.strip_prefix("file://") {
                Some(path) => self.webhook.append(path, &body).await,
                None => self.webhook.post(t, json(), body, true).await,
            },
        };
        match result {
            Ok(()) => {
                self.delivered.increment(1);
                TopicDeliveryOutcome::Delivered
            }
            Err(why) => {
                tracing::info!(?target, attempt = d.attempts + 1, error = %why, "event not delivered");
                self.retry(d, why)
            }
        }
    }

    fn retry(&self, d: &TopicDelivery, error: String) -> TopicDeliveryOutcome {
        let now = self.clock.now_ms();
        match self
            .settings
            .retry
            .next_attempt(d.attempts + 1, now, d.message.created_at)
        {
            Some(at) => TopicDeliveryOutcome::Retry { at, error },
            None => {
                self.failed.increment(1);
                tracing::warn!(message = %d.message.id, %error, "notification expired undelivered");
                TopicDeliveryOutcome::Failed { error }
            }
        }
    }

    /// Email and email-json subscriptions: mail from Sesame's SNS address
    /// through the one send path, as system mail outside the quotas.
    async fn email(
        &self,
        sub: &sesame_model::sns::Subscription,
        e: &Envelope,
    ) -> Result<(), String> {
        let Some((scope, _)) = self
            .store
            .get_subscription(&sub.arn)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let (subject, text) = match (sub.protocol, e.kind) {
            (Protocol::EmailJson, _) => (
                e.subject
                    .clone()
                    .unwrap_or_else(|| "AWS Notification Message".into()),
                self.format.envelope(e),
            ),
            (_, MessageType::Notification) => (
                e.subject
                    .clone()
                    .unwrap_or_else(|| "AWS Notification Message".into()),
                format!(
                    "{}\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\n{}\n",
                    e.message,
                    e.unsubscribe_url.as_deref().unwrap_or("")
                ),
            ),
            _ => (
                "AWS Notification - Subscription Confirmation".into(),
                format!(
                    "You have chosen to subscribe to the topic:\n{}\n\nTo confirm this subscription, click or visit the link below (If this was in error no action is necessary):\n{}\n",
                    e.topic_arn,
                    e.subscribe_url.as_deref().unwrap_or("")
                ),
            ),
        };
        let mut out = Outgoing::new(
            "SNS",
            Content::Simple {
                subject,
                text: Some(text),
                html: None,
                headers: vec![],
                attachments: vec![],
            },
        );
        out.source = Some(self.settings.email_from.clone());
        out.to = vec![sub.endpoint.clone()];
        out.system = Some(SystemMail {
            counts_against_quota: false,
        });
        self.sending
            .send(&scope, out)
            .await
            .map(|_| ())
            .map_err(|e| e.message)
    }
}
