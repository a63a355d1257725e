//! v2 (REST-JSON) dispatch: route to operation, inputs from path labels,
//! query string and JSON body, results as JSON.

use super::{App, Caller, Failure};
use axum::http::request::Parts;
use base64::Engine;
use serde_json::{Value, json};
use sesame_core::accounts::DetailsRequest;
use sesame_core::compose::Attachment;
use sesame_core::custom_verification::CvTemplateInput;
use sesame_core::identities::{CreateIdentity, DkimRequest};
use sesame_core::sending::{BulkDestination, Content, Outgoing, TemplateRef};
use sesame_model::TemplateParts;
use sesame_model::{Error, IdentityKind, KeyLength, VerificationStatus};
use sesame_store::IdentityQuery;
use sesame_wire::identities::{self as shapes, parse_json};
use sesame_wire::router::{self, Matched, RouteError};
use sesame_wire::sending as send_shapes;
use sesame_wire::{Protocol, V2Operation, WireError, WireResponse};

pub async fn dispatch(
    app: &App,
    caller: &Caller,
    parts: &Parts,
    body: &[u8],
    request_id: &str,
) -> Result<(Option<&'static str>, WireResponse), Failure> {
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let matched = match router::route(method, path) {
        Ok(m) => m,
        Err(RouteError::UnknownOperation) => {
            return Err((
                None,
                WireError::new(
                    "UnknownOperationException",
                    404,
                    format!("No SESv2 operation matches {method} {path}."),
                ),
            ));
        }
        Err(RouteError::BadPath(m)) => {
            return Err((None, WireError::new("BadRequestException", 400, m)));
        }
    };
    let op = Some(matched.op.name());
    let query = router::query_pairs(parts.uri.query().unwrap_or("")).map_err(|e| match e {
        RouteError::BadPath(m) => (op, WireError::new("BadRequestException", 400, m)),
        RouteError::UnknownOperation => (op, WireError::new("BadRequestException", 400, "")),
    })?;
    if sesame_wire::counts_against_api_rate(matched.op.name()) {
        app.api_rate
            .admit(&caller.scope)
            .map_err(|e| (op, domain(e)))?;
    }
    let out = run(app, caller, &matched, &query, body)
        .await
        .map_err(|e| (op, e))?;
    Ok((
        op,
        WireResponse {
            status: 200,
            content_type: "application/json",
            headers: vec![("x-amzn-requestid", request_id.to_owned())],
            body: serde_json::to_vec(&out).unwrap_or_default(),
        },
    ))
}

fn domain(e: Error) -> WireError {
    WireError::from_domain(Protocol::RestJson, &e)
}

fn label<'a>(m: &'a Matched, name: &str) -> Result<&'a str, WireError> {
    m.label(name).ok_or_else(|| domain(Error::missing(name)))
}

fn query_one<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn key_length(s: Option<&str>) -> Result<Option<KeyLength>, WireError> {
    s.map(|v| {
        KeyLength::from_v2(v).ok_or_else(|| {
            domain(Error::invalid(format!(
                "Invalid NextSigningKeyLength {v}: it must be RSA_1024_BIT or RSA_2048_BIT."
            )))
        })
    })
    .transpose()
}

fn page_size(n: Option<i64>) -> Result<u32, WireError> {
    match n {
        None | Some(0) => Ok(100),
        Some(n @ 1..=1000) => Ok(n as u32),
        Some(n) => Err(domain(Error::invalid(format!(
            "PageSize {n} is out of range: it must be from 0 to 1000."
        )))),
    }
}

