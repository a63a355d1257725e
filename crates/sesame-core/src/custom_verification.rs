//! Custom verification email templates (v1 and v2): their lifecycle, the
//! HTML SES allows in them, and SendCustomVerificationEmail.
//!
//! The HTML is read with html5ever's tokenizer, so the check sees tags and
//! attributes as a browser would; anything outside SES's allow-list, and any
//! comment, is `CustomVerificationEmailInvalidContent`, naming what.

use crate::{AccountService, Clock, IdentityService, internal};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use sesame_model::custom_verification::{
    MAX_CV_TEMPLATES, already_exists, does_not_exist, invalid_content, validate_name,
    validate_size, validate_url,
};
use sesame_model::{CustomVerificationTemplate, Error, ErrorKind, Scope, Tag, tags};
use sesame_store::{Created, Store};
use std::cell::RefCell;
use std::sync::Arc;

/// SES's allowed tags (`shared/reference/custom-verification-html.md`).
/// Every one allows these attributes; the tags in [`EXTRA`] allow more.
const COMMON: &[&str] = &["class", "id", "style", "title"];
const TAGS: &[&str] = &[
    "abbr",
    "acronym",
    "address",
    "area",
    "b",
    "bdo",
    "big",
    "blockquote",
    "body",
    "br",
    "button",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "dfn",
    "dir",
    "div",
    "dl",
    "dt",
    "em",
    "fieldset",
    "font",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "html",
    "i",
    "img",
    "input",
    "ins",
    "kbd",
    "label",
    "legend",
    "li",
    "map",
    "menu",
    "ol",
    "optgroup",
    "option",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "select",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
];
/// The attributes some tags allow beyond [`COMMON`].
const EXTRA: &[(&str, &[&str])] = &[
    ("blockquote", &["cite"]),
    ("col", &["span", "width"]),
    ("colgroup", &["span", "width"]),
    ("img", &["align", "alt", "height", "src", "width"]),
    ("ol", &["start", "type"]),
    ("q", &["cite"]),
    ("table", &["summary", "width"]),
    ("td", &["abbr", "axis", "colspan", "rowspan", "width"]),
    (
        "th",
        &["abbr", "axis", "colspan", "rowspan", "scope", "width"],
    ),
    ("ul", &["type"]),
];

/// Collects the first thing SES would refuse, and the `data:` images the
/// content embeds.
#[derive(Default)]
struct Check {
    problem: RefCell<Option<String>>,
    images: RefCell<Vec<String>>,
}

/// The image types SES turns embedded `data:` images of into attachments.
const IMAGE_TYPES: [(&str, &str); 4] = [
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/jpg", "jpg"),
    ("image/gif", "gif"),
];

/// An image embedded in a template's HTML as a `data:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedImage {
    /// The URI as the HTML writes it.
    pub uri: String,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub data: Vec<u8>,
}

/// A `data:image/…;base64,…` URI of an allowed type, decoded; why not.
pub fn embedded_image(uri: &str) -> Result<EmbeddedImage, String> {
    use base64::Engine;
    let rest = uri
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("data:"))
        .map(|_| &uri[5..])
        .ok_or("not a data: URI")?;
    let (meta, payload) = rest
        .split_once(',')
        .ok_or("a data: URI needs a comma before its data")?;
    let mut params = meta.split(';');
    let kind = params.next().unwrap_or("").to_ascii_lowercase();
    let (content_type, extension) = IMAGE_TYPES
        .iter()
        .find(|(t, _)| *t == kind)
        .copied()
        .ok_or_else(|| {
            format!("the embedded image type '{kind}' is not allowed (png, jpeg or gif)")
        })?;
    if !params.any(|p| p.eq_ignore_ascii_case("base64")) {
        return Err("an embedded image must be base64 (data:image/png;base64,…)".into());
    }
    let clean: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|_| "an embedded image's base64 data does not decode".to_owned())?;
    if data.is_empty() {
        return Err("an embedded image is empty".into());
    }
    Ok(EmbeddedImage {
        uri: uri.to_owned(),
        content_type,
        extension,
        data,
    })
}

