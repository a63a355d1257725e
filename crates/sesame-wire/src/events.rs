//! Delivery events in SES's event-publishing JSON: `eventType`, the `mail`
//! object, and a `delivery`, `bounce` or `complaint` object, with SES's
//! field names.

use crate::iso8601;
use serde_json::{Value, json};
use sesame_model::{Event, EventDetail};

pub fn event_json(e: &Event) -> Value {
    let mail = json!({
        "timestamp": iso8601(e.mail.sent_at),
        "source": e.mail.source,
        "sourceArn": e.scope.arn(&format!("identity/{}", e.mail.source.rsplit_once('@').map(|(_, d)| d).unwrap_or(&e.mail.source))),
        "sendingAccountId": e.scope.account.as_str(),
        "messageId": e.message_id,
        "destination": e.mail.destinations,
        "headersTruncated": false,
        "commonHeaders": {
            "subject": e.mail.subject,
            "messageId": e.message_id,
        },
    });
    let at = iso8601(e.at);
    let mut out = json!({
        "eventType": e.kind.as_str(),
        "mail": mail,
    });
    match &e.detail {
        EventDetail::Delivery {
            processing_time_ms,
            smtp_response,
            reporting_mta,
            remote_mta,
        } => {
            out["delivery"] = json!({
                "timestamp": at,
                "processingTimeMillis": processing_time_ms,
                "recipients": e.recipients,
                "smtpResponse": smtp_response,
                "reportingMTA": reporting_mta,
                "remoteMtaIp": remote_mta,
            });
        }
        EventDetail::Bounce {
            bounce_type,
            sub_type,
            bounced,
            reporting_mta,
            feedback_id,
        } => {
            let recipients: Vec<Value> = bounced
                .iter()
                .map(|b| {
                    json!({
                        "emailAddress": b.address,
                        "action": b.action,
                        "status": b.status,
                        "diagnosticCode": b.diagnostic_code,
                    })
                })
                .collect();
            out["bounce"] = json!({
                "bounceType": bounce_type.as_str(),
                "bounceSubType": sub_type.as_str(),
                "bouncedRecipients": recipients,
                "timestamp": at,
                "feedbackId": feedback_id,
                "reportingMTA": reporting_mta,
            });
        }
        EventDetail::Complaint {
            feedback_type,
            user_agent,
            feedback_id,
        } => {
            let recipients: Vec<Value> = e
                .recipients
                .iter()
                .map(|r| json!({ "emailAddress": r }))
                .collect();
            out["complaint"] = json!({
                "complainedRecipients": recipients,
                "timestamp": at,
                "feedbackId": feedback_id,
                "userAgent": user_agent,
                "complaintFeedbackType": feedback_type,
                "arrivalDate": at,
            });
        }
    }
    out
}
