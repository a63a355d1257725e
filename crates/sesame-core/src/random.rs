//! Random tokens, all from the operating system's CSPRNG.

use base64::Engine;
use rand_core::{OsRng, RngCore};

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// A domain verification token: 32 random bytes, base64 (44 characters),
/// like SES's `VerificationToken`.
pub fn verification_token() -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes::<32>())
}

/// An Easy DKIM token: 32 characters of `a-z2-7` (base32, 160 bits), usable
/// as a DNS label and a DKIM selector.
pub fn dkim_token() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    bytes::<32>()
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// Characters from `alphabet`, uniformly (rejection sampling).
pub fn string_from(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in bytes::<64>() {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(verification_token().len(), 44);
        let t = dkim_token();
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(dkim_token(), dkim_token());
        let s = string_from(b"AB", 100);
        assert_eq!(s.len(), 100);
        assert!(s.contains('A') && s.contains('B'));
    }
}
