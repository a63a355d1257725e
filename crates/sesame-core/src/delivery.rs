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

use crate::budget::MemoryBudget;
use crate::clock::Clock;
use crate::random;
use async_trait::async_trait;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use sesame_model::address::SIMULATOR_DOMAIN;
use sesame_model::delivery::{
    BounceSubType, BounceType, BouncedRecipient, SimulatorScenario, recipient_domain,
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

/// One message on its way to one domain.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// The return path (MAIL FROM).
    pub mail_from: &'a str,
    pub domain: &'a str,
    pub recipients: &'a [String],
    /// The DKIM-Signature header that goes before the message; empty when
    /// it is not signed. Kept apart so that no attempt copies the message
    /// to put its header in front.
    pub signature: &'a [u8],
    /// The message as it was accepted.
    pub message: &'a [u8],
}

impl Envelope<'_> {
    /// The message as it goes out, in order: the signature, then the
    /// message.
    pub fn parts(&self) -> [&[u8]; 2] {
        [self.signature, self.message]
    }

    /// The length of the message as it goes out.
    pub fn len(&self) -> usize {
        self.signature.len() + self.message.len()
    }

    /// Whether nothing goes out (never, for a message that was accepted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message as it goes out, in one piece.
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// What an attempt holds besides its message (which a message's
/// deliveries share) at most: a transport never copies a whole message,
/// only this much of it at a time (SMTP's buffer, a DATA payload stuffed a
/// piece at a time), and a small message about once. The delivery memory
/// budget counts an attempt at its message and as much again up to this.
pub const ATTEMPT_BUFFER: usize = 128 << 10;

/// Hands messages to the outside world: the local mailbox, a smarthost, or
/// the recipients' own servers.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Attempts delivery and reports each recipient's outcome. Connection
    /// problems are `Deferred` outcomes, never panics or errors.
    async fn deliver(&self, envelope: &Envelope<'_>) -> AttemptReport;
    /// `capture`, `relay` or `direct`, for logs.
    fn mode(&self) -> &'static str;
    /// Whether messages are DKIM-signed before they are handed over. Only
    /// mail that leaves the host needs a signature.
    fn wants_signature(&self) -> bool {
        true
    }
    /// Whether storing an accepted message already delivers it (the local
    /// mailbox). The engine then has the store record those deliveries at
    /// acceptance ([`CaptureOnAcceptance`]); the mailbox simulator's, and
    /// any left queued from an earlier run, still come through here.
    fn delivers_on_acceptance(&self) -> bool {
        false
    }
}

/// The host and reply a capture reports.
const MAILBOX_HOST: &str = "sesame.mailbox";
const CAPTURED: &str = "250 2.0.0 Ok: captured in the local mailbox";

/// `capture`: the message already sits in the local mailbox (the messages
/// table), so delivery only records that it arrived.
pub struct CaptureTransport;

#[async_trait]
impl Transport for CaptureTransport {
    async fn deliver(&self, envelope: &Envelope<'_>) -> AttemptReport {
        AttemptReport::all(
            MAILBOX_HOST,
            envelope.recipients,
            RecipientOutcome::Delivered {
                response: CAPTURED.into(),
            },
        )
    }
    fn mode(&self) -> &'static str {
        "capture"
    }
    /// The mailbox keeps the message as accepted; signing it would be
    /// wasted work.
    fn wants_signature(&self) -> bool {
        false
    }
    fn delivers_on_acceptance(&self) -> bool {
        true
    }
}

/// Capture at acceptance: every recipient domain but the mailbox
/// simulator's is delivered the moment the message is stored, with the
/// same Delivery event the engine's capture would record (its processing
/// time zero). The acceptance's transaction writes the delivery and its
/// event, so a captured message costs no queue round trip.
pub struct CaptureOnAcceptance {
    reporting_mta: String,
    /// Taken once: a lookup by name on every acceptance costs more than
    /// the count itself.
    delivered_total: metrics::Counter,
    latency: metrics::Histogram,
}

impl CaptureOnAcceptance {
    /// Its metrics are those of the recorder installed when it is made.
    pub fn new(reporting_mta: String) -> Self {
        Self {
            reporting_mta,
            delivered_total: metrics::counter!("sesame_delivered_total"),
            latency: metrics::histogram!("sesame_delivery_latency_seconds"),
        }
    }
}

impl AcceptanceDelivery for CaptureOnAcceptance {
    fn delivered(
        &self,
        scope: &Scope,
        m: &NewMessage,
        domain: &str,
        recipients: &[String],
    ) -> Option<Event> {
        if domain == SIMULATOR_DOMAIN {
            return None;
        }
        Some(delivery_event(
            scope,
            &m.id,
            MailInfo::of(m),
            recipients,
            m.created_at,
            Delivered {
                response: CAPTURED,
                reporting_mta: &self.reporting_mta,
                remote_mta: MAILBOX_HOST,
            },
        ))
    }

    fn recorded(&self, events: &[Event]) {
        let recipients: usize = events.iter().map(|e| e.recipients.len()).sum();
        self.delivered_total.increment(recipients as u64);
        self.latency.record_many(0.0, events.len());
    }
}

