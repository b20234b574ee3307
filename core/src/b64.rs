//! The base64 flavours the protocol uses.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// Standard base64 with padding: how our JSON carries binary fields.
pub fn std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Padded base64url (`WABase64UrlSafe`: only `+/` swapped, `=` kept): upload tokens and
/// the `hash` download parameter (PROTOCOL §4–5).
pub fn url(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Unpadded base64url (what Baileys and whatsapp-rust send; the CDN takes both).
pub fn url_nopad(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes standard or URL-safe base64, padded or not.
///
/// # Errors
/// When `s` is none of these.
pub fn decode_any(s: &str) -> Result<Vec<u8>, crate::error::NotBase64> {
    let s = s.trim();
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .map_err(crate::error::NotBase64::from_decode)
}

/// Decodes a base64 SHA-256 digest (32 bytes).
///
/// # Errors
/// A message naming what was wrong.
pub fn decode_sha256(s: &str) -> Result<[u8; 32], String> {
    let v = decode_any(s).map_err(|e| e.to_string())?;
    v.as_slice()
        .try_into()
        .map_err(|_| format!("a SHA-256 is 32 bytes, got {}", v.len()))
}
