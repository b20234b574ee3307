//! Verified decryption (PROTOCOL §2, §5).
//!
//! Checks run in the protocol's order: length shape → `file_enc_sha256` (when known) → MAC
//! (constant time) → padding → `file_sha256` (when known) → `file_length` (when known).
//! Each failure is its own [`IntegrityError`] variant.
//!
//! **Streaming and trust.** [`Decryptor::update_unverified`] releases plaintext *before*
//! the MAC can be checked (the MAC covers the whole body). That plaintext is untrusted
//! until [`Decryptor::finish`] returns `Ok`: write it somewhere temporary and only publish
//! it after `finish` succeeds (the CLI and the transports' `download_to_path` do exactly
//! that). The in-memory [`decrypt`] checks the MAC first and never releases anything
//! unverified.

use aes::Aes256;
use cbc::cipher::inout::InOutBuf;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::encrypt::MAC_LEN;
use crate::error::{IntegrityError, UnsupportedMediaType};
use crate::keys::MediaKey;
use crate::media_type::MediaType;

type CbcDec = cbc::Decryptor<Aes256>;

/// The smallest valid body: one block and the MAC.
pub const MIN_BODY_LEN: u64 = 16 + MAC_LEN as u64;

/// What the message says about the media, each checked when given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// SHA-256 of the encrypted body.
    pub file_enc_sha256: Option<[u8; 32]>,
    /// SHA-256 of the plaintext.
    pub file_sha256: Option<[u8; 32]>,
    /// Plaintext length in bytes.
    pub file_length: Option<u64>,
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the body as downloaded (for unencrypted media, the plaintext: equal to
    /// `file_sha256`).
    pub file_enc_sha256: [u8; 32],
    /// Plaintext length in bytes.
    pub file_length: u64,
}

/// Bytes held back at the end of the stream: the last block (padding) and the MAC.
const HOLD: usize = 16 + MAC_LEN;

/// The half of decryption that reads the body as it arrives: its SHA-256, the HMAC, and
/// the hold-back of the last block and the MAC. With [`PlainHalf`], what
/// [`Decryptor::split`] hands to a caller that runs the two on two threads.
pub struct BodyHalf {
    mac: Hmac<Sha256>,
    enc_hash: Sha256,
    held: Vec<u8>,
    body_len: u64,
}

impl BodyHalf {
    /// Feeds the next body bytes; appends the ciphertext blocks now known not to be the
    /// last one to `out`, MAC'd but not decrypted.
    pub fn absorb(&mut self, body: &[u8], out: &mut Vec<u8>) {
        self.enc_hash.update(body);
        self.body_len = self.body_len.saturating_add(body.len() as u64);
        if self.held.len().saturating_add(body.len()) <= HOLD {
            self.held.extend_from_slice(body);
            return;
        }
        let start = out.len();
        out.extend_from_slice(&self.held);
        out.extend_from_slice(body);
        // At least HOLD + 1 bytes were appended just above.
        let avail = out.len().saturating_sub(start).saturating_sub(HOLD);
        let n = avail.saturating_sub(avail % 16);
        self.held.clear();
        let end = start.saturating_add(n);
        self.held.extend_from_slice(&out[end..]);
        out.truncate(end);
        self.mac.update(&out[start..]);
    }
}

/// The half of decryption that makes plaintext: AES-CBC and the plaintext's SHA-256.
/// Its output is unverified until [`Decryptor::finish`] returns `Ok`.
pub struct PlainHalf {
    cipher: CbcDec,
    plain_hash: Sha256,
    plain_len: u64,
}

impl PlainHalf {
    /// Decrypts whole blocks in place (in body order) and hashes the plaintext.
    pub fn decrypt(&mut self, region: &mut [u8]) {
        let (blocks, _) = InOutBuf::from(&mut region[..]).into_chunks();
        self.cipher.decrypt_blocks_inout_mut(blocks);
        self.plain_hash.update(&*region);
        self.plain_len = self.plain_len.saturating_add(region.len() as u64);
    }
}

