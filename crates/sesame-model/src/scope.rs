//! Accounts and regions. Every resource in Sesame belongs to one account in
//! one region; a region is a fresh start, as in SES.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A 12-digit AWS-style account ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "Account ID {s} is not valid: it must be 12 digits."
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The regions SES serves its API in (AWS General Reference, "Amazon Simple
/// Email Service endpoints and quotas"): the ones Sesame answers in unless
/// the operator names others (`--regions`).
pub const SES_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

/// A region name as it appears in a SigV4 credential scope, e.g. `us-east-1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Region(String);

impl Region {
    /// Accepts lower-case letters, digits and dashes, 1..=32 characters,
    /// starting with a letter: every AWS region name has this form.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "Region {s} is not a valid region name."
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form SES uses in messages: `US-EAST-1`.
    pub fn upper(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The (account, region) pair that owns a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub account: AccountId,
    pub region: Region,
}

impl Scope {
    pub fn new(account: AccountId, region: Region) -> Self {
        Self { account, region }
    }
    /// `arn:aws:ses:{region}:{account}:{resource}`.
    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ses:{}:{}:{resource}", self.region, self.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
    }

    #[test]
    fn regions() {
        assert_eq!(Region::parse("eu-west-1").unwrap().upper(), "EU-WEST-1");
        assert!(Region::parse("EU-west-1").is_err());
        assert!(Region::parse("").is_err());
        assert!(Region::parse("us east").is_err());
    }
}
