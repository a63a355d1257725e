//! DKIM signing: the sender's identities, the signer of the most specific
//! verified one that signs, signatures shared by a message's domains, and
//! the VERP return path.

use super::*;

/// A DKIM signing key. aws-lc-rs signs RSA keys of 2048 bits and more;
/// SES's 1024-bit Easy DKIM keys are signed with the `rsa` crate.
pub(super) enum SigningKey {
    Fast(RsaKey<Sha256>),
    Small(Box<rsa::RsaPrivateKey>),
}

/// DigestInfo prefix of a SHA-256 hash in a PKCS#1 v1.5 signature.
pub(super) const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl mail_auth::common::crypto::SigningKey for SigningKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl mail_auth::common::headers::Writable) -> mail_auth::Result<Vec<u8>> {
        match self {
            Self::Fast(k) => k.sign(input),
            Self::Small(k) => {
                use sha2::Digest;
                let mut data = Vec::with_capacity(256);
                input.write(&mut data);
                let digest = sha2::Sha256::digest(&data);
                let scheme = rsa::Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: SHA256_DIGEST_INFO.into(),
                };
                // With a random number generator the `rsa` crate blinds
                // the private-key operation; without one it runs
                // unblinded, and its timing depends on the key
                // (RUSTSEC-2023-0071).
                k.sign_with_rng(&mut rand_core::OsRng, scheme, &digest)
                    .map_err(|e| {
                        mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
                            e.to_string(),
                        ))
                    })
            }
        }
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        mail_auth::common::crypto::Algorithm::RsaSha256
    }
}

/// The headers a signature covers, when present.
pub(super) const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
];

/// Signatures shared by the deliveries of one message. A message to
/// several domains becomes one delivery a domain, and each would sign the
/// same bytes with the same key: the first to get here signs, the others
/// wait for it and reuse the header. An entry goes when every domain has
/// taken it, or when [`SharedSignatures::KEEP`] newer ones push it out
/// (when the others never come: after a restart, a requeued delivery finds
/// its message's other domains delivered before it). A retry signs afresh.
pub(super) struct SharedSignatures {
    pub(super) inner: Mutex<SharedInner>,
}

#[derive(Default)]
pub(super) struct SharedInner {
    pub(super) cells: HashMap<(Scope, String), SharedEntry>,
    /// Keys in the order they came, for pushing out the oldest; may name
    /// keys already gone.
    pub(super) order: VecDeque<(Scope, String)>,
}

pub(super) struct SharedEntry {
    pub(super) signer: Arc<Signer>,
    pub(super) cell: SignatureCell,
    /// Deliveries yet to take it.
    pub(super) takers: usize,
}

impl SharedSignatures {
    /// Entries kept at most (a header is about 500 bytes).
    pub(super) const KEEP: usize = 4096;

    pub(super) fn new() -> Self {
        Self {
            inner: Mutex::new(SharedInner::default()),
        }
    }

    /// The cell for `message` signed by `signer`, made for `domains`
    /// deliveries when it is new. `None` when the entry there was made with
    /// another signer (the key changed in between): sign afresh.
    pub(super) fn take(
        &self,
        scope: &Scope,
        message: &str,
        signer: &Arc<Signer>,
        domains: usize,
    ) -> Option<SignatureCell> {
        let mut inner = self.inner.lock().ok()?;
        let key = (scope.clone(), message.to_owned());
        if let Some(e) = inner.cells.get_mut(&key) {
            if !Arc::ptr_eq(&e.signer, signer) {
                return None;
            }
            let cell = e.cell.clone();
            e.takers = e.takers.saturating_sub(1);
            if e.takers == 0 {
                inner.cells.remove(&key);
            }
            return Some(cell);
        }
        let cell = SignatureCell::default();
        inner.cells.insert(
            key.clone(),
            SharedEntry {
                signer: signer.clone(),
                cell: cell.clone(),
                takers: domains.saturating_sub(1),
            },
        );
        inner.order.push_back(key);
        while inner.cells.len() > Self::KEEP || inner.order.len() > 2 * Self::KEEP {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.cells.remove(&oldest);
        }
        Some(cell)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.lock().unwrap().cells.len()
    }
}

/// How many recipient domains of the message sign: all but the mailbox
/// simulator's, compared as the queue groups them (ASCII case-blind).
pub(super) fn signing_domains(destinations: &[String]) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    for r in destinations {
        let domain = recipient_domain(r);
        if !domain.eq_ignore_ascii_case(SIMULATOR_DOMAIN)
            && !seen.iter().any(|s| s.eq_ignore_ascii_case(domain))
        {
            seen.push(domain);
        }
    }
    seen.len()
}

impl DeliveryEngine {
    /// The message's DKIM-Signature header. A first attempt at a message
    /// with several signing domains shares one signature among them
    /// ([`SharedSignatures`]); anything else signs on its own.
    pub(super) async fn signature(
        &self,
        d: &QueuedDelivery,
        signer: SignerFor,
    ) -> Result<Option<Arc<str>>, tokio::task::JoinError> {
        // A lone recipient, or a retry, never shares: no need to count.
        let domains = match d.attempts == 0 && d.destinations.len() > 1 {
            true => signing_domains(&d.destinations),
            false => 1,
        };
        let cell = (domains > 1)
            .then(|| {
                self.shared
                    .take(&d.scope, &d.message_id, &signer.signer, domains)
            })
            .flatten();
        let Some(cell) = cell else {
            return self.sign_now(d, signer).await;
        };
        cell.get_or_try_init(|| self.sign_now(d, signer))
            .await
            .cloned()
    }

