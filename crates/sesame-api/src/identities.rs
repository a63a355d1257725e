//! Identities: verifying addresses and domains, DKIM (Easy and BYODKIM),
//! custom MAIL FROM domains, listing, deleting and tagging, in v1 and v2.

use crate::{Api, R, spell, tags_in, tags_out};
use sesame_core::identities::{CreateIdentity, DkimRequest};
use sesame_model::{Error, ErrorKind, Identity, IdentityKind, Scope};
use sesame_store::IdentityQuery;
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

// ---------------------------------------------------------------- v1

pub async fn v1_verify_email_identity(
    api: &Api,
    s: &Scope,
    i: v1::VerifyEmailIdentityRequest,
) -> R<v1::VerifyEmailIdentityResponse> {
    api.identities.verify_email(s, &i.email_address).await?;
    Ok(v1::VerifyEmailIdentityResponse {})
}

pub async fn v1_verify_email_address(
    api: &Api,
    s: &Scope,
    i: v1::VerifyEmailAddressRequest,
) -> R<()> {
    api.identities.verify_email(s, &i.email_address).await
}

pub async fn v1_verify_domain_identity(
    api: &Api,
    s: &Scope,
    i: v1::VerifyDomainIdentityRequest,
) -> R<v1::VerifyDomainIdentityResponse> {
    let verification_token = api.identities.verify_domain(s, &i.domain).await?;
    Ok(v1::VerifyDomainIdentityResponse { verification_token })
}

pub async fn v1_verify_domain_dkim(
    api: &Api,
    s: &Scope,
    i: v1::VerifyDomainDkimRequest,
) -> R<v1::VerifyDomainDkimResponse> {
    let dkim_tokens = api.identities.verify_domain_dkim(s, &i.domain).await?;
    Ok(v1::VerifyDomainDkimResponse { dkim_tokens })
}

pub async fn v1_list_identities(
    api: &Api,
    s: &Scope,
    i: v1::ListIdentitiesRequest,
) -> R<v1::ListIdentitiesResponse> {
    let max = i.max_items.unwrap_or(1000);
    if !(1..=1000).contains(&max) {
        return Err(Error::invalid(format!(
            "MaxItems {max} is out of range: it must be from 1 to 1000."
        )));
    }
    let q = IdentityQuery {
        kind: i.identity_type.map(spell::v1_identity_type_in),
        ..Default::default()
    };
    let page = api
        .identities
        .list(s, &q, i.next_token.as_deref(), max as u32)
        .await?;
    Ok(v1::ListIdentitiesResponse {
        identities: page
            .identities
            .iter()
            .map(|i| i.name.as_str().to_owned())
            .collect(),
        next_token: page.next_token,
    })
}

pub async fn v1_list_verified_email_addresses(
    api: &Api,
    s: &Scope,
) -> R<v1::ListVerifiedEmailAddressesResponse> {
    Ok(v1::ListVerifiedEmailAddressesResponse {
        verified_email_addresses: Some(api.identities.verified_addresses(s).await?),
    })
}

pub async fn v1_get_identity_verification_attributes(
    api: &Api,
    s: &Scope,
    i: v1::GetIdentityVerificationAttributesRequest,
) -> R<v1::GetIdentityVerificationAttributesResponse> {
    let found = api.identities.get_many(s, &i.identities).await?;
    Ok(v1::GetIdentityVerificationAttributesResponse {
        verification_attributes: found
            .iter()
            .map(|i| {
                let a = v1::IdentityVerificationAttributes {
                    verification_status: spell::v1_status(i.verification_status),
                    verification_token: i.verification_token.clone(),
                };
                (i.name.as_str().to_owned(), a)
            })
            .collect(),
    })
}

pub async fn v1_get_identity_dkim_attributes(
    api: &Api,
    s: &Scope,
    i: v1::GetIdentityDkimAttributesRequest,
) -> R<v1::GetIdentityDkimAttributesResponse> {
    let found = api.identities.get_many(s, &i.identities).await?;
    Ok(v1::GetIdentityDkimAttributesResponse {
        dkim_attributes: found
            .iter()
            .map(|i| {
                let a = v1::IdentityDkimAttributes {
                    dkim_enabled: i.dkim.signing_enabled,
                    dkim_verification_status: spell::v1_status(i.dkim.status),
                    dkim_tokens: (!i.dkim.tokens.is_empty()).then(|| i.dkim.tokens.clone()),
                };
                (i.name.as_str().to_owned(), a)
            })
            .collect(),
    })
}

