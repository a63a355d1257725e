//! Shapes of the sending and account operations: v2 JSON inputs, and the
//! v1 Query parameters that are lists of structures (message tags).

use crate::query::QueryParams;
use serde::Deserialize;
use serde_json::{Value, json};
use sesame_model::{Account, ErrorKind};
use std::collections::BTreeMap;

/// `Tags.member.N.Name` / `.Value` pairs in index order. A pair with a
/// missing half keeps it empty, for SES's "must be specified" messages.
pub fn v1_tags(p: &QueryParams, key: &str) -> Vec<(String, String)> {
    let prefix = format!("{key}.member.");
    let mut by_index: BTreeMap<u32, (String, String)> = BTreeMap::new();
    for (k, v) in p.under(&prefix) {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        let e = by_index.entry(n).or_default();
        match field {
            "Name" => e.0 = v.to_owned(),
            "Value" => e.1 = v.to_owned(),
            _ => {}
        }
    }
    by_index.into_values().collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationIn {
    pub to_addresses: Option<Vec<String>>,
    pub cc_addresses: Option<Vec<String>>,
    pub bcc_addresses: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContentIn {
    pub data: Option<String>,
    pub charset: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BodyIn {
    pub text: Option<ContentIn>,
    pub html: Option<ContentIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HeaderIn {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachmentIn {
    pub raw_content: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub content_id: Option<String>,
    pub content_disposition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SimpleIn {
    pub subject: Option<ContentIn>,
    pub body: Option<BodyIn>,
    pub headers: Option<Vec<HeaderIn>>,
    pub attachments: Option<Vec<AttachmentIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawIn {
    pub data: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateContentIn {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateIn {
    pub template_name: Option<String>,
    pub template_arn: Option<String>,
    pub template_content: Option<TemplateContentIn>,
    pub template_data: Option<String>,
    pub headers: Option<Vec<HeaderIn>>,
    pub attachments: Option<Vec<AttachmentIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmailContentIn {
    pub simple: Option<SimpleIn>,
    pub raw: Option<RawIn>,
    pub template: Option<TemplateIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageTagIn {
    pub name: Option<String>,
    pub value: Option<String>,
}

pub fn message_tags(tags: Option<Vec<MessageTagIn>>) -> Vec<(String, String)> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| (t.name.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendEmailIn {
    pub from_email_address: Option<String>,
    pub destination: Option<DestinationIn>,
    pub reply_to_addresses: Option<Vec<String>>,
    pub feedback_forwarding_email_address: Option<String>,
    pub content: Option<EmailContentIn>,
    pub email_tags: Option<Vec<MessageTagIn>>,
    pub configuration_set_name: Option<String>,
    pub endpoint_id: Option<String>,
    pub tenant_name: Option<String>,
    pub list_management_options: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutAccountDetailsIn {
    pub mail_type: Option<String>,
    #[serde(rename = "WebsiteURL")]
    pub website_url: Option<String>,
    pub contact_language: Option<String>,
    pub use_case_description: Option<String>,
    pub additional_contact_email_addresses: Option<Vec<String>>,
    pub production_access_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutAccountSendingIn {
    pub sending_enabled: Option<bool>,
}

/// v1 SendBulkTemplatedEmail's per-destination status for an error.
pub fn bulk_status_v1(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::MessageRejected => "MessageRejected",
        ErrorKind::DailyQuotaExceeded => "AccountDailyQuotaExceeded",
        ErrorKind::RateExceeded => "AccountThrottled",
        ErrorKind::SendingPaused => "AccountSendingPaused",
        ErrorKind::MailFromDomainNotVerified => "MailFromDomainNotVerified",
        ErrorKind::ConfigurationSetDoesNotExist => "ConfigurationSetDoesNotExist",
        ErrorKind::TemplateDoesNotExist => "TemplateDoesNotExist",
        ErrorKind::InvalidParameter
        | ErrorKind::Validation
        | ErrorKind::InvalidRenderingParameter => "InvalidParameterValue",
        ErrorKind::ConcurrentModification | ErrorKind::Internal => "TransientFailure",
        _ => "Failed",
    }
}

/// v2 SendBulkEmail's per-entry status for an error.
pub fn bulk_status_v2(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::MessageRejected => "MESSAGE_REJECTED",
        ErrorKind::DailyQuotaExceeded => "ACCOUNT_DAILY_QUOTA_EXCEEDED",
        ErrorKind::RateExceeded => "ACCOUNT_THROTTLED",
        ErrorKind::SendingPaused => "ACCOUNT_SENDING_PAUSED",
        ErrorKind::MailFromDomainNotVerified => "MAIL_FROM_DOMAIN_NOT_VERIFIED",
        ErrorKind::ConfigurationSetDoesNotExist => "CONFIGURATION_SET_NOT_FOUND",
        ErrorKind::TemplateDoesNotExist => "TEMPLATE_NOT_FOUND",
        ErrorKind::InvalidParameter
        | ErrorKind::Validation
        | ErrorKind::InvalidRenderingParameter => "INVALID_PARAMETER",
        ErrorKind::ConcurrentModification | ErrorKind::Internal => "TRANSIENT_FAILURE",
        _ => "FAILED",
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmailTemplateIn {
    pub template_name: Option<String>,
    pub template_content: Option<TemplateContentIn>,
    pub tags: Option<Vec<crate::identities::TagIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TestRenderIn {
    pub template_data: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplacementTemplateIn {
    pub replacement_template_data: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplacementContentIn {
    pub replacement_template: Option<ReplacementTemplateIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BulkEntryIn {
    pub destination: Option<DestinationIn>,
    pub replacement_tags: Option<Vec<MessageTagIn>>,
    pub replacement_email_content: Option<ReplacementContentIn>,
    pub replacement_headers: Option<Vec<HeaderIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BulkContentIn {
    pub template: Option<TemplateIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendBulkEmailIn {
    pub from_email_address: Option<String>,
    pub reply_to_addresses: Option<Vec<String>>,
    pub feedback_forwarding_email_address: Option<String>,
    pub default_email_tags: Option<Vec<MessageTagIn>>,
    pub default_content: Option<BulkContentIn>,
    pub bulk_email_entries: Option<Vec<BulkEntryIn>>,
    pub configuration_set_name: Option<String>,
    pub endpoint_id: Option<String>,
    pub tenant_name: Option<String>,
}

/// The template name in an ARN of this scope (`…:template/NAME`).
pub fn template_name_from_arn(arn: &str) -> Option<&str> {
    arn.split_once(":template/")
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty())
}

/// A double as SES writes one in XML: always with a decimal point.
pub fn xml_double(v: f64) -> String {
    format!("{v:?}")
}

/// v2 GetAccount.
pub fn get_account_out(a: &Account, sent_last_24h: u64) -> Value {
    let mut v = json!({
        "DedicatedIpAutoWarmupEnabled": false,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": a.production_access,
        "SendQuota": {
            "Max24HourSend": a.max_24h_send,
            "MaxSendRate": a.max_send_rate,
            "SentLast24Hours": sent_last_24h as f64,
        },
        "SendingEnabled": a.sending_enabled,
        "SuppressionAttributes": {"SuppressedReasons": []},
    });
    if let Some(d) = &a.details {
        let mut details = json!({
            "MailType": d.mail_type,
            "WebsiteURL": d.website_url,
        });
        if let Some(l) = &d.contact_language {
            details["ContactLanguage"] = json!(l);
        }
        if let Some(u) = &d.use_case_description {
            details["UseCaseDescription"] = json!(u);
        }
        if !d.additional_contact_email_addresses.is_empty() {
            details["AdditionalContactEmailAddresses"] =
                json!(d.additional_contact_email_addresses);
        }
        if let Some(r) = &d.review {
            details["ReviewDetails"] = json!({"Status": r.status.v2(), "CaseId": r.case_id});
        }
        v["Details"] = details;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_tag_pairs() {
        let p = QueryParams::parse(b"Tags.member.2.Name=b&Tags.member.1.Name=a&Tags.member.1.Value=1&Tags.member.2.Value=2&Tags.member.3.Name=c").unwrap();
        assert_eq!(
            v1_tags(&p, "Tags"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".into(), "2".into()),
                ("c".into(), "".into())
            ]
        );
    }

    #[test]
    fn doubles_and_account() {
        assert_eq!(xml_double(200.0), "200.0");
        assert_eq!(xml_double(-1.0), "-1.0");
        let v = get_account_out(&Account::new(false), 3);
        assert_eq!(v["ProductionAccessEnabled"], false);
        assert_eq!(v["SendQuota"]["Max24HourSend"], 200.0);
        assert_eq!(v["SendQuota"]["SentLast24Hours"], 3.0);
        assert!(v.get("Details").is_none());
    }
}

/// v2 Create/UpdateCustomVerificationEmailTemplate bodies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CvTemplateIn {
    pub template_name: Option<String>,
    pub from_email_address: Option<String>,
    pub template_subject: Option<String>,
    pub template_content: Option<String>,
    #[serde(rename = "SuccessRedirectionURL")]
    pub success_redirection_url: Option<String>,
    #[serde(rename = "FailureRedirectionURL")]
    pub failure_redirection_url: Option<String>,
    pub tags: Option<Vec<crate::identities::TagIn>>,
}

/// v2 SendCustomVerificationEmail body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendCustomVerificationIn {
    pub email_address: Option<String>,
    pub template_name: Option<String>,
    pub configuration_set_name: Option<String>,
}

/// A custom verification template in v2 JSON; `full` adds the content
/// and tags (Get), without them it is list metadata.
pub fn cv_template_v2(t: &sesame_model::CustomVerificationTemplate, full: bool) -> Value {
    let mut v = json!({
        "TemplateName": t.name,
        "FromEmailAddress": t.from_email_address,
        "TemplateSubject": t.subject,
        "SuccessRedirectionURL": t.success_redirection_url,
        "FailureRedirectionURL": t.failure_redirection_url,
    });
    if full {
        v["TemplateContent"] = json!(t.content);
        v["Tags"] = crate::identities::tags_out(&t.tags);
    }
    v
}

/// A custom verification template's members in v1 XML; `full` adds the
/// content (Get), without it they are a list member's.
pub fn cv_template_v1(
    x: &mut crate::xml::XmlOut,
    t: &sesame_model::CustomVerificationTemplate,
    full: bool,
) {
    x.text("TemplateName", &t.name);
    x.text("FromEmailAddress", &t.from_email_address);
    x.text("TemplateSubject", &t.subject);
    if full {
        x.text("TemplateContent", &t.content);
    }
    x.text("SuccessRedirectionURL", &t.success_redirection_url);
    x.text("FailureRedirectionURL", &t.failure_redirection_url);
}
