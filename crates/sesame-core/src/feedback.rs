//! Feedback: recorded events reach the places their senders asked for.
//!
//! Every event is stored in the transaction that makes it (acceptance,
//! delivery outcome, rendering failure), so the events table is the
//! outbox. The [`Publisher`] reads it in order from its cursor, decides
//! where each event goes (the destinations of its message's configuration
//! set that match its type, and the notification topic its sender's
//! identity has for bounces, complaints or deliveries), renders it in SES's
//! JSON (`eventType` for the one, `notificationType` for the other), and stores the
//! topic messages with their deliveries and the moved cursor in one
//! transaction. A crash anywhere repeats at most one batch; nothing is lost.
//! The [`notify::Notifier`] then delivers each topic message to each
//! subscription, signed, retrying until it is taken.

pub mod inbound;
pub mod notify;

use crate::Clock;
use sesame_model::configuration_set::DestinationTarget;
use sesame_model::sns::{EVENT_SUBJECT, External, MessageType, TopicMessage};
use sesame_model::{ConfigurationSet, Event, EventKind, Mailbox, Notifications, Scope};
use sesame_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Renders what Sesame publishes in the wire's shapes (SES's event JSON,
/// SNS's envelope); implemented outside the domain, by the wire layer.
pub trait FeedbackFormat: Send + Sync {
    /// SES's event-publishing record (`eventType`).
    fn event(&self, event: &Event) -> String;
    /// SES's identity notification (`notificationType`), with the
    /// message's headers when the identity asks for them.
    fn notification(&self, event: &Event, headers: bool) -> String;
    /// EventBridge's envelope (`source: aws.ses`, SES's `detail-type`) with
    /// the event record as `detail`.
    fn eventbridge(&self, event: &Event, resources: &[String]) -> String;
    /// An SNS message as delivered over HTTP or email-json.
    fn envelope(&self, envelope: &sesame_model::sns::Envelope) -> String;
}

/// A message's header fields and whether they were cut short; `None` once
/// the message is gone.
type Headers = Option<(Vec<(String, String)>, bool)>;

/// The cursor's name in the store.
const CURSOR: &str = "event-publishing";
/// Events read per batch.
const BATCH: u32 = 256;
/// How often an idle publisher looks for new events.
const IDLE: Duration = Duration::from_millis(100);
/// How long the publishing lease lasts; its holder renews it every step,
/// and a step that takes longer than this (its targets' timeouts are
/// shorter) could be repeated by another node.
const LEASE_MS: sesame_model::Millis = 60_000;

/// The operator's EventBridge buses and Firehose streams, by ARN, and
/// where their events go (`[feedback.eventbridge]`, `[feedback.firehose]`
/// in the config file): an HTTP(S) URL, or for Firehose also `file://` and
/// a path.
#[derive(Debug, Clone, Default)]
pub struct ExternalTargets {
    pub eventbridge: HashMap<String, String>,
    pub firehose: HashMap<String, String>,
}

/// Who forwards feedback by email, and from what address.
pub struct Forwarding {
    pub sending: Arc<crate::SendService>,
    /// e.g. `MAILER-DAEMON@<hostname>`.
    pub from: String,
}

pub struct Publisher {
    store: Arc<dyn Store>,
    forwarding: Option<Forwarding>,
    targets: Arc<ExternalTargets>,
    clock: Arc<dyn Clock>,
    format: Arc<dyn FeedbackFormat>,
    published: metrics::Counter,
    metrics: CloudWatchSeries,
    /// Until when this node holds the publishing lease, as last taken (0:
    /// not held). Renewed only once half of it is spent, so that a busy
    /// publisher does not write the lease every step.
    lease_until: std::sync::atomic::AtomicI64,
}

