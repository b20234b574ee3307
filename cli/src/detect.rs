//! Guessing the media type and MIME type of a file from its first bytes, then its
//! extension.

use std::path::Path;

use wamedia::MediaType;

/// How many leading bytes [`guess`] wants to see (the WebP and Ogg headers fit).
pub const HEAD_LEN: usize = 64;

/// What the content (or the name) says a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guess {
    /// The media type to upload it as.
    pub media_type: MediaType,
    /// Its MIME type, from the content only: `application/octet-stream` when no known
    /// signature matched.
    pub mimetype: &'static str,
    /// What gave it away, for the note on stderr.
    pub why: &'static str,
}

/// The guess for a file whose first bytes are `head` (at most [`HEAD_LEN`] are looked at)
/// and whose name is `path` (`-` for stdin: no extension).
pub fn guess(head: &[u8], path: &Path) -> Guess {
    if let Some((media_type, mimetype)) = sniff(head) {
        return Guess {
            media_type,
            mimetype,
            why: "file signature",
        };
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = |media_type| Guess {
        media_type,
        mimetype: OCTET_STREAM,
        why: "file extension",
    };
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "heic" | "bmp" | "gif" | "webp" => by_ext(MediaType::Image),
        "mp4" | "mov" | "3gp" | "mkv" | "webm" | "m4v" => by_ext(MediaType::Video),
        "mp3" | "m4a" | "aac" | "wav" | "flac" | "amr" | "ogg" => by_ext(MediaType::Audio),
        "opus" => by_ext(MediaType::Ptt),
        _ => Guess {
            media_type: MediaType::Document,
            mimetype: OCTET_STREAM,
            why: "no known signature or extension: the safe default",
        },
    }
}

/// The MIME type of content no signature describes.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The media type and MIME type the leading bytes prove, if any.
fn sniff(h: &[u8]) -> Option<(MediaType, &'static str)> {
    if h.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some((MediaType::Image, "image/jpeg"));
    }
    if h.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((MediaType::Image, "image/png"));
    }
    if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") {
        return Some((MediaType::Image, "image/gif"));
    }
    if h.len() >= 12 && &h[..4] == b"RIFF" && &h[8..12] == b"WEBP" {
        // WhatsApp's stickers are 512×512 WebPs; any other WebP is a picture.
        let t = if webp_size(h) == Some((512, 512)) {
            MediaType::Sticker
        } else {
            MediaType::Image
        };
        return Some((t, "image/webp"));
    }
    if h.len() >= 12 && &h[4..8] == b"ftyp" {
        let brand = &h[8..12];
        return Some(if brand == b"M4A " || brand == b"M4B " {
            (MediaType::Audio, "audio/mp4")
        } else {
            (MediaType::Video, "video/mp4")
        });
    }
    if h.starts_with(b"OggS") {
        return Some(match ogg_codec(h) {
            // A voice note is Opus in Ogg; Vorbis (or anything else) in Ogg is music.
            Some(c) if c.starts_with(b"OpusHead") => (MediaType::Ptt, "audio/ogg; codecs=opus"),
            _ => (MediaType::Audio, "audio/ogg"),
        });
    }
    if h.starts_with(b"ID3") || (h.len() >= 2 && h[0] == 0xFF && matches!(h[1], 0xFB | 0xF3 | 0xF2))
    {
        return Some((MediaType::Audio, "audio/mpeg"));
    }
    if h.starts_with(b"fLaC") {
        return Some((MediaType::Audio, "audio/flac"));
    }
    if h.starts_with(b"%PDF") {
        return Some((MediaType::Document, "application/pdf"));
    }
    if h.starts_with(b"PK\x03\x04") {
        return Some((MediaType::Document, OCTET_STREAM));
    }
    None
}

/// The first packet of an Ogg stream: after the 27-byte page header and its segment
/// table (`h[26]` entries).
fn ogg_codec(h: &[u8]) -> Option<&[u8]> {
    let segments = usize::from(*h.get(26)?);
    h.get(27 + segments..)
}

