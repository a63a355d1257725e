//! Email templates: their lifecycle per account and region, and rendering
//! with Handlebars as SES does (`{{var}}`, `{{#if}}`, `{{#each}}`, nested
//! data; no HTML escaping; a missing attribute is an error SES names).

use crate::{Clock, internal};
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::Value;
use sesame_model::template::{MAX_TEMPLATES, validate_name};
use sesame_model::{Error, ErrorKind, Scope, Tag, Template, TemplateParts, tags};
use sesame_store::{Created, Store};
use std::sync::Arc;

/// A template's parts with the data applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

fn missing_template(name: &str) -> Error {
    Error::new(
        ErrorKind::TemplateDoesNotExist,
        format!("Template {name} does not exist."),
    )
}

/// Parses template data: a JSON object, at most 256 KiB as the model says.
pub fn parse_data(data: &str) -> Result<Value, Error> {
    if data.len() > 262_144 {
        return Err(Error::new(
            ErrorKind::InvalidRenderingParameter,
            "Template data is larger than 262144 bytes.",
        ));
    }
    match serde_json::from_str::<Value>(data) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Error::new(
            ErrorKind::InvalidRenderingParameter,
            format!("Template data must be a JSON object: {data}"),
        )),
    }
}

/// Renders `parts` with `data` (a JSON object).
pub fn render(parts: &TemplateParts, data: &Value) -> Result<Rendered, Error> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    // SES substitutes values as they are, without HTML escaping.
    hb.register_escape_fn(handlebars::no_escape);
    // handlebars-rust registers a `raw` helper, which would shadow a data
    // field of that name; SES's templates have no such helper.
    hb.unregister_helper("raw");
    let one = |s: &Option<String>| -> Result<Option<String>, Error> {
        s.as_deref()
            .map(|t| {
                hb.render_template(t, data).map_err(|e| match e.reason() {
                    RenderErrorReason::MissingVariable(path) => Error::new(
                        ErrorKind::MissingRenderingAttribute,
                        format!(
                            "Attribute '{}' is not present in the rendering data.",
                            path.as_deref().unwrap_or_default()
                        ),
                    ),
                    RenderErrorReason::TemplateError(t) => Error::new(
                        ErrorKind::InvalidTemplate,
                        format!("The template is not valid Handlebars: {t}"),
                    ),
                    other => Error::new(
                        ErrorKind::InvalidRenderingParameter,
                        format!("The template could not be rendered: {other}"),
                    ),
                })
            })
            .transpose()
    };
    Ok(Rendered {
        subject: one(&parts.subject)?.unwrap_or_default(),
        text: one(&parts.text)?,
        html: one(&parts.html)?,
    })
}

/// Merges `over` into `base` (bulk sends: replacement data over the default).
pub fn merge_data(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut m = b.clone();
            for (k, v) in o {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        _ => over.clone(),
    }
}