impl Check {
    fn refuse(&self, why: String) {
        let mut p = self.problem.borrow_mut();
        if p.is_none() {
            *p = Some(why);
        }
    }
}

impl TokenSink for Check {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CommentToken(_) => {
                self.refuse("HTML comments (<!-- -->) are not allowed.".into());
            }
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                let name = tag.name.to_string();
                if !TAGS.contains(&name.as_str()) {
                    self.refuse(format!("The tag <{name}> is not allowed."));
                    return TokenSinkResult::Continue;
                }
                let extra = EXTRA
                    .iter()
                    .find(|(t, _)| *t == name)
                    .map_or(&[][..], |(_, a)| a);
                for a in &tag.attrs {
                    let attr = a.name.local.to_string();
                    if !COMMON.contains(&attr.as_str()) && !extra.contains(&attr.as_str()) {
                        self.refuse(format!("The attribute {attr} is not allowed on <{name}>."));
                    }
                    let value = a.value.trim();
                    if name == "img"
                        && attr == "src"
                        && value
                            .get(..5)
                            .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
                    {
                        match embedded_image(value) {
                            Ok(_) => self.images.borrow_mut().push(value.to_owned()),
                            Err(why) => self.refuse(format!("{why}.")),
                        }
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Checks a template's HTML against SES's allow-list, and its embedded
/// `data:` images (png, jpeg or gif, base64); the images' URIs.
pub fn check_html(content: &str) -> Result<Vec<String>, Error> {
    let tokenizer = Tokenizer::new(Check::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(content));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    match tokenizer.sink.problem.take() {
        Some(why) => Err(invalid_content(format!(
            "The custom verification email template content is not valid: {why}"
        ))),
        None => Ok(tokenizer.sink.images.take()),
    }
}

/// The content as it is mailed: each embedded `data:` image becomes an
/// inline part (its `src` now `cid:`), as SES converts them.
pub fn inline_images(content: &str) -> Result<(String, Vec<crate::compose::Attachment>), Error> {
    let mut html = content.to_owned();
    let mut parts: Vec<crate::compose::Attachment> = vec![];
    let mut seen: Vec<String> = vec![];
    for uri in check_html(content)? {
        if seen.contains(&uri) {
            continue;
        }
        let image = embedded_image(&uri).map_err(invalid_content)?;
        let cid = format!("image{}@sesame", parts.len() + 1);
        html = html.replace(&uri, &format!("cid:{cid}"));
        parts.push(crate::compose::Attachment {
            file_name: format!("image{}.{}", parts.len() + 1, image.extension),
            content_type: image.content_type.to_owned(),
            inline_content_id: Some(cid),
            data: image.data,
        });
        seen.push(uri);
    }
    Ok((html, parts))
}

/// A template as CreateCustomVerificationEmailTemplate gives it; for an
/// update, members left out keep their stored values.
#[derive(Debug, Clone, Default)]
pub struct CvTemplateInput {
    pub from_email_address: Option<String>,
    pub subject: Option<String>,
    pub content: Option<String>,
    pub success_redirection_url: Option<String>,
    pub failure_redirection_url: Option<String>,
    pub tags: Vec<Tag>,
}

pub struct CustomVerificationService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    accounts: Arc<AccountService>,
}

impl CustomVerificationService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        accounts: Arc<AccountService>,
    ) -> Self {
        Self {
            store,
            clock,
            accounts,
        }
    }

