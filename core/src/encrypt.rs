//! Streaming encryption (PROTOCOL §2 steps 3–6) and reproducible upload bodies.
//!
//! [`Encryptor`] makes one pass over the plaintext, in chunks of any size, and writes the
//! ciphertext into a buffer the caller owns. Its [`EncryptedMedia`] summary holds the
//! metadata a message needs and a few *checkpoints* (the CBC chaining block every
//! [`CHECKPOINT_INTERVAL`] bytes), so that [`EncryptedMedia::body_from`] can regenerate
//! the upload body from any offset while reading the plaintext only from the checkpoint
//! before it: a resumed upload never needs the ciphertext kept around.
// Arithmetic here is on lengths of buffers this module made itself (plaintext it was handed, blocks it produced); numbers from outside are
// checked where they enter (download.rs, upload.rs, transfer.rs, conn.rs).
#![allow(clippy::arithmetic_side_effects)]

use aes::Aes256;
use cbc::cipher::inout::InOutBuf;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{BodyError, UnsupportedMediaType};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::sidecar::SidecarHasher;

type CbcEnc = cbc::Encryptor<Aes256>;

/// Bytes of plaintext between two checkpoints. A multiple of 16; 1 MiB keeps a 4 GiB
/// file's checkpoints at 64 KiB and bounds the re-read before a resume offset to 1 MiB.
pub const CHECKPOINT_INTERVAL: u64 = 1 << 20;

/// Length of the truncated HMAC appended to the ciphertext.
pub const MAC_LEN: usize = 10;

/// The upload body length for a plaintext of `file_length` bytes: `16 * k + 10`
/// (saturating at `u64::MAX` for lengths no body can have).
pub fn body_len(file_length: u64) -> u64 {
    (file_length / 16)
        .saturating_add(1)
        .saturating_mul(16)
        .saturating_add(MAC_LEN as u64)
}

/// AES-256-CBC over a stream: holds back a partial block between calls.
struct CbcStream {
    cipher: CbcEnc,
    pending: [u8; 16],
    pending_len: usize,
}

impl CbcStream {
    fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        CbcStream {
            cipher: CbcEnc::new(key.into(), iv.into()),
            pending: [0; 16],
            pending_len: 0,
        }
    }

    /// Appends the ciphertext of every whole block now available to `out`.
    fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
            self.pending_len += take;
            input = &input[take..];
            if self.pending_len < 16 {
                return;
            }
            out.extend_from_slice(&self.pending);
            self.pending_len = 0;
        }
        let whole = input.len() / 16 * 16;
        out.extend_from_slice(&input[..whole]);
        let rest = &input[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
        self.encrypt_in_place(&mut out[start..]);
    }

    /// Appends the PKCS#7-padded last block.
    fn finish(&mut self, out: &mut Vec<u8>) {
        let pad = 16 - self.pending_len;
        let mut block = self.pending;
        block[self.pending_len..].fill(pad as u8);
        let start = out.len();
        out.extend_from_slice(&block);
        self.encrypt_in_place(&mut out[start..]);
        self.pending_len = 0;
    }

    fn encrypt_in_place(&mut self, buf: &mut [u8]) {
        let (blocks, tail) = InOutBuf::from(buf).into_chunks();
        debug_assert!(tail.is_empty());
        self.cipher.encrypt_blocks_inout_mut(blocks);
    }
}