pub struct TemplateService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl TemplateService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub async fn create(
        &self,
        scope: &Scope,
        name: &str,
        parts: TemplateParts,
        tag_list: Vec<Tag>,
    ) -> Result<(), Error> {
        validate_name(name)?;
        parts.validate()?;
        let mut t = Template {
            name: name.to_owned(),
            parts,
            created_at: self.clock.now_ms(),
            tags: vec![],
        };
        tags::merge(&mut t.tags, tag_list)?;
        match self
            .store
            .insert_template(scope, &t, MAX_TEMPLATES)
            .await
            .map_err(internal)?
        {
            Created::Created => Ok(()),
            Created::Exists => Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("Template {name} already exists."),
            )),
            Created::LimitReached => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Maximum number of templates ({MAX_TEMPLATES}) reached in region {}.",
                    scope.region
                ),
            )),
        }
    }

    pub async fn get(&self, scope: &Scope, name: &str) -> Result<Template, Error> {
        self.store
            .get_template(scope, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| missing_template(name))
    }

    pub async fn update(
        &self,
        scope: &Scope,
        name: &str,
        parts: TemplateParts,
    ) -> Result<(), Error> {
        parts.validate()?;
        let mut t = self.get(scope, name).await?;
        t.parts = parts;
        if self
            .store
            .update_template(scope, &t)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(missing_template(name))
        }
    }

    /// Returns whether it existed (v1 succeeds either way, v2 says NotFound).
    pub async fn delete(&self, scope: &Scope, name: &str) -> Result<bool, Error> {
        self.store
            .delete_template(scope, name)
            .await
            .map_err(internal)
    }

    /// A page of templates; the token is the position of the last one.
    pub async fn list(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<Template>, Option<String>), Error> {
        let after = crate::paging::after(next_token)?;
        let rows = self
            .store
            .list_templates(scope, after, max + 1)
            .await
            .map_err(internal)?;
        Ok(crate::paging::page(rows, max, after))
    }

    /// v1 TestRenderTemplate / v2 TestRenderEmailTemplate: the MIME message
    /// the data would produce.
    pub async fn test_render(
        &self,
        scope: &Scope,
        name: &str,
        data: &str,
    ) -> Result<String, Error> {
        let t = self.get(scope, name).await?;
        let r = render(&t.parts, &parse_data(data)?)?;
        let mut b = mail_builder::MessageBuilder::new().subject(r.subject.as_str());
        if let Some(text) = &r.text {
            b = b.text_body(text.as_str());
        }
        if let Some(html) = &r.html {
            b = b.html_body(html.as_str());
        }
        let raw = b
            .write_to_string()
            .map_err(|e| Error::internal(format!("cannot compose the rendered template: {e}")))?;
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(subject: &str, text: &str) -> TemplateParts {
        TemplateParts {
            subject: Some(subject.into()),
            text: Some(text.into()),
            html: None,
        }
    }

    #[test]
    fn handlebars_as_ses_uses_it() {
        let p = TemplateParts {
            subject: Some("Hi {{name}}".into()),
            text: Some(
                "{{#each items}}- {{this.title}}\n{{/each}}{{#if vip}}VIP{{else}}regular{{/if}}"
                    .into(),
            ),
            html: Some("<p>{{user.first}} & {{html}}</p>".into()),
        };
        let data = json!({
            "name": "Ann",
            "items": [{"title": "a"}, {"title": "b"}],
            "vip": false,
            "user": {"first": "Ann"},
            "html": "<b>x</b>",
        });
        let r = render(&p, &data).unwrap();
        assert_eq!(r.subject, "Hi Ann");
        assert_eq!(r.text.as_deref(), Some("- a\n- b\nregular"));
        assert_eq!(
            r.html.as_deref(),
            Some("<p>Ann & <b>x</b></p>"),
            "no HTML escaping"
        );
    }

    #[test]
    fn missing_attributes_are_named() {
        let e = render(
            &parts("Hi", "Your favorite animal is {{favoriteanimal}}."),
            &json!({}),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingRenderingAttribute);
        assert_eq!(
            e.message,
            "Attribute 'favoriteanimal' is not present in the rendering data."
        );
        // A missing value in a condition is just false, as in SES.
        let r = render(
            &parts("x", "{{#if missing}}yes{{else}}no{{/if}}"),
            &json!({}),
        )
        .unwrap();
        assert_eq!(r.text.as_deref(), Some("no"));
    }

    #[test]
    fn bad_data_and_templates() {
        assert_eq!(
            parse_data("[1]").unwrap_err().kind,
            ErrorKind::InvalidRenderingParameter
        );
        assert_eq!(
            parse_data("{nope").unwrap_err().kind,
            ErrorKind::InvalidRenderingParameter
        );
        let e = render(&parts("{{#if}}", "x"), &json!({})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTemplate);
    }

    #[test]
    fn a_field_named_raw_renders() {
        let r = render(
            &parts("{{raw}} {{other}}", "t"),
            &json!({"raw": "R", "other": "O"}),
        )
        .unwrap();
        assert_eq!(r.subject, "R O");
    }

    #[test]
    fn bulk_data_merges_over_defaults() {
        let m = merge_data(&json!({"a": 1, "b": 2}), &json!({"b": 3}));
        assert_eq!(m, json!({"a": 1, "b": 3}));
    }
}
