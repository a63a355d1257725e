//! Sending: v1 SendEmail, SendRawEmail, SendTemplatedEmail,
//! SendBulkTemplatedEmail and SendBounce; v2 SendEmail and SendBulkEmail.
//! Each becomes one `Outgoing` for `SendService`, where the rules live.

use crate::{Api, R, spell};
use sesame_core::compose::{Attachment, BounceReason, DsnRecipient};
use sesame_core::sending::{BounceRequest, BulkDestination, Content, Outgoing, TemplateRef};
use sesame_model::{Error, ErrorKind, Scope, TemplateParts};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

// ---------------------------------------------------------------- v1

fn v1_tags(tags: Option<Vec<v1::MessageTag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| (t.name, t.value))
        .collect()
}

/// The members SendEmail and SendTemplatedEmail share.
struct V1Common {
    source: String,
    destination: v1::Destination,
    reply_to: Option<Vec<String>>,
    return_path: Option<String>,
    tags: Option<Vec<v1::MessageTag>>,
    configuration_set: Option<String>,
}

impl V1Common {
    fn apply(self, out: &mut Outgoing) {
        out.source = Some(self.source);
        out.to = self.destination.to_addresses.unwrap_or_default();
        out.cc = self.destination.cc_addresses.unwrap_or_default();
        out.bcc = self.destination.bcc_addresses.unwrap_or_default();
        out.reply_to = self.reply_to.unwrap_or_default();
        out.return_path = self.return_path;
        out.tags = v1_tags(self.tags);
        out.configuration_set = self.configuration_set;
    }
}

/// A send request from the caller of the operation running now.
fn outgoing(operation: &'static str, content: Content) -> Outgoing {
    let mut out = Outgoing::new(operation, content);
    let origin = crate::Origin::current();
    out.source_ip = origin.source_ip.map(|ip| ip.to_string());
    out.request_id = origin.request_id;
    out
}

pub async fn v1_send_email(
    api: &Api,
    s: &Scope,
    i: v1::SendEmailRequest,
) -> R<v1::SendEmailResponse> {
    let mut out = outgoing(
        "SendEmail",
        Content::Simple {
            subject: i.message.subject.data,
            text: i.message.body.text.map(|c| c.data),
            html: i.message.body.html.map(|c| c.data),
            headers: vec![],
            attachments: vec![],
        },
    );
    V1Common {
        source: i.source,
        destination: i.destination,
        reply_to: i.reply_to_addresses,
        return_path: i.return_path,
        tags: i.tags,
        configuration_set: i.configuration_set_name,
    }
    .apply(&mut out);
    let message_id = api.sending.send(s, out).await?;
    Ok(v1::SendEmailResponse { message_id })
}

pub async fn v1_send_raw_email(
    api: &Api,
    s: &Scope,
    i: v1::SendRawEmailRequest,
) -> R<v1::SendRawEmailResponse> {
    let mut out = outgoing("SendRawEmail", Content::Raw(i.raw_message.data));
    out.source = i.source;
    out.destinations = i.destinations.unwrap_or_default();
    out.tags = v1_tags(i.tags);
    out.configuration_set = i.configuration_set_name;
    let message_id = api.sending.send(s, out).await?;
    Ok(v1::SendRawEmailResponse { message_id })
}

pub async fn v1_send_templated_email(
    api: &Api,
    s: &Scope,
    i: v1::SendTemplatedEmailRequest,
) -> R<v1::SendTemplatedEmailResponse> {
    let mut out = outgoing(
        "SendTemplatedEmail",
        Content::Template {
            template: TemplateRef::Named(i.template),
            data: i.template_data,
            headers: vec![],
            attachments: vec![],
        },
    );
    V1Common {
        source: i.source,
        destination: i.destination,
        reply_to: i.reply_to_addresses,
        return_path: i.return_path,
        tags: i.tags,
        configuration_set: i.configuration_set_name,
    }
    .apply(&mut out);
    let message_id = api.sending.send(s, out).await?;
    Ok(v1::SendTemplatedEmailResponse { message_id })
}

