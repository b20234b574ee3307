//! The mimetype from the content: the signature first, the file name's extension second.
//!
//! An extension is only believed where the content cannot say more: to tell the kinds of
//! a ZIP (`.docx`, `.xlsx`, …) or OLE compound file (`.doc`, `.xls`, …) apart, and to name
//! a text file (no signature; its head must look like text). A `.pdf` that does not start
//! like a PDF is not a PDF, whatever its name.

use crate::mp3;

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    /// ISO base media (MP4, MOV, M4A, 3GP): which one needs the boxes (see `mp4`).
    IsoBmff,
    Ogg(OggCodec),
    Mp3,
    Adts,
    Flac,
    Wav,
    Pdf,
    Matroska {
        webm: bool,
    },
    /// RIFF `AVI `.
    Avi,
    /// AMR speech (`#!AMR`), narrowband or wideband (`#!AMR-WB`).
    Amr {
        wideband: bool,
    },
    Zip,
    Cfb,
    Text,
    Unknown,
}

/// The codec of an Ogg file's first logical stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OggCodec {
    Opus,
    Vorbis,
    Other,
}

/// How many bytes of the head `detect` looks at.
pub(crate) const HEAD: usize = 4096;

/// Detects the format from the first bytes of a file (up to [`HEAD`]).
pub(crate) fn detect(head: &[u8]) -> Format {
    let starts = |sig: &[u8]| head.starts_with(sig);
    let at = |pos: usize, sig: &[u8]| head.get(pos..).is_some_and(|h| h.starts_with(sig));
    if starts(b"\xFF\xD8\xFF") {
        Format::Jpeg
    } else if starts(b"\x89PNG\r\n\x1A\n") {
        Format::Png
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Format::Gif
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        Format::Webp
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        Format::Wav
    } else if starts(b"RIFF") && at(8, b"AVI ") {
        Format::Avi
    } else if starts(b"#!AMR-WB\n") {
        Format::Amr { wideband: true }
    } else if starts(b"#!AMR\n") {
        Format::Amr { wideband: false }
    } else if at(4, b"ftyp") {
        Format::IsoBmff
    } else if starts(b"OggS") {
        Format::Ogg(ogg_codec(head))
    } else if starts(b"fLaC") {
        Format::Flac
    } else if starts(b"\x1A\x45\xDF\xA3") {
        Format::Matroska {
            webm: ebml_doctype(head) == Some(&b"webm"[..]),
        }
    } else if starts(b"PK\x03\x04") {
        Format::Zip
    } else if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        Format::Cfb
    } else if head.windows(5).take(1024).any(|w| w == b"%PDF-") {
        // The PDF specification lets a header start anywhere in the first 1024 bytes.
        Format::Pdf
    } else if starts(b"ID3") || mp3::two_frames(head) {
        Format::Mp3
    } else if mp3::two_adts_frames(head) {
        Format::Adts
    } else if looks_like_text(head) {
        Format::Text
    } else {
        Format::Unknown
    }
}

/// The `DocType` of an EBML header (`matroska`, `webm`): element `42 82`, a one-byte
/// size (`0x80 | n`), then `n` bytes, looked for within the header's first 64 bytes.
fn ebml_doctype(head: &[u8]) -> Option<&[u8]> {
    let search = head.get(4..head.len().min(64))?;
    let at = search.windows(2).position(|w| w == [0x42, 0x82])?;
    let rest = search.get(at.checked_add(2)?..)?;
    let (&size, body) = rest.split_first()?;
    if size & 0x80 == 0 {
        return None; // a longer size field: no doctype is that long
    }
    body.get(..usize::from(size & 0x7F))
}

/// The codec named by the first packet of the first Ogg page.
fn ogg_codec(head: &[u8]) -> OggCodec {
    let Some(&segments) = head.get(26) else {
        return OggCodec::Other;
    };
    let first = head
        .get(27usize.saturating_add(usize::from(segments))..)
        .unwrap_or_default();
    if first.starts_with(b"OpusHead") {
        OggCodec::Opus
    } else if first.starts_with(b"\x01vorbis") {
        OggCodec::Vorbis
    } else {
        OggCodec::Other
    }
}

/// No NUL and no other control bytes than tab, newline, carriage return and form feed,
/// and valid UTF-8 (a character cut at the end of the head is fine).
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let controls_ok = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0C));
    let utf8_ok = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() >= HEAD,
    };
    controls_ok && utf8_ok
}

