//! Custom verification email templates: the branded email an account sends
//! to verify an address (SendCustomVerificationEmail), and SES's limits on
//! them. Which HTML they may hold is checked in `sesame-core`, which parses
//! it.

use crate::Millis;
use crate::error::{Error, ErrorKind, Result};
use crate::tags::Tag;
use serde::{Deserialize, Serialize};

/// SES's limit of custom verification email templates per account and region.
pub const MAX_CV_TEMPLATES: u32 = 50;
/// The content must be under 10 MB.
pub const MAX_CV_CONTENT_BYTES: usize = 10 * 1024 * 1024;

/// The paragraph SES appends to every custom verification email; it cannot
/// be removed.
pub const DISCLAIMER: &str = "If you did not request to verify this email address, please disregard this message. If you have any concerns, please forward this message to the following email address along with your questions or comments.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomVerificationTemplate {
    pub name: String,
    pub from_email_address: String,
    pub subject: String,
    /// HTML, restricted to SES's tags and attributes.
    pub content: String,
    pub success_redirection_url: String,
    pub failure_redirection_url: String,
    pub created_at: Millis,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

pub fn already_exists(name: &str) -> Error {
    Error::new(
        ErrorKind::CustomVerificationTemplateAlreadyExists,
        format!("Custom verification email template <{name}> already exists"),
    )
}

pub fn does_not_exist(name: &str) -> Error {
    Error::new(
        ErrorKind::CustomVerificationTemplateDoesNotExist,
        format!("Custom verification email template <{name}> does not exist"),
    )
}

pub fn invalid_content(why: impl Into<String>) -> Error {
    Error::new(ErrorKind::CustomVerificationInvalidContent, why)
}

/// The template name follows SES's template-name rule: letters, digits,
/// underscores and hyphens, 1 to 64 characters.
pub fn validate_name(name: &str) -> Result<()> {
    crate::template::validate_name(name)
}

/// A redirection URL must be an absolute http(s) URL.
pub fn validate_url(member: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "http://".len() + 1
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{member} must be an absolute http:// or https:// URL: {url}"
        )))
    }
}

/// Size and subject checks (the HTML itself is checked by the caller).
pub fn validate_size(subject: &str, content: &str) -> Result<()> {
    if subject.trim().is_empty() {
        return Err(invalid_content("The template subject must not be empty."));
    }
    if content.trim().is_empty() {
        return Err(invalid_content("The template content must not be empty."));
    }
    if subject.len() + content.len() >= MAX_CV_CONTENT_BYTES {
        return Err(invalid_content(format!(
            "The template is {} bytes; it must be under 10 MB.",
            subject.len() + content.len()
        )));
    }
    Ok(())
}
