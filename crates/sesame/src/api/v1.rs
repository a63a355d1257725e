//! v1 (Query) dispatch: `Action` to use case, parameters from the form
//! body (and URL query), results as XML.

use super::{App, Caller, Failure};
use axum::http::request::Parts;
use base64::Engine;
use sesame_core::custom_verification::CvTemplateInput;
use sesame_core::sending::{BulkDestination, Content, Outgoing, TemplateRef};
use sesame_model::{Error, IdentityKind, TemplateParts};
use sesame_store::IdentityQuery;
use sesame_wire::identities as shapes;
use sesame_wire::query::QueryParams;
use sesame_wire::sending::{bulk_status_v1, v1_tags, xml_double};
use sesame_wire::xml::{self, XmlOut};
use sesame_wire::{Protocol, V1Action, WireError, WireResponse};

const API_VERSION: &str = "2010-12-01";

pub async fn dispatch(
    app: &App,
    caller: &Caller,
    parts: &Parts,
    body: &[u8],
    request_id: &str,
) -> Result<(Option<&'static str>, WireResponse), Failure> {
    let mut params = QueryParams::parse(body).map_err(|e| (None, domain(e)))?;
    params
        .merge_url_query(parts.uri.query().unwrap_or(""))
        .map_err(|e| (None, domain(e)))?;
    let Some(name) = params.action() else {
        return Err((None, WireError::new("MissingAction", 400, "Missing Action")));
    };
    let Some(action) = V1Action::from_name(name) else {
        return Err((
            None,
            WireError::new(
                "InvalidAction",
                400,
                format!("Could not find operation {name} for version {API_VERSION}"),
            ),
        ));
    };
    let op = Some(action.name());
    if sesame_wire::counts_against_api_rate(action.name()) {
        app.api_rate
            .admit(&caller.scope)
            .map_err(|e| (op, domain(e)))?;
    }
    let body = run(app, caller, action, &params)
        .await
        .map_err(|e| (op, e))?;
    Ok((
        op,
        WireResponse {
            status: 200,
            content_type: "text/xml",
            headers: vec![("x-amzn-requestid", request_id.to_owned())],
            body: xml::response(action, request_id, |x| x.raw(&body)),
        },
    ))
}

fn domain(e: Error) -> WireError {
    WireError::from_domain(Protocol::Query, &e)
}