pub async fn v1_set_identity_mail_from_domain(
    api: &Api,
    s: &Scope,
    i: v1::SetIdentityMailFromDomainRequest,
) -> R<v1::SetIdentityMailFromDomainResponse> {
    let reject = i.behavior_on_mx_failure == Some(v1::BehaviorOnMXFailure::RejectMessage);
    api.identities
        .set_mail_from(s, &i.identity, i.mail_from_domain.as_deref(), reject)
        .await?;
    Ok(v1::SetIdentityMailFromDomainResponse {})
}

pub async fn v1_get_identity_mail_from_domain_attributes(
    api: &Api,
    s: &Scope,
    i: v1::GetIdentityMailFromDomainAttributesRequest,
) -> R<v1::GetIdentityMailFromDomainAttributesResponse> {
    let found = api.identities.get_many(s, &i.identities).await?;
    Ok(v1::GetIdentityMailFromDomainAttributesResponse {
        mail_from_domain_attributes: found
            .iter()
            .map(|i| {
                let m = &i.mail_from;
                let set = m.domain.clone().zip(m.status);
                let a = v1::IdentityMailFromDomainAttributes {
                    mail_from_domain: set.as_ref().map(|(d, _)| d.clone()),
                    mail_from_domain_status: set.map(|(_, st)| spell::v1_mail_from_status(st)),
                    behavior_on_mx_failure: if m.reject_on_mx_failure {
                        v1::BehaviorOnMXFailure::RejectMessage
                    } else {
                        v1::BehaviorOnMXFailure::UseDefaultValue
                    },
                };
                (i.name.as_str().to_owned(), a)
            })
            .collect(),
    })
}

pub async fn v1_set_identity_dkim_enabled(
    api: &Api,
    s: &Scope,
    i: v1::SetIdentityDkimEnabledRequest,
) -> R<v1::SetIdentityDkimEnabledResponse> {
    api.identities
        .set_dkim_enabled(s, &i.identity, i.dkim_enabled)
        .await?;
    Ok(v1::SetIdentityDkimEnabledResponse {})
}

pub async fn v1_delete_identity(
    api: &Api,
    s: &Scope,
    i: v1::DeleteIdentityRequest,
) -> R<v1::DeleteIdentityResponse> {
    api.identities.delete_v1(s, &i.identity).await?;
    Ok(v1::DeleteIdentityResponse {})
}

pub async fn v1_delete_verified_email_address(
    api: &Api,
    s: &Scope,
    i: v1::DeleteVerifiedEmailAddressRequest,
) -> R<()> {
    api.identities.delete_v1(s, &i.email_address).await?;
    Ok(())
}

// ---------------------------------------------------------------- v2

fn dkim_request(a: v2::DkimSigningAttributes) -> R<DkimRequest> {
    match (a.domain_signing_selector, a.domain_signing_private_key) {
        (Some(selector), Some(private_key)) => Ok(DkimRequest::External {
            selector,
            private_key,
        }),
        (None, None) => Ok(DkimRequest::Easy(
            a.next_signing_key_length.map(spell::v2_key_length_in),
        )),
        (None, Some(_)) => Err(Error::missing("DomainSigningSelector")),
        (Some(_), None) => Err(Error::missing("DomainSigningPrivateKey")),
    }
}

pub async fn v2_create_email_identity(
    api: &Api,
    s: &Scope,
    i: v2::CreateEmailIdentityRequest,
) -> R<v2::CreateEmailIdentityResponse> {
    let dkim = i.dkim_signing_attributes.map(dkim_request).transpose()?;
    let identity = api
        .identities
        .create(
            s,
            CreateIdentity {
                name: i.email_identity,
                tags: tags_in(i.tags),
                configuration_set: i.configuration_set_name,
                dkim,
            },
        )
        .await?;
    Ok(v2::CreateEmailIdentityResponse {
        identity_type: Some(spell::v2_identity_type(identity.kind())),
        verified_for_sending_status: Some(identity.is_verified()),
        dkim_attributes: Some(dkim_attributes(&identity)),
    })
}

