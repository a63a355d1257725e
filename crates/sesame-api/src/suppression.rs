//! The account-level suppression list (v2) and its account setting.

use crate::{Api, R, spell};
use sesame_core::configuration_sets::not_yet;
use sesame_model::suppression::{SuppressedDestination, SuppressionQuery};
use sesame_model::{Error, Scope};
use sesame_wire::generated::sesv2 as v2;

/// Sesame has no tenants (SES's multi-tenant management); naming one is
/// refused rather than ignored.
fn no_tenant(t: &Option<String>) -> R<()> {
    match t {
        Some(_) => Err(not_yet("TenantName")),
        None => Ok(()),
    }
}

pub async fn v2_put_suppressed_destination(
    api: &Api,
    s: &Scope,
    i: v2::PutSuppressedDestinationRequest,
) -> R<v2::PutSuppressedDestinationResponse> {
    no_tenant(&i.tenant_name)?;
    api.suppression
        .put(s, &i.email_address, spell::v2_reason_in(i.reason))
        .await?;
    Ok(v2::PutSuppressedDestinationResponse {})
}

fn view(d: SuppressedDestination) -> v2::SuppressedDestination {
    let attributes = (d.message_id.is_some() || d.feedback_id.is_some()).then(|| {
        v2::SuppressedDestinationAttributes {
            message_id: d.message_id.clone(),
            feedback_id: d.feedback_id.clone(),
        }
    });
    v2::SuppressedDestination {
        email_address: d.address,
        reason: spell::v2_reason(d.reason),
        last_update_time: d.last_update,
        attributes,
        tenant_name: None,
    }
}

pub async fn v2_get_suppressed_destination(
    api: &Api,
    s: &Scope,
    i: v2::GetSuppressedDestinationRequest,
) -> R<v2::GetSuppressedDestinationResponse> {
    no_tenant(&i.tenant_name)?;
    Ok(v2::GetSuppressedDestinationResponse {
        suppressed_destination: view(api.suppression.get(s, &i.email_address).await?),
    })
}

pub async fn v2_delete_suppressed_destination(
    api: &Api,
    s: &Scope,
    i: v2::DeleteSuppressedDestinationRequest,
) -> R<v2::DeleteSuppressedDestinationResponse> {
    no_tenant(&i.tenant_name)?;
    api.suppression.delete(s, &i.email_address).await?;
    Ok(v2::DeleteSuppressedDestinationResponse {})
}

pub async fn v2_list_suppressed_destinations(
    api: &Api,
    s: &Scope,
    i: v2::ListSuppressedDestinationsRequest,
) -> R<v2::ListSuppressedDestinationsResponse> {
    no_tenant(&i.tenant_name)?;
    let size = match i.page_size {
        None => 1000,
        Some(n @ 1..=1000) => n as u32,
        Some(n) => {
            return Err(Error::invalid(format!(
                "PageSize {n} is out of range: it must be from 1 to 1000."
            )));
        }
    };
    let q = SuppressionQuery {
        reasons: spell::v2_reasons_in(i.reasons.unwrap_or_default()),
        start: i.start_date,
        end: i.end_date,
    };
    let (found, next_token) = api
        .suppression
        .list(s, &q, i.next_token.as_deref(), size)
        .await?;
    Ok(v2::ListSuppressedDestinationsResponse {
        suppressed_destination_summaries: Some(
            found
                .into_iter()
                .map(|d| v2::SuppressedDestinationSummary {
                    email_address: d.address,
                    reason: spell::v2_reason(d.reason),
                    last_update_time: d.last_update,
                })
                .collect(),
        ),
        next_token,
    })
}

pub async fn v2_put_account_suppression_attributes(
    api: &Api,
    s: &Scope,
    i: v2::PutAccountSuppressionAttributesRequest,
) -> R<v2::PutAccountSuppressionAttributesResponse> {
    if i.validation_attributes.is_some() {
        return Err(not_yet("ValidationAttributes (Auto Validation)"));
    }
    api.accounts
        .set_suppressed_reasons(
            s,
            spell::v2_reasons_in(i.suppressed_reasons.unwrap_or_default()),
        )
        .await?;
    Ok(v2::PutAccountSuppressionAttributesResponse {})
}