/// Runs one action; returns the members of its result as XML.
async fn run(
    app: &App,
    caller: &Caller,
    action: V1Action,
    p: &QueryParams,
) -> Result<Vec<u8>, WireError> {
    use V1Action as A;
    let s = &caller.scope;
    let ids = &app.identities;
    let mut x = XmlOut::new();
    match action {
        A::VerifyEmailIdentity | A::VerifyEmailAddress => {
            ids.verify_email(s, p.required("EmailAddress").map_err(domain)?)
                .await
                .map_err(domain)?;
        }
        A::VerifyDomainIdentity => {
            let token = ids
                .verify_domain(s, p.required("Domain").map_err(domain)?)
                .await
                .map_err(domain)?;
            x.text("VerificationToken", &token);
        }
        A::VerifyDomainDkim => {
            let tokens = ids
                .verify_domain_dkim(s, p.required("Domain").map_err(domain)?)
                .await
                .map_err(domain)?;
            x.list("DkimTokens", tokens.iter().map(String::as_str));
        }
        A::ListIdentities => {
            let kind = match p.get("IdentityType") {
                None | Some("") => None,
                Some("EmailAddress") => Some(IdentityKind::EmailAddress),
                Some("Domain") => Some(IdentityKind::Domain),
                Some(other) => {
                    return Err(domain(Error::invalid(format!(
                        "Invalid IdentityType {other}: it must be EmailAddress or Domain."
                    ))));
                }
            };
            let max = p.int("MaxItems").map_err(domain)?.unwrap_or(1000);
            if !(1..=1000).contains(&max) {
                return Err(domain(Error::invalid(format!(
                    "MaxItems {max} is out of range: it must be from 1 to 1000."
                ))));
            }
            let q = IdentityQuery {
                kind,
                ..Default::default()
            };
            let page = ids
                .list(s, &q, p.get("NextToken"), max as u32)
                .await
                .map_err(domain)?;
            x.list(
                "Identities",
                page.identities.iter().map(|i| i.name.as_str()),
            );
            if let Some(t) = &page.next_token {
                x.text("NextToken", t);
            }
        }
        A::ListVerifiedEmailAddresses => {
            let addrs = ids.verified_addresses(s).await.map_err(domain)?;
            x.list("VerifiedEmailAddresses", addrs.iter().map(String::as_str));
        }
        A::GetIdentityVerificationAttributes => {
            let names = p.required_list("Identities").map_err(domain)?;
            let found = ids.get_many(s, &names).await.map_err(domain)?;
            shapes::v1_verification_attributes(&mut x, &found);
        }
        A::GetIdentityDkimAttributes => {
            let names = p.required_list("Identities").map_err(domain)?;
            let found = ids.get_many(s, &names).await.map_err(domain)?;
            shapes::v1_dkim_attributes(&mut x, &found);
        }
        A::SetIdentityMailFromDomain => {
            let identity = p.required("Identity").map_err(domain)?;
            let reject =
                shapes::v1_reject_on_mx_failure(p.get("BehaviorOnMXFailure")).map_err(domain)?;
            ids.set_mail_from(s, identity, p.get("MailFromDomain"), reject)
                .await
                .map_err(domain)?;
        }
        A::GetIdentityMailFromDomainAttributes => {
            let names = p.required_list("Identities").map_err(domain)?;
            let found = ids.get_many(s, &names).await.map_err(domain)?;
            shapes::v1_mail_from_attributes(&mut x, &found);
        }
        A::SetIdentityDkimEnabled => {
            let identity = p.required("Identity").map_err(domain)?;
            let enabled = p
                .bool("DkimEnabled")
                .map_err(domain)?
                .ok_or_else(|| domain(Error::missing("DkimEnabled")))?;
            ids.set_dkim_enabled(s, identity, enabled)
                .await
                .map_err(domain)?;
        }
        A::DeleteIdentity => {
            ids.delete_v1(s, p.required("Identity").map_err(domain)?)
                .await
                .map_err(domain)?;
        }
        A::DeleteVerifiedEmailAddress => {
            ids.delete_v1(s, p.required("EmailAddress").map_err(domain)?)
                .await
                .map_err(domain)?;
        }
        A::SendEmail => {
            let mut out = Outgoing::new(
                "SendEmail",
                Content::Simple {
                    subject: p
                        .required("Message.Subject.Data")
                        .map_err(domain)?
                        .to_owned(),
                    text: p.get("Message.Body.Text.Data").map(str::to_owned),
                    html: p.get("Message.Body.Html.Data").map(str::to_owned),
                    headers: vec![],
                    attachments: vec![],
                },
            );
            out.source = Some(p.required("Source").map_err(domain)?.to_owned());
            destination(&mut out, p, "Destination");
            common(&mut out, p);
            let id = app.sending.send(s, out).await.map_err(domain)?;
            x.text("MessageId", &id);
        }
        A::SendRawEmail => {
            let data = p.required("RawMessage.Data").map_err(domain)?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| domain(Error::invalid("RawMessage.Data is not valid base64.")))?;
            let mut out = Outgoing::new("SendRawEmail", Content::Raw(raw));
            out.source = p.get("Source").map(str::to_owned);
            out.destinations = p.list("Destinations").unwrap_or_default();
            common(&mut out, p);
            let id = app.sending.send(s, out).await.map_err(domain)?;
            x.text("MessageId", &id);
        }
        A::GetSendQuota => {
            let q = app.accounts.quota(s).await.map_err(domain)?;
            x.text("Max24HourSend", &xml_double(q.account.max_24h_send));
            x.text("MaxSendRate", &xml_double(q.account.max_send_rate));
            x.text("SentLast24Hours", &xml_double(q.sent_last_24h as f64));
        }
        A::GetSendStatistics => {
            let points = app.accounts.statistics(s).await.map_err(domain)?;
            x.open("SendDataPoints");
            for p in points {
                x.open("member");
                x.text("Timestamp", &sesame_wire::iso8601(p.start));
                x.text("DeliveryAttempts", &p.delivery_attempts.to_string());
                x.text("Bounces", &p.bounces.to_string());
                x.text("Complaints", &p.complaints.to_string());
                x.text("Rejects", &p.rejects.to_string());
                x.close("member");
            }
            x.close("SendDataPoints");
        }
        A::GetAccountSendingEnabled => {
            let a = app.accounts.get(s).await.map_err(domain)?;
            x.bool("Enabled", a.sending_enabled);
        }
        A::UpdateAccountSendingEnabled => {
            let enabled = p.bool("Enabled").map_err(domain)?.unwrap_or(false);
            app.accounts
                .set_sending_enabled(s, enabled)
                .await
                .map_err(domain)?;
        }
        A::CreateTemplate | A::UpdateTemplate => {
            let name = p.required("Template.TemplateName").map_err(domain)?;
            let parts = TemplateParts {
                subject: p.get("Template.SubjectPart").map(str::to_owned),
                text: p.get("Template.TextPart").map(str::to_owned),
                html: p.get("Template.HtmlPart").map(str::to_owned),
            };
            if action == A::CreateTemplate {
                app.templates.create(s, name, parts, vec![]).await
            } else {
                app.templates.update(s, name, parts).await
            }
            .map_err(domain)?;
        }
        A::GetTemplate => {
            let t = app
                .templates
                .get(s, p.required("TemplateName").map_err(domain)?)
                .await
                .map_err(domain)?;
            x.open("Template");
            x.text("TemplateName", &t.name);
            for (k, v) in [
                ("SubjectPart", &t.parts.subject),
                ("TextPart", &t.parts.text),
                ("HtmlPart", &t.parts.html),
            ] {
                if let Some(v) = v {
                    x.text(k, v);
                }
            }
            x.close("Template");
        }
        A::DeleteTemplate => {
            app.templates
                .delete(s, p.required("TemplateName").map_err(domain)?)
                .await
                .map_err(domain)?;
        }
        A::ListTemplates => {
            let max = p
                .int("MaxItems")
                .map_err(domain)?
                .unwrap_or(10)
                .clamp(1, 100) as u32;
            let (list, token) = app
                .templates
                .list(s, p.get("NextToken"), max)
                .await
                .map_err(domain)?;
            x.open("TemplatesMetadata");
            for t in &list {
                x.open("member");
                x.text("Name", &t.name);
                x.text("CreatedTimestamp", &sesame_wire::iso8601(t.created_at));
                x.close("member");
            }
            x.close("TemplatesMetadata");
            if let Some(t) = token {
                x.text("NextToken", &t);
            }
        }
        A::CreateCustomVerificationEmailTemplate | A::UpdateCustomVerificationEmailTemplate => {
            let name = p.required("TemplateName").map_err(domain)?;
            let input = CvTemplateInput {
                from_email_address: p.get("FromEmailAddress").map(str::to_owned),
                subject: p.get("TemplateSubject").map(str::to_owned),
                content: p.get("TemplateContent").map(str::to_owned),
                success_redirection_url: p.get("SuccessRedirectionURL").map(str::to_owned),
                failure_redirection_url: p.get("FailureRedirectionURL").map(str::to_owned),
                tags: vec![],
            };
            if action == A::CreateCustomVerificationEmailTemplate {
                app.custom_verification
                    .create(&app.identities, s, name, input)
                    .await
            } else {
                app.custom_verification
                    .update(&app.identities, s, name, input)
                    .await
            }
            .map_err(domain)?;
        }
        A::GetCustomVerificationEmailTemplate => {
            let t = app
                .custom_verification
                .get(s, p.required("TemplateName").map_err(domain)?)
                .await
                .map_err(domain)?;
            sesame_wire::sending::cv_template_v1(&mut x, &t, true);
        }
        A::DeleteCustomVerificationEmailTemplate => {
            // v1 succeeds whether or not the template existed.
            app.custom_verification
                .delete(s, p.required("TemplateName").map_err(domain)?)
                .await
                .map_err(domain)?;
        }
        A::ListCustomVerificationEmailTemplates => {
            let max = match p.int("MaxResults").map_err(domain)? {
                None => 50,
                Some(n) if (1..=50).contains(&n) => n as u32,
                Some(n) => {
                    return Err(domain(Error::constraint(
                        "maxResults",
                        &n.to_string(),
                        "Member must have value between 1 and 50",
                    )));
                }
            };
            let (list, token) = app
                .custom_verification
                .list(s, p.get("NextToken"), max)
                .await
                .map_err(domain)?;
            x.open("CustomVerificationEmailTemplates");
            for t in &list {
                x.open("member");
                sesame_wire::sending::cv_template_v1(&mut x, t, false);
                x.close("member");
            }
            x.close("CustomVerificationEmailTemplates");
            if let Some(t) = token {
                x.text("NextToken", &t);
            }
        }
        A::SendCustomVerificationEmail => {
            let id = app
                .custom_verification
                .send(
                    &app.identities,
                    s,
                    p.required("EmailAddress").map_err(domain)?,
                    p.required("TemplateName").map_err(domain)?,
                    p.get("ConfigurationSetName"),
                )
                .await
                .map_err(domain)?;
            x.text("MessageId", &id);
        }
        A::TestRenderTemplate => {
            let rendered = app
                .templates
                .test_render(
                    s,
                    p.required("TemplateName").map_err(domain)?,
                    p.required("TemplateData").map_err(domain)?,
                )
                .await
                .map_err(domain)?;
            x.text("RenderedTemplate", &rendered);
        }
        A::SendTemplatedEmail => {
            let mut out = Outgoing::new(
                "SendTemplatedEmail",
                Content::Template {
                    template: template_ref(p, "Template", "TemplateArn")?,
                    data: p.required("TemplateData").map_err(domain)?.to_owned(),
                    headers: vec![],
                    attachments: vec![],
                },
            );
            out.source = Some(p.required("Source").map_err(domain)?.to_owned());
            destination(&mut out, p, "Destination");
            common(&mut out, p);
            let id = app.sending.send(s, out).await.map_err(domain)?;
            x.text("MessageId", &id);
        }
        A::SendBulkTemplatedEmail => {
            let mut out = Outgoing::new(
                "SendBulkTemplatedEmail",
                Content::Template {
                    template: template_ref(p, "Template", "TemplateArn")?,
                    data: p
                        .required("DefaultTemplateData")
                        .map_err(domain)?
                        .to_owned(),
                    headers: vec![],
                    attachments: vec![],
                },
            );
            out.source = Some(p.required("Source").map_err(domain)?.to_owned());
            common(&mut out, p);
            out.tags = v1_tags(p, "DefaultTags");
            let destinations = p
                .indexes("Destinations")
                .into_iter()
                .map(|n| {
                    let base = format!("Destinations.member.{n}");
                    BulkDestination {
                        to: p
                            .list(&format!("{base}.Destination.ToAddresses"))
                            .unwrap_or_default(),
                        cc: p
                            .list(&format!("{base}.Destination.CcAddresses"))
                            .unwrap_or_default(),
                        bcc: p
                            .list(&format!("{base}.Destination.BccAddresses"))
                            .unwrap_or_default(),
                        replacement_data: p
                            .get(&format!("{base}.ReplacementTemplateData"))
                            .map(str::to_owned),
                        replacement_tags: v1_tags(p, &format!("{base}.ReplacementTags")),
                    }
                })
                .collect();
            let results = app
                .sending
                .send_bulk(s, out, destinations)
                .await
                .map_err(domain)?;
            x.open("Status");
            for r in results {
                x.open("member");
                match r {
                    Ok(id) => {
                        x.text("Status", "Success");
                        x.text("MessageId", &id);
                    }
                    Err(e) => {
                        x.text("Status", bulk_status_v1(e.kind));
                        x.text("Error", &e.message);
                    }
                }
                x.close("member");
            }
            x.close("Status");
        }
        other => return Err(WireError::not_implemented("SES v1", other.name())),
    }
    Ok(x.finish())
}

