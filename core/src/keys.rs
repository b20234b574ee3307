//! The media key and its HKDF expansion (PROTOCOL §2 steps 1–2).
// Arithmetic here is on fixed-size key material; numbers from outside are
// checked where they enter (download.rs, upload.rs, transfer.rs, conn.rs).
#![allow(clippy::arithmetic_side_effects)]

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{BadMediaKey, UnsupportedMediaType};
use crate::media_type::MediaType;

/// A 32-byte media key. Its `Debug` output is redacted and its bytes are zeroized on drop.
///
/// The protocol core never draws randomness itself: give it a key made here with
/// [`MediaKey::generate`] (the OS CSPRNG), or one you already have.
#[derive(Clone)]
pub struct MediaKey([u8; 32]);

impl Drop for MediaKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for MediaKey {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for MediaKey {}

impl MediaKey {
    /// Length of a media key in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// When the OS refuses to give randomness (rare: very early boot, seccomp).
    pub fn generate() -> Result<Self, crate::error::NoRandomness> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(crate::error::NoRandomness::from_os)?;
        Ok(MediaKey(k))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MediaKey(bytes)
    }

    /// A key from a slice, which must be exactly 32 bytes long.
    ///
    /// # Errors
    /// [`BadMediaKey`] naming the length found.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BadMediaKey> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| BadMediaKey {
            reason: format!("a media key is 32 bytes, got {}", bytes.len()),
        })?;
        Ok(MediaKey(arr))
    }

    /// The key's bytes. Handle with care: this is the secret that decrypts the media.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key in standard base64 with padding, as WhatsApp messages and our JSON carry it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Expands the key for `media_type` (HKDF-SHA256, no salt, 112 bytes).
    ///
    /// # Errors
    /// For a type that is not encrypted (product catalog images): WhatsApp makes no keys
    /// for it, and neither do we.
    pub fn expand(&self, media_type: &MediaType) -> Result<MediaKeys, UnsupportedMediaType> {
        Ok(MediaKeys::expand(self, media_type.hkdf_info()?))
    }
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaKey(<redacted>)")
    }
}

impl FromStr for MediaKey {
    type Err = BadMediaKey;

    /// Parses 64 hexadecimal characters, or standard/URL-safe base64 (padded or not).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut k = [0u8; 32];
            for (i, byte) in k.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("checked hex digits");
            }
            return Ok(MediaKey(k));
        }
        let bytes = crate::b64::decode_any(s).map_err(|_| BadMediaKey {
            reason: "a media key is 64 hex characters or base64 of 32 bytes; this is neither"
                .to_owned(),
        })?;
        let key = MediaKey::from_slice(&bytes);
        let mut bytes = bytes;
        bytes.zeroize();
        key
    }
}

/// The four values expanded from a media key: `iv`, `cipher_key`, `mac_key`, `ref_key`.
/// Zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct MediaKeys {
    /// The CBC initialisation vector, bytes `[0, 16)` of the expansion.
    pub iv: [u8; 16],
    /// The AES-256 key, bytes `[16, 48)`.
    pub cipher_key: [u8; 32],
    /// The HMAC-SHA256 key, bytes `[48, 80)`.
    pub mac_key: [u8; 32],
    /// The ref key, bytes `[80, 112)` (unused by upload and download; kept for completeness).
    pub ref_key: [u8; 32],
}

impl Drop for MediaKeys {
    fn drop(&mut self) {
        self.iv.zeroize();
        self.cipher_key.zeroize();
        self.mac_key.zeroize();
        self.ref_key.zeroize();
    }
}

impl MediaKeys {
    /// HKDF-SHA256 expansion of `key` with the raw `info` string (PROTOCOL §2 step 2).
    pub fn expand(key: &MediaKey, info: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(None, key.as_bytes());
        let mut okm = [0u8; 112];
        hk.expand(info.as_bytes(), &mut okm)
            .expect("112 bytes is within HKDF-SHA256's limit");
        let mut keys = MediaKeys {
            iv: [0; 16],
            cipher_key: [0; 32],
            mac_key: [0; 32],
            ref_key: [0; 32],
        };
        keys.iv.copy_from_slice(&okm[0..16]);
        keys.cipher_key.copy_from_slice(&okm[16..48]);
        keys.mac_key.copy_from_slice(&okm[48..80]);
        keys.ref_key.copy_from_slice(&okm[80..112]);
        okm.zeroize();
        keys
    }
}

impl fmt::Debug for MediaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaKeys(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let k = MediaKey::from_bytes([0xab; 32]);
        let d = format!("{k:?} {:?}", k.expand(&MediaType::Image).unwrap());
        assert!(!d.contains("ab") && !d.contains("171"), "{d}");
        assert!(d.contains("redacted"));
    }

    #[test]
    fn parses_hex_and_base64() {
        let k = MediaKey::from_bytes(core::array::from_fn(|i| i as u8));
        let hex: String = k.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex.parse::<MediaKey>().unwrap(), k);
        assert_eq!(hex.to_uppercase().parse::<MediaKey>().unwrap(), k);
        assert_eq!(k.to_base64().parse::<MediaKey>().unwrap(), k);
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        assert!(short
            .parse::<MediaKey>()
            .unwrap_err()
            .to_string()
            .contains("31"));
        assert!("zz".parse::<MediaKey>().is_err());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(MediaKey::generate().unwrap(), MediaKey::generate().unwrap());
    }
}
