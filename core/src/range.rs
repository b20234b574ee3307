//! Ranged playback (a player seeking): the plaintext bytes `a..b` of a download,
//! fetched as the ciphertext windows that cover them (plus the block before, the CBC IV
//! of the first), each window checked against the message's streaming sidecar before a
//! byte of its plaintext is released (PROTOCOL §2.7). Driven by
//! [`Download::with_plaintext_range`](crate::Download::with_plaintext_range).
// Arithmetic here is on offsets inside the planned range, checked when the plan is made.
#![allow(clippy::arithmetic_side_effects)]

use aes::Aes256;
use cbc::cipher::inout::InOutBuf;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};

use crate::encrypt::{body_len, MAC_LEN};
use crate::keys::MediaKeys;
use crate::sidecar::{self, SidecarHasher, WINDOW};

/// Which body bytes a plaintext range needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangePlan {
    /// Plaintext wanted, from (inclusive).
    pub start: u64,
    /// Plaintext wanted, to (exclusive).
    pub end: u64,
    /// The first window.
    pub first_window: u64,
    /// Body bytes to fetch, from (inclusive): the block before the first window, or 0.
    pub body_from: u64,
    /// Body bytes to fetch, to (exclusive): the end of the last window.
    pub body_to: u64,
    /// The body's whole length.
    pub body_len: u64,
}

impl RangePlan {
    /// The plan for plaintext `start..end` of a `file_length`-byte media; `None` for an
    /// empty range (after clamping `end` to the length).
    pub fn new(start: u64, end: u64, file_length: u64) -> Option<RangePlan> {
        let end = end.min(file_length);
        if start >= end {
            return None;
        }
        let body_len = body_len(file_length);
        let first_window = start / WINDOW;
        let last_window = (end - 1) / WINDOW;
        let body_from = (first_window * WINDOW).saturating_sub(16);
        let body_to = (last_window.saturating_add(1).saturating_mul(WINDOW)).min(body_len);
        Some(RangePlan {
            start,
            end,
            first_window,
            body_from,
            body_to,
            body_len,
        })
    }

    /// True when the plan reaches the end of the body (its last window holds the MAC
    /// and the padded block).
    pub fn reaches_end(&self) -> bool {
        self.body_to == self.body_len
    }
}

/// Checks each window of a ranged fetch against the sidecar and decrypts it.
pub(crate) struct RangeVerifier {
    plan: RangePlan,
    expected: Vec<u8>,
    hasher: SidecarHasher,
    cipher_key: [u8; 32],
    /// The CBC IV of the next ciphertext to decrypt; `None` until the block before the
    /// first window arrived.
    iv: Option<[u8; 16]>,
    /// The first body block (the IV), collected.
    iv_buf: Vec<u8>,
    /// Ciphertext of the windows not yet checked.
    ct: Vec<u8>,
    /// Windows checked (relative to the first).
    checked: u64,
    /// Plaintext offset of `ct[0]`.
    plain_at: u64,
}

impl std::fmt::Debug for RangeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeVerifier")
            .field("plan", &self.plan)
            .field("checked", &self.checked)
            .finish_non_exhaustive()
    }
}

impl Drop for RangeVerifier {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.cipher_key);
    }
}

impl RangeVerifier {
    pub(crate) fn new(plan: RangePlan, keys: &MediaKeys, expected: Vec<u8>) -> Self {
        let mut hasher = SidecarHasher::new(&keys.mac_key);
        let iv = if plan.first_window == 0 {
            // D starts with the key's IV.
            hasher.update(&keys.iv);
            Some(keys.iv)
        } else {
            None
        };
        RangeVerifier {
            plan,
            expected,
            hasher,
            cipher_key: keys.cipher_key,
            iv,
            iv_buf: Vec::with_capacity(16),
            ct: Vec::new(),
            checked: 0,
            plain_at: plan.first_window * WINDOW,
        }
    }

