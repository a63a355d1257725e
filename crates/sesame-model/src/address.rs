//! Addresses as callers give them to the send operations: a bare address
//! or a `Display Name <address>` mailbox. Parsing gives SES's own messages
//! (observed on real SES) for each kind of bad address.

use crate::error::{Error, Result};
use std::collections::HashSet;

/// The mailbox simulator's domain.
pub const SIMULATOR_DOMAIN: &str = "simulator.amazonses.com";

/// A parsed mailbox; `raw` keeps the form the caller sent, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub raw: String,
    pub display: Option<String>,
    pub address: String,
}

impl Mailbox {
    pub fn parse(s: &str) -> Result<Self> {
        let raw = s.trim();
        let (display, address) = match raw.rfind('<') {
            Some(i) => {
                let Some(inner) = raw[i + 1..].strip_suffix('>') else {
                    return Err(Error::invalid("Illegal address"));
                };
                let name = raw[..i].trim();
                let quoted = name.len() >= 2 && name.starts_with('"') && name.ends_with('"');
                if !quoted && name.contains([',', ';', '<', '>', '@']) {
                    return Err(Error::invalid("Illegal address"));
                }
                let name = if quoted {
                    &name[1..name.len() - 1]
                } else {
                    name
                };
                ((!name.is_empty()).then(|| name.to_owned()), inner.trim())
            }
            None => (None, raw),
        };
        check_address(address)?;
        Ok(Self {
            raw: raw.to_owned(),
            display,
            address: address.to_owned(),
        })
    }

    pub fn domain(&self) -> String {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The address without a `+label` (`user+x@d` → `user@d`).
    pub fn without_label(&self) -> Option<String> {
        let (local, domain) = self.address.rsplit_once('@')?;
        let (base, _) = local.split_once('+')?;
        Some(format!("{base}@{domain}"))
    }

    /// `success@`, `bounce+x@` … at the mailbox simulator.
    pub fn is_simulator(&self) -> bool {
        self.domain() == SIMULATOR_DOMAIN
    }

    /// The identity names that would cover this address, most specific
    /// first: the address, the address without its `+label`, then its
    /// domain and each parent domain.
    pub fn covering_identities(&self) -> Vec<String> {
        let mut out = vec![self.address.clone()];
        out.extend(self.without_label());
        let domain = self.domain();
        let mut rest = domain.as_str();
        loop {
            out.push(rest.to_owned());
            match rest.split_once('.') {
                Some((_, r)) if r.contains('.') => rest = r,
                _ => break,
            }
        }
        out
    }

    /// Whether a verified identity in `verified` covers this address.
    pub fn is_covered_by(&self, verified: &HashSet<String>) -> bool {
        self.covering_identities()
            .iter()
            .any(|n| verified.contains(n))
    }
}

fn check_address(a: &str) -> Result<()> {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return Err(Error::invalid("Missing final '@domain'"));
    };
    if domain.is_empty() {
        return Err(Error::invalid("Missing domain"));
    }
    if local.is_empty() {
        return Err(Error::invalid("Illegal address"));
    }
    if local.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid(
            "Local address contains control or whitespace",
        ));
    }
    if !local.is_ascii()
        || local.contains(['(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '"'])
    {
        return Err(Error::invalid("Local address contains illegal character"));
    }
    if domain.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid("Domain contains control or whitespace"));
    }
    if !domain.is_ascii() {
        return Err(Error::invalid("Domain contains illegal character"));
    }
    if domain.split('.').any(|l| l.is_empty() || l.len() > 63) || domain.len() > 255 {
        return Err(Error::invalid("Domain contains illegal character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_ses_messages() {
        let m = Mailbox::parse("Sendportal <nagaraj@example.com>").unwrap();
        assert_eq!(m.display.as_deref(), Some("Sendportal"));
        assert_eq!(m.address, "nagaraj@example.com");
        assert_eq!(m.raw, "Sendportal <nagaraj@example.com>");
        let q = Mailbox::parse("\"Chan, Karen\" <k@example.com>").unwrap();
        assert_eq!(q.display.as_deref(), Some("Chan, Karen"));
        for (input, msg) in [
            ("nobody", "Missing final '@domain'"),
            ("a@", "Missing domain"),
            ("Karen, Chan <karen@example.com>", "Illegal address"),
            (
                "a b@example.com",
                "Local address contains control or whitespace",
            ),
            (
                "github:haiodo@example.com",
                "Local address contains illegal character",
            ),
            ("a@exa mple.com", "Domain contains control or whitespace"),
        ] {
            assert_eq!(Mailbox::parse(input).unwrap_err().message, msg, "{input}");
        }
    }

    #[test]
    fn coverage() {
        let m = Mailbox::parse("user+tag@a.b.example.com").unwrap();
        assert_eq!(
            m.covering_identities(),
            vec![
                "user+tag@a.b.example.com",
                "user@a.b.example.com",
                "a.b.example.com",
                "b.example.com",
                "example.com"
            ]
        );
        let verified: HashSet<String> = ["user@a.b.example.com".to_owned()].into();
        assert!(m.is_covered_by(&verified));
        let other = Mailbox::parse("User@a.b.example.com").unwrap();
        assert!(
            !other.is_covered_by(&verified),
            "addresses are case-sensitive"
        );
        assert!(
            Mailbox::parse("bounce+x@simulator.amazonses.com")
                .unwrap()
                .is_simulator()
        );
    }
}
