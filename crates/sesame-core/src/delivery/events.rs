//! The events an attempt records, with SES's fields.

use super::*;

/// What a Delivery event says of the exchange.
pub(super) struct Delivered<'a> {
    pub(super) response: &'a str,
    pub(super) reporting_mta: &'a str,
    pub(super) remote_mta: &'a str,
    pub(super) outgoing_ip: Option<std::net::IpAddr>,
}

/// An event about one message, with SES's `mail` object.
pub(super) fn event(
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

pub(super) fn delivery_event(
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
            outgoing_ip: how.outgoing_ip.map(|ip| ip.to_string()),
        },
    )
}

impl DeliveryEngine {
    pub(super) fn event(
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

    pub(super) fn delivery_event(
        &self,
        d: &QueuedDelivery,
        recipients: &[String],
        response: &str,
        (remote_mta, outgoing_ip): (&str, Option<std::net::IpAddr>),
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
                outgoing_ip,
            },
        )
    }

    /// A DeliveryDelay event: `recipients` were deferred (a 4xx reply, or
    /// no connection) and will be retried until the message expires.
    pub(super) fn delay_event(
        &self,
        d: &QueuedDelivery,
        recipients: &[String],
        reason: &str,
        at: Millis,
    ) -> Event {
        let (delay_type, status) = delay_of(reason);
        let delayed = recipients
            .iter()
            .map(|r| DelayedRecipient {
                address: r.clone(),
                status: status.to_owned(),
                diagnostic_code: format!("smtp; {reason}"),
            })
            .collect();
        self.event(
            d,
            EventKind::DeliveryDelay,
            recipients,
            at,
            EventDetail::DeliveryDelay {
                delay_type: delay_type.to_owned(),
                delayed,
                expires_at: d.accepted_at
                    + self
                        .settings
                        .retry
                        .within(d.meta.max_delivery_ms)
                        .max_age_ms,
                reporting_mta: self.settings.reporting_mta.clone(),
            },
        )
    }

    pub(super) fn bounce_event(
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

/// SES's `delayType` and the status for a deferral's reason: a receiver's
/// 4xx reply (its enhanced code when it gave one), or no conversation at all.
fn delay_of(reason: &str) -> (&'static str, &str) {
    let words: Vec<&str> = reason.split_whitespace().collect();
    let enhanced = words
        .iter()
        .find(|w| w.starts_with("4.") && w.split('.').count() == 3)
        .copied();
    let replied = words
        .first()
        .is_some_and(|w| w.len() == 3 && w.starts_with('4'));
    match (replied, enhanced) {
        (_, Some("4.2.2")) => ("MailboxFull", "4.2.2"),
        (true, Some(code)) => ("RecipientServerError", code),
        (true, None) => ("RecipientServerError", "4.0.0"),
        (false, _) => ("TransientCommunicationFailure", "4.4.1"),
    }
}

/// SES's diagnostic for an address on the suppression list.
pub(super) const SUPPRESSED_DIAGNOSTIC: &str = "Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address. For more information about how to remove an address from the suppression list, see the Amazon SES Developer Guide: http://docs.aws.amazon.com/ses/latest/DeveloperGuide/remove-from-suppressionlist.html ";

pub(super) fn bounced(address: &str, status: &str, diagnostic: &str) -> BouncedRecipient {
    BouncedRecipient {
        address: address.to_owned(),
        action: "failed".into(),
        status: status.to_owned(),
        diagnostic_code: diagnostic.to_owned(),
    }
}

pub(super) fn feedback_id() -> String {
    format!(
        "{:016x}-{}-000000",
        u64::from_be_bytes(random::bytes::<8>()),
        uuid::Uuid::new_v4()
    )
}