/// Streaming encryptor: feed plaintext with [`update`](Self::update), then
/// [`finish`](Self::finish). The ciphertext is identical however the input is chunked.
pub struct Encryptor {
    media_key: MediaKey,
    /// The IV and MAC key, kept to start a sidecar on request (zeroized on drop).
    sidecar_keys: zeroize::Zeroizing<[u8; 48]>,
    sidecar: Option<SidecarHasher>,
    cbc: CbcStream,
    plain_hash: Sha256,
    enc_hash: Sha256,
    mac: Hmac<Sha256>,
    file_length: u64,
    cipher_len: u64,
    checkpoints: Vec<[u8; 16]>,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("media_key", &self.media_key)
            .field("file_length", &self.file_length)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// An encryptor for `media_type` under `media_key`.
    ///
    /// # Errors
    /// For a type that is not encrypted (product catalog images).
    pub fn new(media_key: MediaKey, media_type: &MediaType) -> Result<Self, UnsupportedMediaType> {
        let keys = media_key.expand(media_type)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.mac_key).expect("any key length");
        mac.update(&keys.iv);
        let mut sidecar_keys = zeroize::Zeroizing::new([0u8; 48]);
        sidecar_keys[..16].copy_from_slice(&keys.iv);
        sidecar_keys[16..].copy_from_slice(&keys.mac_key);
        let enc = Encryptor {
            sidecar_keys,
            sidecar: None,
            cbc: CbcStream::new(&keys.cipher_key, &keys.iv),
            media_key,
            plain_hash: Sha256::new(),
            enc_hash: Sha256::new(),
            mac,
            file_length: 0,
            cipher_len: 0,
            checkpoints: Vec::new(),
        };
        Ok(enc.with_streaming_sidecar(media_type.has_streaming_sidecar()))
    }

    /// Computes a streaming sidecar (PROTOCOL §2.7) in the same pass, or not. On by
    /// default for the types v2 gives one (audio, ptt, video, gif, ptv); any type may ask.
    /// Call it before the first [`update`](Self::update).
    pub fn with_streaming_sidecar(mut self, on: bool) -> Self {
        self.sidecar = match (on, self.cipher_len) {
            (true, 0) => {
                let mut mac_key = [0u8; 32];
                mac_key.copy_from_slice(&self.sidecar_keys[16..]);
                let mut s = SidecarHasher::new(&mac_key);
                zeroize::Zeroize::zeroize(&mut mac_key);
                s.update(&self.sidecar_keys[..16]);
                Some(s)
            }
            _ => None,
        };
        self
    }

    /// Encrypts `plaintext` and appends the ciphertext of every completed block to `out`
    /// (at most `plaintext.len() + 15` bytes). `out` is not cleared: reuse it by clearing
    /// it yourself after you have written its contents.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        self.plain_hash.update(plaintext);
        self.file_length += plaintext.len() as u64;
        let start = out.len();
        self.cbc.update(plaintext, out);
        self.absorb_ciphertext(&out[start..]);
    }

    /// Appends the last block and the 10-byte MAC to `out` and returns the summary.
    pub fn finish(mut self, out: &mut Vec<u8>) -> EncryptedMedia {
        let start = out.len();
        self.cbc.finish(out);
        self.absorb_ciphertext(&out[start..]);
        let tag = self.mac.finalize().into_bytes();
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&tag[..MAC_LEN]);
        out.extend_from_slice(&mac);
        self.enc_hash.update(mac);
        let streaming_sidecar = self.sidecar.take().map(|mut s| {
            s.update(&mac);
            s.finish()
        });
        EncryptedMedia {
            media_key: self.media_key,
            file_sha256: self.plain_hash.finalize().into(),
            file_enc_sha256: self.enc_hash.finalize().into(),
            file_length: self.file_length,
            mac,
            checkpoints: self.checkpoints,
            streaming_sidecar,
        }
    }

    fn absorb_ciphertext(&mut self, ct: &[u8]) {
        self.enc_hash.update(ct);
        self.mac.update(ct);
        if let Some(s) = self.sidecar.as_mut() {
            s.update(ct);
        }
        // Record the chaining block at every interval boundary this region crosses.
        let start = self.cipher_len;
        let end = start + ct.len() as u64;
        let mut boundary = (start / CHECKPOINT_INTERVAL + 1) * CHECKPOINT_INTERVAL;
        while boundary <= end {
            let at = (boundary - start) as usize;
            let mut block = [0u8; 16];
            block.copy_from_slice(&ct[at - 16..at]);
            self.checkpoints.push(block);
            boundary += CHECKPOINT_INTERVAL;
        }
        self.cipher_len = end;
    }
}

/// What one pass of encryption learnt: the metadata a message needs and what it takes to
/// regenerate the upload body from any offset.
#[derive(Clone, Debug)]
pub struct EncryptedMedia {
    /// The media key (redacted in `Debug`).
    pub media_key: MediaKey,
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the upload body (ciphertext and MAC).
    pub file_enc_sha256: [u8; 32],
    /// Length of the plaintext in bytes.
    pub file_length: u64,
    /// The 10-byte MAC that ends the upload body.
    pub mac: [u8; MAC_LEN],
    /// Chaining block at plaintext offsets `CHECKPOINT_INTERVAL * (i + 1)`.
    pub checkpoints: Vec<[u8; 16]>,
    /// The streaming sidecar (PROTOCOL §2.7), when computed.
    pub streaming_sidecar: Option<Vec<u8>>,
}

impl EncryptedMedia {
    /// Length of the upload body (`16 * k + 10`).
    pub fn body_len(&self) -> u64 {
        body_len(self.file_length)
    }

