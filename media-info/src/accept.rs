//! What a receiving phone plays: the exact mimetypes of each media type
//! (`WAWebMmsMediaTypes.getValidMimeTypes`, PROTOCOL §8), and the check of a file's
//! sniffed content against the type it is to be sent as.
//!
//! [`identify_path`] (or [`identify_reader`], [`identify_bytes`]) reads what the content
//! is from its signature and, for ISO files, its boxes (MP4, QuickTime, 3GP or M4A);
//! [`check`] answers with the mimetype to send, one of [`allowed_mimetypes`], or a
//! [`Refusal`] that says what the content is and which [`Conversion`] (if any) makes it
//! acceptable. Nothing here runs a program: a conversion is a plan until its
//! [`Conversion::run`] is called.

use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek};
use std::path::Path;

use crate::convert::Conversion;
use crate::sniff::{self, Format, Mp4Kind};
use crate::{bytes, mp4, webp, MediaKind};

/// The pictures receivers show.
const IMAGE: &[&str] = &["image/jpeg", "image/png", "image/webp"];
/// Stickers are WebP only.
const STICKER: &[&str] = &["image/webp"];
/// Video, gif and video notes.
const VIDEO: &[&str] = &["video/mp4", "video/3gpp"];
/// Audio files.
const AUDIO: &[&str] = &[
    "audio/ogg; codecs=opus",
    "audio/mp4",
    "audio/mpeg",
    "audio/aac",
    "audio/amr",
];
/// A voice note is Ogg/Opus.
const PTT: &[&str] = &["audio/ogg; codecs=opus"];

/// The mimetypes receivers accept for `kind`, exactly as they must be sent; `None` for
/// documents, which may be of any type.
///
/// WhatsApp Web's list (`getValidMimeTypes`) puts ptt beside audio; a voice note is
/// nevertheless played as Ogg/Opus (its waveform and its player expect it), so ptt has
/// that one type here.
pub fn allowed_mimetypes(kind: MediaKind) -> Option<&'static [&'static str]> {
    Some(match kind {
        MediaKind::Image => IMAGE,
        MediaKind::Sticker => STICKER,
        MediaKind::Video | MediaKind::Gif | MediaKind::Ptv => VIDEO,
        MediaKind::Audio => AUDIO,
        MediaKind::Ptt => PTT,
        MediaKind::Document => return None,
    })
}

/// What kind of media a file's content is, whatever type it is to be sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentClass {
    /// A still picture (JPEG, PNG, WebP; an animated WebP too).
    Picture,
    /// A GIF: a picture that may move.
    Animation,
    /// A video container (MP4, QuickTime, 3GP, Matroska/WebM, AVI).
    Video,
    /// Sound only (M4A, Ogg, MP3, AAC, FLAC, WAV, AMR).
    Audio,
    /// A document format (PDF, ZIP, OLE, text).
    Document,
    /// No format wamedia-info recognises.
    Unknown,
}

impl fmt::Display for ContentClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContentClass::Picture => "a picture",
            ContentClass::Animation => "an animated GIF",
            ContentClass::Video => "a video",
            ContentClass::Audio => "audio",
            ContentClass::Document => "a document",
            ContentClass::Unknown => "of no known format",
        })
    }
}

/// What a file's content is: read from its first bytes (and an ISO file's boxes), never
/// from its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The mimetype the content has (`video/quicktime`, `audio/wav`, …); `None` when no
    /// signature matched.
    pub mimetype: Option<&'static str>,
    /// What kind of media it is.
    pub class: ContentClass,
    /// Width and height as stored, when the header says them cheaply (pictures, GIFs,
    /// MP4 video tracks).
    pub size: Option<(u32, u32)>,
    /// Whether a WebP is animated; `None` for other formats.
    pub animated: Option<bool>,
    /// The file's length in bytes.
    pub len: u64,
    pub(crate) format: Format,
}

