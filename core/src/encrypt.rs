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

use aes::cipher::BlockEncrypt;
use aes::Aes256;
use cbc::cipher::inout::InOutBuf;
use cbc::cipher::{BlockEncryptMut, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{BodyError, UnsupportedMediaType};
use crate::keys::MediaKey;
use crate::media_type::MediaType;
use crate::sidecar::{FirstFrameHasher, SidecarHasher};

type CbcEnc = cbc::Encryptor<Aes256>;

/// Bytes of plaintext between two checkpoints. A multiple of 16. 64 KiB keeps a 1 GiB
/// file's checkpoints at 256 KiB, bounds the re-read before a resume offset to 64 KiB,
/// and lets the body be regenerated [`LANES`] segments at a time.
pub const CHECKPOINT_INTERVAL: u64 = 64 << 10;

/// CBC chains a [`BodyGenerator`] encrypts side by side: each checkpoint starts a chain
/// of its own, so the second pass runs AES on 8 independent blocks at once (what AES-NI
/// pipelines) instead of one block after the other.
pub const LANES: usize = 8;

/// Plaintext a [`BodyGenerator`] encrypts in one go on [`LANES`] chains: feed it chunks of
/// this size, starting at the offset [`EncryptedMedia::body_from`] gives, to get that.
pub const LANE_GROUP: usize = LANES * CHECKPOINT_INTERVAL as usize;

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

/// The half of encryption that reads the plaintext: its SHA-256 and AES-CBC. With
/// [`AuthHalf`], what [`Encryptor::split`] hands to a caller that runs the two on two
/// threads (`wamedia-driver`'s pipeline); the output is the same byte for byte.
#[allow(missing_debug_implementations)]
pub struct CipherHalf {
    cbc: CbcStream,
    plain_hash: Sha256,
    file_length: u64,
}

impl CipherHalf {
    /// Hashes and encrypts `plaintext`, appending the completed blocks to `out`.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        self.plain_hash.update(plaintext);
        self.file_length += plaintext.len() as u64;
        self.cbc.update(plaintext, out);
    }

    /// Appends the padded last block to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.cbc.finish(out);
    }
}

/// The half of encryption that reads the ciphertext: the HMAC, the body's SHA-256, the
/// streaming sidecar and the checkpoints. Feed it every ciphertext byte [`CipherHalf`]
/// made, in order.
pub struct AuthHalf {
    enc_hash: Sha256,
    mac: Hmac<Sha256>,
    sidecar: Option<SidecarHasher>,
    /// The first-frame sidecar (PROTOCOL §2.8) and its `firstFrameLength`.
    first_frame: Option<(FirstFrameHasher, u64)>,
    cipher_len: u64,
    checkpoints: Vec<[u8; 16]>,
}

