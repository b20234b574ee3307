//! Bounded reads from a seekable source, and fixed-width numbers from slices.
//!
//! Every parser reads headers through these: a read never asks for more than the caller's
//! buffer, and a number is taken from a slice only if the slice holds it (`None` otherwise),
//! so a short or lying file ends in an error value, never a panic.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

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

/// How much a [`Source`] reads from its inner reader at a time.
const SOURCE_BUFFER: usize = 64 * 1024;

/// A buffered reader whose seeks within what it holds are free.
///
/// `std::io::BufReader` throws its buffer away on every `seek`, so a parser that reads an
/// 8-byte header at a known offset (every parser here does) refilled 8 KiB per header. A
/// seek here only moves a cursor when the target lies in the buffer, and is passed on to the
/// inner reader lazily, at the next refill; a source read front to back is thus read once,
/// in 64 KiB pieces, however small its headers.
pub(crate) struct Source<R> {
    inner: R,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    start: u64,
    /// How much of `buf` holds data, and where in it the cursor is.
    filled: usize,
    at: usize,
    /// Where the inner reader is, when known.
    inner_pos: Option<u64>,
}

impl<R: Read + Seek> Source<R> {
    pub(crate) fn new(inner: R) -> Self {
        Source {
            inner,
            buf: vec![0; SOURCE_BUFFER],
            start: 0,
            filled: 0,
            at: 0,
            inner_pos: None,
        }
    }

    fn pos(&self) -> u64 {
        self.start.saturating_add(self.at as u64)
    }

    /// Positions the inner reader at the buffer's end, if it is not there already.
    fn sync_inner(&mut self) -> io::Result<u64> {
        let want = self.start.saturating_add(self.filled as u64);
        if self.inner_pos != Some(want) {
            self.inner.seek(SeekFrom::Start(want))?;
            self.inner_pos = Some(want);
        }
        Ok(want)
    }
}

impl<R: Read + Seek> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let have = self.fill_buf()?;
            let n = have.len().min(out.len());
            out.get_mut(..n)
                .unwrap_or_default()
                .copy_from_slice(have.get(..n).unwrap_or_default());
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read + Seek> io::BufRead for Source<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at >= self.filled {
            let pos = self.pos();
            self.start = pos;
            self.filled = 0;
            self.at = 0;
            self.sync_inner()?;
            let n = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.inner_pos = None;
                        return Err(e);
                    }
                }
            };
            self.filled = n;
            self.inner_pos = Some(pos.saturating_add(n as u64));
        }
        Ok(self.buf.get(self.at..self.filled).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.at = self.at.saturating_add(amt).min(self.filled);
    }
}

impl<R: Read + Seek> Seek for Source<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self
                .pos()
                .checked_add_signed(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?,
            SeekFrom::End(_) => {
                let p = self.inner.seek(to)?;
                self.inner_pos = Some(p);
                // The buffer stays valid (the file did not change); only the cursor moves.
                p
            }
        };
        let end = self.start.saturating_add(self.filled as u64);
        if target >= self.start && target <= end {
            self.at = usize::try_from(target.saturating_sub(self.start)).unwrap_or(self.filled);
        } else {
            self.start = target;
            self.filled = 0;
            self.at = 0;
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_source_reads_what_the_file_holds_at_any_offset() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut s = Source::new(Cursor::new(&data));
        assert_eq!(stream_len(&mut s).unwrap(), data.len() as u64);
        for pos in [0u64, 7, 65_535, 65_536, 3, 199_990, 100_000, 65_530] {
            let mut b = [0u8; 16];
            let n = read_at(&mut s, pos, &mut b).unwrap();
            let want = &data[pos as usize..(pos as usize + 16).min(data.len())];
            assert_eq!(&b[..n], want, "at {pos}");
        }
        s.seek(SeekFrom::Start(10)).unwrap();
        s.seek(SeekFrom::Current(-3)).unwrap();
        assert_eq!(s.fill_buf().unwrap()[0], data[7]);
    }
}
