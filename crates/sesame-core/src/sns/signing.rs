//! The key SNS notifications are signed with, and its certificate.
//!
//! Made once (RSA-2048, on the blocking pool) and kept in the store, so
//! that every restart, and every node, signs with the same key and serves
//! the same certificate. The certificate is self-signed, for
//! `sns.sesame.invalid`: consumers verify the signature with the key it
//! carries, fetched from `SigningCertURL`, as they do SNS's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sesame_model::Error;
use sesame_model::sns::Envelope;
use sesame_store::Store;

/// The store's name for the key and certificate.
const KEY_NAME: &str = "sns-signing";

pub struct Signer {
    /// SHA1withRSA (version 1) with the pure-Rust `rsa` crate: aws-lc-rs
    /// signs no SHA-1.
    key: RsaPrivateKey,
    /// The same key in aws-lc, for SHA256withRSA (version 2), about five
    /// times faster.
    fast: aws_lc_rs::signature::RsaKeyPair,
    /// PEM.
    certificate: String,
    /// The certificate's file name at `SigningCertURL`:
    /// `SimpleNotificationService-<hash>.pem`, as SNS names its own.
    cert_name: String,
}

impl Signer {
    /// The stored key, or a new one stored for good (two processes racing
    /// both keep the first one stored).
    pub async fn load(store: &dyn Store, now: sesame_model::Millis) -> Result<Self, Error> {
        let stored = match store.get_own_key(KEY_NAME).await.map_err(crate::internal)? {
            Some(s) => s,
            None => {
                let made = tokio::task::spawn_blocking(make)
                    .await
                    .map_err(|e| Error::internal(format!("SNS key task failed: {e}")))??;
                store
                    .put_own_key(KEY_NAME, &made, now)
                    .await
                    .map_err(crate::internal)?
            }
        };
        Self::from_stored(&stored)
    }

    fn from_stored(stored: &str) -> Result<Self, Error> {
        let corrupt = |why: String| Error::internal(format!("stored SNS signing key: {why}"));
        let split = stored
            .find("-----BEGIN CERTIFICATE-----")
            .ok_or_else(|| corrupt("no certificate".into()))?;
        let (key_pem, cert) = stored.split_at(split);
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem).map_err(|e| corrupt(e.to_string()))?;
        let der = key.to_pkcs8_der().map_err(|e| corrupt(e.to_string()))?;
        let fast = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| corrupt(e.to_string()))?;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(cert.as_bytes());
        let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            key,
            fast,
            certificate: cert.to_owned(),
            cert_name: format!("SimpleNotificationService-{hash}.pem"),
        })
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate
    }

    pub fn cert_name(&self) -> &str {
        &self.cert_name
    }

    /// The envelope's `Signature`: SHA1withRSA for version 1, SHA256withRSA
    /// for version 2, over its string to sign, base64.
    pub fn sign(&self, e: &Envelope) -> Result<String, Error> {
        let text = e.string_to_sign();
        let fail = |e: String| Error::internal(format!("SNS signature failed: {e}"));
        let signed = if e.signature_version == 2 {
            let mut sig = vec![0; self.fast.public_modulus_len()];
            self.fast
                .sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    text.as_bytes(),
                    &mut sig,
                )
                .map_err(|e| fail(e.to_string()))?;
            sig
        } else {
            let hash = <sha1::Sha1 as sha1::Digest>::digest(text.as_bytes());
            self.key
                .sign(Pkcs1v15Sign::new::<sha1::Sha1>(), &hash)
                .map_err(|e| fail(e.to_string()))?
        };
        Ok(STANDARD.encode(signed))
    }
}

/// A new key (PKCS#8 PEM) followed by its self-signed certificate (PEM).
fn make() -> Result<String, Error> {
    let fail = |e: String| Error::internal(format!("cannot make the SNS signing key: {e}"));
    let key = RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|e| fail(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| fail(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["sns.sesame.invalid".to_owned()])
        .map_err(|e| fail(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sns.sesame.invalid");
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let cert = params.self_signed(&pair).map_err(|e| fail(e.to_string()))?;
    Ok(format!("{}{}", pem.as_str(), cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;
    use sesame_model::sns::MessageType;

    #[test]
    fn signs_both_versions_verifiably() {
        let signer = Signer::from_stored(&make().unwrap()).unwrap();
        assert!(signer.cert_name().starts_with("SimpleNotificationService-"));
        assert!(signer.certificate_pem().contains("BEGIN CERTIFICATE"));
        let mut e = Envelope {
            kind: MessageType::Notification,
            message_id: "id".into(),
            topic_arn: "arn".into(),
            subject: Some("s".into()),
            message: "m".into(),
            timestamp: "t".into(),
            signature_version: 1,
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: None,
            subscribe_url: None,
            token: None,
            subscription_arn: None,
        };
        let public = RsaPublicKey::from(&signer.key);
        let sig = STANDARD.decode(signer.sign(&e).unwrap()).unwrap();
        let h1 = <sha1::Sha1 as sha1::Digest>::digest(e.string_to_sign().as_bytes());
        public
            .verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &h1, &sig)
            .unwrap();
        e.signature_version = 2;
        let sig = STANDARD.decode(signer.sign(&e).unwrap()).unwrap();
        let h2 = <rsa::sha2::Sha256 as rsa::sha2::Digest>::digest(e.string_to_sign().as_bytes());
        public
            .verify(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &h2, &sig)
            .unwrap();
    }
}
