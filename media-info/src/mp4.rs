//! ISO base media files (MP4, MOV, M4A, 3GP): the duration from `moov/mvhd`, and the
//! video track's width and height from its `tkhd`, reading box headers only.
//!
//! The walk seeks over every box it does not need (`mdat` above all), so a file's size
//! does not matter; it follows a fixed path (`moov/trak/mdia/minf/stbl/stsd` at the deepest)
//! and reads at most 4096 box headers per level and [`MAX_TOTAL_BOXES`] in all, so the work
//! is bounded whatever the nesting (a `moov` of 4096 `trak`s of 4096 boxes each is refused
//! after the first 16 384 headers, not walked).
//! Box sizes are checked against their parent before anything is read.

use std::io::{Read, Seek};

use crate::bytes::{be_u16, be_u32, be_u64, read_exact_at, read_vec_at};
use crate::sniff::Mp4Kind;

const MAX_BOXES: u32 = 4096;
/// Box headers read in one parse, over all levels.
pub(crate) const MAX_TOTAL_BOXES: u32 = 16_384;
/// The largest header-like box read whole (`mvhd`, `tkhd`, `hdlr`, `mdhd`, `stsd`, `mehd`).
const MAX_SMALL_BOX: u64 = 64 * 1024;

/// What the boxes say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mp4 {
    pub(crate) major_brand: [u8; 4],
    pub(crate) duration_ms: Option<u64>,
    /// Width and height of the first video track, as displayed (a 90° or 270° rotation in
    /// the track matrix swaps them, as players and WhatsApp's clients show the video).
    pub(crate) video: Option<(u32, u32)>,
    pub(crate) has_video: bool,
    pub(crate) has_audio: bool,
}

impl Mp4 {
    /// What kind of file the brand and tracks make this.
    pub(crate) fn kind(&self) -> Mp4Kind {
        match &self.major_brand {
            b"qt  " => Mp4Kind::QuickTime,
            b if b.starts_with(b"3g") => Mp4Kind::ThreeGpp,
            b"M4A " | b"M4B " | b"M4P " => Mp4Kind::Audio,
            _ if self.has_video => Mp4Kind::Video,
            _ if self.has_audio => Mp4Kind::Audio,
            _ => Mp4Kind::Video,
        }
    }
}

/// A box: its type and where its body is.
#[derive(Debug, Clone, Copy)]
struct BoxRef {
    kind: [u8; 4],
    body: u64,
    end: u64,
}