    /// Every check on a complete template, before any write.
    async fn validate(
        &self,
        identities: &IdentityService,
        scope: &Scope,
        t: &CustomVerificationTemplate,
    ) -> Result<(), Error> {
        validate_name(&t.name)?;
        let from = sesame_model::Mailbox::parse(&t.from_email_address)?;
        if from.address != t.from_email_address.trim() {
            // SES's custom verification emails carry no display name.
            return Err(Error::invalid(format!(
                "FromEmailAddress must be a bare email address, without a display name: {}",
                t.from_email_address
            )));
        }
        validate_size(&t.subject, &t.content)?;
        check_html(&t.content)?;
        validate_url("SuccessRedirectionURL", &t.success_redirection_url)?;
        validate_url("FailureRedirectionURL", &t.failure_redirection_url)?;
        if !identities.covers(scope, &t.from_email_address).await? {
            return Err(Error::new(
                ErrorKind::FromEmailAddressNotVerified,
                format!(
                    "The from email address <{}> is not verified",
                    t.from_email_address
                ),
            ));
        }
        Ok(())
    }

    pub async fn create(
        &self,
        identities: &IdentityService,
        scope: &Scope,
        name: &str,
        input: CvTemplateInput,
    ) -> Result<(), Error> {
        let required = |v: Option<String>, member: &str| v.ok_or_else(|| Error::missing(member));
        let mut t = CustomVerificationTemplate {
            name: name.to_owned(),
            from_email_address: required(input.from_email_address, "FromEmailAddress")?,
            subject: required(input.subject, "TemplateSubject")?,
            content: required(input.content, "TemplateContent")?,
            success_redirection_url: required(
                input.success_redirection_url,
                "SuccessRedirectionURL",
            )?,
            failure_redirection_url: required(
                input.failure_redirection_url,
                "FailureRedirectionURL",
            )?,
            created_at: self.clock.now_ms(),
            tags: vec![],
        };
        tags::merge(&mut t.tags, input.tags)?;
        self.validate(identities, scope, &t).await?;
        match self
            .store
            .insert_cv_template(scope, &t, MAX_CV_TEMPLATES)
            .await
            .map_err(internal)?
        {
            Created::Created => Ok(()),
            Created::Exists => Err(already_exists(name)),
            Created::LimitReached => Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Maximum number of custom verification email templates ({MAX_CV_TEMPLATES}) reached in region {}.",
                    scope.region
                ),
            )),
        }
    }

    pub async fn get(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<CustomVerificationTemplate, Error> {
        self.store
            .get_cv_template(scope, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| does_not_exist(name))
    }

    /// Changes the members given; the result is checked whole before it is
    /// written.
    pub async fn update(
        &self,
        identities: &IdentityService,
        scope: &Scope,
        name: &str,
        input: CvTemplateInput,
    ) -> Result<(), Error> {
        let mut t = self.get(scope, name).await?;
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut t.from_email_address, input.from_email_address);
        set(&mut t.subject, input.subject);
        set(&mut t.content, input.content);
        set(
            &mut t.success_redirection_url,
            input.success_redirection_url,
        );
        set(
            &mut t.failure_redirection_url,
            input.failure_redirection_url,
        );
        self.validate(identities, scope, &t).await?;
        if self
            .store
            .update_cv_template(scope, &t)
            .await
            .map_err(internal)?
        {
            Ok(())
        } else {
            Err(does_not_exist(name))
        }
    }

    /// `false` when there was nothing to delete (v1 succeeds anyway; v2
    /// answers NotFound).
    pub async fn delete(&self, scope: &Scope, name: &str) -> Result<bool, Error> {
        self.store
            .delete_cv_template(scope, name)
            .await
            .map_err(internal)
    }

    pub async fn list(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max: u32,
    ) -> Result<(Vec<CustomVerificationTemplate>, Option<String>), Error> {
        crate::paging::list(next_token, max, |after, limit| {
            self.store.list_cv_templates(scope, after, limit)
        })
        .await
    }

    /// SendCustomVerificationEmail: SES's checks in SES's order, then the
    /// email, through delivery like any message. Returns its MessageId.
    pub async fn send(
        &self,
        identities: &IdentityService,
        scope: &Scope,
        address: &str,
        template_name: &str,
        configuration_set: Option<&str>,
    ) -> Result<String, Error> {
        sesame_model::IdentityName::email(address)?;
        let t = self
            .store
            .get_cv_template(scope, template_name)
            .await
            .map_err(internal)?
            .ok_or_else(|| does_not_exist(template_name))?;
        if !identities.covers(scope, &t.from_email_address).await? {
            return Err(Error::new(
                ErrorKind::FromEmailAddressNotVerified,
                format!(
                    "Email address is not verified. The following identities failed the check in region {}: {}",
                    scope.region.upper(),
                    t.from_email_address
                ),
            ));
        }
        if let Some(cs) = configuration_set.filter(|c| !c.is_empty()) {
            return Err(Error::new(
                ErrorKind::ConfigurationSetDoesNotExist,
                format!("Configuration set <{cs}> does not exist."),
            ));
        }
        let account = self.accounts.get(scope).await?;
        if !account.production_access {
            return Err(Error::new(
                ErrorKind::ProductionAccessNotGranted,
                format!(
                    "Custom verification emails can be sent only by accounts with production access; this account is in the sandbox in region {}.",
                    scope.region.upper()
                ),
            ));
        }
        if !account.sending_enabled {
            return Err(Error::new(
                ErrorKind::SendingPaused,
                "Sending is paused for this account.",
            ));
        }
        identities
            .send_custom_verification(scope, address, &t)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    #[test]
    fn embedded_images_are_checked_and_become_inline_parts() {
        let uri = format!("data:image/png;base64,{PNG}");
        let html = format!("<p>Hi</p><img src=\"{uri}\" alt=\"a\"><img src=\"{uri}\">");
        assert_eq!(check_html(&html).unwrap(), vec![uri.clone(), uri.clone()]);
        let (out, parts) = inline_images(&html).unwrap();
        assert_eq!(
            out,
            "<p>Hi</p><img src=\"cid:image1@sesame\" alt=\"a\"><img src=\"cid:image1@sesame\">"
        );
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_type, "image/png");
        assert_eq!(parts[0].inline_content_id.as_deref(), Some("image1@sesame"));
        assert_eq!(&parts[0].data[1..4], b"PNG");
        for (bad, why) in [
            ("data:image/svg+xml;base64,PHN2Zy8+", "not allowed"),
            ("data:image/png;base64,***", "does not decode"),
            ("data:image/gif,GIF89a", "must be base64"),
            ("data:image/png;base64,", "empty"),
        ] {
            let e = check_html(&format!("<img src=\"{bad}\">")).unwrap_err();
            assert_eq!(e.kind, ErrorKind::CustomVerificationInvalidContent);
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
        // Remote images are the sender's business, as in SES.
        assert_eq!(
            check_html("<img src=\"https://x.test/a.png\">").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn html_allow_list() {
        assert!(check_html("<html><body><h1 class=\"x\">Hi</h1><p style=\"c\">Verify <b>now</b></p><img src=\"a.png\" alt=\"a\" width=\"1\"><table summary=\"s\"><tr><td colspan=\"2\">x</td></tr></table></body></html>").is_ok());
        assert!(check_html("plain text & more").is_ok());
        assert!(check_html("<!DOCTYPE html><html></html>").is_ok());
        let refused = |html: &str| check_html(html).unwrap_err();
        let e = refused("<p>hi</p><script>alert(1)</script>");
        assert_eq!(e.kind, ErrorKind::CustomVerificationInvalidContent);
        assert!(e.message.contains("<script>"), "{}", e.message);
        assert!(
            refused("<p>a<!-- hidden --></p>")
                .message
                .contains("comments")
        );
        let e = refused("<a href=\"https://x\">link</a>");
        assert!(e.message.contains("<a>"), "{}", e.message);
        let e = refused("<p onclick=\"x()\">hi</p>");
        assert!(e.message.contains("onclick"), "{}", e.message);
        assert!(refused("<img src=x onerror=y>").message.contains("onerror"));
        assert!(
            refused("<td scope=\"row\">x</td>")
                .message
                .contains("scope")
        );
        assert!(check_html("<th scope=\"row\">x</th>").is_ok());
        assert!(
            refused("<IFRAME src=x></IFRAME>")
                .message
                .contains("iframe")
        );
    }
}
