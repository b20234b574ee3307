//! # wamedia — WhatsApp media, encrypted, uploaded, downloaded, verified
//!
//! A sans-IO protocol core: this crate never opens a socket or a file, never reads a
//! clock and never draws randomness inside its machines. Time (`now: Instant`), the media
//! key and the bytes come in as arguments; requests to send come out as values.
//!
//! - [`MediaType`]: HKDF info, MMS type and upload path of every kind of media.
//! - [`MediaKey`]: 32 secret bytes, redacted in `Debug`, zeroized on drop.
//! - [`Encryptor`] / [`Decryptor`]: streaming encryption and verified decryption;
//!   [`encrypt()`] / [`decrypt()`] for data in memory.
//! - [`EncryptedMedia::body_from`]: regenerate the upload body from any offset.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod b64;
pub mod decrypt;
pub mod encrypt;
pub mod error;
pub mod keys;
pub mod media_type;

pub use decrypt::{decrypt, Decryptor, Expected, Verified};
pub use encrypt::{
    encrypt, newsletter_metadata, BodyGenerator, EncryptedMedia, Encryptor, PlainHasher,
};
pub use error::{BadMediaKey, BodyError, IntegrityError, Misuse, UnknownMediaType};
pub use keys::{MediaKey, MediaKeys};
pub use media_type::{MediaType, MEDIA_TYPE_NAMES};
