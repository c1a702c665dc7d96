//! Upstream keys sealed at rest: AES-256-GCM under `SECRETS_KEY`.
//!
//! A sealed key is `0x01 ‖ nonce (12 bytes, random) ‖ ciphertext ‖ tag (16 bytes)`. The
//! credential's id is the associated data, so a sealed key copied onto another credential's
//! row does not open. The store only ever sees sealed bytes; the key is opened for each
//! request that sends it and wiped from memory afterwards ([`Zeroizing`]).
//!
//! Generate a key with `openssl rand -base64 32` (or 64 hex digits). Lose it and every stored
//! credential must be entered again; keep it in your secret manager, apart from database
//! backups.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use budget_core::credential::{CredentialId, CredentialKind, SealedSecret};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The format version byte in front of every sealed key.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// The 32-byte key from `SECRETS_KEY`.
pub struct SecretsKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(***)")
    }
}

impl SecretsKey {
    /// Read `SECRETS_KEY`: 32 bytes as standard base64 (`openssl rand -base64 32`) or as 64
    /// hex digits. The error says what was wrong, never what was given.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes: Zeroizing<Vec<u8>> =
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                Zeroizing::new(
                    (0..32)
                        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0))
                        .collect(),
                )
            } else {
                Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|_| {
                            "must be 32 random bytes as base64 (generate one with `openssl rand \
                         -base64 32`) or as 64 hex digits"
                                .to_owned()
                        })?,
                )
            };
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "must be exactly 32 bytes; this one is {} (generate one with `openssl rand \
                 -base64 32`)",
                bytes.len()
            )
        })?;
        if key.iter().all(|b| *b == key[0]) {
            return Err("is not random (every byte is the same)".to_owned());
        }
        Ok(SecretsKey(Zeroizing::new(key)))
    }
}

/// Why a sealed key did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed key of a format this server knows.
    #[error("not a sealed key of a known format")]
    Format,
    /// Authentication failed: another `SECRETS_KEY`, or the bytes were changed.
    #[error("it does not decrypt with this SECRETS_KEY (another key, or altered bytes)")]
    WrongKey,
}

/// Seals and opens upstream keys.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

fn aad(id: CredentialId) -> Vec<u8> {
    let mut aad = b"budget-credential:".to_vec();
    aad.extend_from_slice(id.0.as_bytes());
    aad
}

impl Sealer {
    /// A sealer under `key`.
    pub fn new(key: &SecretsKey) -> Self {
        Sealer {
            cipher: Aes256Gcm::new_from_slice(key.0.as_slice()).expect("a 32-byte key"),
        }
    }

    /// Seal `secret` for credential `id`.
    pub fn seal(&self, id: CredentialId, secret: &str) -> SealedSecret {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(id);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        SealedSecret(out)
    }

    /// Open what [`seal`](Self::seal) made for the same `id`.
    pub fn open(
        &self,
        id: CredentialId,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<String>, OpenError> {
        let bytes = &sealed.0;
        if bytes.len() < 1 + NONCE_LEN + 16 || bytes[0] != VERSION {
            return Err(OpenError::Format);
        }
        let aad = aad(id);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&bytes[1..1 + NONCE_LEN]),
                Payload {
                    msg: &bytes[1 + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::WrongKey)?;
        let plain = Zeroizing::new(plain);
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Format)
    }
}

/// Check an upstream key as typed: 8 to 1024 visible ASCII characters (it goes into an HTTP
/// header as it is). The error never repeats the key.
pub fn check_key(kind: CredentialKind, key: &str) -> Result<(), String> {
    if !(8..=1024).contains(&key.len()) {
        return Err("must be 8 to 1024 characters".into());
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII characters without spaces".into());
    }
    if kind == CredentialKind::Openai && key.starts_with("Bearer ") {
        return Err("give the key itself, without `Bearer `".into());
    }
    Ok(())
}

/// What may be shown of a key: `…` and its last four characters.
pub fn hint(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// `sha256:` and the first 12 hex digits of the key's SHA-256: compare with
/// `printf %s "$KEY" | sha256sum` to see which key is installed.
pub fn fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretsKey {
        let mut k = [byte; 32];
        k[0] = byte.wrapping_add(1);
        SecretsKey(Zeroizing::new(k))
    }

    #[test]
    fn seal_and_open_round_trip_bound_to_the_id() {
        let sealer = Sealer::new(&key(7));
        let id = CredentialId::new();
        let sealed = sealer.seal(id, "sk-proj-abcdefghijklmnop");
        assert!(
            !sealed.0.windows(8).any(|w| w == b"abcdefgh"),
            "no plaintext in the sealed bytes"
        );
        assert_eq!(
            sealer.open(id, &sealed).unwrap().as_str(),
            "sk-proj-abcdefghijklmnop"
        );
        // Two seals of one key differ (random nonce).
        assert_ne!(sealer.seal(id, "k").0, sealer.seal(id, "k").0);
        // Another id, another key, or a flipped bit: refused, never garbage.
        assert!(matches!(
            sealer.open(CredentialId::new(), &sealed),
            Err(OpenError::WrongKey)
        ));
        assert!(matches!(
            Sealer::new(&key(9)).open(id, &sealed),
            Err(OpenError::WrongKey)
        ));
        let mut altered = sealed.clone();
        let last = altered.0.len() - 1;
        altered.0[last] ^= 1;
        assert!(matches!(
            sealer.open(id, &altered),
            Err(OpenError::WrongKey)
        ));
        assert!(matches!(
            sealer.open(id, &SealedSecret(vec![1, 2])),
            Err(OpenError::Format)
        ));
    }

    #[test]
    fn secrets_keys_are_32_bytes_of_base64_or_hex() {
        let b64 = base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>());
        assert!(SecretsKey::parse(&b64).is_ok());
        assert!(
            SecretsKey::parse(&format!(" {b64}\n")).is_ok(),
            "whitespace around is fine"
        );
        let hex: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
        assert!(SecretsKey::parse(&hex).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(SecretsKey::parse(&short).unwrap_err().contains("16"));
        assert!(SecretsKey::parse("not base64 at all!")
            .unwrap_err()
            .contains("openssl rand"));
        let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert!(SecretsKey::parse(&zeros).is_err());
        assert_eq!(
            format!("{:?}", SecretsKey::parse(&b64).unwrap()),
            "SecretsKey(***)"
        );
    }

    #[test]
    fn hints_fingerprints_and_key_checks() {
        assert_eq!(hint("sk-proj-abcdWXYZ"), "…WXYZ");
        assert_eq!(
            fingerprint("abc"),
            "sha256:ba7816bf8f01",
            "the start of SHA-256(\"abc\")"
        );
        assert!(check_key(CredentialKind::Openai, "sk-1234567890").is_ok());
        assert!(check_key(CredentialKind::Openai, "short").is_err());
        assert!(check_key(CredentialKind::Openai, "sk-has space-123").is_err());
        assert!(check_key(CredentialKind::Openai, "Bearer sk-1234567890").is_err());
        assert!(check_key(CredentialKind::Azure, "0123456789abcdef0123456789abcdef").is_ok());
    }
}
