//! Custom verification email templates and SendCustomVerificationEmail,
//! in v1 and v2.

use crate::{Api, R, tags_in, tags_out};
use sesame_core::custom_verification::CvTemplateInput;
use sesame_model::{CustomVerificationTemplate, Scope};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

// ---------------------------------------------------------------- v1

pub async fn v1_create_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v1::CreateCustomVerificationEmailTemplateRequest,
) -> R<()> {
    let input = CvTemplateInput {
        from_email_address: Some(i.from_email_address),
        subject: Some(i.template_subject),
        content: Some(i.template_content),
        success_redirection_url: Some(i.success_redirection_url),
        failure_redirection_url: Some(i.failure_redirection_url),
        tags: vec![],
    };
    api.custom_verification
        .create(&api.identities, s, &i.template_name, input)
        .await
}

pub async fn v1_update_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v1::UpdateCustomVerificationEmailTemplateRequest,
) -> R<()> {
    let input = CvTemplateInput {
        from_email_address: i.from_email_address,
        subject: i.template_subject,
        content: i.template_content,
        success_redirection_url: i.success_redirection_url,
        failure_redirection_url: i.failure_redirection_url,
        tags: vec![],
    };
    api.custom_verification
        .update(&api.identities, s, &i.template_name, input)
        .await
}

pub async fn v1_get_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v1::GetCustomVerificationEmailTemplateRequest,
) -> R<v1::GetCustomVerificationEmailTemplateResponse> {
    let t = api.custom_verification.get(s, &i.template_name).await?;
    Ok(v1::GetCustomVerificationEmailTemplateResponse {
        template_name: Some(t.name),
        from_email_address: Some(t.from_email_address),
        template_subject: Some(t.subject),
        template_content: Some(t.content),
        success_redirection_url: Some(t.success_redirection_url),
        failure_redirection_url: Some(t.failure_redirection_url),
    })
}

/// v1 succeeds whether or not the template existed.
pub async fn v1_delete_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v1::DeleteCustomVerificationEmailTemplateRequest,
) -> R<()> {
    api.custom_verification.delete(s, &i.template_name).await?;
    Ok(())
}

pub async fn v1_list_custom_verification_email_templates(
    api: &Api,
    s: &Scope,
    i: v1::ListCustomVerificationEmailTemplatesRequest,
) -> R<v1::ListCustomVerificationEmailTemplatesResponse> {
    // MaxResults' range (1 to 50) is the model's, checked by the decoder.
    let max = i.max_results.unwrap_or(50) as u32;
    let (list, next_token) = api
        .custom_verification
        .list(s, i.next_token.as_deref(), max)
        .await?;
    Ok(v1::ListCustomVerificationEmailTemplatesResponse {
        custom_verification_email_templates: Some(
            list.into_iter()
                .map(|t| v1::CustomVerificationEmailTemplate {
                    template_name: Some(t.name),
                    from_email_address: Some(t.from_email_address),
                    template_subject: Some(t.subject),
                    success_redirection_url: Some(t.success_redirection_url),
                    failure_redirection_url: Some(t.failure_redirection_url),
                })
                .collect(),
        ),
        next_token,
    })
}

/// SendCustomVerificationEmail, the same in both APIs; its MessageId.
async fn send(
    api: &Api,
    s: &Scope,
    address: &str,
    template: &str,
    configuration_set: Option<&str>,
) -> R<Option<String>> {
    let id = api
        .custom_verification
        .send(&api.identities, s, address, template, configuration_set)
        .await?;
    Ok(Some(id))
}

pub async fn v1_send_custom_verification_email(
    api: &Api,
    s: &Scope,
    i: v1::SendCustomVerificationEmailRequest,
) -> R<v1::SendCustomVerificationEmailResponse> {
    let cs = i.configuration_set_name.as_deref();
    Ok(v1::SendCustomVerificationEmailResponse {
        message_id: send(api, s, &i.email_address, &i.template_name, cs).await?,
    })
}

// ---------------------------------------------------------------- v2

