//! DKIM key pairs: generation for Easy DKIM (RSA-2048 by default, 1024 on
//! request) and validation of BYODKIM private keys (RSA, 1024 to 2048 bits,
//! base64 DER without PEM armour, PKCS#1 or PKCS#8).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sesame_model::{DkimSigningKey, Error, KeyLength};

fn to_model(key: &RsaPrivateKey) -> Result<DkimSigningKey, Error> {
    let private = key
        .to_pkcs8_der()
        .map_err(|e| Error::internal(format!("cannot encode DKIM key: {e}")))?;
    let public = RsaPublicKey::from(key)
        .to_public_key_der()
        .map_err(|e| Error::internal(format!("cannot encode DKIM public key: {e}")))?;
    Ok(DkimSigningKey {
        private_pkcs8_b64: STANDARD.encode(private.as_bytes()),
        public_spki_b64: STANDARD.encode(public.as_bytes()),
        bits: key.n().bits(),
    })
}

/// Generates a key pair; CPU-bound, so it runs on the blocking pool.
pub async fn generate(length: KeyLength) -> Result<DkimSigningKey, Error> {
    tokio::task::spawn_blocking(move || {
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, length.bits())
            .map_err(|e| Error::internal(format!("DKIM key generation failed: {e}")))?;
        to_model(&key)
    })
    .await
    .map_err(|e| Error::internal(format!("DKIM key generation task failed: {e}")))?
}

/// Validates a BYODKIM private key as SES does and derives its public key.
pub fn from_private_b64(b64: &str) -> Result<DkimSigningKey, Error> {
    let invalid = |why: &str| {
        Error::invalid(format!(
            "The DKIM signing private key is invalid: {why}. Provide an RSA private key of 1024 to 2048 bits, base64-encoded DER with no PEM header, footer or line breaks."
        ))
    };
    let der = STANDARD
        .decode(b64)
        .map_err(|_| invalid("it is not valid base64"))?;
    let key = RsaPrivateKey::from_pkcs1_der(&der)
        .or_else(|_| RsaPrivateKey::from_pkcs8_der(&der))
        .map_err(|_| invalid("it is not an RSA private key"))?;
    let bits = key.n().bits();
    if !(1024..=2048).contains(&bits) {
        return Err(invalid(&format!("it has {bits} bits")));
    }
    to_model(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generates_both_lengths_and_round_trips() {
        for len in [KeyLength::Rsa1024, KeyLength::Rsa2048] {
            let k = generate(len).await.unwrap();
            assert_eq!(k.bits, len.bits());
            let again = from_private_b64(&k.private_pkcs8_b64).unwrap();
            assert_eq!(again.public_spki_b64, k.public_spki_b64);
        }
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(
            from_private_b64("not base64!")
                .unwrap_err()
                .message
                .contains("base64")
        );
        assert!(
            from_private_b64("aGVsbG8=")
                .unwrap_err()
                .message
                .contains("not an RSA")
        );
        let small = RsaPrivateKey::new(&mut rand_core::OsRng, 512).unwrap();
        let der = small.to_pkcs8_der().unwrap();
        let e = from_private_b64(&STANDARD.encode(der.as_bytes())).unwrap_err();
        assert!(e.message.contains("512 bits"), "{}", e.message);
    }
}