async fn run(
    app: &App,
    caller: &Caller,
    m: &Matched,
    q: &[(String, String)],
    body: &[u8],
) -> Result<Value, WireError> {
    use V2Operation as O;
    let s = &caller.scope;
    let ids = &app.identities;
    match m.op {
        O::CreateEmailIdentity => {
            let input: shapes::CreateEmailIdentityIn = parse_json(body).map_err(domain)?;
            let name = input
                .email_identity
                .ok_or_else(|| domain(Error::missing("EmailIdentity")))?;
            let dkim = match input.dkim_signing_attributes {
                None => None,
                Some(a) => Some(
                    match (a.domain_signing_selector, a.domain_signing_private_key) {
                        (Some(selector), Some(private_key)) => DkimRequest::External {
                            selector,
                            private_key,
                        },
                        (None, None) => {
                            DkimRequest::Easy(key_length(a.next_signing_key_length.as_deref())?)
                        }
                        (None, Some(_)) => {
                            return Err(domain(Error::missing("DomainSigningSelector")));
                        }
                        (Some(_), None) => {
                            return Err(domain(Error::missing("DomainSigningPrivateKey")));
                        }
                    },
                ),
            };
            let identity = ids
                .create(
                    s,
                    CreateIdentity {
                        name,
                        tags: shapes::tags_in(input.tags).map_err(domain)?,
                        configuration_set: input.configuration_set_name,
                        dkim,
                    },
                )
                .await
                .map_err(domain)?;
            Ok(shapes::create_email_identity_out(&identity))
        }
        O::GetEmailIdentity => {
            let i = ids
                .get(s, label(m, "EmailIdentity")?)
                .await
                .map_err(domain)?;
            Ok(shapes::get_email_identity_out(&i))
        }
        O::DeleteEmailIdentity => {
            ids.delete(s, label(m, "EmailIdentity")?)
                .await
                .map_err(domain)?;
            Ok(json!({}))
        }
        O::ListEmailIdentities => {
            // The old route is a GET with the query string; the new one a POST with JSON.
            let input: shapes::ListEmailIdentitiesIn = if body.is_empty() && !q.is_empty() {
                shapes::ListEmailIdentitiesIn {
                    filter: None,
                    next_token: query_one(q, "NextToken").map(str::to_owned),
                    page_size: match query_one(q, "PageSize") {
                        None => None,
                        Some(v) => Some(v.parse().map_err(|_| {
                            domain(Error::invalid(format!("PageSize {v} is not a number.")))
                        })?),
                    },
                }
            } else {
                parse_json(body).map_err(domain)?
            };
            let query = identity_filter(input.filter.unwrap_or_default())?;
            let page = ids
                .list(
                    s,
                    &query,
                    input.next_token.as_deref(),
                    page_size(input.page_size)?,
                )
                .await
                .map_err(domain)?;
            let mut out = json!({
                "EmailIdentities": page.identities.iter().map(shapes::identity_info).collect::<Vec<_>>(),
            });
            if let Some(t) = page.next_token {
                out["NextToken"] = json!(t);
            }
            Ok(out)
        }
        O::PutEmailIdentityMailFromAttributes => {
            let input: shapes::PutMailFromAttributesIn = parse_json(body).map_err(domain)?;
            let reject = input.reject_on_mx_failure().map_err(domain)?;
            ids.set_mail_from(
                s,
                label(m, "EmailIdentity")?,
                input.mail_from_domain.as_deref(),
                reject,
            )
            .await
            .map_err(domain)?;
            Ok(json!({}))
        }
        O::PutEmailIdentityDkimAttributes => {
            let input: shapes::PutDkimAttributesIn = parse_json(body).map_err(domain)?;
            ids.set_dkim_enabled(
                s,
                label(m, "EmailIdentity")?,
                input.signing_enabled.unwrap_or(false),
            )
            .await
            .map_err(domain)?;
            Ok(json!({}))
        }
        O::PutEmailIdentityDkimSigningAttributes => {
            let input: shapes::PutDkimSigningAttributesIn = parse_json(body).map_err(domain)?;
            let origin = input
                .signing_attributes_origin
                .ok_or_else(|| domain(Error::missing("SigningAttributesOrigin")))?;
            let attrs = input.signing_attributes.unwrap_or_default();
            let req = match origin.as_str() {
                "AWS_SES" => {
                    DkimRequest::Easy(key_length(attrs.next_signing_key_length.as_deref())?)
                }
                "EXTERNAL" => DkimRequest::External {
                    selector: attrs
                        .domain_signing_selector
                        .ok_or_else(|| domain(Error::missing("DomainSigningSelector")))?,
                    private_key: attrs
                        .domain_signing_private_key
                        .ok_or_else(|| domain(Error::missing("DomainSigningPrivateKey")))?,
                },
                o if o.starts_with("AWS_SES_") => {
                    return Err(domain(Error::new(
                        sesame_model::ErrorKind::NotImplemented,
                        format!("Sesame does not implement Deterministic Easy DKIM ({o}) yet."),
                    )));
                }
                o => {
                    return Err(domain(Error::invalid(format!(
                        "Invalid SigningAttributesOrigin {o}: it must be AWS_SES or EXTERNAL."
                    ))));
                }
            };
            let i = ids
                .put_dkim_signing(s, label(m, "EmailIdentity")?, req)
                .await
                .map_err(domain)?;
            Ok(json!({
                "DkimStatus": i.dkim.status.v2(),
                "DkimTokens": i.dkim.tokens,
            }))
        }
        O::TagResource => {
            let input: shapes::TagResourceIn = parse_json(body).map_err(domain)?;
            let arn = input
                .resource_arn
                .ok_or_else(|| domain(Error::missing("ResourceArn")))?;
            let tags = input.tags.ok_or_else(|| domain(Error::missing("Tags")))?;
            ids.tag(s, &arn, shapes::tags_in(Some(tags)).map_err(domain)?)
                .await
                .map_err(domain)?;
            Ok(json!({}))
        }
        O::UntagResource => {
            let arn =
                query_one(q, "ResourceArn").ok_or_else(|| domain(Error::missing("ResourceArn")))?;
            let keys: Vec<String> = q
                .iter()
                .filter(|(k, _)| k == "TagKeys")
                .map(|(_, v)| v.clone())
                .collect();
            if keys.is_empty() {
                return Err(domain(Error::missing("TagKeys")));
            }
            ids.untag(s, arn, &keys).await.map_err(domain)?;
            Ok(json!({}))
        }
        O::ListTagsForResource => {
            let arn =
                query_one(q, "ResourceArn").ok_or_else(|| domain(Error::missing("ResourceArn")))?;
            let tags = ids.list_tags(s, arn).await.map_err(domain)?;
            Ok(json!({ "Tags": shapes::tags_out(&tags) }))
        }
        O::SendEmail => {
            let input: send_shapes::SendEmailIn = parse_json(body).map_err(domain)?;
            let out = outgoing(input)?;
            let id = app.sending.send(s, out).await.map_err(domain)?;
            Ok(json!({ "MessageId": id }))
        }
        O::SendBulkEmail => {
            let input: send_shapes::SendBulkEmailIn = parse_json(body).map_err(domain)?;
            let (common, destinations) = bulk(input)?;
            let results = app
                .sending
                .send_bulk(s, common, destinations)
                .await
                .map_err(domain)?;
            let entries: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(id) => json!({"Status": "SUCCESS", "MessageId": id}),
                    Err(e) => {
                        json!({"Status": send_shapes::bulk_status_v2(e.kind), "Error": e.message})
                    }
                })
                .collect();
            Ok(json!({ "BulkEmailEntryResults": entries }))
        }
        O::CreateEmailTemplate => {
            let i: send_shapes::EmailTemplateIn = parse_json(body).map_err(domain)?;
            let name = i
                .template_name
                .ok_or_else(|| domain(Error::missing("TemplateName")))?;
            let c = i
                .template_content
                .ok_or_else(|| domain(Error::missing("TemplateContent")))?;
            let parts = TemplateParts {
                subject: c.subject,
                text: c.text,
                html: c.html,
            };
            app.templates
                .create(s, &name, parts, shapes::tags_in(i.tags).map_err(domain)?)
                .await
                .map_err(domain)?;
            Ok(json!({}))
        }
        O::GetEmailTemplate => {
            let t = app
                .templates
                .get(s, label(m, "TemplateName")?)
                .await
                .map_err(domain)?;
            let mut content = json!({});
            for (k, v) in [
                ("Subject", &t.parts.subject),
                ("Text", &t.parts.text),
                ("Html", &t.parts.html),
            ] {
                if let Some(v) = v {
                    content[k] = json!(v);
                }
            }
            Ok(json!({
                "TemplateName": t.name,
                "TemplateContent": content,
                "Tags": shapes::tags_out(&t.tags),
            }))
        }
        O::UpdateEmailTemplate => {
            let i: send_shapes::EmailTemplateIn = parse_json(body).map_err(domain)?;
            let c = i
                .template_content
                .ok_or_else(|| domain(Error::missing("TemplateContent")))?;
            app.templates
                .update(
                    s,
                    label(m, "TemplateName")?,
                    TemplateParts {
                        subject: c.subject,
                        text: c.text,
                        html: c.html,
                    },
                )
                .await
                .map_err(domain)?;
            Ok(json!({}))
        }
        O::DeleteEmailTemplate => {
            let name = label(m, "TemplateName")?;
            if !app.templates.delete(s, name).await.map_err(domain)? {
                return Err(domain(Error::new(
                    sesame_model::ErrorKind::TemplateDoesNotExist,
                    format!("Template {name} does not exist."),
                )));
            }
            Ok(json!({}))
        }
        O::ListEmailTemplates => {
            let size = match query_one(q, "PageSize") {
                None => 10,
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        domain(Error::invalid(format!(
                            "PageSize {v} is out of range: it must be from 1 to 100."
                        )))
                    })?,
            };
            let (list, token) = app
                .templates
                .list(s, query_one(q, "NextToken"), size)
                .await
                .map_err(domain)?;
            let mut out = json!({
                "TemplatesMetadata": list.iter().map(|t| json!({
                    "TemplateName": t.name,
                    "CreatedTimestamp": sesame_wire::epoch_seconds(t.created_at),
                })).collect::<Vec<_>>(),
            });
            if let Some(t) = token {
                out["NextToken"] = json!(t);
            }
            Ok(out)
        }
        O::CreateCustomVerificationEmailTemplate | O::UpdateCustomVerificationEmailTemplate => {
            let i: send_shapes::CvTemplateIn = parse_json(body).map_err(domain)?;
            // SESv2 requires every member on both.
            let need = |v: Option<String>, member: &str| {
                v.ok_or_else(|| domain(Error::missing(member))).map(Some)
            };
            let input = CvTemplateInput {
                from_email_address: need(i.from_email_address, "FromEmailAddress")?,
                subject: need(i.template_subject, "TemplateSubject")?,
                content: need(i.template_content, "TemplateContent")?,
                success_redirection_url: need(i.success_redirection_url, "SuccessRedirectionURL")?,
                failure_redirection_url: need(i.failure_redirection_url, "FailureRedirectionURL")?,
                tags: shapes::tags_in(i.tags).map_err(domain)?,
            };
            if m.op == O::CreateCustomVerificationEmailTemplate {
                let name = i
                    .template_name
                    .ok_or_else(|| domain(Error::missing("TemplateName")))?;
                app.custom_verification
                    .create(&app.identities, s, &name, input)
                    .await
            } else {
                app.custom_verification
                    .update(&app.identities, s, label(m, "TemplateName")?, input)
                    .await
            }
            .map_err(domain)?;
            Ok(json!({}))
        }
        O::GetCustomVerificationEmailTemplate => {
            let t = app
                .custom_verification
                .get(s, label(m, "TemplateName")?)
                .await
                .map_err(domain)?;
            Ok(send_shapes::cv_template_v2(&t, true))
        }
        O::DeleteCustomVerificationEmailTemplate => {
            let name = label(m, "TemplateName")?;
            if !app
                .custom_verification
                .delete(s, name)
                .await
                .map_err(domain)?
            {
                return Err(domain(sesame_model::custom_verification::does_not_exist(
                    name,
                )));
            }
            Ok(json!({}))
        }
        O::ListCustomVerificationEmailTemplates => {
            let size = match query_one(q, "PageSize") {
                None => 50,
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or_else(|| {
                        domain(Error::invalid(format!(
                            "PageSize {v} is out of range: it must be from 1 to 50."
                        )))
                    })?,
            };
            let (list, token) = app
                .custom_verification
                .list(s, query_one(q, "NextToken"), size)
                .await
                .map_err(domain)?;
            let mut out = json!({
                "CustomVerificationEmailTemplates": list
                    .iter()
                    .map(|t| send_shapes::cv_template_v2(t, false))
                    .collect::<Vec<_>>(),
            });
            if let Some(t) = token {
                out["NextToken"] = json!(t);
            }
            Ok(out)
        }
        O::SendCustomVerificationEmail => {
            let i: send_shapes::SendCustomVerificationIn = parse_json(body).map_err(domain)?;
            let address = i
                .email_address
                .ok_or_else(|| domain(Error::missing("EmailAddress")))?;
            let template = i
                .template_name
                .ok_or_else(|| domain(Error::missing("TemplateName")))?;
            let id = app
                .custom_verification
                .send(
                    &app.identities,
                    s,
                    &address,
                    &template,
                    i.configuration_set_name.as_deref(),
                )
                .await
                .map_err(domain)?;
            Ok(json!({ "MessageId": id }))
        }
        O::TestRenderEmailTemplate => {
            let i: send_shapes::TestRenderIn = parse_json(body).map_err(domain)?;
            let data = i
                .template_data
                .ok_or_else(|| domain(Error::missing("TemplateData")))?;
            let rendered = app
                .templates
                .test_render(s, label(m, "TemplateName")?, &data)
                .await
                .map_err(domain)?;
            Ok(json!({ "RenderedTemplate": rendered }))
        }
        O::GetAccount => {
            let q = app.accounts.quota(s).await.map_err(domain)?;
            Ok(send_shapes::get_account_out(&q.account, q.sent_last_24h))
        }
        O::PutAccountDetails => {
            let i: send_shapes::PutAccountDetailsIn = parse_json(body).map_err(domain)?;
            app.accounts
                .put_details(
                    s,
                    DetailsRequest {
                        mail_type: i.mail_type,
                        website_url: i.website_url,
                        contact_language: i.contact_language,
                        use_case_description: i.use_case_description,
                        additional_contact_email_addresses: i.additional_contact_email_addresses,
                        production_access_enabled: i.production_access_enabled,
                    },
                )
                .await
                .map_err(domain)?;
            Ok(json!({}))
        }
        O::PutAccountSendingAttributes => {
            let i: send_shapes::PutAccountSendingIn = parse_json(body).map_err(domain)?;
            app.accounts
                .set_sending_enabled(s, i.sending_enabled.unwrap_or(false))
                .await
                .map_err(domain)?;
            Ok(json!({}))
        }
        other => Err(WireError::not_implemented("SESv2", other.name())),
    }
}

