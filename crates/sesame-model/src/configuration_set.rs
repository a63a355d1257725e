//! Configuration sets: named groups of sending rules a send may name. What
//! a set says that Sesame carries out is here; options Sesame cannot carry
//! out yet are refused where they are set (in the use case), never stored
//! and ignored.

use crate::error::{Error, ErrorKind, Result};
use crate::{Millis, Tag};
use serde::{Deserialize, Serialize};

/// SES's quota of configuration sets per account and region.
pub const MAX_CONFIGURATION_SETS: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigurationSet {
    pub name: String,
    pub created_at: Millis,
    /// When false, sends that name the set are refused.
    pub sending_enabled: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ConfigurationSet {
    pub fn new(name: &str, created_at: Millis) -> Self {
        Self {
            name: name.to_owned(),
            created_at,
            sending_enabled: true,
            tags: vec![],
        }
    }
}

/// SES's rule for configuration set names: letters, digits, `_` and `-`,
/// 1 to 64 characters.
pub fn validate_name(name: &str) -> Result<()> {
    if crate::template::is_ses_name(name) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidConfigurationSet,
            format!(
                "Configuration set name <{name}> is invalid: it must have 1 to 64 characters: letters, digits, '_' and '-'."
            ),
        ))
    }
}

pub fn does_not_exist(name: &str) -> Error {
    Error::new(
        ErrorKind::ConfigurationSetDoesNotExist,
        format!("Configuration set <{name}> does not exist."),
    )
}

pub fn already_exists(name: &str) -> Error {
    Error::new(
        ErrorKind::ConfigurationSetAlreadyExists,
        format!("Configuration set <{name}> already exists."),
    )
}

/// A send naming a set whose sending is disabled.
pub fn sending_paused(name: &str) -> Error {
    Error::new(
        ErrorKind::ConfigurationSetSendingPaused,
        format!("Sending is paused for the configuration set <{name}>."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("my-set_1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        assert_eq!(
            validate_name("a.b").unwrap_err().kind,
            ErrorKind::InvalidConfigurationSet
        );
    }
}
