//! The account: quotas and statistics, sending enabled, and the details
//! that request production access, in v1 and v2.

use crate::{Api, R, spell};
use sesame_core::accounts::DetailsRequest;
use sesame_model::Scope;
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

// ---------------------------------------------------------------- v1

pub async fn v1_get_send_quota(api: &Api, s: &Scope) -> R<v1::GetSendQuotaResponse> {
    let q = api.accounts.quota(s).await?;
    Ok(v1::GetSendQuotaResponse {
        max24_hour_send: Some(q.account.max_24h_send),
        max_send_rate: Some(q.account.max_send_rate),
        sent_last24_hours: Some(q.sent_last_24h as f64),
    })
}

pub async fn v1_get_send_statistics(api: &Api, s: &Scope) -> R<v1::GetSendStatisticsResponse> {
    let points = api.accounts.statistics(s).await?;
    Ok(v1::GetSendStatisticsResponse {
        send_data_points: Some(
            points
                .into_iter()
                .map(|p| v1::SendDataPoint {
                    timestamp: Some(p.start),
                    delivery_attempts: Some(p.delivery_attempts as i64),
                    bounces: Some(p.bounces as i64),
                    complaints: Some(p.complaints as i64),
                    rejects: Some(p.rejects as i64),
                })
                .collect(),
        ),
    })
}

pub async fn v1_get_account_sending_enabled(
    api: &Api,
    s: &Scope,
) -> R<v1::GetAccountSendingEnabledResponse> {
    let a = api.accounts.get(s).await?;
    Ok(v1::GetAccountSendingEnabledResponse {
        enabled: Some(a.sending_enabled),
    })
}

pub async fn v1_update_account_sending_enabled(
    api: &Api,
    s: &Scope,
    i: v1::UpdateAccountSendingEnabledRequest,
) -> R<()> {
    api.accounts
        .set_sending_enabled(s, i.enabled.unwrap_or(false))
        .await
}

// ---------------------------------------------------------------- v2

pub async fn v2_get_account(
    api: &Api,
    s: &Scope,
    _: v2::GetAccountRequest,
) -> R<v2::GetAccountResponse> {
    let q = api.accounts.quota(s).await?;
    let a = &q.account;
    Ok(v2::GetAccountResponse {
        dedicated_ip_auto_warmup_enabled: Some(false),
        enforcement_status: Some("HEALTHY".to_owned()),
        production_access_enabled: Some(a.production_access),
        send_quota: Some(v2::SendQuota {
            max24_hour_send: Some(a.max_24h_send),
            max_send_rate: Some(a.max_send_rate),
            sent_last24_hours: Some(q.sent_last_24h as f64),
        }),
        sending_enabled: Some(a.sending_enabled),
        suppression_attributes: Some(v2::SuppressionAttributes {
            suppressed_reasons: Some(
                a.suppressed_reasons
                    .clone()
                    .unwrap_or_else(|| sesame_model::suppression::DEFAULT_REASONS.to_vec())
                    .into_iter()
                    .map(crate::spell::v2_reason)
                    .collect(),
            ),
            validation_attributes: None,
        }),
        details: a.details.as_ref().map(|d| v2::AccountDetails {
            mail_type: v2::MailType::parse(&d.mail_type),
            website_url: Some(d.website_url.clone()),
            contact_language: d
                .contact_language
                .as_deref()
                .and_then(v2::ContactLanguage::parse),
            use_case_description: d.use_case_description.clone(),
            additional_contact_email_addresses: (!d.additional_contact_email_addresses.is_empty())
                .then(|| d.additional_contact_email_addresses.clone()),
            review_details: d.review.as_ref().map(|r| v2::ReviewDetails {
                status: Some(spell::v2_review(r.status)),
                case_id: Some(r.case_id.clone()),
            }),
        }),
        vdm_attributes: None,
        pricing_attributes: None,
    })
}

pub async fn v2_put_account_details(
    api: &Api,
    s: &Scope,
    i: v2::PutAccountDetailsRequest,
) -> R<v2::PutAccountDetailsResponse> {
    api.accounts
        .put_details(
            s,
            DetailsRequest {
                mail_type: Some(i.mail_type.as_str().to_owned()),
                website_url: Some(i.website_url),
                contact_language: i.contact_language.map(|l| l.as_str().to_owned()),
                use_case_description: i.use_case_description,
                additional_contact_email_addresses: i.additional_contact_email_addresses,
                production_access_enabled: i.production_access_enabled,
            },
        )
        .await?;
    Ok(v2::PutAccountDetailsResponse {})
}

pub async fn v2_put_account_sending_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutAccountSendingAttributesRequest,
) -> R<v2::PutAccountSendingAttributesResponse> {
    api.accounts
        .set_sending_enabled(s, i.sending_enabled.unwrap_or(false))
        .await?;
    Ok(v2::PutAccountSendingAttributesResponse {})
}