/// Width and height of a WebP from its first chunk: `VP8 ` (lossy), `VP8L` (lossless)
/// or `VP8X` (extended: the canvas); `None` when the header is cut short or unknown.
fn webp_size(h: &[u8]) -> Option<(u32, u32)> {
    let le24 = |b: &[u8]| u32::from(b[0]) | (u32::from(b[1]) << 8) | (u32::from(b[2]) << 16);
    match h.get(12..16)? {
        b"VP8X" => {
            let d = h.get(24..30)?;
            Some((le24(&d[0..3]) + 1, le24(&d[3..6]) + 1))
        }
        b"VP8 " => {
            // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
            let d = h.get(20..30)?;
            if d[3..6] != [0x9d, 0x01, 0x2a] {
                return None;
            }
            let w = u32::from(u16::from_le_bytes([d[6], d[7]]) & 0x3fff);
            let ht = u32::from(u16::from_le_bytes([d[8], d[9]]) & 0x3fff);
            Some((w, ht))
        }
        b"VP8L" => {
            // Signature 0x2f, then width-1 and height-1 in 14 bits each.
            let d = h.get(20..25)?;
            if d[0] != 0x2f {
                return None;
            }
            let bits = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(chunk: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WEBP".to_vec();
        v.extend_from_slice(chunk);
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn vp8(w: u16, h: u16) -> Vec<u8> {
        let mut d = vec![0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a];
        d.extend_from_slice(&w.to_le_bytes());
        d.extend_from_slice(&h.to_le_bytes());
        riff(b"VP8 ", &d)
    }

    fn vp8l(w: u32, h: u32) -> Vec<u8> {
        let bits = (w - 1) | ((h - 1) << 14);
        let mut d = vec![0x2f];
        d.extend_from_slice(&bits.to_le_bytes());
        riff(b"VP8L", &d)
    }

    fn vp8x(w: u32, h: u32) -> Vec<u8> {
        let mut d = vec![0x10, 0, 0, 0];
        d.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        d.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        riff(b"VP8X", &d)
    }

    fn ogg(first_packet: &[u8]) -> Vec<u8> {
        let mut v = b"OggS\0\x02".to_vec();
        v.extend_from_slice(&[0; 20]); // granule, serial, sequence, checksum
        v.push(1); // one segment
        v.push(first_packet.len() as u8);
        v.extend_from_slice(first_packet);
        v
    }

    fn sniffed(h: &[u8]) -> (MediaType, &'static str) {
        sniff(h).unwrap()
    }

    #[test]
    fn sniffs_common_signatures() {
        assert_eq!(
            sniffed(b"\xFF\xD8\xFF\xE0"),
            (MediaType::Image, "image/jpeg")
        );
        assert_eq!(
            sniffed(b"\x89PNG\r\n\x1a\n\0\0"),
            (MediaType::Image, "image/png")
        );
        assert_eq!(
            sniffed(b"\0\0\0\x18ftypmp42"),
            (MediaType::Video, "video/mp4")
        );
        assert_eq!(
            sniffed(b"\0\0\0\x18ftypM4A "),
            (MediaType::Audio, "audio/mp4")
        );
        assert_eq!(sniffed(b"ID3\x04"), (MediaType::Audio, "audio/mpeg"));
        assert_eq!(sniffed(b"\xFF\xFB\x90"), (MediaType::Audio, "audio/mpeg"));
        assert_eq!(
            sniffed(b"%PDF-1.7"),
            (MediaType::Document, "application/pdf")
        );
        assert!(sniff(b"hello").is_none());
        assert!(sniff(b"").is_none());
    }

    #[test]
    fn only_ogg_opus_is_a_voice_note() {
        assert_eq!(
            sniffed(&ogg(b"OpusHead\x01\x01")),
            (MediaType::Ptt, "audio/ogg; codecs=opus")
        );
        assert_eq!(
            sniffed(&ogg(b"\x01vorbis\0\0\0\0")),
            (MediaType::Audio, "audio/ogg")
        );
        // A page cut before its first packet is still Ogg: music, the safer guess.
        assert_eq!(sniffed(b"OggS\0"), (MediaType::Audio, "audio/ogg"));
    }

    #[test]
    fn only_a_512_square_webp_is_a_sticker() {
        for (h, t) in [
            (vp8(512, 512), MediaType::Sticker),
            (vp8(640, 480), MediaType::Image),
            (vp8l(512, 512), MediaType::Sticker),
            (vp8l(512, 511), MediaType::Image),
            (vp8x(512, 512), MediaType::Sticker),
            (vp8x(1024, 512), MediaType::Image),
        ] {
            assert_eq!(sniffed(&h), (t, "image/webp"), "{h:x?}");
        }
        assert_eq!(webp_size(&vp8x(3000, 2000)), Some((3000, 2000)));
        // A header cut short, or a VP8 frame without its start code: a picture.
        assert_eq!(sniffed(b"RIFF\0\0\0\0WEBPVP8 ").0, MediaType::Image);
        let mut bad = vp8(512, 512);
        bad[23] = 0;
        assert_eq!(sniffed(&bad).0, MediaType::Image);
    }

    #[test]
    fn the_extension_decides_when_the_content_says_nothing() {
        let g = guess(b"plain words", Path::new("notes.OPUS"));
        assert_eq!((g.media_type, g.mimetype), (MediaType::Ptt, OCTET_STREAM));
        assert_eq!(guess(b"", Path::new("-")).media_type, MediaType::Document);
        let g = guess(&vp8(512, 512), Path::new("-"));
        assert_eq!(
            (g.media_type, g.why),
            (MediaType::Sticker, "file signature")
        );
    }
}
