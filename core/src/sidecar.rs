//! The streaming sidecar (PROTOCOL §2.7; WhatsApp Web's `WAWebCryptoCalculateStreamingSidecar`):
//! with `D = iv ‖ ciphertext ‖ mac10`, the first 10 bytes of
//! `HMAC-SHA256(mac_key, D[n·65536 .. min(n·65536 + 65552, |D|)])` for each window n,
//! concatenated. A player checks each 64 KiB window of a partial download against it.
//!
//! Windows overlap by 16 bytes (the previous ciphertext block, the CBC IV of the
//! window), so at most two HMAC states are live; [`SidecarHasher`] is fed `D` as it is
//! produced, in any pieces, in the same pass as the encryption. WhatsApp Web makes
//! `ceil((|D| − 16) / 65536)` windows: a last piece of 16 bytes or fewer (when
//! `|D| = 65536·m + 10`, it would hold only the MAC) is no window. v2 of the contract
//! says "while n·65536 < |D|", one more window at that boundary; wamedia follows the
//! module. whatsapp-rust's sidecar leaves out the iv: it is wrong, and never matches this.
// Arithmetic here is on positions within D that this module counts itself.
#![allow(clippy::arithmetic_side_effects)]

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of `D` a window starts apart.
pub const WINDOW: u64 = 65_536;
/// Bytes a window reaches into the next one (the next window's CBC IV).
pub const OVERLAP: u64 = 16;
/// Bytes of each window's MAC in the sidecar.
pub const ENTRY: usize = 10;

/// Computes a streaming sidecar from `D = iv ‖ ciphertext ‖ mac10`, fed in order.
#[derive(Clone)]
pub struct SidecarHasher {
    keyed: Hmac<Sha256>,
    /// The window that started last.
    cur: Option<Hmac<Sha256>>,
    /// The window before it, still taking the first 16 bytes of `cur`'s.
    prev: Option<Hmac<Sha256>>,
    pos: u64,
    out: Vec<u8>,
}

impl std::fmt::Debug for SidecarHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarHasher")
            .field("pos", &self.pos)
            .field("windows", &(self.out.len() / ENTRY))
            .finish_non_exhaustive()
    }
}

impl SidecarHasher {
    /// A hasher under `mac_key` (the media key's expanded MAC key).
    pub fn new(mac_key: &[u8; 32]) -> Self {
        SidecarHasher {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(mac_key).expect("any key length"),
            cur: None,
            prev: None,
            pos: 0,
            out: Vec::new(),
        }
    }

    /// Bytes of `D` fed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds the next bytes of `D`. Each call does at most a few HMAC updates, however
    /// large `data` is.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let off = self.pos % WINDOW;
            if off == 0 {
                self.prev = self.cur.take();
                self.cur = Some(self.keyed.clone());
            }
            let mut take = WINDOW - off;
            if self.prev.is_some() {
                take = take.min(OVERLAP - off);
            }
            let take = usize::try_from(take).unwrap_or(usize::MAX).min(data.len());
            let (now, rest) = data.split_at(take);
            if let Some(c) = self.cur.as_mut() {
                c.update(now);
            }
            if let Some(p) = self.prev.as_mut() {
                p.update(now);
            }
            self.pos += take as u64;
            data = rest;
            if self.prev.is_some() && self.pos % WINDOW == OVERLAP {
                let p = self.prev.take().expect("checked");
                self.emit(p);
            }
        }
    }

    fn emit(&mut self, h: Hmac<Sha256>) {
        self.out
            .extend_from_slice(&h.finalize().into_bytes()[..ENTRY]);
    }

    /// The windows completed so far (10 bytes each), in order.
    pub fn completed(&self) -> &[u8] {
        &self.out
    }

    /// Ends `D`: closes the open windows (a last piece of 16 bytes or fewer is no
    /// window) and returns the sidecar.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.pos;
        if let Some(p) = self.prev.take() {
            self.emit(p);
        }
        if let Some(c) = self.cur.take() {
            let start = (len.saturating_sub(1) / WINDOW) * WINDOW;
            if len > start + OVERLAP {
                self.emit(c);
            }
        }
        self.out
    }
}

/// The number of windows (entries) of the sidecar of a body of `body_len` bytes
/// (`|D| = 16 + body_len`).
pub fn window_count(body_len: u64) -> u64 {
    // |D| - 16 = body_len.
    body_len.div_ceil(WINDOW)
}

/// Checks one window's entry in constant time.
pub fn entry_matches(sidecar: &[u8], window: u64, mac: &[u8]) -> bool {
    let Ok(start) = usize::try_from(window.saturating_mul(ENTRY as u64)) else {
        return false;
    };
    match sidecar.get(start..start.saturating_add(ENTRY)) {
        Some(want) => bool::from(want.ct_eq(&mac[..ENTRY.min(mac.len())])),
        None => false,
    }
}

/// The first-frame sidecar of an animated sticker (PROTOCOL §2.8; WhatsApp Web's
/// `WAWebCryptoCalculateFirstFrameSidecar`): the first 10 bytes of
/// `HMAC-SHA256(mac_key, D[0 .. 16 + ⌈L/16⌉·16])`, `L` being the sticker's
/// `firstFrameLength`. The module takes `D.slice(0, 16 + ⌈L/16⌉·16)`, and a JavaScript
/// slice ends at the end of the buffer: a range past `|D|` covers all of `D`, MAC included.
/// Fed `D` in order, in any pieces; bytes past the range are ignored.
#[derive(Clone)]
pub struct FirstFrameHasher {
    mac: Hmac<Sha256>,
    /// Bytes of `D` the range still takes.
    left: u64,
}

