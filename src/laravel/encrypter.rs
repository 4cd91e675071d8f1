//! Laravel's `Encrypter` (APP_KEY), for job commands that implement `ShouldBeEncrypted`.
//!
//! Wire format (docs/laravel-queue.md §9.2): standard base64 of the JSON `{"iv","value","mac","tag"}`;
//! `value` is the base64
//! ciphertext. CBC ciphers (16-byte IV, PKCS#7) carry a lowercase hex HMAC-SHA256 over `iv . value` (both as
//! their base64 text) and an empty tag; GCM ciphers (12-byte IV, no AAD) carry a 16-byte tag and an empty MAC.
//! The cipher is recognised from the payload (IV length, MAC or tag) and the key length, so no `app.cipher`
//! setting is needed. APP_PREVIOUS_KEYS are tried after APP_KEY, as Laravel 11+ does.
//!
//! Pure: no I/O. It returns the decrypted bytes and never unserializes them (the caller does, twice: the
//! plaintext is `serialize(serialize($job))`).

use aes_gcm::aead::{Aead, KeyInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{var} is empty: set it to the app's key (`base64:...` as in the app's .env)")]
    Empty { var: &'static str },
    #[error("{var} is not valid base64 after the `base64:` prefix")]
    BadBase64 { var: &'static str },
    #[error("{var} decodes to {len} bytes; Laravel keys are 16 (AES-128) or 32 (AES-256) bytes")]
    BadLength { var: &'static str, len: usize },
}

/// Why a payload could not be decrypted; the messages start with Laravel's own texts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("The payload is invalid: {0}")]
    Invalid(&'static str),
    #[error("The MAC is invalid: the command was not encrypted with APP_KEY or any of APP_PREVIOUS_KEYS")]
    MacInvalid,
    #[error("Could not decrypt the data: {0}")]
    CouldNotDecrypt(&'static str),
    #[error("no APP_KEY configured: the command is encrypted (ShouldBeEncrypted); pass --app-key or set APP_KEY")]
    NoKey,
}

/// The app's keys: the current one first, then the previous ones.
#[derive(Clone, Default)]
pub struct Encrypter {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Encrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encrypter {{ {} key(s), masked }}", self.keys.len())
    }
}

#[derive(serde::Deserialize)]
struct Envelope {
    iv: String,
    value: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    tag: String,
}

impl Encrypter {
    /// An encrypter with no key: decrypting reports [`DecryptError::NoKey`].
    pub fn none() -> Self {
        Self::default()
    }

    /// From APP_KEY and APP_PREVIOUS_KEYS (comma separated, each `base64:...` or raw), either may be empty.
    pub fn from_keys(app_key: Option<&str>, previous: Option<&str>) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(k) = app_key.filter(|k| !k.is_empty()) {
            keys.push(parse_key(k, "APP_KEY")?);
        }
        for k in previous
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            keys.push(parse_key(k, "APP_PREVIOUS_KEYS")?);
        }
        Ok(Self { keys })
    }

    pub fn has_key(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Decrypts a Laravel encrypted string, returning the plaintext bytes (not unserialized).
    pub fn decrypt(&self, payload: &str) -> Result<Vec<u8>, DecryptError> {
        if self.keys.is_empty() {
            return Err(DecryptError::NoKey);
        }
        let json = B64
            .decode(payload.trim())
            .map_err(|_| DecryptError::Invalid("not base64"))?;
        let env: Envelope = serde_json::from_slice(&json)
            .map_err(|_| DecryptError::Invalid("not the JSON {iv, value, mac, tag}"))?;
        let iv = B64
            .decode(&env.iv)
            .map_err(|_| DecryptError::Invalid("iv is not base64"))?;
        let value = B64
            .decode(&env.value)
            .map_err(|_| DecryptError::Invalid("value is not base64"))?;
        match iv.len() {
            16 => self.decrypt_cbc(&env, &iv, &value),
            12 => self.decrypt_gcm(&env, &iv, &value),
            _ => Err(DecryptError::Invalid(
                "iv length is neither 16 (CBC) nor 12 (GCM)",
            )),
        }
    }

    fn decrypt_cbc(
        &self,
        env: &Envelope,
        iv: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if !env.tag.is_empty() {
            return Err(DecryptError::Invalid(
                "Unable to use tag because the cipher algorithm does not support AEAD",
            ));
        }
        let key = self
            .keys
            .iter()
            .find(|k| mac_matches(k, env))
            .ok_or(DecryptError::MacInvalid)?;
        let iv: [u8; 16] = iv
            .try_into()
            .map_err(|_| DecryptError::Invalid("iv length"))?;
        let out = match key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new(key[..].into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(value),
            _ => cbc::Decryptor::<aes::Aes256>::new(key[..].into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(value),
        };
        out.map_err(|_| DecryptError::CouldNotDecrypt("bad padding"))
    }

    fn decrypt_gcm(
        &self,
        env: &Envelope,
        iv: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let tag = B64
            .decode(&env.tag)
            .map_err(|_| DecryptError::Invalid("tag is not base64"))?;
        if tag.len() != 16 {
            return Err(DecryptError::Invalid("GCM tag must be 16 bytes"));
        }
        let mut sealed = value.to_vec();
        sealed.extend_from_slice(&tag);
        let nonce = aes_gcm::Nonce::from_slice(iv);
        for key in &self.keys {
            let plain = match key.len() {
                16 => aes_gcm::Aes128Gcm::new(key[..].into()).decrypt(nonce, sealed.as_slice()),
                _ => aes_gcm::Aes256Gcm::new(key[..].into()).decrypt(nonce, sealed.as_slice()),
            };
            if let Ok(plain) = plain {
                return Ok(plain);
            }
        }
        Err(DecryptError::CouldNotDecrypt(
            "the GCM tag does not verify under APP_KEY or any of APP_PREVIOUS_KEYS (wrong key?)",
        ))
    }

    /// Encrypts like Laravel's `encrypt($value, false)` with the current key: CBC when `gcm` is false.
    /// Used by `dispatch` and by tests; `iv` must be 16 bytes for CBC and 12 for GCM.
    pub fn encrypt_with_iv(
        &self,
        plaintext: &[u8],
        iv: &[u8],
        gcm: bool,
    ) -> Result<String, DecryptError> {
        let key = self.keys.first().ok_or(DecryptError::NoKey)?;
        let iv_b64 = B64.encode(iv);
        let (value_b64, mac, tag) = if gcm {
            let nonce = aes_gcm::Nonce::from_slice(iv);
            let sealed = match key.len() {
                16 => aes_gcm::Aes128Gcm::new(key[..].into()).encrypt(nonce, plaintext),
                _ => aes_gcm::Aes256Gcm::new(key[..].into()).encrypt(nonce, plaintext),
            }
            .map_err(|_| DecryptError::CouldNotDecrypt("GCM encryption failed"))?;
            let (ct, tag) = sealed.split_at(sealed.len() - 16);
            (B64.encode(ct), String::new(), B64.encode(tag))
        } else {
            let iv16: [u8; 16] = iv
                .try_into()
                .map_err(|_| DecryptError::Invalid("iv length"))?;
            let ct = match key.len() {
                16 => cbc::Encryptor::<aes::Aes128>::new(key[..].into(), &iv16.into())
                    .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
                _ => cbc::Encryptor::<aes::Aes256>::new(key[..].into(), &iv16.into())
                    .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
            };
            let value_b64 = B64.encode(ct);
            let mac = hex(&hmac(key, &iv_b64, &value_b64));
            (value_b64, mac, String::new())
        };
        let json = serde_json::json!({"iv": iv_b64, "value": value_b64, "mac": mac, "tag": tag});
        // Laravel writes it with JSON_UNESCAPED_SLASHES, which serde_json also does.
        Ok(B64.encode(json.to_string()))
    }
}

fn parse_key(raw: &str, var: &'static str) -> Result<Vec<u8>, KeyError> {
    let key = match raw.strip_prefix("base64:") {
        Some(b) => B64
            .decode(b.trim())
            .map_err(|_| KeyError::BadBase64 { var })?,
        None => raw.as_bytes().to_vec(),
    };
    match key.len() {
        0 => Err(KeyError::Empty { var }),
        16 | 32 => Ok(key),
        len => Err(KeyError::BadLength { var, len }),
    }
}

fn hmac(key: &[u8], iv_b64: &str, value_b64: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(iv_b64.as_bytes());
    mac.update(value_b64.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn mac_matches(key: &[u8], env: &Envelope) -> bool {
    let expected = hex(&hmac(key, &env.iv, &env.value));
    expected.as_bytes().ct_eq(env.mac.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY16: &str = "0123456789abcdef";

    #[test]
    fn cbc_and_gcm_round_trip_with_both_key_sizes() {
        for key in [KEY32, KEY16] {
            let enc = Encrypter::from_keys(Some(key), None).unwrap();
            let cbc = enc
                .encrypt_with_iv(b"s:5:\"hello\";", &[7; 16], false)
                .unwrap();
            assert_eq!(enc.decrypt(&cbc).unwrap(), b"s:5:\"hello\";");
            let gcm = enc
                .encrypt_with_iv(b"s:5:\"hello\";", &[9; 12], true)
                .unwrap();
            assert_eq!(enc.decrypt(&gcm).unwrap(), b"s:5:\"hello\";");
        }
    }

    #[test]
    fn wrong_key_is_mac_invalid_and_previous_keys_are_tried() {
        let old = Encrypter::from_keys(Some(KEY16), None).unwrap();
        let cbc = old.encrypt_with_iv(b"secret", &[1; 16], false).unwrap();
        let new_only = Encrypter::from_keys(Some(KEY32), None).unwrap();
        assert_eq!(new_only.decrypt(&cbc), Err(DecryptError::MacInvalid));
        assert!(new_only
            .decrypt(&cbc)
            .unwrap_err()
            .to_string()
            .starts_with("The MAC is invalid"));
        let rotated = Encrypter::from_keys(Some(KEY32), Some(&format!(" {KEY16} "))).unwrap();
        assert_eq!(rotated.decrypt(&cbc).unwrap(), b"secret");

        let gcm = old.encrypt_with_iv(b"secret", &[1; 12], true).unwrap();
        assert!(matches!(
            new_only.decrypt(&gcm),
            Err(DecryptError::CouldNotDecrypt(_))
        ));
        assert_eq!(rotated.decrypt(&gcm).unwrap(), b"secret");
    }

    #[test]
    fn tampered_and_malformed_payloads_are_errors() {
        let enc = Encrypter::from_keys(Some(KEY32), None).unwrap();
        assert!(matches!(enc.decrypt("%%%"), Err(DecryptError::Invalid(_))));
        assert!(matches!(
            enc.decrypt(&B64.encode("{}")),
            Err(DecryptError::Invalid(_))
        ));
        let good = enc.encrypt_with_iv(b"x", &[3; 16], false).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&B64.decode(&good).unwrap()).unwrap();
        json["value"] = serde_json::Value::String(B64.encode([0u8; 16]));
        assert_eq!(
            enc.decrypt(&B64.encode(json.to_string())),
            Err(DecryptError::MacInvalid)
        );
        assert_eq!(Encrypter::none().decrypt(&good), Err(DecryptError::NoKey));
    }

    #[test]
    fn key_errors_name_the_variable() {
        assert_eq!(
            Encrypter::from_keys(Some("base64:AAAA"), None).unwrap_err(),
            KeyError::BadLength {
                var: "APP_KEY",
                len: 3
            }
        );
        let err = Encrypter::from_keys(None, Some("short")).unwrap_err();
        assert!(err.to_string().contains("APP_PREVIOUS_KEYS"));
        assert!(!Encrypter::from_keys(None, None).unwrap().has_key());
    }
}
