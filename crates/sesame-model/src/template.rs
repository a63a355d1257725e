//! Email templates: named subject, text and HTML parts with Handlebars
//! placeholders, and SES's limits on them.

use crate::Millis;
use crate::error::{Error, Result};
use crate::tags::Tag;
use serde::{Deserialize, Serialize};

/// SES's limit of templates per account and region.
pub const MAX_TEMPLATES: u32 = 10_000;
/// SES's limit on a template's total size.
pub const MAX_TEMPLATE_BYTES: usize = 500 * 1024;

/// A template's three parts; any may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParts {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl TemplateParts {
    pub fn size(&self) -> usize {
        [&self.subject, &self.text, &self.html]
            .iter()
            .map(|p| p.as_ref().map_or(0, String::len))
            .sum()
    }

    pub fn validate(&self) -> Result<()> {
        if self.size() > MAX_TEMPLATE_BYTES {
            return Err(Error::new(
                crate::ErrorKind::InvalidTemplate,
                format!(
                    "Template is {} bytes; the maximum is {MAX_TEMPLATE_BYTES}.",
                    self.size()
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub parts: TemplateParts,
    pub created_at: Millis,
    pub tags: Vec<Tag>,
}

/// SES's template names: 1 to 64 ASCII letters, digits, `_` and `-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid template name <{name}>: it must have 1 to 64 characters: letters, digits, '_' and '-'."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_size() {
        assert!(validate_name("welcome_v2-en").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        let big = TemplateParts {
            html: Some("x".repeat(MAX_TEMPLATE_BYTES + 1)),
            ..Default::default()
        };
        assert_eq!(
            big.validate().unwrap_err().kind,
            crate::ErrorKind::InvalidTemplate
        );
    }
}
