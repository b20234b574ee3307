//! Blocking conveniences beside the machines: the first encryption pass over a reader,
//! and a `Read` that produces upload body bytes `from..` out of a seekable plaintext.
//!
//! These do I/O on a reader *you* hand in (a file, a cursor); the machines themselves
//! never do. Memory stays flat: the body is regenerated on the fly from the plaintext
//! (see [`EncryptedMedia::body_from`]), never kept whole.
// Arithmetic here is on offsets checked against the body length before use; numbers from outside are
// checked where they enter (download.rs, upload.rs, transfer.rs, conn.rs).
#![allow(clippy::arithmetic_side_effects)]

use std::io::{self, Read, Seek, SeekFrom};

use crate::encrypt::{BodyGenerator, EncryptedMedia, PlainHasher, LANE_GROUP};
use crate::media_type::MediaType;

const CHUNK: usize = 256 * 1024;

/// The plaintext read per step while regenerating a body to send: one group of
/// [`LANES`](crate::encrypt::LANES) segments, so the AES runs on every lane at once.
/// Bodies smaller than that get a buffer their size, so many small uploads in flight
/// stay small.
const SEND_CHUNK: usize = LANE_GROUP;

/// The first read buffer of a pass over a reader of unknown length: small inputs (and a
/// thousand of them at once) stay small; the buffer doubles while reads fill it.
const FIRST_CHUNK: usize = 16 * 1024;

/// A read buffer that starts small (16 KiB) and doubles up to 256 KiB while reads fill it: small
/// inputs cost little, large ones are read in large chunks.
#[derive(Debug)]
pub struct ReadBuffer(Vec<u8>);

impl Default for ReadBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadBuffer {
    /// An empty buffer of the first size.
    pub fn new() -> Self {
        ReadBuffer(vec![0; FIRST_CHUNK])
    }

    /// Reads into the buffer; returns the bytes read.
    ///
    /// # Errors
    /// The reader's.
    pub fn read<R: Read>(&mut self, r: &mut R) -> io::Result<&[u8]> {
        let n = read_some(r, &mut self.0)?;
        let full = n == self.0.len();
        if full && self.0.len() < CHUNK {
            let bigger = (self.0.len() * 2).min(CHUNK);
            let mut next = vec![0; bigger];
            next[..n].copy_from_slice(&self.0[..n]);
            self.0 = next;
        }
        Ok(&self.0[..n])
    }
}

/// `(file_sha256, file_length)` of newsletter media read from `reader`.
///
/// # Errors
/// Read errors of `reader`.
pub fn hash_reader<R: Read>(mut reader: R) -> io::Result<([u8; 32], u64)> {
    let mut h = PlainHasher::new();
    let mut buf = ReadBuffer::new();
    loop {
        let chunk = buf.read(&mut reader)?;
        if chunk.is_empty() {
            return Ok(h.finish());
        }
        h.update(chunk);
    }
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads until `buf` is full or the reader ends.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match read_some(r, &mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Upload body bytes `from..` as a `Read`, produced from a seekable plaintext.
pub struct BodyReader<R> {
    inner: R,
    gen: Option<BodyGenerator>,
    /// Plaintext read in, turned into body bytes in place, then handed out from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// Plaintext bytes read per step.
    chunk: usize,
    /// Plaintext bytes still to pass through (newsletter bodies).
    passthrough: u64,
}

impl<R> std::fmt::Debug for BodyReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("encrypted", &self.gen.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> BodyReader<R> {
    /// Encrypted body bytes `from..` regenerated from the plaintext in `inner`.
    ///
    /// # Errors
    /// Seek errors, or `from` past the body's end.
    pub fn encrypted(
        mut inner: R,
        media: &EncryptedMedia,
        media_type: &MediaType,
        from: u64,
    ) -> io::Result<Self> {
        let (plain_from, gen) = media
            .body_from(media_type, from)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        inner.seek(SeekFrom::Start(plain_from))?;
        // Buffers sized to the body and at most SEND_CHUNK: a thousand small uploads in
        // flight at once must not cost a thousand times 512 KiB.
        let left = media.file_length.saturating_sub(plain_from);
        let chunk = usize::try_from(left)
            .unwrap_or(SEND_CHUNK)
            .clamp(16, SEND_CHUNK);
        let chunk = chunk.div_ceil(16) * 16;
        Ok(BodyReader {
            inner,
            gen: Some(gen),
            buf: Vec::with_capacity(chunk + 32),
            pos: 0,
            chunk,
            passthrough: 0,
        })
    }

    /// Plaintext bytes `from..len` of `inner`, for newsletter media (sent unencrypted).
    ///
    /// # Errors
    /// Seek errors.
    pub fn plain(mut inner: R, from: u64, len: u64) -> io::Result<Self> {
        inner.seek(SeekFrom::Start(from))?;
        Ok(BodyReader {
            inner,
            gen: None,
            buf: Vec::new(),
            pos: 0,
            chunk: 0,
            passthrough: len.saturating_sub(from),
        })
    }
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(gen) = self.gen.as_mut() else {
            let want = (out.len() as u64).min(self.passthrough) as usize;
            let n = self.inner.read(&mut out[..want])?;
            if n == 0 && want > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank since it was hashed",
                ));
            }
            self.passthrough -= n as u64;
            return Ok(n);
        };
        while self.pos == self.buf.len() {
            if gen.is_finished() {
                // Done: give the buffer back while the answer is awaited.
                self.buf = Vec::new();
                self.pos = 0;
                return Ok(0);
            }
            self.pos = 0;
            self.buf.resize(self.chunk, 0);
            let n = read_full(&mut self.inner, &mut self.buf)?;
            self.buf.truncate(n);
            let changed = |e| io::Error::new(io::ErrorKind::InvalidData, e);
            if n == 0 {
                gen.finish(&mut self.buf).map_err(changed)?;
            } else {
                gen.update_in_place(&mut self.buf).map_err(changed)?;
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MediaKey;
    use std::io::Cursor;

    #[test]
    fn reader_gives_the_body_from_any_offset() {
        let plain: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let t = MediaType::Video;
        let k = MediaKey::from_bytes([3; 32]);
        let (body, _) = crate::encrypt(k.clone(), &t, &plain).unwrap();
        let (_, media) = crate::encrypt(k, &t, &plain).unwrap();
        for from in [0u64, 1, 1_048_577, body.len() as u64 - 5, body.len() as u64] {
            let mut r = BodyReader::encrypted(Cursor::new(&plain), &media, &t, from).unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, &body[from as usize..], "from {from}");
        }
        let mut r = BodyReader::plain(Cursor::new(&plain), 10, plain.len() as u64).unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, &plain[10..]);
        assert_eq!(
            hash_reader(Cursor::new(&plain)).unwrap(),
            crate::newsletter_metadata(&plain)
        );
    }
}