fn b64(field: &str, data: Option<String>) -> Result<Vec<u8>, WireError> {
    let data = data.ok_or_else(|| domain(Error::missing(field)))?;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| domain(Error::invalid(format!("{field} is not valid base64."))))
}

fn headers_in(h: Option<Vec<send_shapes::HeaderIn>>) -> Result<Vec<(String, String)>, WireError> {
    h.unwrap_or_default()
        .into_iter()
        .map(|h| {
            let name = h.name.ok_or_else(|| domain(Error::missing("Name")))?;
            let value = h.value.ok_or_else(|| domain(Error::missing("Value")))?;
            if name.is_empty()
                || name.len() > 126
                || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            {
                return Err(domain(Error::invalid(format!(
                    "Invalid header name {name}."
                ))));
            }
            Ok((name, value))
        })
        .collect()
}

fn attachments_in(a: Option<Vec<send_shapes::AttachmentIn>>) -> Result<Vec<Attachment>, WireError> {
    a.unwrap_or_default()
        .into_iter()
        .map(|a| {
            let inline = a.content_disposition.as_deref() == Some("INLINE");
            Ok(Attachment {
                data: b64("RawContent", a.raw_content)?,
                file_name: a
                    .file_name
                    .ok_or_else(|| domain(Error::missing("FileName")))?,
                content_type: a
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                inline_content_id: if inline { a.content_id } else { None },
            })
        })
        .collect()
}