/// The boxes between `start` and `end`.
fn children<S: Read + Seek>(
    src: &mut S,
    start: u64,
    end: u64,
    budget: &mut u32,
) -> Result<Vec<BoxRef>, String> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos.saturating_add(8) <= end {
        if out.len() >= MAX_BOXES as usize {
            return Err("too many boxes".into());
        }
        *budget = budget
            .checked_sub(1)
            .ok_or(format!("over {MAX_TOTAL_BOXES} boxes in all"))?;
        let mut h = [0u8; 16];
        read_exact_at(src, pos, &mut h[..8])?;
        let size32 = be_u32(&h, 0).unwrap_or(0);
        let kind = [h[4], h[5], h[6], h[7]];
        let (size, header) = match size32 {
            0 => (end.saturating_sub(pos), 8), // to the end of the enclosing space
            1 => {
                read_exact_at(src, pos.saturating_add(8), &mut h[8..16])?;
                (be_u64(&h, 8).unwrap_or(0), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header {
            return Err(format!(
                "box '{}' with a size of {size}",
                String::from_utf8_lossy(&kind)
            ));
        }
        let box_end = pos.checked_add(size).ok_or("box size overflows")?;
        if box_end > end {
            return Err(format!(
                "box '{}' runs past its parent (the file is cut short?)",
                String::from_utf8_lossy(&kind)
            ));
        }
        out.push(BoxRef {
            kind,
            body: pos.saturating_add(header),
            end: box_end,
        });
        pos = box_end;
    }
    Ok(out)
}

fn small_body<S: Read + Seek>(src: &mut S, b: BoxRef) -> Result<Vec<u8>, String> {
    let len = b.end.saturating_sub(b.body);
    if len > MAX_SMALL_BOX {
        return Err(format!(
            "box '{}' of {len} bytes",
            String::from_utf8_lossy(&b.kind)
        ));
    }
    read_vec_at(
        src,
        b.body,
        usize::try_from(len).map_err(|_| "box too large")?,
    )
}

fn find(boxes: &[BoxRef], kind: &[u8; 4]) -> Option<BoxRef> {
    boxes.iter().copied().find(|b| &b.kind == kind)
}

/// (timescale, duration) of an `mvhd` or `mdhd` body (both start the same way).
fn time_header(b: &[u8]) -> Option<(u32, u64)> {
    match b.first()? {
        0 => Some((be_u32(b, 12)?, u64::from(be_u32(b, 16)?))),
        1 => Some((be_u32(b, 20)?, be_u64(b, 24)?)),
        _ => None,
    }
}

fn to_ms(timescale: u32, duration: u64) -> Option<u64> {
    // An all-ones duration means "unknown"; a zero one is a fragmented file's placeholder.
    if timescale == 0 || duration == 0 || duration == u64::from(u32::MAX) || duration == u64::MAX {
        return None;
    }
    u64::try_from(u128::from(duration) * 1000 / u128::from(timescale)).ok()
}

/// Parses the boxes of an ISO base media file of `len` bytes.
pub(crate) fn parse<S: Read + Seek>(src: &mut S, len: u64) -> Result<Mp4, String> {
    let budget = &mut { MAX_TOTAL_BOXES };
    let top = children(src, 0, len, budget)?;
    let mut out = Mp4::default();
    if let Some(ftyp) = find(&top, b"ftyp") {
        let mut brand = [0u8; 4];
        read_exact_at(src, ftyp.body, &mut brand)?;
        out.major_brand = brand;
    }
    let moov = find(&top, b"moov").ok_or("no 'moov' box (not a complete MP4?)")?;
    let boxes = children(src, moov.body, moov.end, budget)?;
    let mvhd = find(&boxes, b"mvhd").ok_or("no 'mvhd' box")?;
    let (timescale, duration) = time_header(&small_body(src, mvhd)?).ok_or("malformed 'mvhd'")?;
    out.duration_ms = to_ms(timescale, duration);
    if out.duration_ms.is_none() {
        // A fragmented file keeps its length in mvex/mehd, in the movie's timescale.
        if let Some(mvex) = find(&boxes, b"mvex") {
            let inner = children(src, mvex.body, mvex.end, budget)?;
            if let Some(mehd) = find(&inner, b"mehd") {
                let b = small_body(src, mehd)?;
                let d = match b.first() {
                    Some(1) => be_u64(&b, 4),
                    _ => be_u32(&b, 4).map(u64::from),
                };
                out.duration_ms = d.and_then(|d| to_ms(timescale, d));
            }
        }
    }
    let mut track_ms: Option<u64> = None;
    for trak in boxes.iter().filter(|b| &b.kind == b"trak") {
        let t = track(src, *trak, budget)?;
        match &t.handler {
            b"vide" => {
                out.has_video = true;
                if out.video.is_none() {
                    out.video = t.size;
                }
            }
            b"soun" => out.has_audio = true,
            _ => {}
        }
        track_ms = track_ms.max(t.duration_ms);
    }
    if out.duration_ms.is_none() {
        out.duration_ms = track_ms;
    }
    Ok(out)
}

struct Track {
    handler: [u8; 4],
    size: Option<(u32, u32)>,
    duration_ms: Option<u64>,
}

fn track<S: Read + Seek>(src: &mut S, trak: BoxRef, budget: &mut u32) -> Result<Track, String> {
    let boxes = children(src, trak.body, trak.end, budget)?;
    let mut t = Track {
        handler: [0; 4],
        size: None,
        duration_ms: None,
    };
    if let Some(tkhd) = find(&boxes, b"tkhd") {
        t.size = tkhd_size(&small_body(src, tkhd)?);
    }
    let Some(mdia) = find(&boxes, b"mdia") else {
        return Ok(t);
    };
    let inner = children(src, mdia.body, mdia.end, budget)?;
    if let Some(hdlr) = find(&inner, b"hdlr") {
        let b = small_body(src, hdlr)?;
        if let Some(h) = b.get(8..12) {
            t.handler.copy_from_slice(h);
        }
    }
    if let Some(mdhd) = find(&inner, b"mdhd") {
        t.duration_ms = time_header(&small_body(src, mdhd)?).and_then(|(s, d)| to_ms(s, d));
    }
    if &t.handler == b"vide" && t.size.is_none() {
        t.size = sample_entry_size(src, &inner, budget)?;
    }
    Ok(t)
}

/// Width and height from a `tkhd` body (16.16 fixed point), swapped for a quarter turn.
fn tkhd_size(b: &[u8]) -> Option<(u32, u32)> {
    let base = match b.first()? {
        0 => 4 + 4 + 4 + 4 + 4 + 4,
        1 => 4 + 8 + 8 + 4 + 4 + 8,
        _ => return None,
    };
    let matrix = base + 8 + 2 + 2 + 2 + 2;
    let w = be_u32(b, matrix + 36)? >> 16;
    let h = be_u32(b, matrix + 40)? >> 16;
    if w == 0 || h == 0 {
        return None;
    }
    let a = be_u32(b, matrix)?;
    let d = be_u32(b, matrix + 16)?;
    let bb = be_u32(b, matrix + 4)?;
    let c = be_u32(b, matrix + 12)?;
    let quarter_turn = a == 0 && d == 0 && bb != 0 && c != 0;
    Some(if quarter_turn { (h, w) } else { (w, h) })
}

/// Width and height of the first visual sample entry (`minf/stbl/stsd`), for files whose
/// `tkhd` says 0 × 0.
fn sample_entry_size<S: Read + Seek>(
    src: &mut S,
    mdia: &[BoxRef],
    budget: &mut u32,
) -> Result<Option<(u32, u32)>, String> {
    let Some(minf) = find(mdia, b"minf") else {
        return Ok(None);
    };
    let minf = children(src, minf.body, minf.end, budget)?;
    let Some(stbl) = find(&minf, b"stbl") else {
        return Ok(None);
    };
    let stbl = children(src, stbl.body, stbl.end, budget)?;
    let Some(stsd) = find(&stbl, b"stsd") else {
        return Ok(None);
    };
    let b = small_body(src, stsd)?;
    // Full-box header (4), entry count (4), then the entry: size (4), type (4), 6 reserved,
    // data reference index (2), 16 bytes of pre-defined/reserved, width (2), height (2).
    let w = be_u16(&b, 8 + 32).map(u32::from);
    let h = be_u16(&b, 8 + 34).map(u32::from);
    Ok(match (w, h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tkhd(matrix: [u32; 9], w: u32, h: u32) -> Vec<u8> {
        let mut b = vec![0u8; 24]; // version 0, flags, times, track id, reserved, duration
        b.extend_from_slice(&[0; 8]); // reserved
        b.extend_from_slice(&[0; 8]); // layer, alternate group, volume, reserved
        for m in matrix {
            b.extend_from_slice(&m.to_be_bytes());
        }
        b.extend_from_slice(&(w << 16).to_be_bytes());
        b.extend_from_slice(&(h << 16).to_be_bytes());
        b
    }

    #[test]
    fn a_quarter_turn_in_the_track_matrix_swaps_width_and_height() {
        let identity = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];
        let turn90 = [0, 0x10000, 0, 0xFFFF_0000, 0, 0, 0, 0, 0x4000_0000];
        assert_eq!(tkhd_size(&tkhd(identity, 1920, 1080)), Some((1920, 1080)));
        assert_eq!(tkhd_size(&tkhd(turn90, 1920, 1080)), Some((1080, 1920)));
        assert_eq!(tkhd_size(&tkhd(identity, 0, 0)), None);
    }
}
