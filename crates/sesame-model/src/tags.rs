//! Resource tags and SES's rules for them (AWS tagging rules: keys 1..=128
//! characters, values 0..=256, at most 50 per resource, no `aws:` prefix).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

impl Tag {
    pub fn validate(&self) -> Result<()> {
        validate_key(&self.key)?;
        let n = self.value.chars().count();
        if n > 256 || !self.value.chars().all(allowed) {
            return Err(Error::invalid(format!(
                "Invalid tag value <{}>: values may have up to 256 characters: letters, digits, spaces and _ . : / = + - @",
                self.value
            )));
        }
        Ok(())
    }
}

pub fn validate_key(key: &str) -> Result<()> {
    let n = key.chars().count();
    if n == 0 || n > 128 || !key.chars().all(allowed) {
        return Err(Error::invalid(format!(
            "Invalid tag key <{key}>: keys must have 1 to 128 characters: letters, digits, spaces and _ . : / = + - @"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(Error::invalid(format!(
            "Invalid tag key <{key}>: the aws: prefix is reserved for AWS use."
        )));
    }
    Ok(())
}

/// Merges `new` into `existing` (a key already present takes the new value)
/// and checks the result stays within [`MAX_TAGS`].
pub fn merge(existing: &mut Vec<Tag>, new: Vec<Tag>) -> Result<()> {
    for t in &new {
        t.validate()?;
    }
    let mut merged = existing.clone();
    for t in new {
        match merged.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value,
            None => merged.push(t),
        }
    }
    if merged.len() > MAX_TAGS {
        return Err(Error::invalid(format!(
            "Too many tags: a resource can have at most {MAX_TAGS} tags."
        )));
    }
    *existing = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn merge_overwrites_and_limits() {
        let mut tags = vec![tag("a", "1")];
        merge(&mut tags, vec![tag("a", "2"), tag("b", "")]).unwrap();
        assert_eq!(tags, vec![tag("a", "2"), tag("b", "")]);
        let many: Vec<Tag> = (0..49).map(|i| tag(&format!("k{i}"), "v")).collect();
        let err = merge(&mut tags, many).unwrap_err();
        assert!(err.message.contains("at most 50"));
        assert_eq!(tags.len(), 2, "a failed merge changes nothing");
    }

    #[test]
    fn key_rules() {
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(129)).is_err());
        assert!(validate_key("aws:x").is_err());
        assert!(validate_key("team name/x").is_ok());
        assert!(tag("k", &"v".repeat(257)).validate().is_err());
    }
}