pub async fn v1_send_bulk_templated_email(
    api: &Api,
    s: &Scope,
    i: v1::SendBulkTemplatedEmailRequest,
) -> R<v1::SendBulkTemplatedEmailResponse> {
    let mut out = outgoing(
        "SendBulkTemplatedEmail",
        Content::Template {
            template: TemplateRef::Named(i.template),
            data: i.default_template_data,
            headers: vec![],
            attachments: vec![],
        },
    );
    out.source = Some(i.source);
    out.reply_to = i.reply_to_addresses.unwrap_or_default();
    out.return_path = i.return_path;
    out.tags = v1_tags(i.default_tags);
    out.configuration_set = i.configuration_set_name;
    let destinations = i
        .destinations
        .into_iter()
        .map(|d| BulkDestination {
            to: d.destination.to_addresses.unwrap_or_default(),
            cc: d.destination.cc_addresses.unwrap_or_default(),
            bcc: d.destination.bcc_addresses.unwrap_or_default(),
            replacement_data: d.replacement_template_data,
            replacement_tags: v1_tags(d.replacement_tags),
        })
        .collect();
    let results = api.sending.send_bulk(s, out, destinations).await?;
    Ok(v1::SendBulkTemplatedEmailResponse {
        status: results
            .into_iter()
            .map(|r| match r {
                Ok(id) => v1::BulkEmailDestinationStatus {
                    status: Some(v1::BulkEmailStatus::Success),
                    error: None,
                    message_id: Some(id),
                },
                Err(e) => v1::BulkEmailDestinationStatus {
                    status: Some(spell::v1_bulk_status(e.kind)),
                    error: Some(e.message),
                    message_id: None,
                },
            })
            .collect(),
    })
}

fn extensions(fields: Option<Vec<v1::ExtensionField>>) -> Vec<(String, String)> {
    fields
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.name, f.value))
        .collect()
}

fn bounce_reason(t: v1::BounceType) -> BounceReason {
    match t {
        v1::BounceType::DoesNotExist => BounceReason::DoesNotExist,
        v1::BounceType::MessageTooLarge => BounceReason::MessageTooLarge,
        v1::BounceType::ExceededQuota => BounceReason::ExceededQuota,
        v1::BounceType::ContentRejected => BounceReason::ContentRejected,
        v1::BounceType::Undefined => BounceReason::Undefined,
        v1::BounceType::TemporaryFailure => BounceReason::TemporaryFailure,
    }
}

/// One bounced recipient: its DSN fields as given, or those of its
/// bounce type.
fn bounced(r: v1::BouncedRecipientInfo) -> R<DsnRecipient> {
    match (r.recipient_dsn_fields, r.bounce_type) {
        (Some(f), _) => Ok(DsnRecipient {
            final_recipient: f.final_recipient.unwrap_or(r.recipient),
            action: f.action.as_str().to_owned(),
            status: f.status,
            remote_mta: f.remote_mta,
            diagnostic_code: f.diagnostic_code,
            last_attempt: f.last_attempt_date,
            extensions: extensions(f.extension_fields),
        }),
        (None, Some(t)) => {
            let (action, status) = bounce_reason(t).action_and_status();
            Ok(DsnRecipient {
                final_recipient: r.recipient,
                action: action.to_owned(),
                status: status.to_owned(),
                remote_mta: None,
                diagnostic_code: None,
                last_attempt: None,
                extensions: vec![],
            })
        }
        (None, None) => Err(Error::invalid(format!(
            "The bounced recipient {} needs a BounceType or RecipientDsnFields.",
            r.recipient
        ))),
    }
}

pub async fn v1_send_bounce(
    api: &Api,
    s: &Scope,
    i: v1::SendBounceRequest,
) -> R<v1::SendBounceResponse> {
    let dsn = i.message_dsn;
    let request = BounceRequest {
        original_message_id: i.original_message_id,
        sender: i.bounce_sender,
        explanation: i.explanation,
        reporting_mta: dsn.as_ref().map(|d| d.reporting_mta.clone()),
        arrival: dsn.as_ref().and_then(|d| d.arrival_date),
        extensions: extensions(dsn.and_then(|d| d.extension_fields)),
        recipients: i
            .bounced_recipient_info_list
            .into_iter()
            .map(bounced)
            .collect::<R<_>>()?,
    };
    let id = api.sending.send_bounce(s, request).await?;
    Ok(v1::SendBounceResponse {
        message_id: Some(id),
    })
}

// ---------------------------------------------------------------- v2

fn not_yet(what: &str) -> Error {
    Error::new(
        ErrorKind::NotImplemented,
        format!("Sesame does not implement {what} yet."),
    )
}

fn v2_tags(tags: Option<Vec<v2::MessageTag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| (t.name, t.value))
        .collect()
}

