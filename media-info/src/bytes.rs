//! Bounded reads from a seekable source, and fixed-width numbers from slices.
//!
//! Every parser reads headers through these: a read never asks for more than the caller's
//! buffer, and a number is taken from a slice only if the slice holds it (`None` otherwise),
//! so a short or lying file ends in an error value, never a panic.

use std::io::{self, Read, Seek, SeekFrom};

/// The length of the source, in bytes.
pub(crate) fn stream_len<S: Seek>(src: &mut S) -> io::Result<u64> {
    src.seek(SeekFrom::End(0))
}

/// Reads up to `buf.len()` bytes at `pos`; returns how many were there.
pub(crate) fn read_at<S: Read + Seek>(src: &mut S, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
    src.seek(SeekFrom::Start(pos))?;
    let mut n = 0;
    while n < buf.len() {
        let rest = buf.get_mut(n..).unwrap_or_default();
        match src.read(rest) {
            Ok(0) => break,
            Ok(k) => n = n.saturating_add(k),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads exactly `buf.len()` bytes at `pos`, or says the file is cut short.
pub(crate) fn read_exact_at<S: Read + Seek>(
    src: &mut S,
    pos: u64,
    buf: &mut [u8],
) -> Result<(), String> {
    let n = read_at(src, pos, buf).map_err(|e| format!("read failed: {e}"))?;
    if n < buf.len() {
        return Err(format!(
            "cut short at byte {}",
            pos.saturating_add(n as u64)
        ));
    }
    Ok(())
}

/// Reads `len` bytes at `pos` into a new vector (the caller bounds `len`).
pub(crate) fn read_vec_at<S: Read + Seek>(
    src: &mut S,
    pos: u64,
    len: usize,
) -> Result<Vec<u8>, String> {
    let mut v = vec![0; len];
    read_exact_at(src, pos, &mut v)?;
    Ok(v)
}

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}
pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}
pub(crate) fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_be_bytes)
}
pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}
pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_le_bytes)
}
/// Three bytes, little-endian (WebP's 24-bit sizes).
pub(crate) fn le_u24(b: &[u8], at: usize) -> Option<u32> {
    let [x, y, z] = array::<3>(b, at)?;
    Some(u32::from_le_bytes([x, y, z, 0]))
}

/// A sliding read-ahead buffer over a source, for parsers that walk a file front to back
/// (MP3 and ADTS frames, a PDF's bytes) without one read per header.
pub(crate) struct Window<'a, S> {
    src: &'a mut S,
    len: u64,
    start: u64,
    buf: Vec<u8>,
    chunk: usize,
}

impl<'a, S: Read + Seek> Window<'a, S> {
    pub(crate) fn new(src: &'a mut S, len: u64, chunk: usize) -> Self {
        Window {
            src,
            len,
            start: 0,
            buf: Vec::new(),
            chunk,
        }
    }

    /// The `n` bytes at `pos`, or `None` past the end of the source.
    pub(crate) fn get(&mut self, pos: u64, n: usize) -> Result<Option<&[u8]>, String> {
        let end = pos.checked_add(n as u64).ok_or("offset overflows")?;
        if end > self.len {
            return Ok(None);
        }
        let buf_end = self.start.saturating_add(self.buf.len() as u64);
        if pos < self.start || end > buf_end {
            let want = u64::try_from(self.chunk.max(n))
                .unwrap_or(u64::MAX)
                .min(self.len.saturating_sub(pos));
            let want = usize::try_from(want).map_err(|_| "window too large")?;
            self.buf.resize(want, 0);
            read_exact_at(self.src, pos, &mut self.buf)?;
            self.start = pos;
        }
        let from = usize::try_from(pos.saturating_sub(self.start)).map_err(|_| "bad offset")?;
        Ok(self.buf.get(from..from.saturating_add(n)))
    }
}
