//! DKIM: Easy DKIM keys, BYODKIM, enabling signing and changing the key.

use super::*;

pub(super) fn not_dkim_verified(domain: &str) -> Error {
    Error::invalid(format!("Domain {domain} is not verified for DKIM signing."))
}

impl IdentityService {
    /// Sets up Easy DKIM on `identity` with a freshly generated key.
    pub(super) async fn easy_dkim(
        &self,
        identity: &mut Identity,
        length: KeyLength,
    ) -> Result<(), Error> {
        let key = dkim_keys::generate(length).await?;
        let now = self.clock.now_ms();
        let d = &mut identity.dkim;
        d.origin = DkimOrigin::AwsSes;
        if d.tokens.is_empty() {
            d.tokens = (0..3).map(|_| random::dkim_token()).collect();
        }
        d.selector = None;
        d.key = Some(key);
        d.next_key_length = length;
        d.current_key_length = Some(length);
        d.last_key_generation = Some(now);
        d.signing_enabled = true;
        d.status = self.initial_status();
        identity.dns.dkim = Track::restart(now);
        Ok(())
    }

    pub(super) fn byo_dkim(
        &self,
        identity: &mut Identity,
        selector: &str,
        private_key: &str,
    ) -> Result<(), Error> {
        check_selector(selector)?;
        let key = dkim_keys::from_private_b64(private_key)?;
        let d = &mut identity.dkim;
        d.current_key_length = match key.bits {
            1024 => Some(KeyLength::Rsa1024),
            2048 => Some(KeyLength::Rsa2048),
            _ => None,
        };
        d.origin = DkimOrigin::External;
        d.tokens = vec![];
        d.selector = Some(selector.to_owned());
        d.key = Some(key);
        d.last_key_generation = Some(self.clock.now_ms());
        d.signing_enabled = true;
        d.status = self.initial_status();
        identity.dns.dkim = Track::restart(self.clock.now_ms());
        Ok(())
    }

    /// v1 VerifyDomainDkim: creates the domain if needed and sets up Easy
    /// DKIM; returns the three tokens.
    pub async fn verify_domain_dkim(
        &self,
        scope: &Scope,
        domain: &str,
    ) -> Result<Vec<String>, Error> {
        let name = IdentityName::domain(domain)?;
        let mut fresh = self.new_identity(name.clone());
        self.easy_dkim(&mut fresh, KeyLength::Rsa2048).await?;
        match self.insert(scope, &fresh).await? {
            Insert::Inserted => Ok(fresh.dkim.tokens),
            Insert::Exists(existing)
                if existing.dkim.origin == DkimOrigin::AwsSes
                    && !existing.dkim.tokens.is_empty() =>
            {
                Ok(existing.dkim.tokens)
            }
            Insert::Exists(_) => {
                let dkim = fresh.dkim.clone();
                let updated = self
                    .modify(
                        scope,
                        name.as_str(),
                        || not_found(name.as_str()),
                        |i| {
                            i.dkim = dkim.clone();
                            Ok(())
                        },
                    )
                    .await?;
                Ok(updated.dkim.tokens)
            }
            Insert::LimitReached => unreachable!("insert maps LimitReached to an error"),
        }
    }

    /// v1 SetIdentityDkimEnabled and v2 PutEmailIdentityDkimAttributes.
    /// Enabling needs DKIM set up on the domain (for an address: on its domain).
    pub async fn set_dkim_enabled(
        &self,
        scope: &Scope,
        name: &str,
        enabled: bool,
    ) -> Result<(), Error> {
        let key = lookup_key(name);
        let domain = key
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or(key.clone());
        if enabled && key.contains('@') {
            let parent = self
                .store
                .get_identity(scope, &domain)
                .await
                .map_err(internal)?;
            if !parent.is_some_and(|p| p.dkim.is_set_up()) {
                return Err(not_dkim_verified(&domain));
            }
        }
        self.modify(
            scope,
            &key,
            || not_dkim_verified(&domain),
            |i| {
                if enabled && i.kind() == IdentityKind::Domain && !i.dkim.is_set_up() {
                    return Err(not_dkim_verified(&domain));
                }
                i.dkim.signing_enabled = enabled;
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// v2 PutEmailIdentityDkimSigningAttributes: switch between Easy DKIM
    /// and BYODKIM, or change Easy DKIM's key length (at most once a day).
    pub async fn put_dkim_signing(
        &self,
        scope: &Scope,
        name: &str,
        req: DkimRequest,
    ) -> Result<Identity, Error> {
        let current = self.get(scope, name).await?;
        if current.kind() != IdentityKind::Domain {
            return Err(Error::invalid(format!(
                "DKIM signing attributes can only be set on a domain identity; {name} is an email address."
            )));
        }
        let now = self.clock.now_ms();
        let mut staged = current.clone();
        match &req {
            DkimRequest::External {
                selector,
                private_key,
            } => self.byo_dkim(&mut staged, selector, private_key)?,
            DkimRequest::Easy(len) => {
                let d = &current.dkim;
                let easy_now = d.origin == DkimOrigin::AwsSes && d.key.is_some();
                let wanted = len.unwrap_or(d.next_key_length);
                if easy_now {
                    match len {
                        None => return Ok(current),
                        Some(l) if *l == d.next_key_length => {
                            return Err(Error::invalid(format!(
                                "The input you provided is invalid: the signing key length is already {} bits.",
                                l.bits()
                            )));
                        }
                        Some(_) => {
                            if d.key_length_changed_at.is_some_and(|t| now - t < DAY_MS) {
                                return Err(Error::invalid(
                                    "The input you provided is invalid: the signing key length can be changed only once every 24 hours.",
                                ));
                            }
                        }
                    }
                }
                self.easy_dkim(&mut staged, wanted).await?;
                if easy_now {
                    staged.dkim.key_length_changed_at = Some(now);
                }
            }
        }
        let dkim = staged.dkim;
        self.modify(
            scope,
            name,
            || not_found(name),
            |i| {
                i.dkim = dkim.clone();
                Ok(())
            },
        )
        .await
    }
}

pub(super) fn check_selector(s: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid DKIM selector {s}: it must be 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen."
        )))
    }
}