/// `{key}.ToAddresses` / `CcAddresses` / `BccAddresses`.
fn destination(out: &mut Outgoing, p: &QueryParams, key: &str) {
    out.to = p.list(&format!("{key}.ToAddresses")).unwrap_or_default();
    out.cc = p.list(&format!("{key}.CcAddresses")).unwrap_or_default();
    out.bcc = p.list(&format!("{key}.BccAddresses")).unwrap_or_default();
}

/// Members every v1 send operation shares.
fn common(out: &mut Outgoing, p: &QueryParams) {
    out.reply_to = p.list("ReplyToAddresses").unwrap_or_default();
    out.return_path = p.get("ReturnPath").map(str::to_owned);
    out.tags = v1_tags(p, "Tags");
    out.configuration_set = p.get("ConfigurationSetName").map(str::to_owned);
}

/// A template named by name or ARN.
fn template_ref(p: &QueryParams, name_key: &str, arn_key: &str) -> Result<TemplateRef, WireError> {
    if let Some(n) = p.get(name_key) {
        return Ok(TemplateRef::Named(n.to_owned()));
    }
    match p.get(arn_key) {
        Some(arn) => sesame_wire::sending::template_name_from_arn(arn)
            .map(|n| TemplateRef::Named(n.to_owned()))
            .ok_or_else(|| domain(Error::invalid(format!("Invalid template ARN: {arn}")))),
        None => Err(domain(Error::missing(name_key))),
    }
}