/// Streaming, verifying decryptor.
///
/// Its work is two halves: the body's SHA-256 and the HMAC over what arrives, and AES-CBC
/// with the plaintext's SHA-256. [`decrypt_stream`] runs them on two threads for large
/// inputs; this type runs both on the caller's.
///
/// [`decrypt_stream`]: https://docs.rs/wamedia-driver/latest/wamedia_driver/fn.decrypt_stream.html
pub struct Decryptor {
    body: BodyHalf,
    plain: PlainHalf,
    expected: Expected,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("body_len", &self.body.body_len)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor for `media_type` under `media_key`, checking what `expected` gives.
    ///
    /// # Errors
    /// For a type that is not encrypted (product catalog images).
    pub fn new(
        media_key: &MediaKey,
        media_type: &MediaType,
        expected: Expected,
    ) -> Result<Self, UnsupportedMediaType> {
        let keys = media_key.expand(media_type)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac_key).expect("any key length");
        mac.update(&keys.iv);
        Ok(Decryptor {
            body: BodyHalf {
                mac,
                enc_hash: Sha256::new(),
                held: Vec::with_capacity(HOLD + 16),
                body_len: 0,
            },
            plain: PlainHalf {
                cipher: CbcDec::new((&keys.cipher_key).into(), (&keys.iv).into()),
                plain_hash: Sha256::new(),
                plain_len: 0,
            },
            expected,
        })
    }

    /// Body bytes fed so far.
    pub fn body_len(&self) -> u64 {
        self.body.body_len
    }

    /// Feeds the next body bytes and appends the plaintext of the blocks now decryptable to
    /// `out`. **That plaintext is unverified** until [`finish`](Self::finish) returns `Ok`.
    pub fn update_unverified(&mut self, body: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        self.body.absorb(body, out);
        self.plain.decrypt(&mut out[start..]);
    }

    /// Splits the decryptor into its halves (the expectations stay in `self`), to run them
    /// on two threads: every body byte through [`BodyHalf::absorb`], what it hands out
    /// through [`PlainHalf::decrypt`] in order, then [`finish`](Self::finish), which checks
    /// everything. [`update_unverified`](Self::update_unverified) does this on one thread.
    pub fn split(&mut self) -> (&mut BodyHalf, &mut PlainHalf) {
        (&mut self.body, &mut self.plain)
    }

    /// Checks everything and appends the last plaintext bytes (without padding) to `out`.
    ///
    /// # Errors
    /// The first failed check, in PROTOCOL order.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Verified, IntegrityError> {
        let len = self.body.body_len;
        if len < MIN_BODY_LEN {
            return Err(IntegrityError::TooShort { len });
        }
        if !len.saturating_sub(MAC_LEN as u64).is_multiple_of(16) {
            return Err(IntegrityError::BadLength { len });
        }
        // With a valid shape the held tail is exactly the last block and the MAC.
        debug_assert_eq!(self.body.held.len(), HOLD);
        let file_enc_sha256: [u8; 32] = self.body.enc_hash.finalize().into();
        if let Some(want) = self.expected.file_enc_sha256 {
            if want != file_enc_sha256 {
                return Err(IntegrityError::EncHashMismatch);
            }
        }
        let mut last = [0u8; 16];
        last.copy_from_slice(&self.body.held[..16]);
        self.body.mac.update(&last);
        let tag = self.body.mac.finalize().into_bytes();
        if !bool::from(tag[..MAC_LEN].ct_eq(&self.body.held[16..HOLD])) {
            return Err(IntegrityError::MacMismatch);
        }
        self.plain.cipher.decrypt_block_mut((&mut last).into());
        let unpadded = unpad(&last)?;
        self.plain.plain_hash.update(unpadded);
        out.extend_from_slice(unpadded);
        let file_length = self.plain.plain_len.saturating_add(unpadded.len() as u64);
        let file_sha256: [u8; 32] = self.plain.plain_hash.finalize().into();
        check_plain(&self.expected, &file_sha256, file_length)?;
        Ok(Verified {
            file_sha256,
            file_enc_sha256,
            file_length,
        })
    }
}

/// Verifies an unencrypted body (newsletter media, product images; PROTOCOL §5): the body
/// is the plaintext, checked against `file_sha256` and `file_length` at the end.
#[derive(Clone, Debug, Default)]
pub struct PlainVerifier {
    hash: Sha256,
    len: u64,
    expected: Expected,
}

