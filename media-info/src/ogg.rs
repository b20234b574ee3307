//! Ogg pages and packets (RFC 3533), Opus and Vorbis identification headers, and the
//! duration from the granule position of the last page.
//!
//! Opus (RFC 7845 §4): `(last granule − pre-skip) / 48 000`. Vorbis: `last granule /
//! sample rate`. The last page is found in the file's last 128 KiB (a page is at most
//! 65 307 bytes) and must pass its CRC, so an `OggS` inside the audio is not taken for one;
//! at most [`MAX_CRC_BYTES`] are checksummed in that search, however many `OggS` the tail
//! holds. Packets are read front to back with a cap on the pages walked, so a file of
//! empty pages costs what its cap allows, not what its length does.

use std::io::{Read, Seek};

use crate::bytes::{le_u16, le_u32, le_u64, read_at, read_exact_at, read_vec_at};

/// The largest packet accepted (an Opus packet is at most 1275 bytes per frame × 48
/// frames; Vorbis comment packets with cover art can be large but are skipped, not kept).
const MAX_PACKET: usize = 1 << 20;

/// Bytes checksummed while looking for the last page (four times the tail searched).
const MAX_CRC_BYTES: usize = 512 * 1024;

/// Pages walked to find the identification header (the first page of each multiplexed
/// stream comes first, and an Opus or Vorbis header is alone on its stream's first page).
const HEAD_PAGES: u64 = 64;

/// What the identification header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    Opus {
        channels: u8,
        pre_skip: u16,
        mapping_family: u8,
    },
    Vorbis {
        rate: u32,
    },
}

/// One page header.
#[derive(Debug, Clone)]
struct Page {
    serial: u32,
    lacing: Vec<u8>,
    header_len: u64,
    body_len: u64,
}

fn page_at<S: Read + Seek>(src: &mut S, pos: u64) -> Result<Option<Page>, String> {
    let mut h = [0u8; 27];
    let n = read_at(src, pos, &mut h).map_err(|e| format!("read failed: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if n < 27 || &h[..4] != b"OggS" || h[4] != 0 {
        return Err(format!("no Ogg page at byte {pos}"));
    }
    let mut lacing = vec![0u8; usize::from(h[26])];
    read_exact_at(src, pos.saturating_add(27), &mut lacing)?;
    let body_len = lacing.iter().map(|&l| u64::from(l)).sum();
    Ok(Some(Page {
        serial: le_u32(&h, 14).unwrap_or(0),
        header_len: 27u64.saturating_add(lacing.len() as u64),
        lacing,
        body_len,
    }))
}

/// Reads the packets of the first logical stream in order, a page at a time.
pub(crate) struct Packets<'a, S> {
    src: &'a mut S,
    pos: u64,
    serial: Option<u32>,
    pending: Vec<Vec<u8>>,
    partial: Vec<u8>,
    done: bool,
    pages: u64,
    max_pages: u64,
}

impl<'a, S: Read + Seek> Packets<'a, S> {
    /// Packets from the start of `src`, walking at most `max_pages` pages (of any stream).
    pub(crate) fn new(src: &'a mut S, max_pages: u64) -> Self {
        Packets {
            src,
            pos: 0,
            serial: None,
            pending: Vec::new(),
            partial: Vec::new(),
            done: false,
            pages: 0,
            max_pages,
        }
    }

    /// The next whole packet, `None` at the end of the stream.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if !self.pending.is_empty() {
                return Ok(Some(self.pending.remove(0)));
            }
            if self.done {
                return Ok(None);
            }
            if self.pages >= self.max_pages {
                return Err(format!(
                    "over {} Ogg pages without the packets expected",
                    self.max_pages
                ));
            }
            self.pages = self.pages.saturating_add(1);
            let Some(page) = page_at(self.src, self.pos)? else {
                self.done = true;
                continue;
            };
            let body_pos = self.pos.saturating_add(page.header_len);
            self.pos = body_pos.saturating_add(page.body_len);
            if *self.serial.get_or_insert(page.serial) != page.serial {
                continue; // another logical stream, multiplexed
            }
            let body = read_vec_at(
                self.src,
                body_pos,
                usize::try_from(page.body_len).map_err(|_| "page too large")?,
            )?;
            let mut at = 0usize;
            for &l in &page.lacing {
                let seg = body
                    .get(at..at.saturating_add(usize::from(l)))
                    .ok_or("page cut short")?;
                at = at.saturating_add(usize::from(l));
                if self.partial.len().saturating_add(seg.len()) > MAX_PACKET {
                    return Err("an Ogg packet over 1 MiB".into());
                }
                self.partial.extend_from_slice(seg);
                if l < 255 {
                    self.pending.push(std::mem::take(&mut self.partial));
                }
            }
        }
    }
}