    /// Signs on the blocking pool: RSA is CPU work (0.4–0.8 ms for 2048
    /// bits), which must never stall the runtime's workers, which serve
    /// requests and the store's writer. The pool gets the message's
    /// shared bytes, not a copy.
    pub(super) async fn sign_now(
        &self,
        d: &QueuedDelivery,
        signer: SignerFor,
    ) -> Result<Option<Arc<str>>, tokio::task::JoinError> {
        let (raw, message_id) = (d.raw.clone(), d.message_id.clone());
        let made = self.signatures_made.clone();
        tokio::task::spawn_blocking(move || {
            let header = header(&raw, &message_id, &signer);
            if header.is_some() {
                made.increment(1);
            }
            header
        })
        .await
    }

    /// The identities that could cover the sender, most specific first
    /// (the address, then its domain and each parent), those that exist.
    pub(super) async fn sender_identities(&self, d: &QueuedDelivery) -> Vec<Arc<Identity>> {
        let Ok(mailbox) = sesame_model::Mailbox::parse(&d.source) else {
            return vec![];
        };
        let candidates = mailbox.covering_identities();
        let found = match self.store.get_identities(&d.scope, &candidates).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "could not read the sender's identities");
                return vec![];
            }
        };
        candidates
            .iter()
            .filter_map(|c| found.iter().find(|i| i.name.as_str() == c).cloned())
            .collect()
    }

    /// The VERP return path, `<message-id>@<domain>`, so that an
    /// asynchronous bounce names the message it is about. The domain is the
    /// custom MAIL FROM domain of the sender's most specific verified
    /// identity when that is verified, else the default bounce domain.
    pub fn return_path(&self, d: &QueuedDelivery, identities: &[Arc<Identity>]) -> String {
        let domain = sesame_model::identity::most_specific_verified(identities)
            .and_then(|i| i.mail_from.verified_domain())
            .unwrap_or(&self.settings.bounce_domain);
        format!("{}@{}", d.message_id, domain)
    }

    /// The signer of the most specific verified domain identity that signs.
    pub(super) fn signer_for(
        &self,
        d: &QueuedDelivery,
        identities: &[Arc<Identity>],
    ) -> Option<SignerFor> {
        let identity =
            sesame_model::identity::most_specific_verified(identities.iter().filter(|i| signs(i)))?;
        let domain = identity.name.as_str().to_owned();
        let selector = match identity.dkim.origin {
            DkimOrigin::AwsSes => identity.dkim.tokens.first()?.clone(),
            DkimOrigin::External => identity.dkim.selector.clone()?,
        };
        let key = (d.scope.clone(), domain.clone(), identity.version);
        if let Some(s) = self.signers.lock().ok()?.get(&key) {
            return Some(SignerFor {
                domain,
                selector,
                signer: s.clone(),
            });
        }
        let signer = match build_signer(identity, &domain, &selector) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(%domain, error = %e, "unusable DKIM key; sending unsigned");
                return None;
            }
        };
        let mut cache = self.signers.lock().ok()?;
        if cache.len() > 10_000 {
            cache.clear();
        }
        // Another attempt may have parsed the same key meanwhile: all use
        // the first, so that they can share a message's signature.
        let signer = cache.entry(key).or_insert(signer).clone();
        Some(SignerFor {
            domain,
            selector,
            signer,
        })
    }
}

/// A signer and what it signs as, for logs.
pub(super) struct SignerFor {
    pub(super) domain: String,
    pub(super) selector: String,
    pub(super) signer: Arc<Signer>,
}

/// The DKIM-Signature header for `raw`, or `None` to send the message as
/// it is when signing fails.
pub(super) fn header(raw: &[u8], message_id: &str, s: &SignerFor) -> Option<Arc<str>> {
    match s.signer.sign(raw) {
        Ok(sig) => Some(sig.to_header().into()),
        Err(e) => {
            tracing::error!(message = %message_id, domain = %s.domain,
                selector = %s.selector, error = %e, "DKIM signing failed; sending unsigned");
            None
        }
    }
}

/// Whether a domain identity signs outgoing mail: verified, with DKIM
/// verified and enabled, and a key.
/// Whether a domain identity can sign: its DKIM is verified and enabled
/// and it has a key. (Whether it is verified itself is
/// `most_specific_verified`'s to decide.)
pub(super) fn signs(i: &Identity) -> bool {
    i.name.kind() == IdentityKind::Domain
        && i.dkim.status == VerificationStatus::Success
        && i.dkim.signing_enabled
        && i.dkim.key.is_some()
}

pub(super) fn build_signer(
    identity: &Identity,
    domain: &str,
    selector: &str,
) -> Result<Signer, String> {
    use base64::Engine;
    let key = identity.dkim.key.as_ref().ok_or("no key")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key.private_pkcs8_b64)
        .map_err(|e| e.to_string())?;
    let key = if key.bits >= 2048 {
        let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
        SigningKey::Fast(RsaKey::<Sha256>::from_key_der(pkcs8.into()).map_err(|e| e.to_string())?)
    } else {
        use rsa::pkcs8::DecodePrivateKey;
        SigningKey::Small(Box::new(
            rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| e.to_string())?,
        ))
    };
    Ok(DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed))
}