impl Content {
    /// The content of a format (tests build rows of the table with it).
    pub(crate) fn of(format: Format, mp4: Option<Mp4Kind>) -> Content {
        let mimetype = sniff::mimetype(format, None, mp4);
        let class = match format {
            Format::Jpeg | Format::Png | Format::Webp => ContentClass::Picture,
            Format::Gif => ContentClass::Animation,
            Format::IsoBmff => match mp4 {
                Some(Mp4Kind::Audio) => ContentClass::Audio,
                _ => ContentClass::Video,
            },
            Format::Matroska { .. } | Format::Avi => ContentClass::Video,
            Format::Ogg(_)
            | Format::Mp3
            | Format::Adts
            | Format::Flac
            | Format::Wav
            | Format::Amr { .. } => ContentClass::Audio,
            Format::Pdf | Format::Zip | Format::Cfb | Format::Text => ContentClass::Document,
            Format::Unknown => ContentClass::Unknown,
        };
        Content {
            mimetype,
            class,
            size: None,
            animated: None,
            len: 0,
            format,
        }
    }

    /// "a video (video/quicktime)": what a refusal says the content is.
    pub fn describe(&self) -> String {
        match self.mimetype {
            Some(m) => format!("{} ({m})", self.class),
            None => self.class.to_string(),
        }
    }
}

/// Reads what the file at `path` is; its name refines a ZIP, OLE or text type only.
pub fn identify_path(path: &Path) -> io::Result<Content> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    identify_reader(File::open(path)?, name.as_deref())
}

/// Reads what the content of a seekable reader is (a file, a cursor); see
/// [`identify_path`]. Only headers are read: the first 4 KiB, an ISO file's box headers
/// and small header boxes, a picture's header.
pub fn identify_reader<R: Read + Seek>(reader: R, file_name: Option<&str>) -> io::Result<Content> {
    let mut src = bytes::Source::new(reader);
    let len = bytes::stream_len(&mut src)?;
    let n = usize::try_from(len.min(sniff::HEAD as u64)).unwrap_or(0);
    let head = bytes::read_vec_at(&mut src, 0, n).map_err(io::Error::other)?;
    // A bug in a parser must not take the caller down: the content is then unknown.
    Ok(
        crate::quiet::catch(|| identify(&mut src, &head, len, file_name)).unwrap_or_else(|_| {
            Content {
                len,
                ..Content::of(Format::Unknown, None)
            }
        }),
    )
}

/// Reads what a file in memory is; see [`identify_reader`].
pub fn identify_bytes(data: &[u8], file_name: Option<&str>) -> Content {
    identify_reader(Cursor::new(data), file_name).unwrap_or_else(|_| Content {
        len: data.len() as u64,
        ..Content::of(Format::Unknown, None)
    })
}

fn identify<S: Read + Seek>(
    src: &mut bytes::Source<S>,
    head: &[u8],
    len: u64,
    file_name: Option<&str>,
) -> Content {
    let format = sniff::detect(head);
    let mut size = None;
    let mut animated = None;
    let mut mp4_kind = None;
    match format {
        Format::IsoBmff => {
            // The brand alone when the boxes cannot be read (a file cut short).
            let parsed = mp4::parse(src, len).ok();
            size = parsed.as_ref().and_then(|m| m.video);
            mp4_kind = Some(match parsed {
                Some(m) => m.kind(),
                None => match head.get(8..12) {
                    Some(b"qt  ") => Mp4Kind::QuickTime,
                    Some(b) if b.starts_with(b"3g") => Mp4Kind::ThreeGpp,
                    Some(b"M4A " | b"M4B " | b"M4P ") => Mp4Kind::Audio,
                    _ => Mp4Kind::Video,
                },
            });
        }
        Format::Webp => {
            if let Ok(w) = webp::parse(src, len) {
                size = Some((w.width, w.height));
                animated = Some(w.animated);
            }
        }
        Format::Gif => {
            if let (Some(w), Some(h)) = (bytes::le_u16(head, 6), bytes::le_u16(head, 8)) {
                size = Some((u32::from(w), u32::from(h)));
            }
        }
        Format::Jpeg | Format::Png => {
            let f = if format == Format::Jpeg {
                image::ImageFormat::Jpeg
            } else {
                image::ImageFormat::Png
            };
            if src.rewind().is_ok() {
                size = image::ImageReader::with_format(&mut *src, f)
                    .into_dimensions()
                    .ok();
            }
        }
        _ => {}
    }
    let mut c = Content::of(format, mp4_kind);
    c.mimetype = sniff::mimetype(format, file_name, mp4_kind);
    c.size = size;
    c.animated = animated;
    c.len = len;
    c
}