fn dkim_attributes(i: &Identity) -> v2::DkimAttributes {
    let d = &i.dkim;
    v2::DkimAttributes {
        signing_enabled: Some(d.signing_enabled),
        status: Some(spell::v2_dkim_status(d.status)),
        tokens: (i.kind() == IdentityKind::Domain).then(|| d.tokens.clone()),
        signing_attributes_origin: Some(spell::v2_origin(d.origin)),
        next_signing_key_length: Some(spell::v2_key_length(d.next_key_length)),
        current_signing_key_length: d.current_key_length.map(spell::v2_key_length),
        last_key_generation_timestamp: d.last_key_generation,
        signing_hosted_zone: None,
    }
}

fn mail_from_attributes(i: &Identity) -> v2::MailFromAttributes {
    let m = &i.mail_from;
    let set = m.domain.clone().zip(m.status);
    v2::MailFromAttributes {
        mail_from_domain: set.as_ref().map(|(d, _)| d.clone()),
        mail_from_domain_status: set.map(|(_, st)| spell::v2_mail_from_status(st)),
        behavior_on_mx_failure: if m.reject_on_mx_failure {
            v2::BehaviorOnMxFailure::RejectMessage
        } else {
            v2::BehaviorOnMxFailure::UseDefaultValue
        },
    }
}

/// What the DNS verifier last found (empty until it has checked, and for
/// email addresses).
fn verification_info(i: &Identity) -> v2::VerificationInfo {
    let d = &i.dns;
    v2::VerificationInfo {
        last_checked_timestamp: d.last_checked_at,
        last_success_timestamp: d.identity.last_success_at,
        error_type: d.error.map(spell::v2_verification_error),
        soa_record: d.soa.as_ref().map(|s| v2::SOARecord {
            primary_name_server: Some(s.primary_name_server.clone()),
            admin_email: Some(s.admin_email.clone()),
            serial_number: Some(s.serial_number),
        }),
    }
}

pub async fn v2_get_email_identity(
    api: &Api,
    s: &Scope,
    i: v2::GetEmailIdentityRequest,
) -> R<v2::GetEmailIdentityResponse> {
    let i = api.identities.get(s, &i.email_identity).await?;
    Ok(email_identity(&i))
}

/// GetEmailIdentity's answer for one identity.
fn email_identity(i: &Identity) -> v2::GetEmailIdentityResponse {
    v2::GetEmailIdentityResponse {
        identity_type: Some(spell::v2_identity_type(i.kind())),
        feedback_forwarding_status: Some(i.feedback_forwarding),
        verified_for_sending_status: Some(i.is_verified()),
        dkim_attributes: Some(dkim_attributes(i)),
        mail_from_attributes: Some(mail_from_attributes(i)),
        policies: Some(vec![]),
        tags: Some(tags_out(&i.tags)),
        configuration_set_name: i.configuration_set.clone(),
        verification_status: Some(spell::v2_status(i.verification_status)),
        verification_info: Some(verification_info(i)),
    }
}

pub async fn v2_delete_email_identity(
    api: &Api,
    s: &Scope,
    i: v2::DeleteEmailIdentityRequest,
) -> R<v2::DeleteEmailIdentityResponse> {
    api.identities.delete(s, &i.email_identity).await?;
    Ok(v2::DeleteEmailIdentityResponse {})
}

fn page_size(n: Option<i32>) -> R<u32> {
    match n {
        None | Some(0) => Ok(100),
        Some(n @ 1..=1000) => Ok(n as u32),
        Some(n) => Err(Error::invalid(format!(
            "PageSize {n} is out of range: it must be from 0 to 1000."
        ))),
    }
}

pub async fn v2_list_email_identities(
    api: &Api,
    s: &Scope,
    i: v2::ListEmailIdentitiesRequest,
) -> R<v2::ListEmailIdentitiesResponse> {
    let mut q = IdentityQuery::default();
    for (k, v) in i.filter.unwrap_or_default() {
        match k {
            v2::IdentityFilterKey::IdentityType => {
                let t = v2::IdentityType::parse(&v).ok_or_else(|| {
                    Error::invalid(format!("Invalid IDENTITY_TYPE filter value {v}."))
                })?;
                q.kind = Some(spell::v2_identity_type_in(t)?);
            }
            v2::IdentityFilterKey::VerificationStatus => {
                let st = v2::VerificationStatus::parse(&v).ok_or_else(|| {
                    Error::invalid(format!("Invalid VERIFICATION_STATUS filter value {v}."))
                })?;
                q.status = Some(spell::v2_status_in(st));
            }
            v2::IdentityFilterKey::IdentityNameContains => q.name_contains = Some(v),
        }
    }
    let page = api
        .identities
        .list(s, &q, i.next_token.as_deref(), page_size(i.page_size)?)
        .await?;
    Ok(v2::ListEmailIdentitiesResponse {
        email_identities: Some(
            page.identities
                .iter()
                .map(|i| v2::IdentityInfo {
                    identity_type: Some(spell::v2_identity_type(i.kind())),
                    identity_name: Some(i.name.as_str().to_owned()),
                    sending_enabled: Some(i.is_verified()),
                    verification_status: Some(spell::v2_status(i.verification_status)),
                })
                .collect(),
        ),
        next_token: page.next_token,
    })
}

