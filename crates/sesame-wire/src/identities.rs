//! Shapes of the identity operations: v1 XML results and v2 JSON inputs and
//! outputs, built from and into model types.

use crate::epoch_seconds;
use crate::xml::XmlOut;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sesame_model::{Error, ErrorKind, Identity, IdentityKind, Tag};

// ---------------------------------------------------------------- v1 (XML)

/// `VerificationAttributes` map: status, and the token for domains.
pub fn v1_verification_attributes(x: &mut XmlOut, identities: &[Identity]) {
    x.open("VerificationAttributes");
    for i in identities {
        x.entry(i.name.as_str(), |x| {
            x.text("VerificationStatus", i.verification_status.v1());
            if let Some(t) = &i.verification_token {
                x.text("VerificationToken", t);
            }
        });
    }
    x.close("VerificationAttributes");
}

/// `DkimAttributes` map: enabled, status, and Easy DKIM tokens if any.
pub fn v1_dkim_attributes(x: &mut XmlOut, identities: &[Identity]) {
    x.open("DkimAttributes");
    for i in identities {
        x.entry(i.name.as_str(), |x| {
            x.bool("DkimEnabled", i.dkim.signing_enabled);
            x.text("DkimVerificationStatus", i.dkim.status.v1());
            if !i.dkim.tokens.is_empty() {
                x.list("DkimTokens", i.dkim.tokens.iter().map(String::as_str));
            }
        });
    }
    x.close("DkimAttributes");
}

/// v1 GetIdentityMailFromDomainAttributes.
pub fn v1_mail_from_attributes(x: &mut XmlOut, identities: &[Identity]) {
    x.open("MailFromDomainAttributes");
    for i in identities {
        x.entry(i.name.as_str(), |x| {
            if let (Some(d), Some(st)) = (&i.mail_from.domain, i.mail_from.status) {
                x.text("MailFromDomain", d);
                x.text("MailFromDomainStatus", st.v1());
            }
            x.text(
                "BehaviorOnMXFailure",
                if i.mail_from.reject_on_mx_failure {
                    "RejectMessage"
                } else {
                    "UseDefaultValue"
                },
            );
        });
    }
    x.close("MailFromDomainAttributes");
}

/// v1 `BehaviorOnMXFailure`: `RejectMessage` is true; absent is the default.
pub fn v1_reject_on_mx_failure(v: Option<&str>) -> Result<bool, Error> {
    match v {
        None | Some("UseDefaultValue") => Ok(false),
        Some("RejectMessage") => Ok(true),
        Some(other) => Err(Error::constraint(
            "BehaviorOnMXFailure",
            other,
            "Member must satisfy enum value set: [RejectMessage, UseDefaultValue]",
        )),
    }
}

// ---------------------------------------------------------------- v2 (JSON)

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMailFromAttributesIn {
    pub mail_from_domain: Option<String>,
    pub behavior_on_mx_failure: Option<String>,
}

impl PutMailFromAttributesIn {
    pub fn reject_on_mx_failure(&self) -> Result<bool, Error> {
        match self.behavior_on_mx_failure.as_deref() {
            None | Some("USE_DEFAULT_VALUE") => Ok(false),
            Some("REJECT_MESSAGE") => Ok(true),
            Some(other) => Err(Error::constraint(
                "BehaviorOnMxFailure",
                other,
                "Member must satisfy enum value set: [REJECT_MESSAGE, USE_DEFAULT_VALUE]",
            )),
        }
    }
}

fn mail_from_attributes(i: &Identity) -> Value {
    let mut v = json!({
        "BehaviorOnMxFailure": if i.mail_from.reject_on_mx_failure { "REJECT_MESSAGE" } else { "USE_DEFAULT_VALUE" },
    });
    if let (Some(d), Some(st)) = (&i.mail_from.domain, i.mail_from.status) {
        v["MailFromDomain"] = json!(d);
        v["MailFromDomainStatus"] = json!(st.v2());
    }
    v
}

/// Parses a JSON request body; an empty body is `{}`. Malformed JSON and
/// wrongly typed members are `BadRequestException`s that say what is wrong.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Validation,
            format!("The request body is not valid: {e}"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Converts wire tags, requiring both members as the model does.
pub fn tags_in(tags: Option<Vec<TagIn>>) -> Result<Vec<Tag>, Error> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| {
            Ok(Tag {
                key: t.key.ok_or_else(|| Error::missing("Key"))?,
                value: t.value.ok_or_else(|| Error::missing("Value"))?,
            })
        })
        .collect()
}

pub fn tags_out(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
}

/// BYODKIM or key-length settings. Not `Debug`: it may carry a private key.
#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DkimSigningAttributesIn {
    pub domain_signing_selector: Option<String>,
    pub domain_signing_private_key: Option<String>,
    pub next_signing_key_length: Option<String>,
    pub domain_signing_attributes_origin: Option<String>,
}

