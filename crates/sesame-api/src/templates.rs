//! Email templates: create, get, update, delete, list and test-render, in
//! v1 and v2.

use crate::{Api, R, tags_in, tags_out};
use sesame_model::{Error, ErrorKind, Scope, TemplateParts};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

// ---------------------------------------------------------------- v1

fn v1_parts(t: &v1::Template) -> TemplateParts {
    TemplateParts {
        subject: t.subject_part.clone(),
        text: t.text_part.clone(),
        html: t.html_part.clone(),
    }
}

pub async fn v1_create_template(
    api: &Api,
    s: &Scope,
    i: v1::CreateTemplateRequest,
) -> R<v1::CreateTemplateResponse> {
    let parts = v1_parts(&i.template);
    api.templates
        .create(s, &i.template.template_name, parts, vec![])
        .await?;
    Ok(v1::CreateTemplateResponse {})
}

pub async fn v1_update_template(
    api: &Api,
    s: &Scope,
    i: v1::UpdateTemplateRequest,
) -> R<v1::UpdateTemplateResponse> {
    let parts = v1_parts(&i.template);
    api.templates
        .update(s, &i.template.template_name, parts)
        .await?;
    Ok(v1::UpdateTemplateResponse {})
}

pub async fn v1_get_template(
    api: &Api,
    s: &Scope,
    i: v1::GetTemplateRequest,
) -> R<v1::GetTemplateResponse> {
    let t = api.templates.get(s, &i.template_name).await?;
    Ok(v1::GetTemplateResponse {
        template: Some(v1::Template {
            template_name: t.name,
            subject_part: t.parts.subject,
            text_part: t.parts.text,
            html_part: t.parts.html,
        }),
    })
}

pub async fn v1_delete_template(
    api: &Api,
    s: &Scope,
    i: v1::DeleteTemplateRequest,
) -> R<v1::DeleteTemplateResponse> {
    api.templates.delete(s, &i.template_name).await?;
    Ok(v1::DeleteTemplateResponse {})
}

pub async fn v1_list_templates(
    api: &Api,
    s: &Scope,
    i: v1::ListTemplatesRequest,
) -> R<v1::ListTemplatesResponse> {
    let max = i.max_items.unwrap_or(10).clamp(1, 100) as u32;
    let (list, next_token) = api.templates.list(s, i.next_token.as_deref(), max).await?;
    Ok(v1::ListTemplatesResponse {
        templates_metadata: Some(
            list.into_iter()
                .map(|t| v1::TemplateMetadata {
                    name: Some(t.name),
                    created_timestamp: Some(t.created_at),
                })
                .collect(),
        ),
        next_token,
    })
}

pub async fn v1_test_render_template(
    api: &Api,
    s: &Scope,
    i: v1::TestRenderTemplateRequest,
) -> R<v1::TestRenderTemplateResponse> {
    let rendered = api
        .templates
        .test_render(s, &i.template_name, &i.template_data)
        .await?;
    Ok(v1::TestRenderTemplateResponse {
        rendered_template: Some(rendered),
    })
}

// ---------------------------------------------------------------- v2

fn v2_parts(c: v2::EmailTemplateContent) -> TemplateParts {
    TemplateParts {
        subject: c.subject,
        text: c.text,
        html: c.html,
    }
}

pub async fn v2_create_email_template(
    api: &Api,
    s: &Scope,
    i: v2::CreateEmailTemplateRequest,
) -> R<v2::CreateEmailTemplateResponse> {
    api.templates
        .create(
            s,
            &i.template_name,
            v2_parts(i.template_content),
            tags_in(i.tags),
        )
        .await?;
    Ok(v2::CreateEmailTemplateResponse {})
}

pub async fn v2_get_email_template(
    api: &Api,
    s: &Scope,
    i: v2::GetEmailTemplateRequest,
) -> R<v2::GetEmailTemplateResponse> {
    let t = api.templates.get(s, &i.template_name).await?;
    Ok(v2::GetEmailTemplateResponse {
        tags: Some(tags_out(&t.tags)),
        template_name: t.name,
        template_content: v2::EmailTemplateContent {
            subject: t.parts.subject,
            text: t.parts.text,
            html: t.parts.html,
        },
    })
}

pub async fn v2_update_email_template(
    api: &Api,
    s: &Scope,
    i: v2::UpdateEmailTemplateRequest,
) -> R<v2::UpdateEmailTemplateResponse> {
    api.templates
        .update(s, &i.template_name, v2_parts(i.template_content))
        .await?;
    Ok(v2::UpdateEmailTemplateResponse {})
}

pub async fn v2_delete_email_template(
    api: &Api,
    s: &Scope,
    i: v2::DeleteEmailTemplateRequest,
) -> R<v2::DeleteEmailTemplateResponse> {
    let name = &i.template_name;
    if !api.templates.delete(s, name).await? {
        return Err(Error::new(
            ErrorKind::TemplateDoesNotExist,
            format!("Template {name} does not exist."),
        ));
    }
    Ok(v2::DeleteEmailTemplateResponse {})
}

pub async fn v2_list_email_templates(
    api: &Api,
    s: &Scope,
    i: v2::ListEmailTemplatesRequest,
) -> R<v2::ListEmailTemplatesResponse> {
    let size = match i.page_size {
        None => 10,
        Some(n @ 1..=100) => n as u32,
        Some(n) => {
            return Err(Error::invalid(format!(
                "PageSize {n} is out of range: it must be from 1 to 100."
            )));
        }
    };
    let (list, next_token) = api.templates.list(s, i.next_token.as_deref(), size).await?;
    Ok(v2::ListEmailTemplatesResponse {
        templates_metadata: Some(
            list.into_iter()
                .map(|t| v2::EmailTemplateMetadata {
                    template_name: Some(t.name),
                    created_timestamp: Some(t.created_at),
                })
                .collect(),
        ),
        next_token,
    })
}

pub async fn v2_test_render_email_template(
    api: &Api,
    s: &Scope,
    i: v2::TestRenderEmailTemplateRequest,
) -> R<v2::TestRenderEmailTemplateResponse> {
    let rendered_template = api
        .templates
        .test_render(s, &i.template_name, &i.template_data)
        .await?;
    Ok(v2::TestRenderEmailTemplateResponse { rendered_template })
}
