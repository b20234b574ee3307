//! Media retry: when a download finds the media gone (404/410) or expired, the receiver
//! asks the sender's phone to upload it again, and the phone answers with a new
//! `direct_path` (whatsmeow `mediaretry.go`, Baileys `messages-media.ts`,
//! WhatsApp Web's `MmsRetry` protobuf). The key-bound crypto of that flow lives here,
//! sans-IO: the IV comes in as an input, like every other random value.
//!
//! - key = HKDF-SHA256(media key, no salt, info `WhatsApp Media Retry Notification`, 32 bytes);
//! - AES-256-GCM with a 12-byte IV, the message id as additional data;
//! - outgoing: a `ServerErrorReceipt { stanza_id = 1 }`, encrypted
//!   ([`encrypt_retry_receipt`]); incoming: a `MediaRetryNotification { stanza_id = 1,
//!   direct_path = 2, result = 3 }`, decrypted ([`decrypt_retry_notification`]).
//!
//! The receipt and the notification travel in the WhatsApp session (an `<rmr>` receipt
//! and a `mediaretry` notification), which wamedia does not speak.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use prost::Message as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::MediaKey;

/// The HKDF info string of the retry key.
pub const RETRY_INFO: &str = "WhatsApp Media Retry Notification";

/// `ServerErrorReceipt` (WhatsApp's `MmsRetry` protobuf).
#[derive(Clone, PartialEq, prost::Message)]
struct ServerErrorReceipt {
    #[prost(string, optional, tag = "1")]
    stanza_id: Option<String>,
}

/// `MediaRetryNotification` (WhatsApp's `MmsRetry` protobuf).
#[derive(Clone, PartialEq, prost::Message)]
struct MediaRetryNotificationProto {
    #[prost(string, optional, tag = "1")]
    stanza_id: Option<String>,
    #[prost(string, optional, tag = "2")]
    direct_path: Option<String>,
    #[prost(int32, optional, tag = "3")]
    result: Option<i32>,
}

/// What the sender's phone says in a `MediaRetryNotification`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryResult {
    /// `GENERAL_ERROR` (0).
    GeneralError,
    /// `SUCCESS` (1): the media is on the CDN again at the notification's `direct_path`.
    Success,
    /// `NOT_FOUND` (2): the phone no longer has the media.
    NotFound,
    /// `DECRYPTION_ERROR` (3): the phone could not read the receipt.
    DecryptionError,
    /// A value this version does not know.
    Unknown(i32),
}

impl RetryResult {
    fn from_i32(v: i32) -> Self {
        match v {
            0 => RetryResult::GeneralError,
            1 => RetryResult::Success,
            2 => RetryResult::NotFound,
            3 => RetryResult::DecryptionError,
            other => RetryResult::Unknown(other),
        }
    }

    /// The protobuf's name for it (`SUCCESS`, …).
    pub fn name(&self) -> String {
        match self {
            RetryResult::GeneralError => "GENERAL_ERROR".into(),
            RetryResult::Success => "SUCCESS".into(),
            RetryResult::NotFound => "NOT_FOUND".into(),
            RetryResult::DecryptionError => "DECRYPTION_ERROR".into(),
            RetryResult::Unknown(v) => format!("UNKNOWN({v})"),
        }
    }
}

/// A decrypted `MediaRetryNotification`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNotification {
    /// The id of the message the media belongs to.
    pub stanza_id: Option<String>,
    /// The new `direct_path`, on success.
    pub direct_path: Option<String>,
    /// What the phone did.
    pub result: RetryResult,
}

/// Why a retry notification could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// The IV is not 12 bytes.
    #[error("a media retry IV is 12 bytes, got {0}")]
    BadIv(usize),
    /// AES-GCM refused it: another media key, another message id, or a changed ciphertext.
    #[error("the media retry notification does not decrypt under this media key and message id")]
    Decrypt,
    /// It decrypted, but is not a `MediaRetryNotification`.
    #[error("the media retry notification is not a valid protobuf message")]
    Malformed,
    /// It names another message than the one asked about.
    #[error("the media retry notification is for another message")]
    OtherMessage,
}

fn cipher(media_key: &MediaKey) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(None, media_key.as_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(RETRY_INFO.as_bytes(), &mut key[..])
        .expect("32 bytes is within HKDF-SHA256's limit");
    Aes256Gcm::new_from_slice(&key[..]).expect("a 32-byte key")
}

/// The encrypted `ServerErrorReceipt` asking the sender's phone to upload the media of
/// message `message_id` again, under `iv` (12 random bytes: draw them from the OS, e.g.
/// with `getrandom`, and send them with the ciphertext).
pub fn encrypt_retry_receipt(media_key: &MediaKey, message_id: &str, iv: &[u8; 12]) -> Vec<u8> {
    let plain = ServerErrorReceipt {
        stanza_id: Some(message_id.to_owned()),
    }
    .encode_to_vec();
    cipher(media_key)
        .encrypt(
            Nonce::from_slice(iv),
            Payload {
                msg: &plain,
                aad: message_id.as_bytes(),
            },
        )
        .expect("AES-GCM encrypts any message of this size")
}

/// Decrypts the phone's `MediaRetryNotification` for message `message_id`.
///
/// # Errors
/// A bad IV, a ciphertext that does not decrypt (wrong key or message id, tampering),
/// one that is no `MediaRetryNotification`, or one about another message.
pub fn decrypt_retry_notification(
    media_key: &MediaKey,
    message_id: &str,
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<RetryNotification, RetryError> {
    if iv.len() != 12 {
        return Err(RetryError::BadIv(iv.len()));
    }
    let plain = Zeroizing::new(
        cipher(media_key)
            .decrypt(
                Nonce::from_slice(iv),
                Payload {
                    msg: ciphertext,
                    aad: message_id.as_bytes(),
                },
            )
            .map_err(|_| RetryError::Decrypt)?,
    );
    let n = MediaRetryNotificationProto::decode(&plain[..]).map_err(|_| RetryError::Malformed)?;
    if n.stanza_id.as_deref().is_some_and(|s| s != message_id) {
        return Err(RetryError::OtherMessage);
    }
    Ok(RetryNotification {
        stanza_id: n.stanza_id,
        direct_path: n.direct_path,
        result: RetryResult::from_i32(n.result.unwrap_or(0)),
    })
}
