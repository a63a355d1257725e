//! Access keys: the credentials SigV4 requests are signed with. Each belongs
//! to one account.

use crate::Millis;
use crate::scope::AccountId;
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub account: AccountId,
    pub created_at: Millis,
}

impl fmt::Debug for AccessKey {
    // The secret never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let k = AccessKey {
            id: "AKIA".into(),
            secret: "topsecret".into(),
            account: AccountId::parse("123456789012").unwrap(),
            created_at: 0,
        };
        assert!(!format!("{k:?}").contains("topsecret"));
    }
}