fn headers_in(h: Option<Vec<v2::MessageHeader>>) -> Vec<(String, String)> {
    h.unwrap_or_default()
        .into_iter()
        .map(|h| (h.name, h.value))
        .collect()
}

fn attachments_in(a: Option<Vec<v2::Attachment>>) -> Vec<Attachment> {
    a.unwrap_or_default()
        .into_iter()
        .map(|a| {
            let inline = a.content_disposition == Some(v2::AttachmentContentDisposition::Inline);
            Attachment {
                data: a.raw_content,
                file_name: a.file_name,
                content_type: a
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                inline_content_id: if inline { a.content_id } else { None },
            }
        })
        .collect()
}

/// A template by name, by ARN, or inline.
fn template_ref(
    name: Option<String>,
    arn: Option<String>,
    inline: Option<v2::EmailTemplateContent>,
) -> R<TemplateRef> {
    match (name, arn, inline) {
        (Some(n), _, None) => Ok(TemplateRef::Named(n)),
        (None, Some(a), None) => a
            .split_once(":template/")
            .map(|(_, n)| n)
            .filter(|n| !n.is_empty())
            .map(|n| TemplateRef::Named(n.to_owned()))
            .ok_or_else(|| Error::invalid(format!("Invalid template ARN: {a}"))),
        (None, None, Some(c)) => Ok(TemplateRef::Inline(TemplateParts {
            subject: c.subject,
            text: c.text,
            html: c.html,
        })),
        (None, None, None) => Err(Error::missing("TemplateName")),
        _ => Err(Error::invalid(
            "Give either TemplateName/TemplateArn or TemplateContent, not both.",
        )),
    }
}

pub async fn v2_send_email(
    api: &Api,
    s: &Scope,
    i: v2::SendEmailRequest,
) -> R<v2::SendEmailResponse> {
    if i.endpoint_id.is_some() {
        return Err(not_yet("multi-region endpoints (EndpointId)"));
    }
    if i.tenant_name.is_some() || i.list_management_options.is_some() {
        return Err(not_yet("tenants or list management options"));
    }
    let content = match (i.content.simple, i.content.raw, i.content.template) {
        (Some(simple), None, None) => Content::Simple {
            subject: simple.subject.data,
            text: simple.body.text.map(|t| t.data),
            html: simple.body.html.map(|h| h.data),
            headers: headers_in(simple.headers),
            attachments: attachments_in(simple.attachments),
        },
        (None, Some(raw), None) => Content::Raw(raw.data),
        (None, None, Some(t)) => Content::Template {
            template: template_ref(t.template_name, t.template_arn, t.template_content)?,
            data: t
                .template_data
                .ok_or_else(|| Error::missing("TemplateData"))?,
            headers: headers_in(t.headers),
            attachments: attachments_in(t.attachments),
        },
        _ => {
            return Err(Error::invalid(
                "Content must have exactly one of Simple, Raw or Template.",
            ));
        }
    };
    let raw = matches!(content, Content::Raw(_));
    let mut out = outgoing("SendEmail", content);
    out.source = i.from_email_address;
    let d = i.destination.unwrap_or_default();
    let (to, cc, bcc) = (
        d.to_addresses.unwrap_or_default(),
        d.cc_addresses.unwrap_or_default(),
        d.bcc_addresses.unwrap_or_default(),
    );
    if raw {
        out.destinations = [to, cc, bcc].concat();
    } else {
        if out.source.is_none() {
            return Err(Error::missing("FromEmailAddress"));
        }
        (out.to, out.cc, out.bcc) = (to, cc, bcc);
    }
    out.reply_to = i.reply_to_addresses.unwrap_or_default();
    out.return_path = i.feedback_forwarding_email_address;
    out.tags = v2_tags(i.email_tags);
    out.configuration_set = i.configuration_set_name;
    let id = api.sending.send(s, out).await?;
    Ok(v2::SendEmailResponse {
        message_id: Some(id),
    })
}