/// The extension of a file name, lowercased, if it has one.
fn extension(file_name: Option<&str>) -> Option<String> {
    let name = file_name?;
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The mimetype of a detected format; `mp4` is what the boxes said of an ISO file
/// (`None` when they could not be read).
pub(crate) fn mimetype(
    format: Format,
    file_name: Option<&str>,
    mp4: Option<Mp4Kind>,
) -> Option<&'static str> {
    let ext = extension(file_name);
    let ext = ext.as_deref();
    Some(match format {
        Format::Jpeg => "image/jpeg",
        Format::Png => "image/png",
        Format::Gif => "image/gif",
        Format::Webp => "image/webp",
        Format::Wav => "audio/wav",
        Format::IsoBmff => match mp4? {
            Mp4Kind::QuickTime => "video/quicktime",
            Mp4Kind::ThreeGpp => "video/3gpp",
            Mp4Kind::Video => "video/mp4",
            Mp4Kind::Audio => "audio/mp4",
        },
        // What WhatsApp's clients send for voice notes.
        Format::Ogg(OggCodec::Opus) => "audio/ogg; codecs=opus",
        Format::Ogg(_) => "audio/ogg",
        Format::Mp3 => "audio/mpeg",
        Format::Adts => "audio/aac",
        Format::Flac => "audio/flac",
        Format::Pdf => "application/pdf",
        Format::Matroska { webm: true } => "video/webm",
        Format::Matroska { webm: false } => "video/x-matroska",
        Format::Avi => "video/x-msvideo",
        Format::Amr { wideband: false } => "audio/amr",
        Format::Amr { wideband: true } => "audio/amr-wb",
        Format::Zip => match ext {
            Some("docx") => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Some("pptx") => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Some("odt") => "application/vnd.oasis.opendocument.text",
            Some("ods") => "application/vnd.oasis.opendocument.spreadsheet",
            Some("odp") => "application/vnd.oasis.opendocument.presentation",
            Some("epub") => "application/epub+zip",
            Some("apk") => "application/vnd.android.package-archive",
            Some("jar") => "application/java-archive",
            _ => "application/zip",
        },
        Format::Cfb => match ext {
            Some("doc") => "application/msword",
            Some("xls") => "application/vnd.ms-excel",
            Some("ppt") => "application/vnd.ms-powerpoint",
            Some("msg") => "application/vnd.ms-outlook",
            _ => "application/x-ole-storage",
        },
        Format::Text => match ext {
            Some("csv") => "text/csv",
            Some("tsv") => "text/tab-separated-values",
            Some("json") => "application/json",
            Some("html" | "htm") => "text/html",
            Some("xml") => "application/xml",
            Some("md") => "text/markdown",
            Some("vcf") => "text/vcard",
            Some("ics") => "text/calendar",
            Some("rtf") => "application/rtf",
            Some("svg") => "image/svg+xml",
            _ => "text/plain",
        },
        Format::Unknown => return None,
    })
}

