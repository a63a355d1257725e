//! The events an attempt records, with SES's fields.

use super::*;

/// What a Delivery event says of the exchange.
pub(super) struct Delivered<'a> {
    pub(super) response: &'a str,
    pub(super) reporting_mta: &'a str,
    pub(super) remote_mta: &'a str,
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
