//! Guessing the media type of a file from its first bytes, then its extension.

use std::io::Read;
use std::path::Path;

use wamedia::MediaType;

/// The guessed type and what gave it away.
pub fn guess(path: &Path) -> std::io::Result<(MediaType, &'static str)> {
    let mut head = [0u8; 16];
    let n = if path.as_os_str() == "-" {
        0
    } else {
        let mut f = std::fs::File::open(path)?;
        let mut n = 0;
        while n < head.len() {
            let k = f.read(&mut head[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    };
    if let Some(t) = sniff(&head[..n]) {
        return Ok(t);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "jpg" | "jpeg" | "png" | "heic" | "bmp" => (MediaType::Image, "file extension"),
        "webp" => (MediaType::Sticker, "file extension"),
        "gif" => (MediaType::Image, "file extension"),
        "mp4" | "mov" | "3gp" | "mkv" | "webm" | "m4v" => (MediaType::Video, "file extension"),
        "mp3" | "m4a" | "aac" | "wav" | "flac" | "amr" => (MediaType::Audio, "file extension"),
        "ogg" | "opus" => (MediaType::Ptt, "file extension"),
        _ => (
            MediaType::Document,
            "no known signature or extension: the safe default",
        ),
    })
}

fn sniff(h: &[u8]) -> Option<(MediaType, &'static str)> {
    let sig = "file signature";
    if h.starts_with(&[0xFF, 0xD8, 0xFF]) || h.starts_with(b"\x89PNG") || h.starts_with(b"GIF8") {
        return Some((MediaType::Image, sig));
    }
    if h.len() >= 12 && &h[..4] == b"RIFF" && &h[8..12] == b"WEBP" {
        return Some((MediaType::Sticker, sig));
    }
    if h.len() >= 12 && &h[4..8] == b"ftyp" {
        let brand = &h[8..12];
        return Some(if brand == b"M4A " || brand == b"M4B " {
            (MediaType::Audio, sig)
        } else {
            (MediaType::Video, sig)
        });
    }
    if h.starts_with(b"OggS") {
        return Some((MediaType::Ptt, sig));
    }
    if h.starts_with(b"ID3") || h.starts_with(&[0xFF, 0xFB]) || h.starts_with(b"fLaC") {
        return Some((MediaType::Audio, sig));
    }
    if h.starts_with(b"%PDF") || h.starts_with(b"PK\x03\x04") {
        return Some((MediaType::Document, sig));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_signatures() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0").unwrap().0, MediaType::Image);
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap().0,
            MediaType::Sticker
        );
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42").unwrap().0, MediaType::Video);
        assert_eq!(sniff(b"\0\0\0\x18ftypM4A ").unwrap().0, MediaType::Audio);
        assert_eq!(sniff(b"OggS\0").unwrap().0, MediaType::Ptt);
        assert_eq!(sniff(b"%PDF-1.7").unwrap().0, MediaType::Document);
        assert!(sniff(b"hello").is_none());
    }
}