pub async fn v2_put_email_identity_mail_from_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutEmailIdentityMailFromAttributesRequest,
) -> R<v2::PutEmailIdentityMailFromAttributesResponse> {
    let reject = i.behavior_on_mx_failure == Some(v2::BehaviorOnMxFailure::RejectMessage);
    api.identities
        .set_mail_from(s, &i.email_identity, i.mail_from_domain.as_deref(), reject)
        .await?;
    Ok(v2::PutEmailIdentityMailFromAttributesResponse {})
}

pub async fn v2_put_email_identity_configuration_set_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutEmailIdentityConfigurationSetAttributesRequest,
) -> R<v2::PutEmailIdentityConfigurationSetAttributesResponse> {
    api.identities
        .set_configuration_set(s, &i.email_identity, i.configuration_set_name)
        .await?;
    Ok(v2::PutEmailIdentityConfigurationSetAttributesResponse {})
}

pub async fn v2_put_email_identity_dkim_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutEmailIdentityDkimAttributesRequest,
) -> R<v2::PutEmailIdentityDkimAttributesResponse> {
    api.identities
        .set_dkim_enabled(s, &i.email_identity, i.signing_enabled.unwrap_or(false))
        .await?;
    Ok(v2::PutEmailIdentityDkimAttributesResponse {})
}

pub async fn v2_put_email_identity_dkim_signing_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutEmailIdentityDkimSigningAttributesRequest,
) -> R<v2::PutEmailIdentityDkimSigningAttributesResponse> {
    let attrs = i.signing_attributes.unwrap_or_default();
    let req = match i.signing_attributes_origin {
        v2::DkimSigningAttributesOrigin::AwsSes => {
            DkimRequest::Easy(attrs.next_signing_key_length.map(spell::v2_key_length_in))
        }
        v2::DkimSigningAttributesOrigin::External => DkimRequest::External {
            selector: attrs
                .domain_signing_selector
                .ok_or_else(|| Error::missing("DomainSigningSelector"))?,
            private_key: attrs
                .domain_signing_private_key
                .ok_or_else(|| Error::missing("DomainSigningPrivateKey"))?,
        },
        other => {
            return Err(Error::new(
                ErrorKind::NotImplemented,
                format!(
                    "Sesame does not implement Deterministic Easy DKIM ({}) yet.",
                    other.as_str()
                ),
            ));
        }
    };
    let i = api
        .identities
        .put_dkim_signing(s, &i.email_identity, req)
        .await?;
    Ok(v2::PutEmailIdentityDkimSigningAttributesResponse {
        dkim_status: Some(spell::v2_dkim_status(i.dkim.status)),
        dkim_tokens: Some(i.dkim.tokens),
        signing_hosted_zone: None,
    })
}

pub async fn v2_tag_resource(
    api: &Api,
    s: &Scope,
    i: v2::TagResourceRequest,
) -> R<v2::TagResourceResponse> {
    api.identities
        .tag(s, &i.resource_arn, tags_in(Some(i.tags)))
        .await?;
    Ok(v2::TagResourceResponse {})
}

pub async fn v2_untag_resource(
    api: &Api,
    s: &Scope,
    i: v2::UntagResourceRequest,
) -> R<v2::UntagResourceResponse> {
    api.identities
        .untag(s, &i.resource_arn, &i.tag_keys)
        .await?;
    Ok(v2::UntagResourceResponse {})
}

pub async fn v2_list_tags_for_resource(
    api: &Api,
    s: &Scope,
    i: v2::ListTagsForResourceRequest,
) -> R<v2::ListTagsForResourceResponse> {
    let tags = api.identities.list_tags(s, &i.resource_arn).await?;
    Ok(v2::ListTagsForResourceResponse {
        tags: tags_out(&tags),
    })
}

// ---------------------------------------------------------- notifications