    /// Feeds the next fetched body bytes (in order, from `body_from`); appends the
    /// requested plaintext of every window now checked to `out`. `Err(window)` when a
    /// window does not match the sidecar.
    pub(crate) fn feed(&mut self, mut body: &[u8], out: &mut Vec<u8>) -> Result<(), u64> {
        if self.iv.is_none() {
            let need = 16 - self.iv_buf.len();
            let take = need.min(body.len());
            self.iv_buf.extend_from_slice(&body[..take]);
            self.hasher.update(&body[..take]);
            body = &body[take..];
            if self.iv_buf.len() < 16 {
                return Ok(());
            }
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&self.iv_buf);
            self.iv = Some(iv);
        }
        self.hasher.update(body);
        self.ct.extend_from_slice(body);
        let done = self.hasher.completed().len() as u64 / sidecar::ENTRY as u64;
        while self.checked < done {
            self.check(self.checked)?;
            let own = (WINDOW as usize).min(self.ct.len());
            self.release(own, false, out);
            self.checked += 1;
        }
        Ok(())
    }

    fn check(&self, k: u64) -> Result<(), u64> {
        let at = (k as usize) * sidecar::ENTRY;
        let window = self.plan.first_window + k;
        let mac = &self.hasher.completed()[at..at + sidecar::ENTRY];
        if sidecar::entry_matches(&self.expected, window, mac) {
            Ok(())
        } else {
            Err(window)
        }
    }

    /// Decrypts the first `n` bytes of `ct` (whole blocks), keeps what `start..end` wants.
    fn release(&mut self, n: usize, last: bool, out: &mut Vec<u8>) {
        let n = n - n % 16;
        let mut block: Vec<u8> = self.ct.drain(..n).collect();
        let iv = self.iv.unwrap_or([0; 16]);
        if let Some(tail) = block.rchunks_exact(16).next() {
            let mut next = [0u8; 16];
            next.copy_from_slice(tail);
            self.iv = Some(next);
        }
        let mut dec = cbc::Decryptor::<Aes256>::new((&self.cipher_key).into(), (&iv).into());
        let (blocks, _) = InOutBuf::from(&mut block[..]).into_chunks();
        dec.decrypt_blocks_inout_mut(blocks);
        if last {
            // PKCS#7: the sidecar and the MAC vouch for these bytes; still check it.
            let pad = block.last().copied().unwrap_or(0) as usize;
            if (1..=16).contains(&pad) && pad <= block.len() {
                block.truncate(block.len() - pad);
            }
        }
        let from = self.plain_at;
        let to = from + block.len() as u64;
        let a = self.plan.start.max(from);
        let b = self.plan.end.min(to);
        if a < b {
            out.extend_from_slice(&block[(a - from) as usize..(b - from) as usize]);
        }
        self.plain_at = to;
    }

    /// The fetch is complete: checks the windows still open (the last one, at the end
    /// of the body) and releases their plaintext.
    pub(crate) fn finish(mut self, out: &mut Vec<u8>) -> Result<(), u64> {
        if !self.plan.reaches_end() {
            return Ok(());
        }
        let hasher = std::mem::replace(&mut self.hasher, SidecarHasher::new(&[0; 32]));
        let all = hasher.finish();
        let total = all.len() as u64 / sidecar::ENTRY as u64;
        for k in self.checked..total {
            let at = (k as usize) * sidecar::ENTRY;
            let window = self.plan.first_window + k;
            if !sidecar::entry_matches(&self.expected, window, &all[at..at + sidecar::ENTRY]) {
                return Err(window);
            }
        }
        let ct_len = self.ct.len().saturating_sub(MAC_LEN);
        self.release(ct_len, true, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_their_windows_and_the_block_before() {
        let p = RangePlan::new(70_000, 70_100, 200_000).unwrap();
        assert_eq!(
            (p.first_window, p.body_from, p.body_to),
            (1, 65_520, 131_072)
        );
        let p = RangePlan::new(0, 10, 200_000).unwrap();
        assert_eq!((p.body_from, p.body_to), (0, 65_536));
        let p = RangePlan::new(199_990, 999_999, 200_000).unwrap();
        assert_eq!(
            (p.end, p.body_to, p.reaches_end()),
            (200_000, body_len(200_000), true)
        );
        assert!(RangePlan::new(10, 10, 100).is_none());
        assert!(RangePlan::new(200, 300, 100).is_none());
    }
}