impl Publisher {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        format: Arc<dyn FeedbackFormat>,
        targets: Arc<ExternalTargets>,
    ) -> Self {
        Self {
            store,
            forwarding: None,
            targets,
            clock,
            format,
            published: metrics::counter!("sesame_events_published_total"),
            metrics: CloudWatchSeries::default(),
            lease_until: Default::default(),
        }
    }

    /// Forwards bounces and complaints by email where the sender's
    /// identity has forwarding on and no topic for them.
    pub fn with_forwarding(mut self, f: Forwarding) -> Self {
        self.forwarding = Some(f);
        self
    }

    /// Publishes until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                // Another node need not wait for the lease to run out.
                self.lease_until
                    .store(0, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = self.store.release_lease(CURSOR).await {
                    tracing::warn!(error = %e, "could not give up the publishing lease");
                }
                return;
            }
            let idle = match self.step().await {
                Ok(n) => n < BATCH as usize,
                Err(e) => {
                    tracing::warn!(error = %e.message, "event publishing failed; retrying");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Whether this node holds the publishing lease, taking or renewing it
    /// once half of it is spent. Nobody else can take it before it runs
    /// out, so the half left covers the steps between renewals.
    async fn hold_lease(&self) -> Result<bool, sesame_model::Error> {
        use std::sync::atomic::Ordering;
        let now = self.clock.now_ms();
        if now + LEASE_MS / 2 < self.lease_until.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let held = self
            .store
            .take_lease(CURSOR, now, now + LEASE_MS)
            .await
            .map_err(crate::internal)?;
        self.lease_until
            .store(if held { now + LEASE_MS } else { 0 }, Ordering::Relaxed);
        Ok(held)
    }

    /// One batch: how many events it read. Only the node holding the
    /// publishing lease publishes (its cursor is shared); on another, a
    /// step reads nothing.
    pub async fn step(&self) -> Result<usize, sesame_model::Error> {
        if !self.hold_lease().await? {
            return Ok(0);
        }
        // The store's migrations start the cursor after the events recorded
        // before publishing existed.
        let cursor = self
            .store
            .cursor(CURSOR)
            .await
            .map_err(crate::internal)?
            .unwrap_or(0);
        let events = self
            .store
            .events_after(cursor, BATCH)
            .await
            .map_err(crate::internal)?;
        let Some(&(last, _)) = events.last() else {
            return Ok(0);
        };
        let mut sets: HashMap<(Scope, String), Option<ConfigurationSet>> = HashMap::new();
        let mut senders: HashMap<(Scope, String), Option<(Notifications, bool)>> = HashMap::new();
        let mut raws: HashMap<String, Headers> = HashMap::new();
        let mut messages = vec![];
        for (_, e) in &events {
            // Hard bounces and complaints feed the suppression list
            // (idempotently: a repeated batch writes the same entries).
            for d in crate::suppression::additions(e) {
                self.store
                    .put_suppressed(&e.scope, &d)
                    .await
                    .map_err(crate::internal)?;
            }
            // The sender's identity settings (bounces, complaints and
            // deliveries, by the most specific verified identity) and the
            // message's configuration set.
            let settings = if e.kind.is_identity_notification() {
                let sender = sender_of(e);
                let key = (e.scope.clone(), sender.clone());
                if !senders.contains_key(&key) {
                    let n = self.notifications_of(&e.scope, &sender).await?;
                    senders.insert(key.clone(), n);
                }
                senders.get(&key).and_then(Option::as_ref)
            } else {
                None
            };
            let set = match &e.mail.meta.configuration_set {
                Some(name) => {
                    let key = (e.scope.clone(), name.clone());
                    if !sets.contains_key(&key) {
                        let set = self
                            .store
                            .get_configuration_set(&e.scope, name)
                            .await
                            .map_err(crate::internal)?;
                        sets.insert(key.clone(), set);
                    }
                    sets.get(&key).and_then(Option::as_ref)
                }
                None => None,
            };
            let notify = settings.and_then(|(n, _)| n.topic_for(e.kind));
            let rendered = set.is_some_and(|s| {
                s.event_destinations.iter().any(|d| {
                    d.publishes(e.kind) && !matches!(d.target, DestinationTarget::CloudWatch { .. })
                })
            });
            // Records carry the message's headers (read once a batch).
            let enriched;
            let e = if rendered || notify.as_ref().is_some_and(|(_, h)| *h) {
                let mut with = e.clone();
                with.mail.headers = self.headers_of(&e.message_id, &mut raws).await?;
                enriched = with;
                &enriched
            } else {
                e
            };
            if let (Some((notifications, true)), Some(f)) = (settings, &self.forwarding)
                && notifications.topic_for(e.kind).is_none()
                && matches!(e.kind, EventKind::Bounce | EventKind::Complaint)
                && crate::sending::FORWARDED_OPERATIONS.contains(&e.mail.operation.as_str())
                && let Err(err) = f.sending.forward_feedback(e, &f.from).await
            {
                tracing::warn!(message = %e.message_id, error = %err.message, "feedback not forwarded");
            }
            if let Some((topic, headers)) = notify {
                messages.push(TopicMessage {
                    id: uuid::Uuid::new_v4().to_string(),
                    kind: MessageType::Notification,
                    topic_arn: topic.to_owned(),
                    subject: None,
                    message: self.format.notification(e, headers),
                    created_at: self.clock.now_ms(),
                    to: None,
                });
            }
            let (Some(name), Some(set)) = (&e.mail.meta.configuration_set, set) else {
                continue;
            };
            if set.reputation_metrics {
                self.metrics.reputation(name, e);
            }
            let mut body = None;
            for d in set
                .event_destinations
                .iter()
                .filter(|d| d.publishes(e.kind))
            {
                match &d.target {
                    DestinationTarget::CloudWatch { dimensions } => {
                        self.metrics.count(name, e, dimensions);
                    }
                    DestinationTarget::EventBridge { bus_arn } => {
                        // A bus unmapped since the destination was made
                        // has nowhere to go; its events are not kept.
                        let Some(url) = self.targets.eventbridge.get(bus_arn) else {
                            continue;
                        };
                        let set_arn = e.scope.arn(&format!("configuration-set/{name}"));
                        messages.push(TopicMessage {
                            id: uuid::Uuid::new_v4().to_string(),
                            kind: MessageType::Notification,
                            topic_arn: bus_arn.clone(),
                            subject: None,
                            message: self.format.eventbridge(e, &[set_arn]),
                            created_at: self.clock.now_ms(),
                            to: Some(External::EventBridge(url.clone()).recipient()),
                        });
                    }
                    DestinationTarget::Firehose { stream_arn, .. } => {
                        let Some(target) = self.targets.firehose.get(stream_arn) else {
                            continue;
                        };
                        let message = body.get_or_insert_with(|| self.format.event(e)).clone();
                        messages.push(TopicMessage {
                            id: uuid::Uuid::new_v4().to_string(),
                            kind: MessageType::Notification,
                            topic_arn: stream_arn.clone(),
                            subject: None,
                            message,
                            created_at: self.clock.now_ms(),
                            to: Some(External::Firehose(target.clone()).recipient()),
                        });
                    }
                    DestinationTarget::Sns { topic_arn } => {
                        let message = body.get_or_insert_with(|| self.format.event(e)).clone();
                        messages.push(TopicMessage {
                            id: uuid::Uuid::new_v4().to_string(),
                            kind: MessageType::Notification,
                            topic_arn: topic_arn.clone(),
                            subject: Some(EVENT_SUBJECT.to_owned()),
                            message,
                            created_at: self.clock.now_ms(),
                            to: None,
                        });
                    }
                }
            }
        }
        self.store
            .publish_messages(&messages, Some((CURSOR, last)), self.clock.now_ms())
            .await
            .map_err(crate::internal)?;
        self.published.increment(messages.len() as u64);
        Ok(events.len())
    }

    /// A message's header fields for its events (`None` once it is gone),
    /// read once a batch.
    async fn headers_of(
        &self,
        message_id: &str,
        raws: &mut HashMap<String, Headers>,
    ) -> Result<Headers, sesame_model::Error> {
        if let Some(h) = raws.get(message_id) {
            return Ok(h.clone());
        }
        let h = self
            .store
            .get_message(message_id)
            .await
            .map_err(crate::internal)?
            .map(|m| crate::compose::header_list(&m.message.raw));
        raws.insert(message_id.to_owned(), h.clone());
        Ok(h)
    }

    /// The notification settings governing mail from `sender`: its most
    /// specific verified identity's (address over domain).
    async fn notifications_of(
        &self,
        scope: &Scope,
        sender: &str,
    ) -> Result<Option<(Notifications, bool)>, sesame_model::Error> {
        let Ok(mailbox) = Mailbox::parse(sender) else {
            return Ok(None);
        };
        let names = mailbox.covering_identities();
        let found = self
            .store
            .get_identities(scope, &names)
            .await
            .map_err(crate::internal)?;
        Ok(
            sesame_model::identity::most_specific_verified(found.iter().map(|i| &**i))
                .map(|i| (i.notifications.clone(), i.feedback_forwarding)),
        )
    }
}

/// The sending address an event's message came from: its From header's
/// mailbox, else its envelope sender.
fn sender_of(e: &Event) -> String {
    e.mail
        .meta
        .from
        .first()
        .and_then(|f| Mailbox::parse(f).ok())
        .map(|m| m.address)
        .unwrap_or_else(|| e.mail.source.clone())
}

/// CloudWatch destinations as Prometheus series: the counter
/// `sesame_ses_events_total` with the account, region, set's name, SES's
/// metric name for the event type, and each dimension (a message tag's
/// value, else its default) as labels. The label sets are the callers'
/// tags, so they are bounded: past [`MAX_SERIES`] distinct sets, new ones
/// count under `_other` values.
///
/// Reputation metrics (a set's ReputationMetricsEnabled) as SES's
/// `Reputation.BounceRate` and `Reputation.ComplaintRate`: the gauges
/// `sesame_ses_reputation_bounce_rate` and `…_complaint_rate` (0 to 1), the
/// share of the set's recipients since the server started that hard
/// bounced or complained, with the counters they come from
/// (`sesame_ses_reputation_recipients_total{outcome=sent|bounced|complained}`).
#[derive(Default)]
pub struct CloudWatchSeries {
    seen: std::sync::Mutex<std::collections::HashSet<Vec<(String, String)>>>,
    reputation: std::sync::Mutex<HashMap<(Scope, String), Reputation>>,
}

/// A set's recipients since the server started, by outcome.
#[derive(Default, Clone, Copy)]
struct Reputation {
    sent: u64,
    bounced: u64,
    complained: u64,
}

/// Distinct label sets kept.
pub const MAX_SERIES: usize = 10_000;

impl CloudWatchSeries {
    fn count(
        &self,
        set: &str,
        e: &Event,
        dimensions: &[sesame_model::configuration_set::Dimension],
    ) {
        let mut labels: Vec<(String, String)> = vec![
            ("account".into(), e.scope.account.as_str().to_owned()),
            ("region".into(), e.scope.region.as_str().to_owned()),
            ("configuration_set".into(), set.to_owned()),
            ("event_type".into(), metric_name(e.kind).into()),
        ];
        for d in dimensions {
            let value = e
                .mail
                .meta
                .tags
                .iter()
                .find(|t| t.key == d.name)
                .map(|t| t.value.clone())
                .or_else(|| {
                    e.automatic_tags()
                        .into_iter()
                        .find(|(k, _)| *k == d.name)
                        .map(|(_, v)| v)
                })
                .unwrap_or_else(|| d.default.clone());
            labels.push((label_name(&d.name), value));
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.contains(&labels) {
                if seen.len() >= MAX_SERIES {
                    for l in labels.iter_mut().skip(4) {
                        l.1 = "_other".into();
                    }
                } else {
                    seen.insert(labels.clone());
                }
            }
        }
        let labels: Vec<metrics::Label> = labels
            .into_iter()
            .map(|(k, v)| metrics::Label::new(k, v))
            .collect();
        metrics::counter!("sesame_ses_events_total", labels).increment(1);
    }
}

impl CloudWatchSeries {
    /// Counts a Send, hard Bounce or Complaint towards the set's
    /// reputation and updates its rates. At most [`MAX_SERIES`] sets are
    /// kept.
    fn reputation(&self, set: &str, e: &Event) {
        use sesame_model::EventDetail;
        use sesame_model::delivery::BounceType;
        let n = e.recipients.len() as u64;
        let outcome = match (&e.detail, e.kind) {
            (_, EventKind::Send) => "sent",
            (
                EventDetail::Bounce {
                    bounce_type: BounceType::Permanent,
                    ..
                },
                _,
            ) => "bounced",
            (_, EventKind::Complaint) => "complained",
            _ => return,
        };
        let r = {
            let mut all = self.reputation.lock().unwrap_or_else(|p| p.into_inner());
            let key = (e.scope.clone(), set.to_owned());
            if !all.contains_key(&key) && all.len() >= MAX_SERIES {
                return;
            }
            let r = all.entry(key).or_default();
            match outcome {
                "sent" => r.sent += n,
                "bounced" => r.bounced += n,
                _ => r.complained += n,
            }
            *r
        };
        let labels = [
            ("account", e.scope.account.as_str().to_owned()),
            ("region", e.scope.region.as_str().to_owned()),
            ("configuration_set", set.to_owned()),
        ];
        let mut counted = labels.to_vec();
        counted.push(("outcome", outcome.to_owned()));
        metrics::counter!("sesame_ses_reputation_recipients_total", &counted).increment(n);
        if r.sent > 0 {
            let rate = |x: u64| (x as f64 / r.sent as f64).min(1.0);
            metrics::gauge!("sesame_ses_reputation_bounce_rate", &labels).set(rate(r.bounced));
            metrics::gauge!("sesame_ses_reputation_complaint_rate", &labels)
                .set(rate(r.complained));
        }
    }
}

/// SES's CloudWatch metric for an event type (no space in RenderingFailure).
fn metric_name(k: sesame_model::EventKind) -> &'static str {
    match k {
        sesame_model::EventKind::RenderingFailure => "RenderingFailure",
        other => other.as_str(),
    }
}

/// A dimension's name as a Prometheus label: letters, digits and `_`,
/// never one of the fixed labels.
fn label_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("dimension_{clean}")
}
