//! The delivery engine: takes due deliveries from the store's queue, signs
//! each message with DKIM, hands it to a [`Transport`] (or plays the mailbox
//! simulator), and records the outcome and its events.
//!
//! # How one delivery goes
//! 1. `claim_deliveries` marks it `sending` (one short transaction).
//! 2. Outside any transaction: simulator recipients get their scripted
//!    outcome; everything else is DKIM-signed and handed to the transport.
//! 3. The outcome (delivered, retry later, failed) and its events are
//!    written by the recorder, many attempts to one transaction.
//!
//! A crash between 1 and 3 leaves the delivery `sending`; the next start
//! puts it back in the queue (`requeue_in_flight`), so an accepted message
//! is delivered at least once, and twice only if it was in flight.
//!
//! The engine is owned by whoever calls [`DeliveryEngine::run`]; it stops
//! claiming when the stop signal flips, waits up to the grace period for
//! attempts in flight, flushes their results and returns.
//!
//! # Layout
//! - this file: the engine (claiming, attempts, outcomes, the simulator);
//! - `transport.rs`: the `Transport` trait, envelopes, capture;
//! - `signing.rs`: DKIM, the sender's identities, the return path;
//! - `events.rs`: the events an attempt records.

use crate::budget::MemoryBudget;
use crate::clock::Clock;
use crate::random;
use async_trait::async_trait;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use sesame_model::address::SIMULATOR_DOMAIN;
use sesame_model::delivery::{
    BounceSubType, BounceType, BouncedRecipient, DelayedRecipient, SimulatorScenario,
    recipient_domain,
};
use sesame_model::{
    AttemptReport, DeliveryUpdate, DkimOrigin, Event, EventDetail, EventKind, Identity,
    IdentityKind, MailInfo, Millis, NewMessage, QueuedDelivery, RecipientOutcome, RetryPolicy,
    Scope, VerificationStatus,
};
use sesame_store::{AcceptanceDelivery, Store};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

mod events;
mod signing;
#[cfg(test)]
mod tests;
mod transport;

use events::*;
use signing::*;
pub use transport::{ATTEMPT_BUFFER, CaptureOnAcceptance, CaptureTransport, Envelope, Transport};

/// How the engine works; every field has a default.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry: RetryPolicy,
    /// The domain of VERP return paths (`<message-id>@<bounce_domain>`).
    pub bounce_domain: String,
    /// This host's name in events (`reportingMTA`).
    pub reporting_mta: String,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Bytes that attempts in flight may hold at once, each counted at its
    /// message and as much again up to [`ATTEMPT_BUFFER`] (a message
    /// shared by several attempts counts for each); without this bound
    /// `concurrency` large messages (up to 40 MB on v2) would take
    /// gigabytes. An attempt larger than the budget goes alone.
    pub memory: usize,
    /// How long a claim lasts before another worker may take it over.
    pub lease: Duration,
    /// How often to look for due deliveries when nothing wakes the engine.
    pub poll: Duration,
    /// How long shutdown waits for attempts in flight.
    pub grace: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            bounce_domain: "localhost".into(),
            reporting_mta: "localhost".into(),
            concurrency: 64,
            memory: 256 << 20,
            lease: Duration::from_secs(15 * 60),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(10),
        }
    }
}

type Signer = DkimSigner<SigningKey, Done>;

pub struct DeliveryEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    settings: DeliverySettings,
    /// The store's signal that deliveries were queued.
    wake: Arc<Notify>,
    /// Parsed signing keys by (scope, identity, identity version).
    signers: Mutex<HashMap<(Scope, String, i64), Arc<Signer>>>,
    /// Signatures of messages with several recipient domains, shared by
    /// their deliveries.
    shared: SharedSignatures,
    /// RSA signatures made (`sesame_dkim_signatures_total`), taken once.
    signatures_made: metrics::Counter,
}

/// A message's DKIM-Signature header once made: `None` when signing failed
/// and the message goes unsigned.
type SignatureCell = Arc<tokio::sync::OnceCell<Option<Arc<str>>>>;

/// The result of one attempt, on its way to the recorder.
struct Settled {
    update: DeliveryUpdate,
    events: Vec<Event>,
    /// Accepted-to-finished time when the delivery finished.
    latency_ms: Option<Millis>,
}