/// v2 SendEmail's input as a send request.
fn outgoing(i: send_shapes::SendEmailIn) -> Result<Outgoing, WireError> {
    if i.endpoint_id.is_some() {
        return Err(domain(Error::new(
            sesame_model::ErrorKind::NotImplemented,
            "Sesame does not implement multi-region endpoints (EndpointId) yet.",
        )));
    }
    if i.tenant_name.is_some() || i.list_management_options.is_some() {
        return Err(domain(Error::new(
            sesame_model::ErrorKind::NotImplemented,
            "Sesame does not implement tenants or list management options yet.",
        )));
    }
    let content = i.content.ok_or_else(|| domain(Error::missing("Content")))?;
    let content = match (content.simple, content.raw, content.template) {
        (Some(simple), None, None) => {
            let subject = simple
                .subject
                .and_then(|s| s.data)
                .ok_or_else(|| domain(Error::missing("Subject")))?;
            let body = simple.body.ok_or_else(|| domain(Error::missing("Body")))?;
            Content::Simple {
                subject,
                text: body.text.and_then(|t| t.data),
                html: body.html.and_then(|h| h.data),
                headers: headers_in(simple.headers)?,
                attachments: attachments_in(simple.attachments)?,
            }
        }
        (None, Some(raw), None) => Content::Raw(b64("Data", raw.data)?),
        (None, None, Some(t)) => Content::Template {
            template: template_ref(t.template_name, t.template_arn, t.template_content)?,
            data: t
                .template_data
                .ok_or_else(|| domain(Error::missing("TemplateData")))?,
            headers: headers_in(t.headers)?,
            attachments: attachments_in(t.attachments)?,
        },
        _ => {
            return Err(domain(Error::invalid(
                "Content must have exactly one of Simple, Raw or Template.",
            )));
        }
    };
    let raw = matches!(content, Content::Raw(_));
    let mut out = Outgoing::new("SendEmail", content);
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
            return Err(domain(Error::missing("FromEmailAddress")));
        }
        (out.to, out.cc, out.bcc) = (to, cc, bcc);
    }
    out.reply_to = i.reply_to_addresses.unwrap_or_default();
    out.return_path = i.feedback_forwarding_email_address;
    out.tags = send_shapes::message_tags(i.email_tags);
    out.configuration_set = i.configuration_set_name;
    Ok(out)
}