impl AuthHalf {
    /// Absorbs the next ciphertext bytes, in order.
    pub fn absorb(&mut self, ct: &[u8]) {
        self.enc_hash.update(ct);
        self.mac.update(ct);
        if let Some(s) = self.sidecar.as_mut() {
            s.update(ct);
        }
        if let Some((f, _)) = self.first_frame.as_mut() {
            f.update(ct);
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

/// Streaming encryptor: feed plaintext with [`update`](Self::update), then
/// [`finish`](Self::finish). The ciphertext is identical however the input is chunked.
///
/// Its work is two independent halves: AES-CBC with the plaintext's SHA-256, and the HMAC
/// with the body's SHA-256 (and the sidecar) over the ciphertext. [`encrypt_stream`]
/// runs them on two threads for large inputs; this type runs both on the caller's.
///
/// [`encrypt_stream`]: https://docs.rs/wamedia-driver/latest/wamedia_driver/fn.encrypt_stream.html
pub struct Encryptor {
    media_key: MediaKey,
    /// The IV and MAC key, kept to start a sidecar on request (zeroized on drop).
    sidecar_keys: zeroize::Zeroizing<[u8; 48]>,
    cipher: CipherHalf,
    auth: AuthHalf,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("media_key", &self.media_key)
            .field("file_length", &self.cipher.file_length)
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
            cipher: CipherHalf {
                cbc: CbcStream::new(&keys.cipher_key, &keys.iv),
                plain_hash: Sha256::new(),
                file_length: 0,
            },
            auth: AuthHalf {
                enc_hash: Sha256::new(),
                mac,
                sidecar: None,
                first_frame: None,
                cipher_len: 0,
                checkpoints: Vec::new(),
            },
            media_key,
        };
        Ok(enc.with_streaming_sidecar(media_type.has_streaming_sidecar()))
    }

    /// Computes a streaming sidecar (PROTOCOL §2.7) in the same pass, or not. On by
    /// default for video and audio (PROTOCOL v3 §1); any type may ask, or go without.
    /// Call it before the first [`update`](Self::update).
    pub fn with_streaming_sidecar(mut self, on: bool) -> Self {
        self.auth.sidecar = match (on, self.auth.cipher_len) {
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

    /// Computes the first-frame sidecar of an animated sticker (PROTOCOL §2.8) in the
    /// same pass: `first_frame_length` is the sticker's `firstFrameLength`, the file
    /// offset just past its first `ANMF` chunk (`wamedia_info` finds it). WhatsApp Web
    /// computes it for stickers only; any type may ask. Call it before the first
    /// [`update`](Self::update) (later it does nothing).
    pub fn with_first_frame_sidecar(mut self, first_frame_length: u64) -> Self {
        if self.auth.cipher_len == 0 {
            let mut mac_key = [0u8; 32];
            mac_key.copy_from_slice(&self.sidecar_keys[16..]);
            let mut f = FirstFrameHasher::new(&mac_key, first_frame_length);
            zeroize::Zeroize::zeroize(&mut mac_key);
            f.update(&self.sidecar_keys[..16]);
            self.auth.first_frame = Some((f, first_frame_length));
        }
        self
    }

    /// Plaintext bytes fed so far.
    pub fn file_length(&self) -> u64 {
        self.cipher.file_length
    }

    /// Encrypts `plaintext` and appends the ciphertext of every completed block to `out`
    /// (at most `plaintext.len() + 15` bytes). `out` is not cleared: reuse it by clearing
    /// it yourself after you have written its contents.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        self.cipher.update(plaintext, out);
        self.auth.absorb(&out[start..]);
    }

    /// Appends the last block and the 10-byte MAC to `out` and returns the summary.
    pub fn finish(mut self, out: &mut Vec<u8>) -> EncryptedMedia {
        self.finish_cipher(out);
        self.seal(out)
    }

    /// Appends the padded last block to `out` (through both halves): after the halves of
    /// [`split`](Self::split) took every byte, and before [`seal`](Self::seal).
    pub fn finish_cipher(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.cipher.finish(out);
        self.auth.absorb(&out[start..]);
    }

    /// Splits the encryptor into its halves (the rest stays in `self`), to run them on two
    /// threads: every plaintext byte through [`CipherHalf::update`], every ciphertext byte
    /// it made through [`AuthHalf::absorb`] in order, then [`finish_cipher`](Self::finish_cipher)
    /// and [`seal`](Self::seal). [`update`](Self::update) and [`finish`](Self::finish) do
    /// exactly this on one thread.
    pub fn split(&mut self) -> (&mut CipherHalf, &mut AuthHalf) {
        (&mut self.cipher, &mut self.auth)
    }

    /// After [`finish_cipher`](Self::finish_cipher): appends the MAC to `out` and returns
    /// the summary.
    pub fn seal(mut self, out: &mut Vec<u8>) -> EncryptedMedia {
        let tag = self.auth.mac.finalize().into_bytes();
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&tag[..MAC_LEN]);
        out.extend_from_slice(&mac);
        self.auth.enc_hash.update(mac);
        let streaming_sidecar = self.auth.sidecar.take().map(|mut s| {
            s.update(&mac);
            s.finish()
        });
        let first_frame = self.auth.first_frame.take().map(|(mut f, l)| {
            f.update(&mac);
            (f.finish(), l)
        });
        EncryptedMedia {
            media_key: self.media_key,
            file_sha256: self.cipher.plain_hash.finalize().into(),
            file_enc_sha256: self.auth.enc_hash.finalize().into(),
            file_length: self.cipher.file_length,
            mac,
            checkpoints: self.auth.checkpoints,
            streaming_sidecar,
            first_frame_sidecar: first_frame.map(|(s, _)| s),
            first_frame_length: first_frame.map(|(_, l)| l),
        }
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
    /// The first-frame sidecar of an animated sticker (PROTOCOL §2.8), when asked for
    /// with [`Encryptor::with_first_frame_sidecar`].
    pub first_frame_sidecar: Option<[u8; crate::sidecar::ENTRY]>,
    /// The `firstFrameLength` the first-frame sidecar was computed for.
    pub first_frame_length: Option<u64>,
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
        let block_start = (body_offset.min(body_len - MAC_LEN as u64 - 16) / 16) * 16;
        let cp = (block_start / CHECKPOINT_INTERVAL) as usize;
        let cp = cp.min(self.checkpoints.len());
        let (plain_start, iv) = if cp == 0 {
            (0, keys.iv)
        } else {
            (cp as u64 * CHECKPOINT_INTERVAL, self.checkpoints[cp - 1])
        };
        let gen = BodyGenerator {
            aes: Aes256::new((&keys.cipher_key).into()),
            chain: iv,
            pending: [0; 16],
            pending_len: 0,
            checkpoints: self.checkpoints.clone(),
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
///
/// It knows the CBC chaining block at every checkpoint, so whole groups of [`LANES`]
/// segments ([`LANE_GROUP`] bytes fed at a checkpoint) are encrypted on [`LANES`] chains
/// at once, and each segment's last block is checked against the first pass's: a file
/// that changed since is caught here, before the CDN would refuse the body's hash.
pub struct BodyGenerator {
    aes: Aes256,
    /// The last ciphertext block produced (the IV before any).
    chain: [u8; 16],
    pending: [u8; 16],
    pending_len: usize,
    checkpoints: Vec<[u8; 16]>,
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

fn xor16(block: &mut [u8], with: &[u8; 16]) {
    for (b, w) in block.iter_mut().zip(with) {
        *b ^= w;
    }
}

impl BodyGenerator {
    /// Feeds the next plaintext bytes; appends the body bytes they complete to `out`.
    ///
    /// # Errors
    /// [`BodyError::PlaintextChanged`] when more plaintext arrives than the first pass saw,
    /// or a segment's ciphertext ends otherwise than in the first pass.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.finished || self.plain_pos + plaintext.len() as u64 > self.file_length {
            return Err(BodyError::PlaintextChanged);
        }
        let start = out.len();
        out.extend_from_slice(plaintext);
        self.encrypt_tail(out, start)
    }

    /// [`update`](Self::update) in place: `buf` holds the next plaintext bytes and is
    /// turned into the body bytes they complete. Fed whole groups at a checkpoint, as
    /// [`BodyReader`](crate::BodyReader) does, no byte is moved: one buffer serves.
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub fn update_in_place(&mut self, buf: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.finished || self.plain_pos + buf.len() as u64 > self.file_length {
            return Err(BodyError::PlaintextChanged);
        }
        self.encrypt_tail(buf, 0)
    }

    /// Turns the plaintext `buf[start..]` (just fed, following any pending bytes) into
    /// the body bytes it completes, less any still to skip.
    fn encrypt_tail(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), BodyError> {
        self.plain_pos += (buf.len() - start) as u64;
        if self.pending_len > 0 {
            // The held partial block goes in front (a move of the buffer; it happens only
            // when a feed ended off a block boundary).
            buf.splice(
                start..start,
                self.pending[..self.pending_len].iter().copied(),
            );
            self.pending_len = 0;
        }
        let whole = (buf.len() - start) / 16 * 16;
        let rest = buf.len() - start - whole;
        self.pending[..rest].copy_from_slice(&buf[start + whole..]);
        self.pending_len = rest;
        buf.truncate(start + whole);
        // Blocks start at this plaintext offset.
        let mut pos = self.plain_pos - (whole + rest) as u64;
        let mut at = start;
        while buf.len() - at >= LANE_GROUP && pos.is_multiple_of(CHECKPOINT_INTERVAL) {
            let first = (pos / CHECKPOINT_INTERVAL) as usize;
            // Chains start at segments first..first + LANES: known when their checkpoints are.
            if first + LANES - 1 > self.checkpoints.len() {
                break;
            }
            self.lanes(first, &mut buf[at..at + LANE_GROUP])?;
            at += LANE_GROUP;
            pos += LANE_GROUP as u64;
        }
        self.serial(pos, &mut buf[at..])?;
        self.skip_front(buf, start);
        Ok(())
    }

    /// CBC on one chain over whole blocks from plaintext offset `begin`.
    fn serial(&mut self, begin: u64, blocks: &mut [u8]) -> Result<(), BodyError> {
        for (i, block) in blocks.chunks_exact_mut(16).enumerate() {
            xor16(block, &self.chain);
            self.aes.encrypt_block(block.into());
            self.chain.copy_from_slice(block);
            let block_end = begin + 16 * (i as u64 + 1);
            if block_end.is_multiple_of(CHECKPOINT_INTERVAL) {
                self.check(block_end)?;
            }
        }
        Ok(())
    }

    /// CBC on [`LANES`] chains: `group` is segments `first..first + LANES`, whole.
    fn lanes(&mut self, first: usize, group: &mut [u8]) -> Result<(), BodyError> {
        let seg = CHECKPOINT_INTERVAL as usize;
        let mut chains = [0u128; LANES];
        chains[0] = u128::from_ne_bytes(self.chain);
        for (l, c) in chains.iter_mut().enumerate().skip(1) {
            *c = u128::from_ne_bytes(self.checkpoints[first + l - 1]);
        }
        let mut segments = group.chunks_exact_mut(seg);
        let mut lanes: [std::slice::ChunksExactMut<'_, u8>; LANES] = std::array::from_fn(|_| {
            segments
                .next()
                .expect("a group is LANES segments")
                .chunks_exact_mut(16)
        });
        let mut blocks = [aes::Block::default(); LANES];
        for _ in 0..seg / 16 {
            let mut at: [&mut [u8]; LANES] =
                std::array::from_fn(|l| lanes[l].next().expect("segments are whole blocks"));
            for ((b, p), c) in blocks.iter_mut().zip(at.iter()).zip(&chains) {
                let p = u128::from_ne_bytes((&**p).try_into().expect("16 bytes"));
                b.copy_from_slice(&(p ^ c).to_ne_bytes());
            }
            self.aes.encrypt_blocks(&mut blocks);
            for ((b, p), c) in blocks.iter().zip(at.iter_mut()).zip(chains.iter_mut()) {
                p.copy_from_slice(b);
                *c = u128::from_ne_bytes((*b).into());
            }
        }
        self.chain = chains[LANES - 1].to_ne_bytes();
        for (l, c) in chains.iter().enumerate() {
            if let Some(want) = self.checkpoints.get(first + l) {
                if *want != c.to_ne_bytes() {
                    return Err(BodyError::PlaintextChanged);
                }
            }
        }
        Ok(())
    }

    /// At a checkpoint offset: the chain must be the first pass's.
    fn check(&self, plain_offset: u64) -> Result<(), BodyError> {
        let i = (plain_offset / CHECKPOINT_INTERVAL) as usize;
        match i.checked_sub(1).and_then(|i| self.checkpoints.get(i)) {
            Some(want) if *want != self.chain => Err(BodyError::PlaintextChanged),
            _ => Ok(()),
        }
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
        let pad = 16 - self.pending_len;
        let mut block = self.pending;
        block[self.pending_len..].fill(pad as u8);
        xor16(&mut block, &self.chain);
        self.aes.encrypt_block((&mut block).into());
        out.extend_from_slice(&block);
        out.extend_from_slice(&self.mac);
        self.pending_len = 0;
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
