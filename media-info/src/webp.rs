//! WebP headers (RIFF container): canvas size and whether the image is animated.
//!
//! A simple file is one `VP8 ` (lossy) or `VP8L` (lossless) chunk; an extended one starts
//! with `VP8X`, whose flags carry the animation bit, and an animated one has an `ANIM`
//! chunk and `ANMF` frames. Both the bit and the chunk count as animated.
//!
//! An animated sticker's `firstFrameLength` (PROTOCOL §2.8) is the file offset just past
//! its first `ANMF` chunk: the chunk's offset + 8 + its size, as `WAWebWebpParseWebp` adds
//! it (the size as written, no padding byte; an `ANMF`'s size is even in any file libwebp
//! writes, its sub-chunks being padded). That module looks for the first frame only at
//! offset 44 (`RIFF` header, `VP8X`, `ANIM`); this walk finds it after any chunks, so a
//! file with an `ICCP` chunk before `ANIM` gets a length here and none from WhatsApp Web.

use std::io::{Read, Seek};

use crate::bytes::{le_u16, le_u24, le_u32, read_exact_at};

/// What a WebP header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WebP {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) animated: bool,
    /// The offset just past the first `ANMF` chunk, when it lies wholly in the file.
    pub(crate) first_frame_length: Option<u64>,
}

/// Reads the chunk headers of a WebP file of `len` bytes (at most 1024 chunks).
pub(crate) fn parse<S: Read + Seek>(src: &mut S, len: u64) -> Result<WebP, String> {
    let mut riff = [0u8; 12];
    read_exact_at(src, 0, &mut riff)?;
    if &riff[..4] != b"RIFF" || &riff[8..12] != b"WEBP" {
        return Err("not a RIFF WEBP file".into());
    }
    let riff_end = u64::from(le_u32(&riff, 4).unwrap_or(0))
        .saturating_add(8)
        .min(len);
    let mut pos = 12u64;
    let mut size: Option<(u32, u32)> = None;
    let mut animated = false;
    let mut saw_image = false;
    let mut first_frame_length = None;
    let mut first_frame_cut = false;
    for _ in 0..1024 {
        if pos.saturating_add(8) > riff_end {
            break;
        }
        let mut h = [0u8; 8];
        read_exact_at(src, pos, &mut h)?;
        let fourcc = [h[0], h[1], h[2], h[3]];
        let chunk_len = u64::from(le_u32(&h, 4).unwrap_or(0));
        let body = pos.saturating_add(8);
        let mut b = [0u8; 10];
        match &fourcc {
            b"VP8X" => {
                read_exact_at(src, body, &mut b)?;
                animated |= b[0] & 0x02 != 0;
                let w = le_u24(&b, 4).unwrap_or(0).saturating_add(1);
                let h = le_u24(&b, 7).unwrap_or(0).saturating_add(1);
                size = Some((w, h));
            }
            b"ANIM" => animated = true,
            b"ANMF" => {
                animated = true;
                if first_frame_length.is_none() && !first_frame_cut {
                    match body.checked_add(chunk_len) {
                        Some(end) if end <= riff_end => first_frame_length = Some(end),
                        _ => first_frame_cut = true,
                    }
                }
            }
            b"VP8 " if size.is_none() => {
                read_exact_at(src, body, &mut b)?;
                // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height.
                if b[3..6] != [0x9D, 0x01, 0x2A] {
                    return Err("VP8 chunk without its start code".into());
                }
                let w = u32::from(le_u16(&b, 6).unwrap_or(0) & 0x3FFF);
                let h = u32::from(le_u16(&b, 8).unwrap_or(0) & 0x3FFF);
                size = Some((w, h));
                saw_image = true;
            }
            b"VP8L" if size.is_none() => {
                read_exact_at(src, body, &mut b[..5])?;
                if b[0] != 0x2F {
                    return Err("VP8L chunk without its signature".into());
                }
                let bits = le_u32(&b, 1).unwrap_or(0);
                size = Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1));
                saw_image = true;
            }
            b"VP8 " | b"VP8L" => saw_image = true,
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body.saturating_add(chunk_len).saturating_add(chunk_len & 1);
    }
    let (width, height) = size.ok_or("no VP8X, VP8 or VP8L chunk")?;
    if width == 0 || height == 0 {
        return Err("a WebP of zero size".into());
    }
    if !saw_image && !animated {
        return Err("a WebP without image data".into());
    }
    if first_frame_cut {
        return Err("the first animation frame (ANMF) runs past the end of the file".into());
    }
    Ok(WebP {
        width,
        height,
        animated,
        first_frame_length: if animated { first_frame_length } else { None },
    })
}