    /// Starts regenerating the upload body at `body_offset`. Returns the plaintext offset
    /// to read from (a checkpoint at most [`CHECKPOINT_INTERVAL`] bytes before) and the
    /// generator to feed that plaintext to, in order from that offset.
    ///
    /// # Errors
    /// [`BodyError::OffsetOutOfRange`] when `body_offset > body_len`.
    pub fn body_from(
        &self,
        media_type: &MediaType,
        body_offset: u64,
    ) -> Result<(u64, BodyGenerator), BodyError> {
        let body_len = self.body_len();
        if body_offset > body_len {
            return Err(BodyError::OffsetOutOfRange {
                offset: body_offset,
                body_len,
            });
        }
        let keys = self.media_key.expand(media_type)?;
        // The ciphertext of the last block depends on plaintext bytes up to file_length.
        let block_start = (body_offset.min(body_len - MAC_LEN as u64) / 16) * 16;
        let cp = (block_start / CHECKPOINT_INTERVAL) as usize;
        let cp = cp.min(self.checkpoints.len());
        let (plain_start, iv) = if cp == 0 {
            (0, keys.iv)
        } else {
            (cp as u64 * CHECKPOINT_INTERVAL, self.checkpoints[cp - 1])
        };
        let gen = BodyGenerator {
            cbc: CbcStream::new(&keys.cipher_key, &iv),
            skip: body_offset - plain_start,
            plain_pos: plain_start,
            file_length: self.file_length,
            mac: self.mac,
            finished: false,
        };
        Ok((plain_start, gen))
    }
}

/// Regenerates the upload body from an offset, fed the plaintext from the offset that
/// [`EncryptedMedia::body_from`] returned.
pub struct BodyGenerator {
    cbc: CbcStream,
    skip: u64,
    plain_pos: u64,
    file_length: u64,
    mac: [u8; MAC_LEN],
    finished: bool,
}

impl std::fmt::Debug for BodyGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyGenerator")
            .field("plain_pos", &self.plain_pos)
            .field("file_length", &self.file_length)
            .finish_non_exhaustive()
    }
}

impl BodyGenerator {
    /// Feeds the next plaintext bytes; appends the body bytes they complete to `out`.
    ///
    /// # Errors
    /// [`BodyError::PlaintextChanged`] when more plaintext arrives than the first pass saw.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.finished || self.plain_pos + plaintext.len() as u64 > self.file_length {
            return Err(BodyError::PlaintextChanged);
        }
        self.plain_pos += plaintext.len() as u64;
        let start = out.len();
        self.cbc.update(plaintext, out);
        self.skip_front(out, start);
        Ok(())
    }

    /// Ends the plaintext: appends the last block and the MAC.
    ///
    /// # Errors
    /// [`BodyError::PlaintextChanged`] when the plaintext ended at another length than in
    /// the first pass.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.finished || self.plain_pos != self.file_length {
            return Err(BodyError::PlaintextChanged);
        }
        self.finished = true;
        let start = out.len();
        self.cbc.finish(out);
        out.extend_from_slice(&self.mac);
        self.skip_front(out, start);
        Ok(())
    }

    /// True once the whole body has been produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn skip_front(&mut self, out: &mut Vec<u8>, start: usize) {
        if self.skip > 0 {
            let n = (self.skip.min((out.len() - start) as u64)) as usize;
            out.drain(start..start + n);
            self.skip -= n as u64;
        }
    }
}

/// Encrypts a whole plaintext in memory: returns the upload body and its summary.
///
/// # Errors
/// For a type that is not encrypted (product catalog images).
pub fn encrypt(
    media_key: MediaKey,
    media_type: &MediaType,
    plaintext: &[u8],
) -> Result<(Vec<u8>, EncryptedMedia), UnsupportedMediaType> {
    let mut enc = Encryptor::new(media_key, media_type)?;
    let mut out =
        Vec::with_capacity(usize::try_from(body_len(plaintext.len() as u64)).unwrap_or(0));
    enc.update(plaintext, &mut out);
    let meta = enc.finish(&mut out);
    Ok((out, meta))
}

/// Metadata of newsletter (channel) media, which is uploaded unencrypted: the plaintext's
/// SHA-256 and length.
#[derive(Clone, Debug, Default)]
pub struct PlainHasher {
    hash: Sha256,
    len: u64,
}

impl PlainHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds plaintext.
    pub fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
        self.len += data.len() as u64;
    }
    /// `(file_sha256, file_length)`.
    pub fn finish(self) -> ([u8; 32], u64) {
        (self.hash.finalize().into(), self.len)
    }
}

/// `(file_sha256, file_length)` of newsletter media held in memory.
pub fn newsletter_metadata(plaintext: &[u8]) -> ([u8; 32], u64) {
    let mut h = PlainHasher::new();
    h.update(plaintext);
    h.finish()
}
