//! What the engine hands a message to: the `Transport` trait, the
//! envelope, and the capture transport (the local mailbox), with its
//! delivery made in the acceptance's own transaction.

use super::*;

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
    /// The configuration set's TlsPolicy REQUIRE: the receiver must take
    /// it over TLS, or the attempt is deferred.
    pub require_tls: bool,
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
pub(super) const MAILBOX_HOST: &str = "sesame.mailbox";
pub(super) const CAPTURED: &str = "250 2.0.0 Ok: captured in the local mailbox";

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
        // The simulator's, and any with a suppressed recipient, are the
        // engine's to settle.
        if domain == SIMULATOR_DOMAIN
            || recipients.iter().any(|r| {
                m.meta
                    .suppressed
                    .contains(&sesame_model::suppression::key(r))
            })
        {
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
                outgoing_ip: None,
            },
        ))
    }

    fn recorded(&self, events: &[Event]) {
        let recipients: usize = events.iter().map(|e| e.recipients.len()).sum();
        self.delivered_total.increment(recipients as u64);
        self.latency.record_many(0.0, events.len());
    }
}