pub async fn v1_set_identity_notification_topic(
    api: &Api,
    s: &Scope,
    i: v1::SetIdentityNotificationTopicRequest,
) -> R<v1::SetIdentityNotificationTopicResponse> {
    let topic = i.sns_topic.filter(|t| !t.is_empty());
    api.identities
        .set_notification_topic(
            s,
            &i.identity,
            spell::v1_notification_kind(i.notification_type),
            topic,
        )
        .await?;
    Ok(v1::SetIdentityNotificationTopicResponse {})
}

pub async fn v1_set_identity_headers_in_notifications_enabled(
    api: &Api,
    s: &Scope,
    i: v1::SetIdentityHeadersInNotificationsEnabledRequest,
) -> R<v1::SetIdentityHeadersInNotificationsEnabledResponse> {
    api.identities
        .set_headers_in_notifications(
            s,
            &i.identity,
            spell::v1_notification_kind(i.notification_type),
            i.enabled,
        )
        .await?;
    Ok(v1::SetIdentityHeadersInNotificationsEnabledResponse {})
}

pub async fn v1_set_identity_feedback_forwarding_enabled(
    api: &Api,
    s: &Scope,
    i: v1::SetIdentityFeedbackForwardingEnabledRequest,
) -> R<v1::SetIdentityFeedbackForwardingEnabledResponse> {
    let name = i.identity.clone();
    api.identities
        .set_feedback_forwarding(s, &i.identity, i.forwarding_enabled, || {
            sesame_core::identities::not_verified_or_missing(&name)
        })
        .await?;
    Ok(v1::SetIdentityFeedbackForwardingEnabledResponse {})
}

pub async fn v1_get_identity_notification_attributes(
    api: &Api,
    s: &Scope,
    i: v1::GetIdentityNotificationAttributesRequest,
) -> R<v1::GetIdentityNotificationAttributesResponse> {
    let found = api.identities.get_many(s, &i.identities).await?;
    Ok(v1::GetIdentityNotificationAttributesResponse {
        notification_attributes: found
            .iter()
            .map(|i| {
                let n = &i.notifications;
                let a = v1::IdentityNotificationAttributes {
                    bounce_topic: n.bounce_topic.clone(),
                    complaint_topic: n.complaint_topic.clone(),
                    delivery_topic: n.delivery_topic.clone(),
                    forwarding_enabled: i.feedback_forwarding,
                    headers_in_bounce_notifications_enabled: Some(n.headers_in_bounce),
                    headers_in_complaint_notifications_enabled: Some(n.headers_in_complaint),
                    headers_in_delivery_notifications_enabled: Some(n.headers_in_delivery),
                };
                (i.name.as_str().to_owned(), a)
            })
            .collect(),
    })
}

pub async fn v2_put_email_identity_feedback_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutEmailIdentityFeedbackAttributesRequest,
) -> R<v2::PutEmailIdentityFeedbackAttributesResponse> {
    let name = i.email_identity.clone();
    api.identities
        .set_feedback_forwarding(
            s,
            &i.email_identity,
            i.email_forwarding_enabled.unwrap_or(false),
            || sesame_core::identities::not_found(&name),
        )
        .await?;
    Ok(v2::PutEmailIdentityFeedbackAttributesResponse {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_model::{DkimState, KeyLength};

    fn email() -> Identity {
        let mut i = sesame_store::conformance::identity("me@example.com");
        i.dkim = DkimState::not_started(KeyLength::Rsa1024);
        i
    }

    /// The shape real SES returned for a new address (moto issue #9771).
    #[test]
    fn a_new_email_identity_reads_as_ses_returned_it() {
        let body = sesame_wire::codec::json_out(email_identity(&email()).to_json());
        assert_eq!(
            String::from_utf8(body).unwrap(),
            concat!(
                r#"{"DkimAttributes":{"NextSigningKeyLength":"RSA_1024_BIT","SigningAttributesOrigin":"AWS_SES","#,
                r#""SigningEnabled":false,"Status":"NOT_STARTED"},"FeedbackForwardingStatus":true,"#,
                r#""IdentityType":"EMAIL_ADDRESS","MailFromAttributes":{"BehaviorOnMxFailure":"USE_DEFAULT_VALUE"},"#,
                r#""Policies":{},"Tags":[],"VerificationInfo":{},"VerificationStatus":"PENDING","#,
                r#""VerifiedForSendingStatus":false}"#
            )
        );
    }
}
