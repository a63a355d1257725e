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

/// The most a template's rendered parts may hold together: SES's message
/// size limit. Output past it fails the rendering instead of being kept.
pub const MAX_RENDERED_BYTES: usize = 10 * 1024 * 1024;

/// The most iterations nested `{{#each}}` loops may run over the data, an
/// upper bound computed before rendering: (values in the data) to the power
/// of the loops' nesting. Loops that write nothing would otherwise spin
/// unbounded by the output limit.
pub const MAX_ITERATIONS: u64 = 10_000_000;

fn rendering_failure(message: String) -> Error {
    Error::new(ErrorKind::InvalidRenderingParameter, message)
}

/// Array elements and object members in `data`, counted without recursion.
fn values_in(data: &Value) -> u64 {
    let mut stack = vec![data];
    let mut n = 0u64;
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => {
                n += a.len() as u64;
                stack.extend(a.iter());
            }
            Value::Object(o) => {
                n += o.len() as u64;
                stack.extend(o.values());
            }
            _ => {}
        }
    }
    n
}

/// A writer that refuses to hold more than `left` bytes.
struct Capped<'a> {
    out: Vec<u8>,
    left: &'a mut usize,
    over: bool,
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > *self.left {
            self.over = true;
            return Err(std::io::Error::other("rendered output over the limit"));
        }
        *self.left -= buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `parts` with `data` (a JSON object). Bounded whatever the
/// template and data: the template's nesting is checked first
/// (`TemplateParts::validate`, for templates stored before the bound too),
/// its loops' iterations are bounded against the data, and the output stops
/// at [`MAX_RENDERED_BYTES`]. Rendering is CPU work: async callers run it
/// through [`render_off_runtime`].
pub fn render(parts: &TemplateParts, data: &Value) -> Result<Rendered, Error> {
    let shape = parts.validate()?;
    if shape.loops > 0 {
        let values = values_in(data).max(1);
        let bound = u32::try_from(shape.loops)
            .ok()
            .and_then(|l| values.checked_pow(l))
            .unwrap_or(u64::MAX);
        if bound > MAX_ITERATIONS {
            return Err(rendering_failure(format!(
                "The template's loops, {} deep, could run {} times over this data's {values} values; at most {MAX_ITERATIONS} are allowed.",
                shape.loops,
                if bound == u64::MAX {
                    "too many".to_owned()
                } else {
                    bound.to_string()
                },
            )));
        }
    }
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    // SES substitutes values as they are, without HTML escaping.
    hb.register_escape_fn(handlebars::no_escape);
    // handlebars-rust registers a `raw` helper, which would shadow a data
    // field of that name; SES's templates have no such helper.
    hb.unregister_helper("raw");
    let mut left = MAX_RENDERED_BYTES;
    let mut one = |s: &Option<String>| -> Result<Option<String>, Error> {
        let Some(t) = s.as_deref() else {
            return Ok(None);
        };
        let mut w = Capped {
            out: Vec::new(),
            left: &mut left,
            over: false,
        };
        let rendered = hb.render_template_to_write(t, data, &mut w);
        if w.over {
            return Err(rendering_failure(format!(
                "The rendered template is larger than {MAX_RENDERED_BYTES} bytes."
            )));
        }
        rendered.map_err(|e| match e.reason() {
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
            other => rendering_failure(format!("The template could not be rendered: {other}")),
        })?;
        String::from_utf8(w.out)
            .map(Some)
            .map_err(|_| rendering_failure("The rendered template is not valid UTF-8.".into()))
    };
    Ok(Rendered {
        subject: one(&parts.subject)?.unwrap_or_default(),
        text: one(&parts.text)?,
        html: one(&parts.html)?,
    })
}

/// [`render`] on the blocking pool, one of the CPU-bound jobs at a time
/// per core, so that rendering never holds up the runtime's other work.
pub async fn render_off_runtime(parts: TemplateParts, data: Value) -> Result<Rendered, Error> {
    crate::cpu::run(move || render(&parts, &data)).await
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
        crate::paging::list(next_token, max, |after, limit| {
            self.store.list_templates(scope, after, limit)
        })
        .await
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
        let r = render_off_runtime(t.parts, parse_data(data)?).await?;
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
    fn rendering_is_bounded() {
        // Too deep to parse or render safely, even if stored before the bound.
        let deep = format!("{}x{}", "{{#if a}}".repeat(2000), "{{/if}}".repeat(2000));
        let e = render(&parts("s", &deep), &json!({"a": true})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTemplate);
        let ok = format!("{}x{}", "{{#if a}}".repeat(100), "{{/if}}".repeat(100));
        assert_eq!(
            render(&parts("s", &ok), &json!({"a": true}))
                .unwrap()
                .text
                .as_deref(),
            Some("x")
        );
        // Nested loops that would run past MAX_ITERATIONS, output or not.
        let loops = parts("s", "{{#each a}}{{#each ../a}}{{/each}}{{/each}}");
        let many: Vec<u32> = (0..8000).collect();
        let e = render(&loops, &json!({"a": many})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRenderingParameter);
        let few: Vec<u32> = (0..100).collect();
        render(&loops, &json!({"a": few})).unwrap();
        // Output stops at the limit, across the parts together.
        let big = "y".repeat(200_000);
        let wide = TemplateParts {
            subject: Some("{{#each a}}{{../b}}{{/each}}".into()),
            text: Some("{{#each a}}{{../b}}{{/each}}".into()),
            html: None,
        };
        let n: Vec<u32> = (0..30).collect();
        let e = render(&wide, &json!({"a": n, "b": big})).unwrap_err();
        assert!(e.message.contains("10485760"), "{}", e.message);
        let n: Vec<u32> = (0..20).collect();
        render(&wide, &json!({"a": n, "b": big})).unwrap();
    }

    #[test]
    fn bulk_data_merges_over_defaults() {
        let m = merge_data(&json!({"a": 1, "b": 2}), &json!({"b": 3}));
        assert_eq!(m, json!({"a": 1, "b": 3}));
    }
}
