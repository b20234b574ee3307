//! What an upload is cached under: the media type, channel or not, and the SHA-256 of the
//! plaintext. The same bytes sent as another type, or to a channel, are another entry.

use std::fmt;

/// The key of one cached upload.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    media_type: &'static str,
    newsletter: bool,
    file_sha256: [u8; 32],
}

impl CacheKey {
    /// The key of `file_sha256` uploaded as `media_type` (a name from
    /// [`wamedia::MEDIA_TYPE_NAMES`]), to a channel when `newsletter`.
    pub fn new(media_type: &'static str, newsletter: bool, file_sha256: [u8; 32]) -> Self {
        CacheKey {
            media_type,
            newsletter,
            file_sha256,
        }
    }

    /// The SHA-256 of the plaintext.
    pub fn file_sha256(&self) -> &[u8; 32] {
        &self.file_sha256
    }

    /// The key as stores spell it: `v1:{type}:{chat|channel}:{hex sha256}` (no secret in
    /// it: the plaintext's hash is in every message that carries the media).
    pub fn as_text(&self) -> String {
        let hex: String = self
            .file_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let to = if self.newsletter { "channel" } else { "chat" };
        format!("v1:{}:{to}:{hex}", self.media_type)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}
