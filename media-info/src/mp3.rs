//! MPEG audio (MP3) and ADTS (raw AAC) durations from frame headers.
//!
//! MP3: the Xing/Info (or VBRI) frame's frame count when there is one, less the encoder
//! delay and padding of a LAME tag (the gapless length); otherwise every frame header is
//! walked and its samples added up. ADTS: every frame header is walked. The walks stop at
//! the first thing that is not a frame (an ID3v1 tag, junk) and after `max_bytes`.

use std::io::{Read, Seek};

use crate::bytes::{be_u16, be_u32, read_vec_at, Window};

/// One MPEG audio frame header.
#[derive(Debug, Clone, Copy)]
struct Frame {
    len: u32,
    samples: u32,
    rate: u32,
    mpeg1: bool,
    mono: bool,
}

const RATES: [u32; 3] = [44100, 48000, 32000];
// kbit/s by [version group][layer][index]; version group 0: MPEG-1, 1: MPEG-2 and 2.5.
const BITRATES: [[[u32; 15]; 3]; 2] = [
    [
        [
            0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ],
    [
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ],
];

fn frame(h: &[u8]) -> Option<Frame> {
    let w = be_u32(h, 0)?;
    if w >> 21 != 0x7FF {
        return None;
    }
    let version = (w >> 19) & 3; // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
    let layer = (w >> 17) & 3; // 1: III, 2: II, 3: I
    let bitrate_index = usize::try_from((w >> 12) & 15).ok()?;
    let rate_index = usize::try_from((w >> 10) & 3).ok()?;
    if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let padding = (w >> 9) & 1;
    let mpeg1 = version == 3;
    let layer_i = usize::try_from(3 - layer).ok()?; // 0: I, 1: II, 2: III
    let kbps = *BITRATES
        .get(usize::from(!mpeg1))?
        .get(layer_i)?
        .get(bitrate_index)?;
    let rate = RATES.get(rate_index)?
        >> match version {
            3 => 0,
            2 => 1,
            _ => 2,
        };
    let bps = kbps.checked_mul(1000)?;
    let (len, samples) = match layer_i {
        0 => ((12 * bps / rate + padding) * 4, 384),
        1 => (144 * bps / rate + padding, 1152),
        _ if mpeg1 => (144 * bps / rate + padding, 1152),
        _ => (72 * bps / rate + padding, 576),
    };
    let mono = (w >> 6) & 3 == 3;
    (len >= 4).then_some(Frame {
        len,
        samples,
        rate,
        mpeg1,
        mono,
    })
}

/// Whether `head` starts with an MPEG audio frame that is followed by another.
pub(crate) fn two_frames(head: &[u8]) -> bool {
    let Some(f) = frame(head) else { return false };
    let next = usize::try_from(f.len).unwrap_or(usize::MAX);
    head.get(next..).and_then(frame).is_some()
}

/// The ID3v2 tag's total length at the start of the file (0 without one).
fn id3_len(head: &[u8]) -> u64 {
    if !head.starts_with(b"ID3") {
        return 0;
    }
    let Some(size) = head.get(6..10) else {
        return 0;
    };
    let syncsafe = size
        .iter()
        .fold(0u64, |n, &b| (n << 7) | u64::from(b & 0x7F));
    let footer = if head.get(5).is_some_and(|f| f & 0x10 != 0) {
        10
    } else {
        0
    };
    syncsafe.saturating_add(10).saturating_add(footer)
}

/// An MP3's length in milliseconds.
pub(crate) fn duration_ms<S: Read + Seek>(
    src: &mut S,
    len: u64,
    max_bytes: u64,
) -> Result<u64, String> {
    let head = read_vec_at(src, 0, usize::try_from(len.min(16)).unwrap_or(16))?;
    let mut pos = id3_len(&head);
    let mut win = Window::new(src, len, 64 * 1024);
    // A few tags are followed by padding or junk: look for two frames in a row.
    let scan_end = pos.saturating_add(64 * 1024);
    let first = loop {
        if pos >= scan_end {
            return Err("no MPEG audio frame".into());
        }
        let Some(h) = win.get(pos, 4)? else {
            return Err("no MPEG audio frame".into());
        };
        if let Some(f) = frame(h) {
            let next = pos.saturating_add(u64::from(f.len));
            if win.get(next, 4)?.and_then(frame).is_some() || next == len {
                break f;
            }
        }
        pos = pos.saturating_add(1);
    };
    if let Some(ms) = xing(&mut win, pos, first)? {
        return Ok(ms);
    }
    let mut samples: u64 = 0;
    let end = pos.saturating_add(max_bytes).min(len);
    while pos < end {
        let Some(f) = win.get(pos, 4)?.and_then(frame) else {
            break;
        };
        if f.rate != first.rate {
            break;
        }
        samples = samples.saturating_add(u64::from(f.samples));
        pos = pos.saturating_add(u64::from(f.len));
    }
    Ok(samples.saturating_mul(1000) / u64::from(first.rate))
}

/// The length a Xing/Info or VBRI frame at `pos` gives, if there is one.
fn xing<S: Read + Seek>(
    win: &mut Window<'_, S>,
    pos: u64,
    f: Frame,
) -> Result<Option<u64>, String> {
    let Some(frame_bytes) = win.get(pos, usize::try_from(f.len.min(2048)).unwrap_or(0))? else {
        return Ok(None);
    };
    let side_info = match (f.mpeg1, f.mono) {
        (true, false) => 32,
        (true, true) | (false, false) => 17,
        (false, true) => 9,
    };
    let at = 4 + side_info;
    let rate = u64::from(f.rate);
    let per_frame = u64::from(f.samples);
    if matches!(frame_bytes.get(at..at + 4), Some(b"Xing" | b"Info")) {
        let flags = be_u32(frame_bytes, at + 4).unwrap_or(0);
        if flags & 1 == 0 {
            return Ok(None);
        }
        let Some(frames) = be_u32(frame_bytes, at + 8) else {
            return Ok(None);
        };
        let mut samples = u64::from(frames).saturating_mul(per_frame);
        // The LAME tag after a full Xing header (frames, bytes, TOC, quality: 120 bytes)
        // carries the encoder delay and padding, 12 bits each.
        let lame = at + 120;
        if flags & 0xF == 0xF
            && frame_bytes
                .get(lame..lame + 4)
                .is_some_and(|t| t == b"LAME" || t == b"Lavc" || t == b"Lavf")
        {
            if let Some(dp) = frame_bytes.get(lame + 21..lame + 24) {
                let delay = (u64::from(dp[0]) << 4) | (u64::from(dp[1]) >> 4);
                let padding = ((u64::from(dp[1]) & 0xF) << 8) | u64::from(dp[2]);
                samples = samples.saturating_sub(delay.saturating_add(padding));
            }
        }
        return Ok(Some(samples.saturating_mul(1000) / rate));
    }
    // VBRI (Fraunhofer): always 32 bytes after the header; frame count at +14.
    if frame_bytes.get(36..40) == Some(b"VBRI") {
        let Some(frames) = be_u32(frame_bytes, 36 + 14) else {
            return Ok(None);
        };
        return Ok(Some(
            u64::from(frames)
                .saturating_mul(per_frame)
                .saturating_mul(1000)
                / rate,
        ));
    }
    Ok(None)
}

const ADTS_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// One ADTS frame header: (frame length, samples, sample rate).
fn adts(h: &[u8]) -> Option<(u32, u32, u32)> {
    let w = be_u16(h, 0)?;
    if w & 0xFFF6 != 0xFFF0 {
        return None; // sync, and layer 00
    }
    let b2 = *h.get(2)?;
    let rate = *ADTS_RATES.get(usize::from((b2 >> 2) & 0xF))?;
    let len = (u32::from(*h.get(3)? & 3) << 11)
        | (u32::from(*h.get(4)?) << 3)
        | (u32::from(*h.get(5)?) >> 5);
    let blocks = u32::from(*h.get(6)? & 3) + 1;
    (len >= 7).then_some((len, blocks * 1024, rate))
}

/// Whether `head` starts with an ADTS frame followed by another.
pub(crate) fn two_adts_frames(head: &[u8]) -> bool {
    let Some((len, _, _)) = adts(head) else {
        return false;
    };
    head.get(usize::try_from(len).unwrap_or(usize::MAX)..)
        .and_then(adts)
        .is_some()
}

/// A raw AAC (ADTS) stream's length in milliseconds.
pub(crate) fn adts_duration_ms<S: Read + Seek>(
    src: &mut S,
    len: u64,
    max_bytes: u64,
) -> Result<u64, String> {
    let mut win = Window::new(src, len, 64 * 1024);
    let mut pos = 0u64;
    let mut samples = 0u64;
    let mut rate = 0u32;
    let end = max_bytes.min(len);
    while pos < end {
        let Some((flen, n, r)) = win.get(pos, 7)?.and_then(adts) else {
            break;
        };
        if rate != 0 && r != rate {
            break;
        }
        rate = r;
        samples = samples.saturating_add(u64::from(n));
        pos = pos.saturating_add(u64::from(flen));
    }
    if rate == 0 {
        return Err("no ADTS frame".into());
    }
    Ok(samples.saturating_mul(1000) / u64::from(rate))
}
