//! WAV (RIFF WAVE): the duration is the `data` chunk's size over the `fmt ` chunk's byte
//! rate; 16-bit PCM samples for a voice note's waveform.

use std::io::{Read, Seek};

use crate::bytes::{le_u16, le_u32, read_exact_at};

/// What the chunks of a WAV file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wav {
    pub(crate) format_tag: u16,
    pub(crate) channels: u16,
    pub(crate) byte_rate: u32,
    pub(crate) bits: u16,
    /// Where the samples start and how many bytes of them the file holds.
    pub(crate) data: u64,
    pub(crate) data_len: u64,
}

impl Wav {
    /// The length in milliseconds.
    pub(crate) fn duration_ms(&self) -> Option<u64> {
        (self.byte_rate > 0).then(|| {
            u64::try_from(u128::from(self.data_len) * 1000 / u128::from(self.byte_rate))
                .unwrap_or(u64::MAX)
        })
    }
}

/// Reads the chunk headers (at most 1024) of a WAV file of `len` bytes.
pub(crate) fn parse<S: Read + Seek>(src: &mut S, len: u64) -> Result<Wav, String> {
    let mut pos = 12u64;
    let mut fmt: Option<[u8; 16]> = None;
    for _ in 0..1024 {
        let mut h = [0u8; 8];
        if pos.saturating_add(8) > len {
            break;
        }
        read_exact_at(src, pos, &mut h)?;
        let size = u64::from(le_u32(&h, 4).unwrap_or(0));
        let body = pos.saturating_add(8);
        match &h[..4] {
            b"fmt " => {
                let mut f = [0u8; 16];
                read_exact_at(src, body, &mut f)?;
                fmt = Some(f);
            }
            b"data" => {
                let f = fmt.ok_or("'data' before 'fmt '")?;
                // A streamed WAV says 0 or 0xFFFFFFFF: the data runs to the end.
                let data_len = if size == 0 || size == u64::from(u32::MAX) {
                    len.saturating_sub(body)
                } else {
                    size.min(len.saturating_sub(body))
                };
                return Ok(Wav {
                    format_tag: le_u16(&f, 0).unwrap_or(0),
                    channels: le_u16(&f, 2).unwrap_or(0),
                    byte_rate: le_u32(&f, 8).unwrap_or(0),
                    bits: le_u16(&f, 14).unwrap_or(0),
                    data: body,
                    data_len,
                });
            }
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    Err("no 'data' chunk".into())
}