impl PlainVerifier {
    /// A verifier of what `expected` gives (`file_enc_sha256` is ignored: there is none).
    pub fn new(expected: Expected) -> Self {
        PlainVerifier {
            hash: Sha256::new(),
            len: 0,
            expected,
        }
    }

    /// Feeds the next body bytes (which are the plaintext, **unverified** until
    /// [`finish`](Self::finish) returns `Ok`).
    pub fn update(&mut self, body: &[u8]) {
        self.hash.update(body);
        self.len = self.len.saturating_add(body.len() as u64);
    }

    /// Checks `file_sha256` and `file_length`, when expected.
    ///
    /// # Errors
    /// [`IntegrityError::PlainHashMismatch`] or [`IntegrityError::LengthMismatch`].
    pub fn finish(self) -> Result<Verified, IntegrityError> {
        let file_sha256: [u8; 32] = self.hash.finalize().into();
        check_plain(&self.expected, &file_sha256, self.len)?;
        Ok(Verified {
            file_sha256,
            file_enc_sha256: file_sha256,
            file_length: self.len,
        })
    }
}

fn unpad(block: &[u8]) -> Result<&[u8], IntegrityError> {
    let pad = *block.last().expect("non-empty block") as usize;
    if pad == 0 || pad > 16 || pad > block.len() {
        return Err(IntegrityError::BadPadding);
    }
    let (data, padding) = block.split_at(block.len().saturating_sub(pad));
    if padding.iter().any(|&b| b as usize != pad) {
        return Err(IntegrityError::BadPadding);
    }
    Ok(data)
}

fn check_plain(
    expected: &Expected,
    file_sha256: &[u8; 32],
    file_length: u64,
) -> Result<(), IntegrityError> {
    if let Some(want) = expected.file_sha256 {
        if &want != file_sha256 {
            return Err(IntegrityError::PlainHashMismatch);
        }
    }
    if let Some(want) = expected.file_length {
        if want != file_length {
            return Err(IntegrityError::LengthMismatch {
                expected: want,
                actual: file_length,
            });
        }
    }
    Ok(())
}

/// Decrypts and verifies a whole body in memory. The MAC is checked before any byte is
/// decrypted, so nothing unverified is ever returned.
///
/// # Errors
/// The first failed check, in PROTOCOL order.
pub fn decrypt(
    media_key: &MediaKey,
    media_type: &MediaType,
    body: &[u8],
    expected: &Expected,
) -> Result<(Vec<u8>, Verified), IntegrityError> {
    let len = body.len() as u64;
    if len < MIN_BODY_LEN {
        return Err(IntegrityError::TooShort { len });
    }
    if !len.saturating_sub(MAC_LEN as u64).is_multiple_of(16) {
        return Err(IntegrityError::BadLength { len });
    }
    let file_enc_sha256: [u8; 32] = Sha256::digest(body).into();
    if let Some(want) = expected.file_enc_sha256 {
        if want != file_enc_sha256 {
            return Err(IntegrityError::EncHashMismatch);
        }
    }
    let keys = media_key.expand(media_type)?;
    let (ct, tag) = body.split_at(body.len().saturating_sub(MAC_LEN));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac_key).expect("any key length");
    mac.update(&keys.iv);
    mac.update(ct);
    let full = mac.finalize().into_bytes();
    if !bool::from(full[..MAC_LEN].ct_eq(tag)) {
        return Err(IntegrityError::MacMismatch);
    }
    let mut plain = ct.to_vec();
    let mut cipher = CbcDec::new((&keys.cipher_key).into(), (&keys.iv).into());
    let (blocks, _) = InOutBuf::from(&mut plain[..]).into_chunks();
    cipher.decrypt_blocks_inout_mut(blocks);
    // The shape check above guarantees at least one whole block.
    let last = plain.len().saturating_sub(16);
    let keep = last.saturating_add(unpad(&plain[last..])?.len());
    plain.truncate(keep);
    let file_sha256: [u8; 32] = Sha256::digest(&plain).into();
    check_plain(expected, &file_sha256, plain.len() as u64)?;
    let file_length = plain.len() as u64;
    Ok((
        plain,
        Verified {
            file_sha256,
            file_enc_sha256,
            file_length,
        },
    ))
}