/// The identification header: the first packet of the stream.
pub(crate) fn head<S: Read + Seek>(src: &mut S) -> Result<Head, String> {
    let first = Packets::new(src, HEAD_PAGES)
        .next_packet()?
        .ok_or("empty Ogg stream")?;
    if first.starts_with(b"OpusHead") {
        let channels = *first.get(9).ok_or("short OpusHead")?;
        let pre_skip = le_u16(&first, 10).ok_or("short OpusHead")?;
        let mapping_family = *first.get(18).ok_or("short OpusHead")?;
        if channels == 0 {
            return Err("OpusHead with no channels".into());
        }
        Ok(Head::Opus {
            channels,
            pre_skip,
            mapping_family,
        })
    } else if first.starts_with(b"\x01vorbis") {
        let rate = le_u32(&first, 12).ok_or("short Vorbis header")?;
        if rate == 0 {
            return Err("Vorbis header with a sample rate of 0".into());
        }
        Ok(Head::Vorbis { rate })
    } else {
        Err("an Ogg stream of a codec other than Opus or Vorbis".into())
    }
}

/// The granule position of the last page of the first stream.
pub(crate) fn last_granule<S: Read + Seek>(src: &mut S, len: u64) -> Result<u64, String> {
    let serial = page_at(src, 0)?.ok_or("empty file")?.serial;
    let from = len.saturating_sub(128 * 1024);
    let tail = read_vec_at(
        src,
        from,
        usize::try_from(len.saturating_sub(from)).map_err(|_| "bad length")?,
    )?;
    let mut i = tail.len();
    let mut checked = 0usize;
    while let Some(start) = tail
        .get(..i)
        .and_then(|t| t.windows(4).rposition(|w| w == b"OggS"))
    {
        i = start;
        let page = &tail[start..];
        let Some(&nseg) = page.get(26) else { continue };
        let header = 27usize.saturating_add(usize::from(nseg));
        let Some(lacing) = page.get(27..header) else {
            continue;
        };
        let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let Some(whole) = page.get(..header.saturating_add(body)) else {
            continue;
        };
        let granule = le_u64(whole, 6).unwrap_or(u64::MAX);
        if le_u32(whole, 14) != Some(serial) || granule == u64::MAX {
            continue;
        }
        checked = checked.saturating_add(whole.len());
        if checked > MAX_CRC_BYTES {
            return Err(format!(
                "no intact last page within {MAX_CRC_BYTES} bytes of checksums"
            ));
        }
        if crc_ok(whole) {
            return Ok(granule);
        }
    }
    Err("no intact last page".into())
}

/// The length of an Ogg Opus or Vorbis file, in milliseconds (rounded down).
pub(crate) fn duration_ms<S: Read + Seek>(src: &mut S, len: u64) -> Result<u64, String> {
    let head = head(src)?;
    let granule = last_granule(src, len)?;
    let (samples, rate) = match head {
        Head::Opus { pre_skip, .. } => (granule.saturating_sub(u64::from(pre_skip)), 48_000),
        Head::Vorbis { rate } => (granule, u64::from(rate)),
    };
    Ok(u64::try_from(u128::from(samples) * 1000 / u128::from(rate)).unwrap_or(u64::MAX))
}

/// Ogg's CRC-32 (polynomial 0x04C11DB7, no reflection, zero start), with the page's CRC
/// field taken as zero.
fn crc_ok(page: &[u8]) -> bool {
    let Some(stored) = le_u32(page, 22) else {
        return false;
    };
    let mut crc = 0u32;
    for (i, &b) in page.iter().enumerate() {
        let b = if (22..26).contains(&i) { 0 } else { b };
        let idx = usize::from(((crc >> 24) as u8) ^ b);
        crc = (crc << 8) ^ CRC_TABLE.get(idx).copied().unwrap_or(0);
    }
    crc == stored
}

/// The CRC's byte table.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};
