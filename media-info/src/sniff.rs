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
    } else if at(4, b"ftyp") {
        Format::IsoBmff
    } else if starts(b"OggS") {
        Format::Ogg(ogg_codec(head))
    } else if starts(b"fLaC") {
        Format::Flac
    } else if starts(b"\x1A\x45\xDF\xA3") {
        Format::Matroska {
            webm: head.windows(4).any(|w| w == b"webm"),
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
}