impl std::fmt::Debug for DkimSigningAttributesIn {
    // The private key never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigningAttributes")
            .field("selector", &self.domain_signing_selector)
            .field("next_signing_key_length", &self.next_signing_key_length)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEmailIdentityIn {
    pub email_identity: Option<String>,
    pub tags: Option<Vec<TagIn>>,
    pub dkim_signing_attributes: Option<DkimSigningAttributesIn>,
    pub configuration_set_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEmailIdentitiesIn {
    pub filter: Option<std::collections::HashMap<String, String>>,
    pub next_token: Option<String>,
    pub page_size: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutDkimAttributesIn {
    pub signing_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutDkimSigningAttributesIn {
    pub signing_attributes_origin: Option<String>,
    pub signing_attributes: Option<DkimSigningAttributesIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceIn {
    pub resource_arn: Option<String>,
    pub tags: Option<Vec<TagIn>>,
}

pub fn identity_type(i: &Identity) -> &'static str {
    match i.kind() {
        IdentityKind::EmailAddress => "EMAIL_ADDRESS",
        IdentityKind::Domain => "DOMAIN",
    }
}

pub fn dkim_attributes(i: &Identity) -> Value {
    let d = &i.dkim;
    let mut v = json!({
        "SigningEnabled": d.signing_enabled,
        "Status": d.status.v2(),
        "SigningAttributesOrigin": d.origin.v2(),
        "NextSigningKeyLength": d.next_key_length.v2(),
    });
    if i.kind() == IdentityKind::Domain {
        v["Tokens"] = json!(d.tokens);
    }
    if let Some(l) = d.current_key_length {
        v["CurrentSigningKeyLength"] = json!(l.v2());
    }
    if let Some(t) = d.last_key_generation {
        v["LastKeyGenerationTimestamp"] = epoch_seconds(t);
    }
    v
}

pub fn create_email_identity_out(i: &Identity) -> Value {
    json!({
        "IdentityType": identity_type(i),
        "VerifiedForSendingStatus": i.is_verified(),
        "DkimAttributes": dkim_attributes(i),
    })
}

pub fn get_email_identity_out(i: &Identity) -> Value {
    let mut v = json!({
        "IdentityType": identity_type(i),
        "FeedbackForwardingStatus": i.feedback_forwarding,
        "VerifiedForSendingStatus": i.is_verified(),
        "DkimAttributes": dkim_attributes(i),
        "MailFromAttributes": mail_from_attributes(i),
        "Policies": {},
        "Tags": tags_out(&i.tags),
        "VerificationStatus": i.verification_status.v2(),
        "VerificationInfo": verification_info(i),
    });
    if let Some(cs) = &i.configuration_set {
        v["ConfigurationSetName"] = json!(cs);
    }
    v
}

/// v2 `VerificationInfo`: what the DNS verifier last found (empty until
/// it has checked, and for email addresses).
pub fn verification_info(i: &Identity) -> Value {
    let d = &i.dns;
    let mut v = json!({});
    if let Some(t) = d.last_checked_at {
        v["LastCheckedTimestamp"] = epoch_seconds(t);
    }
    if let Some(t) = d.identity.last_success_at {
        v["LastSuccessTimestamp"] = epoch_seconds(t);
    }
    if let Some(e) = d.error {
        v["ErrorType"] = json!(e.v2());
    }
    if let Some(s) = &d.soa {
        v["SOARecord"] = json!({
            "PrimaryNameServer": s.primary_name_server,
            "AdminEmail": s.admin_email,
            "SerialNumber": s.serial_number,
        });
    }
    v
}

pub fn identity_info(i: &Identity) -> Value {
    json!({
        "IdentityType": identity_type(i),
        "IdentityName": i.name.as_str(),
        "SendingEnabled": i.is_verified(),
        "VerificationStatus": i.verification_status.v2(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_model::{DkimState, IdentityName, KeyLength, VerificationStatus};

    fn email() -> Identity {
        Identity {
            name: IdentityName::parse("me@example.com").unwrap(),
            created_at: 0,
            verification_status: VerificationStatus::Pending,
            verification_token: None,
            dkim: DkimState::not_started(KeyLength::Rsa1024),
            feedback_forwarding: true,
            configuration_set: None,
            tags: vec![],
            email_link: None,
            mail_from: Default::default(),
            dns: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn new_email_identity_matches_ses() {
        // The shape real SES returned for a new address (moto issue #9771).
        let v = get_email_identity_out(&email());
        assert_eq!(
            v,
            json!({
                "IdentityType": "EMAIL_ADDRESS",
                "FeedbackForwardingStatus": true,
                "VerifiedForSendingStatus": false,
                "DkimAttributes": {"SigningEnabled": false, "Status": "NOT_STARTED",
                    "SigningAttributesOrigin": "AWS_SES", "NextSigningKeyLength": "RSA_1024_BIT"},
                "MailFromAttributes": {"BehaviorOnMxFailure": "USE_DEFAULT_VALUE"},
                "Policies": {},
                "Tags": [],
                "VerificationStatus": "PENDING",
                "VerificationInfo": {}
            })
        );
    }

    #[test]
    fn v1_email_verification_has_no_token() {
        let mut x = XmlOut::new();
        v1_verification_attributes(&mut x, &[email()]);
        let s = String::from_utf8(x.finish()).unwrap();
        assert!(s.contains("<key>me@example.com</key>"));
        assert!(!s.contains("VerificationToken"));
    }

    #[test]
    fn json_bodies() {
        let v: CreateEmailIdentityIn =
            parse_json(br#"{"EmailIdentity":"a.com","Tags":[{"Key":"k","Value":"v"}]}"#).unwrap();
        assert_eq!(v.email_identity.as_deref(), Some("a.com"));
        assert_eq!(tags_in(v.tags).unwrap()[0].key, "k");
        let e = parse_json::<CreateEmailIdentityIn>(b"{nope").unwrap_err();
        assert!(e.message.starts_with("The request body is not valid"));
        let e = parse_json::<CreateEmailIdentityIn>(br#"{"EmailIdentity":5}"#).unwrap_err();
        assert!(e.message.contains("invalid type"));
        let empty: PutDkimAttributesIn = parse_json(b"").unwrap();
        assert_eq!(empty.signing_enabled, None);
    }
}