pub async fn v2_create_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v2::CreateCustomVerificationEmailTemplateRequest,
) -> R<v2::CreateCustomVerificationEmailTemplateResponse> {
    let input = CvTemplateInput {
        from_email_address: Some(i.from_email_address),
        subject: Some(i.template_subject),
        content: Some(i.template_content),
        success_redirection_url: Some(i.success_redirection_url),
        failure_redirection_url: Some(i.failure_redirection_url),
        tags: tags_in(i.tags),
    };
    api.custom_verification
        .create(&api.identities, s, &i.template_name, input)
        .await?;
    Ok(v2::CreateCustomVerificationEmailTemplateResponse {})
}

pub async fn v2_update_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v2::UpdateCustomVerificationEmailTemplateRequest,
) -> R<v2::UpdateCustomVerificationEmailTemplateResponse> {
    let input = CvTemplateInput {
        from_email_address: Some(i.from_email_address),
        subject: Some(i.template_subject),
        content: Some(i.template_content),
        success_redirection_url: Some(i.success_redirection_url),
        failure_redirection_url: Some(i.failure_redirection_url),
        tags: vec![],
    };
    api.custom_verification
        .update(&api.identities, s, &i.template_name, input)
        .await?;
    Ok(v2::UpdateCustomVerificationEmailTemplateResponse {})
}

pub async fn v2_get_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v2::GetCustomVerificationEmailTemplateRequest,
) -> R<v2::GetCustomVerificationEmailTemplateResponse> {
    let t = api.custom_verification.get(s, &i.template_name).await?;
    Ok(v2::GetCustomVerificationEmailTemplateResponse {
        tags: Some(tags_out(&t.tags)),
        template_name: Some(t.name),
        from_email_address: Some(t.from_email_address),
        template_subject: Some(t.subject),
        template_content: Some(t.content),
        success_redirection_url: Some(t.success_redirection_url),
        failure_redirection_url: Some(t.failure_redirection_url),
    })
}

pub async fn v2_delete_custom_verification_email_template(
    api: &Api,
    s: &Scope,
    i: v2::DeleteCustomVerificationEmailTemplateRequest,
) -> R<v2::DeleteCustomVerificationEmailTemplateResponse> {
    let name = &i.template_name;
    if !api.custom_verification.delete(s, name).await? {
        return Err(sesame_model::custom_verification::does_not_exist(name));
    }
    Ok(v2::DeleteCustomVerificationEmailTemplateResponse {})
}

fn metadata(t: CustomVerificationTemplate) -> v2::CustomVerificationEmailTemplateMetadata {
    v2::CustomVerificationEmailTemplateMetadata {
        template_name: Some(t.name),
        from_email_address: Some(t.from_email_address),
        template_subject: Some(t.subject),
        success_redirection_url: Some(t.success_redirection_url),
        failure_redirection_url: Some(t.failure_redirection_url),
    }
}

pub async fn v2_list_custom_verification_email_templates(
    api: &Api,
    s: &Scope,
    i: v2::ListCustomVerificationEmailTemplatesRequest,
) -> R<v2::ListCustomVerificationEmailTemplatesResponse> {
    let size = match i.page_size {
        None => 50,
        Some(n @ 1..=50) => n as u32,
        Some(n) => {
            return Err(sesame_model::Error::invalid(format!(
                "PageSize {n} is out of range: it must be from 1 to 50."
            )));
        }
    };
    let (list, next_token) = api
        .custom_verification
        .list(s, i.next_token.as_deref(), size)
        .await?;
    Ok(v2::ListCustomVerificationEmailTemplatesResponse {
        custom_verification_email_templates: Some(list.into_iter().map(metadata).collect()),
        next_token,
    })
}

pub async fn v2_send_custom_verification_email(
    api: &Api,
    s: &Scope,
    i: v2::SendCustomVerificationEmailRequest,
) -> R<v2::SendCustomVerificationEmailResponse> {
    let cs = i.configuration_set_name.as_deref();
    Ok(v2::SendCustomVerificationEmailResponse {
        message_id: send(api, s, &i.email_address, &i.template_name, cs).await?,
    })
}
