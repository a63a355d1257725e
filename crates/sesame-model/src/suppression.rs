//! The account-level suppression list: addresses SES will not deliver to
//! because they bounced hard or complained. Which reasons put an address on
//! the list, and which entries a send honours, is the account's setting
//! (both reasons by default, as for SES accounts since 2019), overridden by
//! a configuration set's SuppressionOptions.

use crate::{Error, ErrorKind, Millis};
use serde::{Deserialize, Serialize};

/// Why an address is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    Bounce,
    Complaint,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounce => "BOUNCE",
            Self::Complaint => "COMPLAINT",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BOUNCE" => Some(Self::Bounce),
            "COMPLAINT" => Some(Self::Complaint),
            _ => None,
        }
    }
}

/// The reasons a new account suppresses for.
pub const DEFAULT_REASONS: [Reason; 2] = [Reason::Bounce, Reason::Complaint];

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressedDestination {
    /// Lower-cased: the list matches addresses without regard to case.
    pub address: String,
    pub reason: Reason,
    pub last_update: Millis,
    /// The message and feedback that put it there, when an event did.
    pub message_id: Option<String>,
    pub feedback_id: Option<String>,
}

/// The list's key for an address.
pub fn key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// Checks an address given to the suppression list's operations.
pub fn check_address(address: &str) -> Result<String, Error> {
    let m = crate::Mailbox::parse(address)?;
    if m.display.is_some() || m.address.len() > 320 {
        return Err(Error::invalid(format!("Invalid email address: {address}")));
    }
    Ok(key(&m.address))
}

pub fn not_on_list(address: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("Email address {address} does not exist on your suppression list."),
    )
}

/// Filters for listing the suppression list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionQuery {
    /// Empty: every reason.
    pub reasons: Vec<Reason>,
    pub start: Option<Millis>,
    pub end: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_without_case() {
        assert_eq!(check_address("Bob@Example.COM").unwrap(), "bob@example.com");
        assert!(check_address("not an address").is_err());
        assert!(check_address("Bob <bob@example.com>").is_err());
        assert_eq!(Reason::parse("BOUNCE"), Some(Reason::Bounce));
        assert_eq!(Reason::Complaint.as_str(), "COMPLAINT");
    }
}