/// What a Delivery event says of the exchange.
struct Delivered<'a> {
    response: &'a str,
    reporting_mta: &'a str,
    remote_mta: &'a str,
}

/// An event about one message, with SES's `mail` object.
fn event(
    scope: &Scope,
    message_id: &str,
    mail: MailInfo,
    kind: EventKind,
    recipients: &[String],
    at: Millis,
    detail: EventDetail,
) -> Event {
    Event {
        kind,
        scope: scope.clone(),
        message_id: message_id.to_owned(),
        at,
        recipients: recipients.to_vec(),
        mail,
        detail,
    }
}

fn delivery_event(
    scope: &Scope,
    message_id: &str,
    mail: MailInfo,
    recipients: &[String],
    at: Millis,
    how: Delivered<'_>,
) -> Event {
    let processing_time_ms = at - mail.sent_at;
    event(
        scope,
        message_id,
        mail,
        EventKind::Delivery,
        recipients,
        at,
        EventDetail::Delivery {
            processing_time_ms,
            smtp_response: how.response.to_owned(),
            reporting_mta: how.reporting_mta.to_owned(),
            remote_mta: how.remote_mta.to_owned(),
        },
    )
}

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

/// A DKIM signing key. aws-lc-rs signs RSA keys of 2048 bits and more;
/// SES's 1024-bit Easy DKIM keys are signed with the `rsa` crate.
enum SigningKey {
    Fast(RsaKey<Sha256>),
    Small(Box<rsa::RsaPrivateKey>),
}

/// DigestInfo prefix of a SHA-256 hash in a PKCS#1 v1.5 signature.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl mail_auth::common::crypto::SigningKey for SigningKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl mail_auth::common::headers::Writable) -> mail_auth::Result<Vec<u8>> {
        match self {
            Self::Fast(k) => k.sign(input),
            Self::Small(k) => {
                use sha2::Digest;
                let mut data = Vec::with_capacity(256);
                input.write(&mut data);
                let digest = sha2::Sha256::digest(&data);
                let scheme = rsa::Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: SHA256_DIGEST_INFO.into(),
                };
                // With a random number generator the `rsa` crate blinds
                // the private-key operation; without one it runs
                // unblinded, and its timing depends on the key
                // (RUSTSEC-2023-0071).
                k.sign_with_rng(&mut rand_core::OsRng, scheme, &digest)
                    .map_err(|e| {
                        mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
                            e.to_string(),
                        ))
                    })
            }
        }
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        mail_auth::common::crypto::Algorithm::RsaSha256
    }
}

/// The headers a signature covers, when present.
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
];

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

/// Signatures shared by the deliveries of one message. A message to
/// several domains becomes one delivery a domain, and each would sign the
/// same bytes with the same key: the first to get here signs, the others
/// wait for it and reuse the header. An entry goes when every domain has
/// taken it, or when [`SharedSignatures::KEEP`] newer ones push it out
/// (when the others never come: after a restart, a requeued delivery finds
/// its message's other domains delivered before it). A retry signs afresh.
struct SharedSignatures {
    inner: Mutex<SharedInner>,
}

#[derive(Default)]
struct SharedInner {
    cells: HashMap<(Scope, String), SharedEntry>,
    /// Keys in the order they came, for pushing out the oldest; may name
    /// keys already gone.
    order: VecDeque<(Scope, String)>,
}

struct SharedEntry {
    signer: Arc<Signer>,
    cell: SignatureCell,
    /// Deliveries yet to take it.
    takers: usize,
}

impl SharedSignatures {
    /// Entries kept at most (a header is about 500 bytes).
    const KEEP: usize = 4096;

    fn new() -> Self {
        Self {
            inner: Mutex::new(SharedInner::default()),
        }
    }

    /// The cell for `message` signed by `signer`, made for `domains`
    /// deliveries when it is new. `None` when the entry there was made with
    /// another signer (the key changed in between): sign afresh.
    fn take(
        &self,
        scope: &Scope,
        message: &str,
        signer: &Arc<Signer>,
        domains: usize,
    ) -> Option<SignatureCell> {
        let mut inner = self.inner.lock().ok()?;
        let key = (scope.clone(), message.to_owned());
        if let Some(e) = inner.cells.get_mut(&key) {
            if !Arc::ptr_eq(&e.signer, signer) {
                return None;
            }
            let cell = e.cell.clone();
            e.takers = e.takers.saturating_sub(1);
            if e.takers == 0 {
                inner.cells.remove(&key);
            }
            return Some(cell);
        }
        let cell = SignatureCell::default();
        inner.cells.insert(
            key.clone(),
            SharedEntry {
                signer: signer.clone(),
                cell: cell.clone(),
                takers: domains.saturating_sub(1),
            },
        );
        inner.order.push_back(key);
        while inner.cells.len() > Self::KEEP || inner.order.len() > 2 * Self::KEEP {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.cells.remove(&oldest);
        }
        Some(cell)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().cells.len()
    }
}