impl DeliveryEngine {
    /// An engine for `transport`. A transport that delivers on acceptance
    /// (capture) has the store record its deliveries from now on
    /// ([`CaptureOnAcceptance`]).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn Transport>,
        settings: DeliverySettings,
    ) -> Self {
        if transport.delivers_on_acceptance() {
            store.deliver_on_acceptance(Arc::new(CaptureOnAcceptance::new(
                settings.reporting_mta.clone(),
            )));
        }
        Self {
            wake: store.queue_signal(),
            store,
            clock,
            transport,
            settings,
            signers: Mutex::new(HashMap::new()),
            shared: SharedSignatures::new(),
            signatures_made: metrics::counter!("sesame_dkim_signatures_total"),
        }
    }

    /// Delivers until `stop` turns true, then drains (see the module docs).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let now = self.clock.now_ms();
        match self.store.requeue_in_flight(now).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(deliveries = n, "requeued deliveries left in flight"),
            Err(e) => tracing::error!(error = %e, "could not requeue deliveries in flight"),
        }
        tracing::info!(mode = self.transport.mode(), "delivery engine started");
        let limit = self.settings.concurrency.max(1);
        let slots = Arc::new(Semaphore::new(limit));
        let memory = MemoryBudget::new(self.settings.memory);
        let (tx, rx) = mpsc::channel::<Settled>(limit * 2);
        let recorder = tokio::spawn(record(self.store.clone(), rx));
        let mut attempts = JoinSet::new();
        while !*stop.borrow() {
            while attempts.try_join_next().is_some() {}
            let free = slots.available_permits();
            // Claim in batches: with most slots busy, wait for attempts to
            // finish rather than claiming one or two at a time.
            if free == 0 || (free < limit / 4 && !attempts.is_empty()) {
                tokio::select! {
                    _ = attempts.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let now = self.clock.now_ms();
            let lease_until = now + self.settings.lease.as_millis() as Millis;
            let claimed = match self
                .store
                .claim_deliveries(now, lease_until, free.min(256) as u32)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "could not claim deliveries");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                let wait = self.idle_wait(now).await;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for d in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let room = memory
                    .admit((d.raw.len() + d.raw.len().min(ATTEMPT_BUFFER)) as u64)
                    .await;
                let (engine, tx) = (self.clone(), tx.clone());
                attempts.spawn(async move {
                    let settled = engine.attempt(d).await;
                    let _ = tx.send(settled).await;
                    drop((permit, room));
                });
            }
        }
        tracing::info!(in_flight = attempts.len(), "delivery engine stopping");
        let drained = tokio::time::timeout(self.settings.grace, async {
            while attempts.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Left `sending`; the next start requeues them.
            tracing::warn!(
                in_flight = attempts.len(),
                "attempts still in flight at shutdown"
            );
            attempts.abort_all();
        }
        drop(tx);
        let _ = recorder.await;
        tracing::info!("delivery engine stopped");
    }

    async fn idle_wait(&self, now: Millis) -> Duration {
        let poll = self.settings.poll;
        let due = match self.store.next_delivery_due_hint() {
            Some(known) => Ok(known),
            None => self.store.next_delivery_due().await,
        };
        match due {
            Ok(Some(at)) if at > now => poll.min(Duration::from_millis((at - now) as u64)),
            Ok(Some(_)) => Duration::from_millis(10),
            _ => poll,
        }
    }

    /// One attempt at one delivery, ending in its settlement. Recipients
    /// on the suppression list when the message was accepted bounce
    /// (`OnAccountSuppressionList`) without being attempted, as in SES.
    async fn attempt(&self, mut d: QueuedDelivery) -> Settled {
        if d.domain == SIMULATOR_DOMAIN {
            return self.simulate(&d);
        }
        if !d.meta.suppressed.is_empty() {
            let (suppressed, rest): (Vec<String>, Vec<String>) =
                d.recipients.iter().cloned().partition(|r| {
                    d.meta
                        .suppressed
                        .contains(&sesame_model::suppression::key(r))
                });
            if !suppressed.is_empty() {
                let now = self.clock.now_ms();
                let list = suppressed
                    .iter()
                    .map(|r| bounced(r, "5.1.1", SUPPRESSED_DIAGNOSTIC))
                    .collect();
                let bounce = self.bounce_event(
                    &d,
                    BounceType::Permanent,
                    BounceSubType::OnAccountSuppressionList,
                    list,
                    now,
                );
                metrics::counter!("sesame_bounced_total").increment(suppressed.len() as u64);
                if rest.is_empty() {
                    return Settled {
                        update: DeliveryUpdate::Finished {
                            id: d.id,
                            failed: true,
                            at: now,
                        },
                        events: vec![bounce],
                        latency_ms: Some(now - d.accepted_at),
                    };
                }
                d.recipients = rest;
                let mut settled = self.transmit(d).await;
                settled.events.insert(0, bounce);
                return settled;
            }
        }
        self.transmit(d).await
    }

    /// Signs and hands a delivery to the transport.
    async fn transmit(&self, d: QueuedDelivery) -> Settled {
        let identities = self.sender_identities(&d).await;
        let signer = self
            .transport
            .wants_signature()
            .then(|| self.signer_for(&d, &identities))
            .flatten();
        let signature = match signer {
            None => None,
            Some(signer) => match self.signature(&d, signer).await {
                Ok(header) => header,
                Err(e) => {
                    tracing::error!(error = %e, "the signing task failed");
                    // The message stays queued and is tried again later.
                    return Settled {
                        update: DeliveryUpdate::Retry {
                            id: d.id,
                            recipients: d.recipients.clone(),
                            at: self.clock.now_ms() + self.settings.retry.initial_ms,
                            error: "internal error while signing".into(),
                        },
                        events: vec![],
                        latency_ms: None,
                    };
                }
            },
        };
        let mail_from = self.return_path(&d, &identities);
        let envelope = Envelope {
            mail_from: &mail_from,
            domain: &d.domain,
            recipients: &d.recipients,
            signature: signature.as_deref().map_or(&[][..], str::as_bytes),
            message: &d.raw,
            require_tls: d.meta.require_tls,
        };
        let report = self.transport.deliver(&envelope).await;
        self.settle(&d, report)
    }

    /// The mailbox simulator: scripted outcomes, nothing leaves the host.
    fn simulate(&self, d: &QueuedDelivery) -> Settled {
        let now = self.clock.now_ms();
        let mut events = vec![];
        for r in &d.recipients {
            let scenario = SimulatorScenario::for_address(r).unwrap_or(SimulatorScenario::Success);
            let one = std::slice::from_ref(r);
            let delivered =
                || self.delivery_event(d, one, "250 2.6.0 Message received", ("", None), now);
            match scenario {
                SimulatorScenario::Success => events.push(delivered()),
                SimulatorScenario::Bounce => events.push(self.bounce_event(
                    d,
                    BounceType::Permanent,
                    BounceSubType::General,
                    vec![bounced(r, "5.1.1", "smtp; 550 5.1.1 user unknown")],
                    now,
                )),
                SimulatorScenario::OutOfOffice => {
                    events.push(delivered());
                    events.push(self.bounce_event(
                        d,
                        BounceType::Transient,
                        BounceSubType::General,
                        vec![bounced(
                            r,
                            "2.0.0",
                            "smtp; 250 2.0.0 The recipient is out of the office",
                        )],
                        now,
                    ));
                }
                SimulatorScenario::Complaint => {
                    events.push(delivered());
                    events.push(self.event(
                        d,
                        EventKind::Complaint,
                        one,
                        now,
                        EventDetail::Complaint {
                            feedback_type: "abuse".into(),
                            user_agent: "Amazon SES Mailbox Simulator".into(),
                            feedback_id: feedback_id(),
                        },
                    ));
                }
                SimulatorScenario::SuppressionList => events.push(self.bounce_event(
                    d,
                    BounceType::Permanent,
                    BounceSubType::Suppressed,
                    vec![bounced(r, "5.1.1", SUPPRESSED_DIAGNOSTIC)],
                    now,
                )),
            }
        }
        let failed = events.iter().any(|e| {
            matches!(
                e.detail,
                EventDetail::Bounce {
                    bounce_type: BounceType::Permanent,
                    ..
                }
            )
        });
        Settled {
            update: DeliveryUpdate::Finished {
                id: d.id,
                failed,
                at: now,
            },
            events,
            latency_ms: Some(now - d.accepted_at),
        }
    }

    /// Turns an attempt's report into the delivery's next state and events.
    fn settle(&self, d: &QueuedDelivery, report: AttemptReport) -> Settled {
        let now = self.clock.now_ms();
        let mut delivered: Vec<String> = vec![];
        let mut response = String::new();
        let mut failed: Vec<BouncedRecipient> = vec![];
        let mut deferred: Vec<String> = vec![];
        let mut reason = String::new();
        // The first failure's subtype, as the transport classified it.
        let mut failed_sub_type = None;
        for (r, o) in report.outcomes {
            match o {
                RecipientOutcome::Delivered { response: resp } => {
                    if response.is_empty() {
                        response = resp;
                    }
                    delivered.push(r);
                }
                RecipientOutcome::Failed {
                    status,
                    diagnostic,
                    sub_type,
                } => {
                    failed_sub_type.get_or_insert(sub_type);
                    failed.push(bounced(&r, &status, &diagnostic));
                }
                RecipientOutcome::Deferred { reason: why } => {
                    if reason.is_empty() {
                        reason = why;
                    }
                    deferred.push(r);
                }
            }
        }
        let mut events = vec![];
        if !delivered.is_empty() {
            metrics::counter!("sesame_delivered_total").increment(delivered.len() as u64);
            events.push(self.delivery_event(
                d,
                &delivered,
                &response,
                (&report.remote, report.local),
                now,
            ));
        }
        if !failed.is_empty() {
            metrics::counter!("sesame_bounced_total").increment(failed.len() as u64);
            let sub = failed_sub_type.unwrap_or(BounceSubType::General);
            events.push(self.bounce_event(d, BounceType::Permanent, sub, failed, now));
        }
        let mut gave_up = false;
        let update = if deferred.is_empty() {
            DeliveryUpdate::Finished {
                id: d.id,
                failed: events.iter().any(|e| e.kind == EventKind::Bounce),
                at: now,
            }
        } else {
            match self
                .settings
                .retry
                .within(d.meta.max_delivery_ms)
                .next_attempt(d.attempts + 1, now, d.accepted_at)
            {
                Some(at) => {
                    metrics::counter!("sesame_deferred_total").increment(deferred.len() as u64);
                    tracing::info!(message = %d.message_id, domain = %d.domain,
                        attempt = d.attempts + 1, %reason, "delivery deferred");
                    events.push(self.delay_event(d, &deferred, &reason, now));
                    DeliveryUpdate::Retry {
                        id: d.id,
                        recipients: deferred,
                        at,
                        error: reason,
                    }
                }
                None => {
                    // Retried for as long as allowed: a bounce.
                    gave_up = true;
                    metrics::counter!("sesame_bounced_total").increment(deferred.len() as u64);
                    let diag = format!("smtp; {reason}");
                    let list = deferred
                        .iter()
                        .map(|r| bounced(r, "4.4.7", &diag))
                        .collect();
                    events.push(self.bounce_event(
                        d,
                        BounceType::Transient,
                        BounceSubType::General,
                        list,
                        now,
                    ));
                    DeliveryUpdate::Finished {
                        id: d.id,
                        failed: true,
                        at: now,
                    }
                }
            }
        };
        if gave_up {
            tracing::warn!(message = %d.message_id, domain = %d.domain,
                "delivery expired after retrying");
        }
        let finished = matches!(update, DeliveryUpdate::Finished { .. });
        Settled {
            update,
            events,
            latency_ms: finished.then_some(now - d.accepted_at),
        }
    }
}

/// Writes settled attempts, many to a transaction, until every sender is
/// gone.
async fn record(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Settled>) {
    let mut batch: Vec<Settled> = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let attempts = batch.len();
        let mut updates = Vec::with_capacity(attempts);
        let mut events = Vec::with_capacity(attempts);
        let mut latencies = Vec::with_capacity(attempts);
        for s in batch.drain(..) {
            updates.push(s.update);
            events.extend(s.events);
            latencies.extend(s.latency_ms);
        }
        match store.finish_deliveries(updates, events).await {
            Ok(()) => {
                for ms in latencies {
                    metrics::histogram!("sesame_delivery_latency_seconds")
                        .record(ms as f64 / 1000.0);
                }
            }
            // The deliveries stay `sending` and are retried after a restart
            // or when their lease ends: at least once, never lost.
            Err(e) => tracing::error!(error = %e, attempts, "could not record delivery results"),
        }
    }
}
