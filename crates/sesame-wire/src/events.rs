//! What Sesame publishes, in the wire's shapes: SES's event-publishing JSON
//! (`eventType`, the `mail` object with `commonHeaders` and tags, and the
//! type's own object, with SES's field names) and SNS's JSON envelope as
//! HTTP and email-json subscribers receive it.

use crate::iso8601;
use serde_json::{Map, Value, json};
use sesame_model::sns::{Envelope, MessageType};
use sesame_model::{Event, EventDetail};

/// The value of SES's automatic `ses:from-domain` tag.
fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address)
}

/// SES's `mail.tags`: each value a list; the automatic `ses:` tags first,
/// then the send's own.
fn tags(e: &Event) -> Value {
    let mut t = Map::new();
    let mut put = |k: &str, v: &str| {
        if let Some(a) = t
            .entry(k.to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            a.push(json!(v));
        }
    };
    for (k, v) in e.automatic_tags() {
        put(k, &v);
    }
    for tag in &e.mail.meta.tags {
        put(&tag.key, &tag.value);
    }
    Value::Object(t)
}

pub fn event_json(e: &Event) -> Value {
    let mut common = json!({
        "messageId": e.message_id,
    });
    if !e.mail.meta.from.is_empty() {
        common["from"] = json!(e.mail.meta.from);
    }
    if !e.mail.meta.to.is_empty() {
        common["to"] = json!(e.mail.meta.to);
    }
    if let Some(s) = &e.mail.subject {
        common["subject"] = json!(s);
    }
    common["date"] = json!(sesame_model::rfc2822(e.mail.sent_at));
    let mut mail = json!({
        "timestamp": iso8601(e.mail.sent_at),
        "source": e.mail.source,
        "sourceArn": e.scope.arn(&format!("identity/{}", domain_of(&e.mail.source))),
        "sendingAccountId": e.scope.account.as_str(),
        "messageId": e.message_id,
        "destination": e.mail.destinations,
        "headersTruncated": false,
        "commonHeaders": common,
        "tags": tags(e),
    });
    if let Some((headers, truncated)) = &e.mail.headers {
        mail["headersTruncated"] = json!(truncated);
        mail["headers"] = Value::Array(
            headers
                .iter()
                .map(|(name, value)| json!({ "name": name, "value": value }))
                .collect(),
        );
    }
    let at = iso8601(e.at);
    let mut out = json!({
        "eventType": e.kind.as_str(),
        "mail": mail,
    });
    match &e.detail {
        EventDetail::Send => {
            out["send"] = json!({});
        }
        EventDetail::Delivery {
            processing_time_ms,
            smtp_response,
            reporting_mta,
            remote_mta,
            ..
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
        EventDetail::DeliveryDelay {
            delay_type,
            delayed,
            expires_at,
            reporting_mta,
        } => {
            let recipients: Vec<Value> = delayed
                .iter()
                .map(|d| {
                    json!({
                        "emailAddress": d.address,
                        "status": d.status,
                        "diagnosticCode": d.diagnostic_code,
                    })
                })
                .collect();
            out["deliveryDelay"] = json!({
                "timestamp": at,
                "delayType": delay_type,
                "expirationTime": iso8601(*expires_at),
                "delayedRecipients": recipients,
                "reportingMTA": reporting_mta,
            });
        }
        EventDetail::RenderingFailure {
            template_name,
            error_message,
        } => {
            out["failure"] = json!({
                "templateName": template_name,
                "errorMessage": error_message,
            });
        }
        EventDetail::Open {
            ip_address,
            user_agent,
        } => {
            out["open"] = json!({
                "ipAddress": ip_address,
                "timestamp": at,
                "userAgent": user_agent,
            });
        }
        EventDetail::Click {
            ip_address,
            user_agent,
            link,
        } => {
            out["click"] = json!({
                "ipAddress": ip_address,
                "timestamp": at,
                "userAgent": user_agent,
                "link": link,
                "linkTags": {},
            });
        }
    }
    out
}

/// An identity notification (SetIdentityNotificationTopic): the same
/// objects as the event record, under `notificationType`, with no tags, and
/// the headers only when the identity asked for them.
pub fn notification_json(e: &Event, headers: bool) -> Value {
    let mut v = event_json(e);
    if let Some(o) = v.as_object_mut() {
        let kind = o.remove("eventType").unwrap_or(Value::Null);
        o.insert("notificationType".to_owned(), kind);
        if let Some(mail) = o.get_mut("mail").and_then(Value::as_object_mut) {
            mail.remove("tags");
            if !headers {
                mail.remove("commonHeaders");
                mail.remove("headersTruncated");
                mail.remove("headers");
            }
        }
    }
    v
}

/// EventBridge's envelope around an event record, as SES sends events to a
/// bus: `source` `aws.ses`, SES's `detail-type`, the record as `detail`.
pub fn eventbridge_json(e: &Event, resources: &[String]) -> Value {
    json!({
        "version": "0",
        "id": uuid_like(&e.message_id, e.at, e.kind.as_str()),
        "detail-type": sesame_model::sns::eventbridge_detail_type(e.kind),
        "source": "aws.ses",
        "account": e.scope.account.as_str(),
        "time": iso8601(e.at).replace(".000Z", "Z"),
        "region": e.scope.region.as_str(),
        "resources": resources,
        "detail": event_json(e),
    })
}

/// A stable event ID (a repeated publishing batch sends the same one): a
/// UUID-shaped hash of the message, time and type.
fn uuid_like(message_id: &str, at: sesame_model::Millis, kind: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut parts = [0u64; 2];
    for (i, p) in parts.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (i, message_id, at, kind).hash(&mut h);
        *p = h.finish();
    }
    let hex = format!("{:016x}{:016x}", parts[0], parts[1]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An event as published: SES's event record, as a string.
pub fn event_message(e: &Event) -> String {
    event_json(e).to_string()
}

/// SNS's JSON envelope for HTTP(S) and email-json subscribers, with the
/// fields each message type carries.
pub fn envelope_json(e: &Envelope) -> String {
    let mut o = Map::new();
    let mut put = |k: &str, v: &str| {
        o.insert(k.to_owned(), json!(v));
    };
    put("Type", e.kind.as_str());
    put("MessageId", &e.message_id);
    if let Some(t) = &e.token {
        put("Token", t);
    }
    put("TopicArn", &e.topic_arn);
    if let Some(s) = &e.subject {
        put("Subject", s);
    }
    put("Message", &e.message);
    if let Some(u) = &e.subscribe_url {
        put("SubscribeURL", u);
    }
    put("Timestamp", &e.timestamp);
    put("SignatureVersion", &e.signature_version.to_string());
    put("Signature", &e.signature);
    put("SigningCertURL", &e.signing_cert_url);
    if e.kind == MessageType::Notification
        && let Some(u) = &e.unsubscribe_url
    {
        put("UnsubscribeURL", u);
    }
    Value::Object(o).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_model::{AccountId, EventKind, MailInfo, MessageMeta, Region, Scope, Tag};

    fn event(kind: EventKind, detail: EventDetail) -> Event {
        Event {
            kind,
            scope: Scope::new(
                AccountId::parse("123456789012").unwrap(),
                Region::parse("us-east-1").unwrap(),
            ),
            message_id: "m1".into(),
            at: 1_000,
            recipients: vec!["to@example.com".into()],
            mail: MailInfo {
                source: "from@example.com".into(),
                destinations: vec!["to@example.com".into()],
                subject: Some("Hi".into()),
                sent_at: 0,
                operation: "SendEmail".into(),
                headers: Some((vec![("X-Campaign".into(), "x".into())], false)),
                meta: MessageMeta {
                    configuration_set: Some("cs".into()),
                    tags: vec![Tag {
                        key: "campaign".into(),
                        value: "x".into(),
                    }],
                    from: vec!["From <from@example.com>".into()],
                    to: vec!["to@example.com".into()],
                    ..Default::default()
                },
            },
            detail,
        }
    }

    #[test]
    fn event_records_use_ses_names() {
        let send = event_json(&event(EventKind::Send, EventDetail::Send));
        assert_eq!(send["eventType"], "Send");
        assert_eq!(send["send"], json!({}));
        assert_eq!(send["mail"]["tags"]["ses:configuration-set"], json!(["cs"]));
        assert_eq!(
            send["mail"]["tags"]["ses:from-domain"],
            json!(["example.com"])
        );
        assert_eq!(send["mail"]["tags"]["campaign"], json!(["x"]));
        assert_eq!(
            send["mail"]["headers"],
            json!([{"name": "X-Campaign", "value": "x"}])
        );
        assert_eq!(
            send["mail"]["commonHeaders"]["from"],
            json!(["From <from@example.com>"])
        );
        let failure = event_json(&event(
            EventKind::RenderingFailure,
            EventDetail::RenderingFailure {
                template_name: "t".into(),
                error_message: "Attribute 'x' is not present in the rendering data.".into(),
            },
        ));
        assert_eq!(failure["eventType"], "Rendering Failure");
        assert_eq!(failure["failure"]["templateName"], "t");
    }

    /// SES's automatic tags: the source IP when the request's is known,
    /// the caller, and the outgoing IP on a Delivery only.
    #[test]
    fn automatic_tags() {
        let mut send = event(EventKind::Send, EventDetail::Send);
        assert!(
            event_json(&send)["mail"]["tags"]
                .get("ses:source-ip")
                .is_none()
        );
        send.mail.meta.source_ip = Some("198.51.100.7".into());
        let tags = &event_json(&send)["mail"]["tags"];
        assert_eq!(tags["ses:source-ip"], json!(["198.51.100.7"]));
        assert_eq!(tags["ses:caller-identity"], json!(["root"]));
        assert_eq!(tags["ses:operation"], json!(["SendEmail"]));
        assert!(tags.get("ses:outgoing-ip").is_none());
        let delivery = event(
            EventKind::Delivery,
            EventDetail::Delivery {
                processing_time_ms: 1,
                smtp_response: "250 ok".into(),
                reporting_mta: "sesame".into(),
                remote_mta: "mx".into(),
                outgoing_ip: Some("192.0.2.1".into()),
            },
        );
        assert_eq!(
            event_json(&delivery)["mail"]["tags"]["ses:outgoing-ip"],
            json!(["192.0.2.1"])
        );
    }

    #[test]
    fn identity_notifications_use_notification_type() {
        let e = event(EventKind::Send, EventDetail::Send);
        let n = notification_json(&e, false);
        assert_eq!(n["notificationType"], "Send");
        assert!(n.get("eventType").is_none());
        assert!(n["mail"].get("tags").is_none());
        assert!(n["mail"].get("commonHeaders").is_none());
        assert!(
            notification_json(&e, true)["mail"]
                .get("commonHeaders")
                .is_some()
        );
    }

    #[test]
    fn envelopes_carry_their_types_fields() {
        let e = Envelope {
            kind: MessageType::SubscriptionConfirmation,
            message_id: "id".into(),
            topic_arn: "arn".into(),
            subject: None,
            message: "m".into(),
            timestamp: "t".into(),
            signature_version: 1,
            signature: "sig".into(),
            signing_cert_url: "c".into(),
            unsubscribe_url: None,
            subscribe_url: Some("s".into()),
            token: Some("k".into()),
            subscription_arn: None,
        };
        let v: Value = serde_json::from_str(&envelope_json(&e)).unwrap();
        assert_eq!(v["Type"], "SubscriptionConfirmation");
        assert_eq!(v["SubscribeURL"], "s");
        assert_eq!(v["Token"], "k");
        assert!(v.get("UnsubscribeURL").is_none());
        assert!(v.get("Subject").is_none());
    }
}