fn identity_filter(
    filter: std::collections::HashMap<String, String>,
) -> Result<IdentityQuery, WireError> {
    let mut q = IdentityQuery::default();
    for (k, v) in filter {
        match k.as_str() {
            "IDENTITY_TYPE" => {
                q.kind = Some(match v.as_str() {
                    "EMAIL_ADDRESS" => IdentityKind::EmailAddress,
                    "DOMAIN" => IdentityKind::Domain,
                    "MANAGED_DOMAIN" => {
                        return Err(domain(Error::new(
                            sesame_model::ErrorKind::NotImplemented,
                            "Sesame does not implement managed domains yet.",
                        )));
                    }
                    _ => {
                        return Err(domain(Error::invalid(format!(
                            "Invalid IDENTITY_TYPE filter value {v}."
                        ))));
                    }
                })
            }
            "VERIFICATION_STATUS" => {
                q.status = Some(VerificationStatus::from_v2(&v).ok_or_else(|| {
                    domain(Error::invalid(format!(
                        "Invalid VERIFICATION_STATUS filter value {v}."
                    )))
                })?)
            }
            "IDENTITY_NAME_CONTAINS" => q.name_contains = Some(v),
            other => {
                return Err(domain(Error::invalid(format!(
                    "Invalid filter key {other}: it must be IDENTITY_TYPE, VERIFICATION_STATUS or IDENTITY_NAME_CONTAINS."
                ))));
            }
        }
    }
    Ok(q)
}