impl std::fmt::Debug for FirstFrameHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstFrameHasher")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// Bytes of `D` a first-frame sidecar covers for a `firstFrameLength` of `l`:
/// `16 + ⌈l/16⌉·16` (saturating; the caller clamps it to `|D|`).
pub fn first_frame_span(l: u64) -> u64 {
    l.div_ceil(16).saturating_mul(16).saturating_add(OVERLAP)
}

impl FirstFrameHasher {
    /// A hasher under `mac_key` for a `firstFrameLength` of `first_frame_length`.
    pub fn new(mac_key: &[u8; 32], first_frame_length: u64) -> Self {
        FirstFrameHasher {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(mac_key).expect("any key length"),
            left: first_frame_span(first_frame_length),
        }
    }

    /// Feeds the next bytes of `D`.
    pub fn update(&mut self, data: &[u8]) {
        let take = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(data.len());
        self.mac.update(&data[..take]);
        self.left -= take as u64;
    }

    /// The 10-byte sidecar of what the range took (all of `D` when `D` ended first).
    pub fn finish(self) -> [u8; ENTRY] {
        let mut out = [0u8; ENTRY];
        out.copy_from_slice(&self.mac.finalize().into_bytes()[..ENTRY]);
        out
    }
}

/// The first-frame sidecar of `body` (the upload body, `ciphertext ‖ mac10`, from its
/// first byte): the whole body, or a prefix of at least `first_frame_span(L) − 16`
/// bytes. A shorter `body` is taken to be the whole body (the range then covers all of
/// `D`, as WhatsApp Web's slice does).
///
/// # Errors
/// For a type that is not encrypted.
pub fn first_frame_sidecar(
    media_key: &crate::MediaKey,
    media_type: &crate::MediaType,
    first_frame_length: u64,
    body: &[u8],
) -> Result<[u8; ENTRY], crate::error::UnsupportedMediaType> {
    let keys = media_key.expand(media_type)?;
    let mut f = FirstFrameHasher::new(&keys.mac_key, first_frame_length);
    f.update(&keys.iv);
    f.update(body);
    Ok(f.finish())
}

/// The first-frame sidecar of a sticker from its whole plaintext (encrypted here once;
/// stickers are small). The same bytes as an upload's
/// [`EncryptedMedia::first_frame_sidecar`](crate::EncryptedMedia::first_frame_sidecar).
///
/// # Errors
/// For a type that is not encrypted.
pub fn first_frame_sidecar_of_plaintext(
    media_key: &crate::MediaKey,
    media_type: &crate::MediaType,
    first_frame_length: u64,
    plaintext: &[u8],
) -> Result<[u8; ENTRY], crate::error::UnsupportedMediaType> {
    let mut enc = crate::Encryptor::new(media_key.clone(), media_type)?
        .with_streaming_sidecar(false)
        .with_first_frame_sidecar(first_frame_length);
    let mut out = Vec::new();
    for chunk in plaintext.chunks(64 << 10) {
        enc.update(chunk, &mut out);
        out.clear();
    }
    let media = enc.finish(&mut out);
    Ok(media
        .first_frame_sidecar
        .expect("asked for before the first update"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule written out plainly: one HMAC per window over a slice of D.
    fn naive(mac_key: &[u8; 32], d: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let count = (d.len() as u64 - 16).div_ceil(WINDOW);
        for n in 0..count {
            let a = (n * WINDOW) as usize;
            let b = ((n * WINDOW + WINDOW + OVERLAP) as usize).min(d.len());
            let mut h = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).unwrap();
            h.update(&d[a..b]);
            out.extend_from_slice(&h.finalize().into_bytes()[..ENTRY]);
        }
        out
    }

    #[test]
    fn streaming_equals_the_rule_at_every_boundary_and_chunking() {
        let key = [7u8; 32];
        for body in [
            26u64,
            42,
            65_530,
            65_546,
            65_552,
            65_562,
            131_082,
            131_098,
            200_000 / 16 * 16 + 10,
        ] {
            let d: Vec<u8> = (0..16 + body).map(|i| (i * 31 % 251) as u8).collect();
            let want = naive(&key, &d);
            assert_eq!(
                want.len() as u64,
                window_count(body) * ENTRY as u64,
                "{body}"
            );
            for chunk in [1usize, 7, 16, 4096, 65_536, 70_000, usize::MAX] {
                let mut s = SidecarHasher::new(&key);
                for c in d.chunks(chunk.min(d.len())) {
                    s.update(c);
                }
                assert_eq!(s.finish(), want, "body {body}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_body_of_65536m_minus_6_has_no_window_for_the_mac_alone() {
        // |D| = 65536 + 10: the second piece is the 10 MAC bytes; WhatsApp Web makes one
        // window, v2's wording two.
        let body = 65_536 - 6;
        assert_eq!(window_count(body), 1);
        let d = vec![1u8; 16 + body as usize];
        let mut s = SidecarHasher::new(&[1; 32]);
        s.update(&d);
        assert_eq!(s.finish().len(), ENTRY);
    }
}