/// Why a file is not sent as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The content is media of the right kind in a format receivers do not take.
    NotAccepted {
        /// The type it was to be sent as.
        kind: MediaKind,
        /// Its mimetype.
        found: &'static str,
        /// What the type takes.
        allowed: &'static [&'static str],
        /// The ffmpeg conversion that makes it acceptable, when there is one.
        conversion: Option<Conversion>,
    },
    /// The content is another kind of media than the type says (a video given as an
    /// image, a picture given as a video, …).
    WrongType {
        /// The type it was to be sent as.
        given: MediaKind,
        /// What the content is, e.g. "a video (video/mp4)".
        content: String,
        /// The type to send it as.
        suggestion: MediaKind,
        /// The conversion the suggested type needs, when it needs one (a GIF given as an
        /// image: sent as a gif, it becomes an MP4).
        conversion: Option<Conversion>,
    },
    /// No format wamedia-info recognises: nothing says a phone could play it.
    Unrecognised {
        /// The type it was to be sent as.
        kind: MediaKind,
        /// What the type takes.
        allowed: &'static [&'static str],
    },
}

impl Refusal {
    /// The conversion the refusal names, if any.
    pub fn conversion(&self) -> Option<&Conversion> {
        match self {
            Refusal::NotAccepted { conversion, .. } | Refusal::WrongType { conversion, .. } => {
                conversion.as_ref()
            }
            Refusal::Unrecognised { .. } => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAccepted {
                kind,
                found,
                allowed,
                conversion,
            } => {
                write!(
                    f,
                    "{found} is not {} phones accept ({} is one of: {})",
                    a(*kind),
                    a(*kind),
                    allowed.join(", ")
                )?;
                match conversion {
                    Some(c) => write!(f, "; ffmpeg converts it: {}", c.describe()),
                    None => write!(f, "; no conversion is known for it"),
                }
            }
            Refusal::WrongType {
                given,
                content,
                suggestion,
                conversion,
            } => {
                write!(
                    f,
                    "this is {content}, not {}: send it as {}",
                    a(*given),
                    a(*suggestion)
                )?;
                if let Some(c) = conversion {
                    write!(f, " (converted to {})", c.describe())?;
                }
                Ok(())
            }
            Refusal::Unrecognised { kind, allowed } => write!(
                f,
                "the content is no format wamedia-info recognises; {} is one of: {} \
                 (send anything else as a document)",
                a(*kind),
                allowed.join(", ")
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// "an image", "a video", "an audio": the type with its article.
fn a(kind: MediaKind) -> String {
    match kind {
        MediaKind::Image | MediaKind::Audio => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

/// Checks content against the type it is to be sent as: `Ok` with the mimetype to send
/// (one of [`allowed_mimetypes`]; for a document, whatever the content is, or
/// `application/octet-stream`), or why not.
///
/// A format of the right kind outside the list is [`Refusal::NotAccepted`], with its
/// conversion (QuickTime, Matroska, WebM, AVI and GIF → MP4; WAV, FLAC, MP3, M4A, AAC,
/// AMR, Ogg Vorbis → Ogg/Opus for a voice note; WAV, FLAC, Ogg Vorbis, AMR-WB → M4A for
/// audio; PNG, JPEG, GIF → a 512 × 512 WebP sticker). Content of another kind is
/// [`Refusal::WrongType`] naming the type it is.
pub fn check(kind: MediaKind, content: &Content) -> Result<&'static str, Refusal> {
    let Some(allowed) = allowed_mimetypes(kind) else {
        return Ok(content.mimetype.unwrap_or("application/octet-stream"));
    };
    let Some(found) = content.mimetype else {
        return Err(Refusal::Unrecognised { kind, allowed });
    };
    if allowed.contains(&found) {
        return Ok(found);
    }
    let wrong = |suggestion: MediaKind, conversion: Option<Conversion>| Refusal::WrongType {
        given: kind,
        content: content.describe(),
        suggestion,
        conversion,
    };
    let not_accepted = |conversion: Option<Conversion>| Refusal::NotAccepted {
        kind,
        found,
        allowed,
        conversion,
    };
    let class = content.class;
    Err(match kind {
        MediaKind::Image => match class {
            // A GIF is sent as a gif: an MP4 that loops.
            ContentClass::Animation => wrong(
                MediaKind::Gif,
                Conversion::for_kind(MediaKind::Gif, content),
            ),
            ContentClass::Picture => not_accepted(None),
            other => wrong(suggest(other), None),
        },
        MediaKind::Sticker => match class {
            ContentClass::Picture | ContentClass::Animation => {
                not_accepted(Conversion::for_kind(kind, content))
            }
            other => wrong(suggest(other), None),
        },
        MediaKind::Video | MediaKind::Gif | MediaKind::Ptv => match class {
            ContentClass::Video | ContentClass::Animation => {
                not_accepted(Conversion::for_kind(kind, content))
            }
            other => wrong(suggest(other), None),
        },
        MediaKind::Audio | MediaKind::Ptt => match class {
            ContentClass::Audio => not_accepted(Conversion::for_kind(kind, content)),
            other => wrong(suggest(other), None),
        },
        // Answered above (any mimetype); kept total without a panic.
        MediaKind::Document => not_accepted(None),
    })
}

/// The type content of a class is sent as.
fn suggest(class: ContentClass) -> MediaKind {
    match class {
        ContentClass::Picture => MediaKind::Image,
        ContentClass::Animation => MediaKind::Gif,
        ContentClass::Video => MediaKind::Video,
        ContentClass::Audio => MediaKind::Audio,
        ContentClass::Document | ContentClass::Unknown => MediaKind::Document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Target;
    use crate::sniff::OggCodec;

    /// What the check answers, in short.
    #[derive(Debug, PartialEq, Eq)]
    enum Row {
        Ok(&'static str),
        Convert(Target),
        NoConversion,
        Wrong(MediaKind, Option<Target>),
        Unrecognised,
    }

    fn answer(kind: MediaKind, content: &Content) -> Row {
        match check(kind, content) {
            Ok(m) => Row::Ok(m),
            Err(Refusal::NotAccepted {
                conversion: Some(c),
                allowed,
                found,
                ..
            }) => {
                assert!(!allowed.contains(&found));
                assert!(allowed.contains(&c.target_mimetype()), "{kind}: {c:?}");
                Row::Convert(c.target)
            }
            Err(Refusal::NotAccepted {
                conversion: None, ..
            }) => Row::NoConversion,
            Err(Refusal::WrongType {
                suggestion,
                conversion,
                given,
                ..
            }) => {
                assert_eq!(given, kind);
                Row::Wrong(suggestion, conversion.map(|c| c.target))
            }
            Err(Refusal::Unrecognised { .. }) => Row::Unrecognised,
        }
    }

    const JPEG: Format = Format::Jpeg;
    const PNG: Format = Format::Png;
    const GIF: Format = Format::Gif;
    const WEBP: Format = Format::Webp;
    const OPUS: Format = Format::Ogg(OggCodec::Opus);
    const VORBIS: Format = Format::Ogg(OggCodec::Vorbis);
    const AMR: Format = Format::Amr { wideband: false };
    const AMR_WB: Format = Format::Amr { wideband: true };
    const WEBM: Format = Format::Matroska { webm: true };
    const MKV: Format = Format::Matroska { webm: false };

    fn iso(kind: Mp4Kind) -> Content {
        Content::of(Format::IsoBmff, Some(kind))
    }
    fn of(f: Format) -> Content {
        Content::of(f, None)
    }

    #[test]
    fn every_row_of_the_table() {
        use MediaKind::*;
        use Row::*;
        let mp4 = iso(Mp4Kind::Video);
        let mov = iso(Mp4Kind::QuickTime);
        let gp3 = iso(Mp4Kind::ThreeGpp);
        let m4a = iso(Mp4Kind::Audio);
        let rows: Vec<(MediaKind, Content, Row)> = vec![
            // Images: JPEG, PNG, WebP; a GIF is a gif; anything else is its own kind.
            (Image, of(JPEG), Ok("image/jpeg")),
            (Image, of(PNG), Ok("image/png")),
            (Image, of(WEBP), Ok("image/webp")),
            (Image, of(GIF), Wrong(Gif, Some(Target::SilentMp4))),
            (Image, mp4.clone(), Wrong(Video, None)),
            (Image, of(Format::Mp3), Wrong(Audio, None)),
            (Image, of(Format::Pdf), Wrong(Document, None)),
            (Image, of(Format::Unknown), Unrecognised),
            // Stickers: WebP only; pictures and GIFs convert.
            (Sticker, of(WEBP), Ok("image/webp")),
            (Sticker, of(PNG), Convert(Target::Sticker)),
            (Sticker, of(JPEG), Convert(Target::Sticker)),
            (Sticker, of(GIF), Convert(Target::Sticker)),
            (Sticker, mp4.clone(), Wrong(Video, None)),
            // Video, gif, ptv: MP4 and 3GP; other containers and GIFs convert.
            (Video, mp4.clone(), Ok("video/mp4")),
            (Video, gp3.clone(), Ok("video/3gpp")),
            (Video, mov.clone(), Convert(Target::Mp4)),
            (Video, of(WEBM), Convert(Target::Mp4)),
            (Video, of(MKV), Convert(Target::Mp4)),
            (Video, of(Format::Avi), Convert(Target::Mp4)),
            (Video, of(GIF), Convert(Target::SilentMp4)),
            (Video, of(JPEG), Wrong(Image, None)),
            (Video, m4a.clone(), Wrong(Audio, None)),
            (Video, of(Format::Unknown), Unrecognised),
            (Gif, mp4.clone(), Ok("video/mp4")),
            (Gif, of(GIF), Convert(Target::SilentMp4)),
            (Gif, mov.clone(), Convert(Target::SilentMp4)),
            (Gif, of(PNG), Wrong(Image, None)),
            (Ptv, mp4.clone(), Ok("video/mp4")),
            (Ptv, mov.clone(), Convert(Target::Mp4)),
            (Ptv, of(OPUS), Wrong(Audio, None)),
            // Audio: Opus, M4A, MP3, AAC, AMR; WAV, FLAC, Vorbis, AMR-WB convert to M4A.
            (Audio, of(OPUS), Ok("audio/ogg; codecs=opus")),
            (Audio, m4a.clone(), Ok("audio/mp4")),
            (Audio, of(Format::Mp3), Ok("audio/mpeg")),
            (Audio, of(Format::Adts), Ok("audio/aac")),
            (Audio, of(AMR), Ok("audio/amr")),
            (Audio, of(Format::Wav), Convert(Target::M4a)),
            (Audio, of(Format::Flac), Convert(Target::M4a)),
            (Audio, of(VORBIS), Convert(Target::M4a)),
            (Audio, of(AMR_WB), Convert(Target::M4a)),
            (Audio, mp4.clone(), Wrong(Video, None)),
            (Audio, of(JPEG), Wrong(Image, None)),
            // Voice notes: Ogg/Opus only; all other audio converts.
            (Ptt, of(OPUS), Ok("audio/ogg; codecs=opus")),
            (Ptt, of(Format::Mp3), Convert(Target::VoiceNote)),
            (Ptt, of(Format::Wav), Convert(Target::VoiceNote)),
            (Ptt, of(Format::Flac), Convert(Target::VoiceNote)),
            (Ptt, m4a.clone(), Convert(Target::VoiceNote)),
            (Ptt, of(Format::Adts), Convert(Target::VoiceNote)),
            (Ptt, of(AMR), Convert(Target::VoiceNote)),
            (Ptt, of(VORBIS), Convert(Target::VoiceNote)),
            (Ptt, mov.clone(), Wrong(Video, None)),
            (Ptt, of(Format::Unknown), Unrecognised),
            // Documents: anything, as it is.
            (Document, mov.clone(), Ok("video/quicktime")),
            (Document, of(Format::Pdf), Ok("application/pdf")),
            (
                Document,
                of(Format::Unknown),
                Ok("application/octet-stream"),
            ),
        ];
        for (kind, content, want) in rows {
            assert_eq!(answer(kind, &content), want, "{kind} given {content:?}");
        }
    }

    #[test]
    fn every_type_sends_only_listed_mimetypes() {
        let formats = [
            JPEG,
            PNG,
            GIF,
            WEBP,
            OPUS,
            VORBIS,
            AMR,
            AMR_WB,
            WEBM,
            MKV,
            Format::Avi,
            Format::Mp3,
            Format::Adts,
            Format::Flac,
            Format::Wav,
            Format::Pdf,
            Format::Zip,
            Format::Text,
            Format::Unknown,
        ];
        let mut contents: Vec<Content> = formats.into_iter().map(of).collect();
        for k in [
            Mp4Kind::Video,
            Mp4Kind::Audio,
            Mp4Kind::QuickTime,
            Mp4Kind::ThreeGpp,
        ] {
            contents.push(iso(k));
        }
        for kind in MediaKind::ALL {
            for c in &contents {
                let sent = match plan_mimetype(kind, c) {
                    Some(m) => m,
                    None => continue,
                };
                if let Some(allowed) = allowed_mimetypes(kind) {
                    assert!(allowed.contains(&sent), "{kind} given {c:?} sends {sent}");
                }
            }
        }
    }

    /// The mimetype a file ends up with as `kind`: as it is, converted, or fitted.
    fn plan_mimetype(kind: MediaKind, c: &Content) -> Option<&'static str> {
        match crate::plan(kind, c, &crate::ImageLimits::default()) {
            Ok(crate::Plan::AsIs { mimetype }) => Some(mimetype),
            Ok(crate::Plan::Convert(c)) => Some(c.target_mimetype()),
            Ok(crate::Plan::FitImage { .. }) => Some("image/jpeg"),
            Err(_) => None,
        }
    }

    #[test]
    fn refusals_say_what_the_content_is_and_what_to_do() {
        let mp4 = iso(Mp4Kind::Video);
        let r = check(MediaKind::Image, &mp4).unwrap_err();
        assert_eq!(
            r.to_string(),
            "this is a video (video/mp4), not an image: send it as a video"
        );
        let r = check(MediaKind::Ptt, &of(Format::Mp3)).unwrap_err();
        let text = r.to_string();
        assert!(
            text.starts_with(
                "audio/mpeg is not a ptt phones accept (a ptt is one of: audio/ogg; codecs=opus)"
            ),
            "{text}"
        );
        assert!(
            text.contains("ffmpeg converts it: audio/mpeg → audio/ogg; codecs=opus"),
            "{text}"
        );
        let r = check(MediaKind::Video, &of(Format::Unknown)).unwrap_err();
        assert!(
            r.to_string().contains("send anything else as a document"),
            "{r}"
        );
    }

    #[test]
    fn identify_reads_brands_even_without_a_moov() {
        let ftyp = |brand: &[u8; 4]| {
            let mut v = b"\0\0\0\x10ftyp".to_vec();
            v.extend_from_slice(brand);
            v.extend_from_slice(b"\0\0\0\0");
            v
        };
        assert_eq!(
            identify_bytes(&ftyp(b"qt  "), None).mimetype,
            Some("video/quicktime")
        );
        assert_eq!(
            identify_bytes(&ftyp(b"3gp5"), None).mimetype,
            Some("video/3gpp")
        );
        assert_eq!(
            identify_bytes(&ftyp(b"M4A "), None).class,
            ContentClass::Audio
        );
        let c = identify_bytes(b"GIF89a\x40\x01\xF0\x00", Some("x.gif"));
        assert_eq!(
            (c.class, c.size, c.len),
            (ContentClass::Animation, Some((320, 240)), 10)
        );
        assert_eq!(identify_bytes(b"", None).class, ContentClass::Unknown);
    }
}