/// What an ISO base media file holds, from its brand and tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mp4Kind {
    QuickTime,
    ThreeGpp,
    Video,
    Audio,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_alone_names_nothing_that_has_a_signature() {
        assert_eq!(detect(b"\x00\x01binary junk"), Format::Unknown);
        assert_eq!(mimetype(Format::Unknown, Some("report.pdf"), None), None);
        assert_eq!(mimetype(Format::Unknown, Some("photo.jpg"), None), None);
    }

    #[test]
    fn extensions_refine_containers_and_text() {
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert_eq!(mimetype(Format::Zip, Some("a/B.DOCX"), None), Some(docx));
        assert_eq!(
            mimetype(Format::Zip, Some("b.zip"), None),
            Some("application/zip")
        );
        assert_eq!(
            mimetype(Format::Cfb, Some("old.xls"), None),
            Some("application/vnd.ms-excel")
        );
        assert_eq!(detect(b"name,age\nann,3\n"), Format::Text);
        assert_eq!(
            mimetype(Format::Text, Some("people.csv"), None),
            Some("text/csv")
        );
        assert_eq!(
            mimetype(Format::Text, Some(".csv"), None),
            Some("text/plain")
        );
    }

    #[test]
    fn a_pdf_header_may_follow_junk() {
        assert_eq!(detect(b"junk\n%PDF-1.4\n"), Format::Pdf);
    }

    /// An `ftyp` box with `brand`, then an empty `free` box.
    fn ftyp(brand: &[u8; 4]) -> Vec<u8> {
        let mut v = b"\0\0\0\x14ftyp".to_vec();
        v.extend_from_slice(brand);
        v.extend_from_slice(b"\0\0\0\0isom\0\0\0\x08free");
        v
    }

    fn ogg(first_packet: &[u8]) -> Vec<u8> {
        let mut v = b"OggS\0\x02".to_vec();
        v.extend_from_slice(&[0; 20]);
        v.push(1);
        v.push(first_packet.len() as u8);
        v.extend_from_slice(first_packet);
        v
    }

    #[test]
    fn every_signature_the_acceptance_table_needs() {
        let ebml = |doctype: &[u8]| {
            let mut v = b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82".to_vec();
            v.push(0x80 | doctype.len() as u8);
            v.extend_from_slice(doctype);
            v
        };
        let rows: Vec<(Vec<u8>, Format, Option<&str>)> = vec![
            (
                b"\xFF\xD8\xFF\xE0".to_vec(),
                Format::Jpeg,
                Some("image/jpeg"),
            ),
            (
                b"\x89PNG\r\n\x1A\n\0".to_vec(),
                Format::Png,
                Some("image/png"),
            ),
            (
                b"GIF89a\x01\0\x01\0".to_vec(),
                Format::Gif,
                Some("image/gif"),
            ),
            (
                b"RIFF\0\0\0\0WEBPVP8 ".to_vec(),
                Format::Webp,
                Some("image/webp"),
            ),
            (
                b"RIFF\0\0\0\0WAVEfmt ".to_vec(),
                Format::Wav,
                Some("audio/wav"),
            ),
            (
                b"RIFF\0\0\0\0AVI LIST".to_vec(),
                Format::Avi,
                Some("video/x-msvideo"),
            ),
            (
                b"#!AMR\n\x3c".to_vec(),
                Format::Amr { wideband: false },
                Some("audio/amr"),
            ),
            (
                b"#!AMR-WB\n\x04".to_vec(),
                Format::Amr { wideband: true },
                Some("audio/amr-wb"),
            ),
            (
                ebml(b"webm"),
                Format::Matroska { webm: true },
                Some("video/webm"),
            ),
            (
                ebml(b"matroska"),
                Format::Matroska { webm: false },
                Some("video/x-matroska"),
            ),
            (
                ogg(b"OpusHead\x01\x01"),
                Format::Ogg(OggCodec::Opus),
                Some("audio/ogg; codecs=opus"),
            ),
            (
                ogg(b"\x01vorbis\0\0"),
                Format::Ogg(OggCodec::Vorbis),
                Some("audio/ogg"),
            ),
            (b"fLaC\0\0\0\x22".to_vec(), Format::Flac, Some("audio/flac")),
            (
                b"ID3\x04\0\0\0\0\0\0".to_vec(),
                Format::Mp3,
                Some("audio/mpeg"),
            ),
        ];
        for (head, format, mime) in rows {
            assert_eq!(detect(&head), format, "{head:x?}");
            assert_eq!(mimetype(format, None, None), mime, "{format:?}");
        }
        // "webm" elsewhere in a Matroska header (a title, a codec name) is not the doctype.
        let mut mkv = ebml(b"matroska");
        mkv.extend_from_slice(b"\x7B\xA9\x84webm");
        assert_eq!(detect(&mkv), Format::Matroska { webm: false });
    }

    #[test]
    fn iso_files_are_told_apart_by_brand_and_tracks() {
        for brand in [
            b"qt  ", b"3gp4", b"3gp6", b"3g2a", b"M4A ", b"isom", b"mp42",
        ] {
            assert_eq!(detect(&ftyp(brand)), Format::IsoBmff, "{brand:?}");
        }
        let m = |kind| mimetype(Format::IsoBmff, None, Some(kind));
        assert_eq!(m(Mp4Kind::QuickTime), Some("video/quicktime"));
        assert_eq!(m(Mp4Kind::ThreeGpp), Some("video/3gpp"));
        assert_eq!(m(Mp4Kind::Audio), Some("audio/mp4"));
        assert_eq!(m(Mp4Kind::Video), Some("video/mp4"));
    }

    #[test]
    fn adts_frames_are_aac() {
        // Two ADTS headers (sync FFF1, 7-byte header) with a frame length of 16 bytes.
        let frame = |len: u16| {
            let mut f = vec![0xFF, 0xF1, 0x50, 0x80, 0, 0, 0xFC];
            f[3] |= ((len >> 11) & 0x03) as u8;
            f[4] = ((len >> 3) & 0xFF) as u8;
            f[5] = (((len & 0x07) << 5) as u8) | 0x1F;
            f.resize(usize::from(len), 0);
            f
        };
        let mut head = frame(16);
        head.extend(frame(16));
        head.extend(frame(16));
        assert_eq!(detect(&head), Format::Adts);
        assert_eq!(mimetype(Format::Adts, None, None), Some("audio/aac"));
    }
}