/// A template by name, by ARN, or inline.
fn template_ref(
    name: Option<String>,
    arn: Option<String>,
    inline: Option<send_shapes::TemplateContentIn>,
) -> Result<TemplateRef, WireError> {
    match (name, arn, inline) {
        (Some(n), _, None) => Ok(TemplateRef::Named(n)),
        (None, Some(a), None) => send_shapes::template_name_from_arn(&a)
            .map(|n| TemplateRef::Named(n.to_owned()))
            .ok_or_else(|| domain(Error::invalid(format!("Invalid template ARN: {a}")))),
        (None, None, Some(c)) => Ok(TemplateRef::Inline(TemplateParts {
            subject: c.subject,
            text: c.text,
            html: c.html,
        })),
        (None, None, None) => Err(domain(Error::missing("TemplateName"))),
        _ => Err(domain(Error::invalid(
            "Give either TemplateName/TemplateArn or TemplateContent, not both.",
        ))),
    }
}

/// v2 SendBulkEmail's input as a bulk send.
fn bulk(i: send_shapes::SendBulkEmailIn) -> Result<(Outgoing, Vec<BulkDestination>), WireError> {
    if i.endpoint_id.is_some() || i.tenant_name.is_some() {
        return Err(domain(Error::new(
            sesame_model::ErrorKind::NotImplemented,
            "Sesame does not implement multi-region endpoints or tenants yet.",
        )));
    }
    let t = i
        .default_content
        .and_then(|c| c.template)
        .ok_or_else(|| domain(Error::missing("DefaultContent")))?;
    let mut common = Outgoing::new(
        "SendBulkEmail",
        Content::Template {
            template: template_ref(t.template_name, t.template_arn, t.template_content)?,
            data: t.template_data.unwrap_or_else(|| "{}".to_owned()),
            headers: headers_in(t.headers)?,
            attachments: attachments_in(t.attachments)?,
        },
    );
    common.source = Some(
        i.from_email_address
            .ok_or_else(|| domain(Error::missing("FromEmailAddress")))?,
    );
    common.reply_to = i.reply_to_addresses.unwrap_or_default();
    common.return_path = i.feedback_forwarding_email_address;
    common.tags = send_shapes::message_tags(i.default_email_tags);
    common.configuration_set = i.configuration_set_name;
    let entries = i
        .bulk_email_entries
        .ok_or_else(|| domain(Error::missing("BulkEmailEntries")))?;
    let destinations = entries
        .into_iter()
        .map(|e| {
            if e.replacement_headers.is_some() {
                return Err(domain(Error::new(
                    sesame_model::ErrorKind::NotImplemented,
                    "Sesame does not implement ReplacementHeaders in SendBulkEmail yet.",
                )));
            }
            let d = e.destination.unwrap_or_default();
            Ok(BulkDestination {
                to: d.to_addresses.unwrap_or_default(),
                cc: d.cc_addresses.unwrap_or_default(),
                bcc: d.bcc_addresses.unwrap_or_default(),
                replacement_data: e
                    .replacement_email_content
                    .and_then(|c| c.replacement_template)
                    .and_then(|t| t.replacement_template_data),
                replacement_tags: send_shapes::message_tags(e.replacement_tags),
            })
        })
        .collect::<Result<Vec<_>, WireError>>()?;
    Ok((common, destinations))
}