/// How many recipient domains of the message sign: all but the mailbox
/// simulator's, compared as the queue groups them (ASCII case-blind).
fn signing_domains(destinations: &[String]) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    for r in destinations {
        let domain = recipient_domain(r);
        if !domain.eq_ignore_ascii_case(SIMULATOR_DOMAIN)
            && !seen.iter().any(|s| s.eq_ignore_ascii_case(domain))
        {
            seen.push(domain);
        }
    }
    seen.len()
}

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

    /// One attempt at one delivery, ending in its settlement.
    async fn attempt(&self, d: QueuedDelivery) -> Settled {
        if d.domain == SIMULATOR_DOMAIN {
            return self.simulate(&d);
        }
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
        };
        let report = self.transport.deliver(&envelope).await;
        self.settle(&d, report)
    }

    /// The message's DKIM-Signature header. A first attempt at a message
    /// with several signing domains shares one signature among them
    /// ([`SharedSignatures`]); anything else signs on its own.
    async fn signature(
        &self,
        d: &QueuedDelivery,
        signer: SignerFor,
    ) -> Result<Option<Arc<str>>, tokio::task::JoinError> {
        // A lone recipient, or a retry, never shares: no need to count.
        let domains = match d.attempts == 0 && d.destinations.len() > 1 {
            true => signing_domains(&d.destinations),
            false => 1,
        };
        let cell = (domains > 1)
            .then(|| {
                self.shared
                    .take(&d.scope, &d.message_id, &signer.signer, domains)
            })
            .flatten();
        let Some(cell) = cell else {
            return self.sign_now(d, signer).await;
        };
        cell.get_or_try_init(|| self.sign_now(d, signer))
            .await
            .cloned()
    }

    /// Signs on the blocking pool: RSA is CPU work (0.4–0.8 ms for 2048
    /// bits), which must never stall the runtime's workers, which serve
    /// requests and the store's writer. The pool gets the message's
    /// shared bytes, not a copy.
    async fn sign_now(
        &self,
        d: &QueuedDelivery,
        signer: SignerFor,
    ) -> Result<Option<Arc<str>>, tokio::task::JoinError> {
        let (raw, message_id) = (d.raw.clone(), d.message_id.clone());
        let made = self.signatures_made.clone();
        tokio::task::spawn_blocking(move || {
            let header = header(&raw, &message_id, &signer);
            if header.is_some() {
                made.increment(1);
            }
            header
        })
        .await
    }

    /// The identities that could cover the sender, most specific first
    /// (the address, then its domain and each parent), those that exist.
    async fn sender_identities(&self, d: &QueuedDelivery) -> Vec<Arc<Identity>> {
        let Ok(mailbox) = sesame_model::Mailbox::parse(&d.source) else {
            return vec![];
        };
        let candidates = mailbox.covering_identities();
        let found = match self.store.get_identities(&d.scope, &candidates).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "could not read the sender's identities");
                return vec![];
            }
        };
        candidates
            .iter()
            .filter_map(|c| found.iter().find(|i| i.name.as_str() == c).cloned())
            .collect()
    }

    /// The VERP return path, `<message-id>@<domain>`, so that an
    /// asynchronous bounce names the message it is about. The domain is the
    /// custom MAIL FROM domain of the sender's most specific verified
    /// identity when that is verified, else the default bounce domain.
    pub fn return_path(&self, d: &QueuedDelivery, identities: &[Arc<Identity>]) -> String {
        let domain = sesame_model::identity::most_specific_verified(identities)
            .and_then(|i| i.mail_from.verified_domain())
            .unwrap_or(&self.settings.bounce_domain);
        format!("{}@{}", d.message_id, domain)
    }

    /// The signer of the most specific verified domain identity that signs.
    fn signer_for(&self, d: &QueuedDelivery, identities: &[Arc<Identity>]) -> Option<SignerFor> {
        let identity =
            sesame_model::identity::most_specific_verified(identities.iter().filter(|i| signs(i)))?;
        let domain = identity.name.as_str().to_owned();
        let selector = match identity.dkim.origin {
            DkimOrigin::AwsSes => identity.dkim.tokens.first()?.clone(),
            DkimOrigin::External => identity.dkim.selector.clone()?,
        };
        let key = (d.scope.clone(), domain.clone(), identity.version);
        if let Some(s) = self.signers.lock().ok()?.get(&key) {
            return Some(SignerFor {
                domain,
                selector,
                signer: s.clone(),
            });
        }
        let signer = match build_signer(identity, &domain, &selector) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(%domain, error = %e, "unusable DKIM key; sending unsigned");
                return None;
            }
        };
        let mut cache = self.signers.lock().ok()?;
        if cache.len() > 10_000 {
            cache.clear();
        }
        // Another attempt may have parsed the same key meanwhile: all use
        // the first, so that they can share a message's signature.
        let signer = cache.entry(key).or_insert(signer).clone();
        Some(SignerFor {
            domain,
            selector,
            signer,
        })
    }

    /// The mailbox simulator: scripted outcomes, nothing leaves the host.
    fn simulate(&self, d: &QueuedDelivery) -> Settled {
        let now = self.clock.now_ms();
        let mut events = vec![];
        for r in &d.recipients {
            let scenario = SimulatorScenario::for_address(r).unwrap_or(SimulatorScenario::Success);
            let one = std::slice::from_ref(r);
            let delivered = || self.delivery_event(d, one, "250 2.6.0 Message received", "", now);
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
            events.push(self.delivery_event(d, &delivered, &response, &report.remote, now));
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
                .next_attempt(d.attempts + 1, now, d.accepted_at)
            {
                Some(at) => {
                    metrics::counter!("sesame_deferred_total").increment(deferred.len() as u64);
                    tracing::info!(message = %d.message_id, domain = %d.domain,
                        attempt = d.attempts + 1, %reason, "delivery deferred");
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

    fn event(
        &self,
        d: &QueuedDelivery,
        kind: EventKind,
        recipients: &[String],
        at: Millis,
        detail: EventDetail,
    ) -> Event {
        event(
            &d.scope,
            &d.message_id,
            d.mail(),
            kind,
            recipients,
            at,
            detail,
        )
    }

    fn delivery_event(
        &self,
        d: &QueuedDelivery,
        recipients: &[String],
        response: &str,
        remote_mta: &str,
        at: Millis,
    ) -> Event {
        delivery_event(
            &d.scope,
            &d.message_id,
            d.mail(),
            recipients,
            at,
            Delivered {
                response,
                reporting_mta: &self.settings.reporting_mta,
                remote_mta,
            },
        )
    }

    fn bounce_event(
        &self,
        d: &QueuedDelivery,
        bounce_type: BounceType,
        sub_type: BounceSubType,
        bounced: Vec<BouncedRecipient>,
        at: Millis,
    ) -> Event {
        let recipients: Vec<String> = bounced.iter().map(|b| b.address.clone()).collect();
        self.event(
            d,
            EventKind::Bounce,
            &recipients,
            at,
            EventDetail::Bounce {
                bounce_type,
                sub_type,
                bounced,
                reporting_mta: format!("dsn; {}", self.settings.reporting_mta),
                feedback_id: feedback_id(),
            },
        )
    }
}

/// A signer and what it signs as, for logs.
struct SignerFor {
    domain: String,
    selector: String,
    signer: Arc<Signer>,
}

/// The DKIM-Signature header for `raw`, or `None` to send the message as
/// it is when signing fails.
fn header(raw: &[u8], message_id: &str, s: &SignerFor) -> Option<Arc<str>> {
    match s.signer.sign(raw) {
        Ok(sig) => Some(sig.to_header().into()),
        Err(e) => {
            tracing::error!(message = %message_id, domain = %s.domain,
                selector = %s.selector, error = %e, "DKIM signing failed; sending unsigned");
            None
        }
    }
}

/// SES's diagnostic for an address on the suppression list.
const SUPPRESSED_DIAGNOSTIC: &str = "Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address. For more information about how to remove an address from the suppression list, see the Amazon SES Developer Guide: http://docs.aws.amazon.com/ses/latest/DeveloperGuide/remove-from-suppressionlist.html ";

fn bounced(address: &str, status: &str, diagnostic: &str) -> BouncedRecipient {
    BouncedRecipient {
        address: address.to_owned(),
        action: "failed".into(),
        status: status.to_owned(),
        diagnostic_code: diagnostic.to_owned(),
    }
}

fn feedback_id() -> String {
    format!(
        "{:016x}-{}-000000",
        u64::from_be_bytes(random::bytes::<8>()),
        uuid::Uuid::new_v4()
    )
}

/// Whether a domain identity signs outgoing mail: verified, with DKIM
/// verified and enabled, and a key.
/// Whether a domain identity can sign: its DKIM is verified and enabled
/// and it has a key. (Whether it is verified itself is
/// `most_specific_verified`'s to decide.)
fn signs(i: &Identity) -> bool {
    i.name.kind() == IdentityKind::Domain
        && i.dkim.status == VerificationStatus::Success
        && i.dkim.signing_enabled
        && i.dkim.key.is_some()
}

fn build_signer(identity: &Identity, domain: &str, selector: &str) -> Result<Signer, String> {
    use base64::Engine;
    let key = identity.dkim.key.as_ref().ok_or("no key")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key.private_pkcs8_b64)
        .map_err(|e| e.to_string())?;
    let key = if key.bits >= 2048 {
        let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
        SigningKey::Fast(RsaKey::<Sha256>::from_key_der(pkcs8.into()).map_err(|e| e.to_string())?)
    } else {
        use rsa::pkcs8::DecodePrivateKey;
        SigningKey::Small(Box::new(
            rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| e.to_string())?,
        ))
    };
    Ok(DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::dkim_keys;
    use sesame_model::{Acceptance, KeyLength, NewMessage, QuotaCheck};
    use sesame_store::SqliteStore;
    use sesame_store::conformance::{identity, scope};

    /// Remembers what it was handed and answers with a fixed outcome.
    /// (MAIL FROM, recipients, message) of each envelope.
    type Seen = (String, Vec<String>, Vec<u8>);

    struct Recorder {
        seen: Mutex<Vec<Seen>>,
        outcome: RecipientOutcome,
    }

    #[async_trait]
    impl Transport for Recorder {
        async fn deliver(&self, e: &Envelope<'_>) -> AttemptReport {
            self.seen.lock().unwrap().push((
                e.mail_from.to_owned(),
                e.recipients.to_vec(),
                e.to_vec(),
            ));
            AttemptReport::all("mx.test", e.recipients, self.outcome.clone())
        }
        fn mode(&self) -> &'static str {
            "test"
        }
    }

    /// A fresh store, and a clock at a fixed time.
    async fn store_and_clock() -> (tempfile::TempDir, Arc<dyn Store>, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        (dir, store, Arc::new(ManualClock::new(1_700_000_000_000)))
    }

    async fn setup(
        outcome: RecipientOutcome,
        retry: RetryPolicy,
    ) -> (
        tempfile::TempDir,
        Arc<dyn Store>,
        Arc<ManualClock>,
        Arc<Recorder>,
        Arc<DeliveryEngine>,
    ) {
        let (dir, store, clock) = store_and_clock().await;
        let t = Arc::new(Recorder {
            seen: Mutex::new(vec![]),
            outcome,
        });
        let engine = Arc::new(DeliveryEngine::new(
            store.clone(),
            clock.clone(),
            t.clone(),
            DeliverySettings {
                retry,
                bounce_domain: "bounces.sesame.test".into(),
                poll: Duration::from_millis(20),
                ..Default::default()
            },
        ));
        (dir, store, clock, t, engine)
    }

    async fn accept(store: &dyn Store, id: &str, from: &str, to: &[&str], now: Millis) {
        let m = NewMessage {
            id: id.into(),
            operation: "SendEmail".into(),
            source: from.into(),
            destinations: to.iter().map(|s| s.to_string()).collect(),
            subject: Some("Hi".into()),
            created_at: now,
            raw: b"From: a@mail.example.com\r\nTo: x@dest.test\r\nSubject: Hi\r\n\r\nbody\r\n"
                .to_vec(),
        };
        let q = QuotaCheck {
            now,
            max_24h: -1.0,
            max_rate: 1000.0,
            daily_recipients: 1,
            rate_recipients: 1,
        };
        let s = scope("121212121212", "us-east-1");
        assert_eq!(
            store.accept_message(&s, &m, &q).await.unwrap(),
            Acceptance::Accepted
        );
    }

    /// Runs the engine until nothing is in flight or due at the clock's time.
    async fn drain(store: &Arc<dyn Store>, clock: &ManualClock, engine: &Arc<DeliveryEngine>) {
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(engine.clone().run(stop));
        for _ in 0..500 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let s = store.queue_summary().await.unwrap();
            let due = s.queued > 0 && s.next_attempt.is_some_and(|at| at <= clock.now_ms());
            if s.sending == 0 && !due {
                break;
            }
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }

    async fn events(store: &Arc<dyn Store>) -> Vec<Event> {
        store
            .list_events(&sesame_model::EventFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A verified domain with DKIM enabled and a key (token `tok<bits>`),
    /// and a MAIL FROM domain `bounce.<name>`; `status` is both its DKIM
    /// and its MAIL FROM status.
    async fn signing_identity(name: &str, bits: KeyLength, status: VerificationStatus) -> Identity {
        let mut i = identity(name);
        i.verification_status = VerificationStatus::Success;
        i.dkim.status = status;
        i.dkim.signing_enabled = true;
        i.dkim.tokens = vec![format!("tok{}", bits.bits())];
        i.dkim.key = Some(dkim_keys::generate(bits).await.unwrap());
        i.mail_from = sesame_model::MailFrom {
            domain: Some(format!("bounce.{name}")),
            status: Some(status),
            reject_on_mx_failure: false,
        };
        i
    }

    /// Capture delivers at acceptance with the event the engine's capture
    /// records (a delivery left queued from before is captured by the
    /// engine), and leaves the mailbox simulator to the engine.
    #[tokio::test]
    async fn capture_delivers_at_acceptance_as_the_engine_would() {
        let (_dir, store, clock) = store_and_clock().await;
        let t0 = clock.now_ms();
        // Accepted before any engine: queued.
        accept(&*store, "q1", "a@mail.example.com", &["w@dest.test"], t0).await;
        let engine = Arc::new(DeliveryEngine::new(
            store.clone(),
            clock.clone(),
            Arc::new(CaptureTransport),
            DeliverySettings {
                reporting_mta: "mta.sesame.test".into(),
                poll: Duration::from_millis(20),
                ..Default::default()
            },
        ));
        let to = [
            "x@dest.test",
            "success@simulator.amazonses.com",
            "y@Dest.test",
        ];
        accept(&*store, "c1", "a@mail.example.com", &to, t0 + 5).await;
        // Before the engine runs, c1's dest.test delivery is made; q1's and
        // the simulator's wait for it.
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.delivered), (2, 1));
        let at_acceptance = events(&store).await;
        assert_eq!(at_acceptance.len(), 1);
        let e = &at_acceptance[0];
        assert_eq!((e.message_id.as_str(), e.at), ("c1", t0 + 5));
        assert_eq!(e.recipients, ["x@dest.test", "y@Dest.test"]);
        assert_eq!(e.mail.destinations, to);
        assert_eq!(e.mail.sent_at, t0 + 5);
        clock.advance(40);
        drain(&store, &clock, &engine).await;
        let sum = store.queue_summary().await.unwrap();
        assert_eq!((sum.queued, sum.sending, sum.delivered), (0, 0, 3));
        let all = events(&store).await;
        let by_engine = all.iter().find(|e| e.message_id == "q1").unwrap();
        let captured = |e: &Event| match &e.detail {
            EventDetail::Delivery {
                smtp_response,
                reporting_mta,
                remote_mta,
                processing_time_ms,
            } => (
                smtp_response.clone(),
                reporting_mta.clone(),
                remote_mta.clone(),
                *processing_time_ms,
            ),
            other => panic!("not a delivery: {other:?}"),
        };
        let (resp, mta, remote, _) = captured(by_engine);
        assert_eq!(captured(e), (resp, mta, remote, 0));
        assert_eq!(captured(e).0, CAPTURED);
        assert_eq!(captured(e).2, MAILBOX_HOST);
        assert_eq!(captured(e).1, "mta.sesame.test");
        let simulated = all
            .iter()
            .find(|e| e.message_id == "c1" && e.recipients == ["success@simulator.amazonses.com"])
            .expect("the simulator's delivery is the engine's");
        assert_eq!(simulated.kind, EventKind::Delivery);
    }

    #[tokio::test]
    async fn signs_with_the_most_specific_verified_identity_and_reports_delivery() {
        let delivered = RecipientOutcome::Delivered {
            response: "250 ok".into(),
        };
        let (_d, store, clock, t, engine) = setup(delivered, RetryPolicy::default()).await;
        let s = scope("121212121212", "us-east-1");
        for (name, bits) in [
            ("example.com", KeyLength::Rsa2048),
            ("mail.example.com", KeyLength::Rsa1024),
        ] {
            let i = signing_identity(name, bits, VerificationStatus::Success).await;
            store.insert_identity(&s, &i, 100).await.unwrap();
        }
        let now = clock.now_ms();
        accept(&*store, "m1", "a@mail.example.com", &["x@dest.test"], now).await;
        clock.advance(5);
        drain(&store, &clock, &engine).await;
        let seen = t.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].0, "m1@bounce.mail.example.com",
            "VERP return path at the most specific identity's verified MAIL FROM domain"
        );
        let text = String::from_utf8(seen[0].2.clone()).unwrap();
        assert!(text.starts_with("DKIM-Signature:"), "{text}");
        assert!(text.contains("d=mail.example.com"), "{text}");
        assert!(text.contains("s=tok1024"), "{text}");
        let ev = events(&store).await;
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::Delivery);
        match &ev[0].detail {
            EventDetail::Delivery {
                processing_time_ms,
                remote_mta,
                ..
            } => {
                assert_eq!(*processing_time_ms, 5);
                assert_eq!(remote_mta, "mx.test");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.queue_summary().await.unwrap().delivered, 1);
    }

    /// A first attempt at a message with several recipient domains signs
    /// once for all of them (the simulator's domain does not sign); a
    /// retry signs afresh.
    #[tokio::test]
    async fn a_message_to_several_domains_is_signed_once() {
        let deferred = RecipientOutcome::Deferred {
            reason: "451 4.3.0 try again".into(),
        };
        let (_dir, store, clock) = store_and_clock().await;
        let t = Arc::new(Recorder {
            seen: Mutex::new(vec![]),
            outcome: deferred,
        });
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let engine = metrics::with_local_recorder(&recorder, || {
            Arc::new(DeliveryEngine::new(
                store.clone(),
                clock.clone(),
                t.clone(),
                DeliverySettings {
                    poll: Duration::from_millis(20),
                    ..Default::default()
                },
            ))
        });
        let made = || {
            let text = metrics.render();
            text.lines()
                .find_map(|l| l.strip_prefix("sesame_dkim_signatures_total "))
                .map(|n| n.trim().parse::<u64>().unwrap())
                .unwrap_or(0)
        };
        let s = scope("121212121212", "us-east-1");
        let i = signing_identity(
            "example.com",
            KeyLength::Rsa2048,
            VerificationStatus::Success,
        )
        .await;
        store.insert_identity(&s, &i, 100).await.unwrap();
        let to = [
            "x@dest-a.test",
            "y@dest-b.test",
            "z@DEST-B.test",
            "success@simulator.amazonses.com",
        ];
        assert_eq!(signing_domains(&to.map(String::from)), 2);
        accept(&*store, "m1", "a@example.com", &to, clock.now_ms()).await;
        drain(&store, &clock, &engine).await;
        let headers = |from: usize| -> Vec<String> {
            t.seen.lock().unwrap()[from..]
                .iter()
                .map(|(_, _, m)| {
                    let text = String::from_utf8(m.clone()).unwrap();
                    // The accepted message starts here (the signature's
                    // h= tag names "From:" too, without the space).
                    let end = text.find("From: a@mail.example.com").unwrap();
                    assert!(text.starts_with("DKIM-Signature:"), "{text}");
                    assert!(text[..end].contains(" b="), "{text}");
                    text[..end].to_owned()
                })
                .collect()
        };
        let first = headers(0);
        assert_eq!(first.len(), 2, "one transaction a domain");
        assert_eq!(first[0], first[1], "both domains got the same signature");
        assert_eq!(made(), 1, "signed once for two domains");
        assert_eq!(engine.shared.len(), 0, "both domains took the shared entry");
        // Deferred: each domain's retry signs on its own.
        clock.advance(60_000);
        drain(&store, &clock, &engine).await;
        assert_eq!(headers(2).len(), 2);
        assert_eq!(made(), 3);
        assert_eq!(engine.shared.len(), 0);
    }

    /// Counts the attempts in its hands at once.
    struct Slow {
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        done: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl Transport for Slow {
        async fn deliver(&self, e: &Envelope<'_>) -> AttemptReport {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(n, SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.now.fetch_sub(1, SeqCst);
            self.done.fetch_add(1, SeqCst);
            AttemptReport::all(
                "mx.test",
                e.recipients,
                RecipientOutcome::Delivered {
                    response: "250 ok".into(),
                },
            )
        }
        fn mode(&self) -> &'static str {
            "test"
        }
    }

    /// Large messages wait for room in the memory budget: with room for
    /// two attempts at 400 KiB messages (each counted at its message and
    /// `ATTEMPT_BUFFER` more, 528 KiB), no more than two are in flight, however
    /// many attempts the concurrency allows; one larger than the whole
    /// budget still goes, alone.
    #[tokio::test]
    async fn the_memory_budget_bounds_large_messages_in_flight() {
        use std::sync::atomic::Ordering::SeqCst;
        let (_dir, store, clock) = store_and_clock().await;
        let t = Arc::new(Slow {
            now: 0.into(),
            most: 0.into(),
            done: 0.into(),
        });
        let engine = Arc::new(DeliveryEngine::new(
            store.clone(),
            clock.clone(),
            t.clone(),
            DeliverySettings {
                poll: Duration::from_millis(20),
                memory: 1100 << 10,
                ..Default::default()
            },
        ));
        let s = scope("121212121212", "us-east-1");
        let q = QuotaCheck {
            now: clock.now_ms(),
            max_24h: -1.0,
            max_rate: 1000.0,
            daily_recipients: 1,
            rate_recipients: 1,
        };
        let body = |kib: usize| {
            let mut raw = b"From: a@example.com\r\nSubject: Big\r\n\r\n".to_vec();
            raw.resize(kib << 10, b'x');
            raw
        };
        for (n, kib) in [400, 400, 400, 400, 400, 1500].into_iter().enumerate() {
            let m = NewMessage {
                id: format!("big{n}"),
                operation: "SendEmail".into(),
                source: "a@example.com".into(),
                destinations: vec![format!("x@dest{n}.test")],
                subject: Some("Big".into()),
                created_at: clock.now_ms(),
                raw: body(kib),
            };
            store.accept_message(&s, &m, &q).await.unwrap();
        }
        drain(&store, &clock, &engine).await;
        assert_eq!(t.done.load(SeqCst), 6, "every message went");
        assert_eq!(
            t.most.load(SeqCst),
            2,
            "two attempts at 400 KiB messages fit in 1100 KiB"
        );
        assert_eq!(store.queue_summary().await.unwrap().delivered, 6);
    }

    /// The shared entries are bounded, go when every domain took them, and
    /// are not used by a different signer.
    #[tokio::test]
    async fn shared_signatures_are_bounded_and_tied_to_their_signer() {
        let i = signing_identity(
            "example.com",
            KeyLength::Rsa1024,
            VerificationStatus::Success,
        )
        .await;
        let a = Arc::new(build_signer(&i, "example.com", "tok1024").unwrap());
        let b = Arc::new(build_signer(&i, "example.com", "tok1024").unwrap());
        let s = scope("121212121212", "us-east-1");
        let shared = SharedSignatures::new();
        let first = shared.take(&s, "m1", &a, 3).unwrap();
        assert!(
            shared.take(&s, "m1", &b, 3).is_none(),
            "another signer signs afresh"
        );
        let second = shared.take(&s, "m1", &a, 3).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(shared.len(), 1);
        shared.take(&s, "m1", &a, 3).unwrap();
        assert_eq!(shared.len(), 0, "the third domain took the last share");
        for n in 0..SharedSignatures::KEEP + 100 {
            shared.take(&s, &format!("m{n}"), &a, 2).unwrap();
        }
        assert_eq!(shared.len(), SharedSignatures::KEEP);
        let inner = shared.inner.lock().unwrap();
        assert!(inner.order.len() <= 2 * SharedSignatures::KEEP);
        assert!(
            !inner.cells.contains_key(&(s.clone(), "m0".to_owned())),
            "the oldest went first"
        );
    }

    #[tokio::test]
    async fn unverified_or_disabled_dkim_sends_unsigned() {
        let delivered = RecipientOutcome::Delivered {
            response: "250 ok".into(),
        };
        let (_d, store, clock, t, engine) = setup(delivered, RetryPolicy::default()).await;
        let s = scope("121212121212", "us-east-1");
        let i = signing_identity(
            "example.com",
            KeyLength::Rsa1024,
            VerificationStatus::Pending,
        )
        .await;
        store.insert_identity(&s, &i, 100).await.unwrap();
        accept(
            &*store,
            "m1",
            "a@example.com",
            &["x@dest.test"],
            clock.now_ms(),
        )
        .await;
        drain(&store, &clock, &engine).await;
        let seen = t.seen.lock().unwrap().clone();
        assert!(!String::from_utf8_lossy(&seen[0].2).contains("DKIM-Signature"));
        assert_eq!(
            seen[0].0, "m1@bounces.sesame.test",
            "an unverified MAIL FROM domain falls back to the default"
        );
    }

    #[tokio::test]
    async fn the_simulator_scripts_outcomes_without_the_transport() {
        let delivered = RecipientOutcome::Delivered {
            response: "250 ok".into(),
        };
        let (_d, store, clock, t, engine) = setup(delivered, RetryPolicy::default()).await;
        let to = [
            "success@simulator.amazonses.com",
            "bounce+1@simulator.amazonses.com",
            "ooto@simulator.amazonses.com",
            "complaint@simulator.amazonses.com",
            "suppressionlist@simulator.amazonses.com",
        ];
        accept(&*store, "m1", "a@example.com", &to, clock.now_ms()).await;
        drain(&store, &clock, &engine).await;
        assert!(t.seen.lock().unwrap().is_empty(), "no mail leaves");
        let ev = events(&store).await;
        let kinds = |k| ev.iter().filter(|e| e.kind == k).count();
        assert_eq!(kinds(EventKind::Delivery), 3);
        assert_eq!(kinds(EventKind::Bounce), 3);
        assert_eq!(kinds(EventKind::Complaint), 1);
        let bounce = ev
            .iter()
            .find(|e| e.recipients == ["bounce+1@simulator.amazonses.com"])
            .unwrap();
        match &bounce.detail {
            EventDetail::Bounce {
                bounce_type,
                sub_type,
                bounced,
                ..
            } => {
                assert_eq!(*bounce_type, BounceType::Permanent);
                assert_eq!(*sub_type, BounceSubType::General);
                assert_eq!(bounced[0].diagnostic_code, "smtp; 550 5.1.1 user unknown");
            }
            other => panic!("{other:?}"),
        }
        let s = scope("121212121212", "us-east-1");
        let stats = store.send_statistics(&s, 0).await.unwrap();
        assert_eq!(stats.iter().map(|p| p.complaints).sum::<u64>(), 1);
        assert_eq!(stats.iter().map(|p| p.bounces).sum::<u64>(), 3);
    }

    #[tokio::test]
    async fn deferrals_retry_on_schedule_then_bounce_when_too_old() {
        let deferred = RecipientOutcome::Deferred {
            reason: "451 4.3.0 try again".into(),
        };
        let retry = RetryPolicy {
            initial_ms: 60_000,
            max_interval_ms: 3_600_000,
            max_age_ms: 90_000,
        };
        let (_d, store, clock, t, engine) = setup(deferred, retry).await;
        accept(
            &*store,
            "m1",
            "a@example.com",
            &["x@dest.test"],
            clock.now_ms(),
        )
        .await;
        drain(&store, &clock, &engine).await;
        let q = store.list_queue(None, 10).await.unwrap();
        assert_eq!(q[0].state, sesame_model::DeliveryState::Queued);
        assert_eq!(q[0].attempts, 1);
        assert_eq!(q[0].next_attempt_at, clock.now_ms() + 60_000);
        assert_eq!(q[0].last_error.as_deref(), Some("451 4.3.0 try again"));
        // The second attempt would schedule a third past the max age.
        clock.advance(60_000);
        drain(&store, &clock, &engine).await;
        assert_eq!(t.seen.lock().unwrap().len(), 2);
        let q = store.list_queue(None, 10).await.unwrap();
        assert_eq!(q[0].state, sesame_model::DeliveryState::Failed);
        let ev = events(&store).await;
        assert_eq!(ev.len(), 1);
        match &ev[0].detail {
            EventDetail::Bounce {
                bounce_type,
                bounced,
                ..
            } => {
                assert_eq!(*bounce_type, BounceType::Transient);
                assert_eq!(bounced[0].diagnostic_code, "smtp; 451 4.3.0 try again");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn permanent_failures_bounce_at_once() {
        let failed = RecipientOutcome::Failed {
            status: "5.1.1".into(),
            diagnostic: "smtp; 550 5.1.1 no such user".into(),
            sub_type: BounceSubType::NoEmail,
        };
        let (_d, store, clock, _t, engine) = setup(failed, RetryPolicy::default()).await;
        accept(
            &*store,
            "m1",
            "a@example.com",
            &["x@dest.test"],
            clock.now_ms(),
        )
        .await;
        drain(&store, &clock, &engine).await;
        let ev = events(&store).await;
        assert_eq!(ev[0].kind, EventKind::Bounce);
        assert_eq!(store.queue_summary().await.unwrap().failed, 1);
    }
}