pub async fn v2_send_bulk_email(
    api: &Api,
    s: &Scope,
    i: v2::SendBulkEmailRequest,
) -> R<v2::SendBulkEmailResponse> {
    if i.endpoint_id.is_some() || i.tenant_name.is_some() {
        return Err(not_yet("multi-region endpoints or tenants"));
    }
    let t = i
        .default_content
        .template
        .ok_or_else(|| Error::missing("DefaultContent"))?;
    let mut common = outgoing(
        "SendBulkEmail",
        Content::Template {
            template: template_ref(t.template_name, t.template_arn, t.template_content)?,
            data: t.template_data.unwrap_or_else(|| "{}".to_owned()),
            headers: headers_in(t.headers),
            attachments: attachments_in(t.attachments),
        },
    );
    common.source = Some(
        i.from_email_address
            .ok_or_else(|| Error::missing("FromEmailAddress"))?,
    );
    common.reply_to = i.reply_to_addresses.unwrap_or_default();
    common.return_path = i.feedback_forwarding_email_address;
    common.tags = v2_tags(i.default_email_tags);
    common.configuration_set = i.configuration_set_name;
    let destinations = i
        .bulk_email_entries
        .into_iter()
        .map(|e| {
            if e.replacement_headers.is_some() {
                return Err(not_yet("ReplacementHeaders in SendBulkEmail"));
            }
            Ok(BulkDestination {
                to: e.destination.to_addresses.unwrap_or_default(),
                cc: e.destination.cc_addresses.unwrap_or_default(),
                bcc: e.destination.bcc_addresses.unwrap_or_default(),
                replacement_data: e
                    .replacement_email_content
                    .and_then(|c| c.replacement_template)
                    .and_then(|t| t.replacement_template_data),
                replacement_tags: v2_tags(e.replacement_tags),
            })
        })
        .collect::<R<Vec<_>>>()?;
    let results = api.sending.send_bulk(s, common, destinations).await?;
    Ok(v2::SendBulkEmailResponse {
        bulk_email_entry_results: results
            .into_iter()
            .map(|r| match r {
                Ok(id) => v2::BulkEmailEntryResult {
                    status: Some(v2::BulkEmailStatus::Success),
                    error: None,
                    message_id: Some(id),
                },
                Err(e) => v2::BulkEmailEntryResult {
                    status: Some(spell::v2_bulk_status(e.kind)),
                    error: Some(e.message),
                    message_id: None,
                },
            })
            .collect(),
    })
}

/// GetMessageInsights, from the events Sesame recorded for the message:
/// one entry per recipient with the events that concern it. (SES fills in
/// the recipient's mailbox provider, `Isp`; Sesame does not guess one.)
pub async fn v2_get_message_insights(
    api: &Api,
    s: &Scope,
    i: v2::GetMessageInsightsRequest,
) -> R<v2::GetMessageInsightsResponse> {
    use sesame_model::{EventDetail, EventKind};
    let events = api.sending.message_events(s, &i.message_id).await?;
    let mail = &events[0].mail;
    let insights = mail
        .destinations
        .iter()
        .map(|to| {
            let concern = events.iter().filter(|e| {
                e.kind == EventKind::Send || e.recipients.iter().any(|r| r.eq_ignore_ascii_case(to))
            });
            let list = concern
                .map(|e| {
                    let details = match &e.detail {
                        EventDetail::Bounce {
                            bounce_type,
                            sub_type,
                            bounced,
                            ..
                        } => Some(v2::EventDetails {
                            bounce: Some(v2::Bounce {
                                bounce_type: Some(crate::spell::v2_bounce_type(*bounce_type)),
                                bounce_sub_type: Some(sub_type.as_str().to_owned()),
                                diagnostic_code: bounced
                                    .iter()
                                    .find(|b| b.address.eq_ignore_ascii_case(to))
                                    .map(|b| b.diagnostic_code.clone()),
                            }),
                            complaint: None,
                        }),
                        EventDetail::Complaint { feedback_type, .. } => Some(v2::EventDetails {
                            bounce: None,
                            complaint: Some(v2::Complaint {
                                complaint_sub_type: None,
                                complaint_feedback_type: Some(feedback_type.clone()),
                            }),
                        }),
                        _ => None,
                    };
                    v2::InsightsEvent {
                        timestamp: Some(e.at),
                        r#type: Some(crate::spell::v2_event_type(e.kind)),
                        details,
                    }
                })
                .collect();
            v2::EmailInsights {
                destination: Some(to.clone()),
                isp: None,
                events: Some(list),
            }
        })
        .collect();
    Ok(v2::GetMessageInsightsResponse {
        message_id: Some(i.message_id),
        from_email_address: mail
            .meta
            .from
            .first()
            .cloned()
            .or(Some(mail.source.clone())),
        subject: mail.subject.clone(),
        email_tags: Some(
            mail.meta
                .tags
                .iter()
                .map(|t| v2::MessageTag {
                    name: t.key.clone(),
                    value: t.value.clone(),
                })
                .collect(),
        ),
        insights: Some(insights),
    })
}
