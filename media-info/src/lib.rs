//! Message-ready media: what a WhatsApp message says about its media, read from the file.
//!
//! Pure functions from bytes or a seekable reader to a [`MediaInfo`]: the `mimetype`
//! (sniffed from the content, the extension only where the content cannot tell), `width`
//! and `height`, `seconds`, a small `jpeg_thumbnail`, a sticker's `animated` flag, a voice
//! note's 64-bar `waveform`, a PDF's `page_count` and the `file_name`. No network, and no
//! knowledge of the CDN: [`MediaInfo::message_json`] merges the result with an upload's JSON
//! into the fields of the message protobuf.
//!
//! Everything is optional and bounded. A file that is corrupt, cut short, of an unknown
//! kind or too large to decode gives no metadata for what could not be read, and a
//! [`Warning`] saying why; nothing here fails an upload, and nothing read from a file
//! panics the caller (a bug in a parser or decoder is caught and reported as a warning).
//! Pictures are refused before decoding when their header claims more than
//! [`Options::max_pixels`], or more memory to decode than [`MAX_DECODE_BYTES`]; voice notes
//! longer than [`Options::max_waveform_seconds`] get no waveform (longer than
//! [`Options::max_in_process_waveform_seconds`] without ffmpeg); a PDF is scanned for at
//! most [`Options::max_scan_bytes`]; box, chunk and page walks are capped by count. Every
//! limit counts work (bytes, boxes, pages, samples), never time, so the same file gives the
//! same metadata on a busy machine and an idle one; headers are read through one buffer
//! front to back, so the metadata pass costs about one sequential read of what it looks at.
//!
//! No program is run unless the caller asks: `ffmpeg` (a video's first-frame thumbnail, a
//! long voice note's decoding) only with [`Options::ffmpeg`] set (`None` by default), and
//! it is stopped after [`FfmpegOptions::timeout`].
//!
//! ```no_run
//! use std::path::Path;
//! use wamedia_info::{analyze_path, FfmpegOptions, MediaKind, Options};
//!
//! // Options::default() runs no program; opt in to ffmpeg for long voice notes.
//! let opts = Options { ffmpeg: Some(FfmpegOptions::default()), ..Options::default() };
//! let info = analyze_path(MediaKind::Ptt, Path::new("voice.ogg"), &opts);
//! for w in &info.warnings {
//!     eprintln!("warning: {w}");
//! }
//! // `upload` is what `wamedia upload` printed (url, direct_path, media_key, …).
//! let upload = serde_json::json!({"url": "https://mmg.whatsapp.net/…", "file_length": 19049});
//! let audio_message = info.message_json(&upload, "ptt");
//! println!("{audio_message}");
//! ```
//!
//! ## What phones play
//!
//! A receiving phone plays only some formats (PROTOCOL §8). [`identify_path`] reads what a
//! file is; [`check`] answers with the mimetype to send, one of [`allowed_mimetypes`], or a
//! [`Refusal`] naming what the content is and the [`Conversion`] that fixes it; [`plan`]
//! adds what the account's [`ImageLimits`] ask of images ([`fit_image`], in process). A
//! conversion runs ffmpeg only when its [`Conversion::run`] is called:
//!
//! ```no_run
//! use std::path::Path;
//! use wamedia_info::{identify_path, plan, FfmpegOptions, ImageLimits, MediaKind, Plan};
//!
//! let content = identify_path(Path::new("clip.mov"))?;
//! match plan(MediaKind::Video, &content, &ImageLimits::default()) {
//!     Ok(Plan::Convert(c)) => c.run(Path::new("clip.mov"), Path::new("clip.mp4"), &FfmpegOptions::default())?,
//!     Ok(other) => println!("{other:?}"),
//!     Err(refusal) => eprintln!("{refusal}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Before a video goes up, [`faststart`] moves its `moov` box before the media data and keeps
//! only its first video and first audio track, as WhatsApp Web does (PROTOCOL §8), through a
//! virtual file that reads the original on demand (no copy).
//!
//! Which values are WhatsApp's own and where they come from is written beside each field
//! of [`MediaInfo`] and in the README ("Sending the message").

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

mod accept;
mod bytes;
mod convert;
pub mod faststart;
mod ffmpeg;
mod flac;
mod message;
mod mp3;
mod mp4;
mod ogg;
mod pdf;
mod prepare;
mod quiet;
mod sniff;
mod thumbnail;
mod wav;
mod waveform;
mod webp;

use sniff::{Format, OggCodec};

pub use accept::{
    allowed_mimetypes, check, identify_bytes, identify_path, identify_reader, Content,
    ContentClass, Refusal,
};
pub use convert::{Conversion, ConversionError, Target};
pub use prepare::{fit_image, plan, FitError, FittedImage, ImageLimits, Plan};

/// The media types that have a message, by wamedia's names for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A picture: `ImageMessage`.
    Image,
    /// A WebP sticker: `StickerMessage`.
    Sticker,
    /// A video: `VideoMessage`.
    Video,
    /// A looping, silent MP4 shown as a gif: `VideoMessage` with `gifPlayback`.
    Gif,
    /// A round video note: `VideoMessage`, sent as the message's `ptvMessage`.
    Ptv,
    /// An audio file: `AudioMessage`.
    Audio,
    /// A voice note: `AudioMessage` with `ptt` and a `waveform`.
    Ptt,
    /// Any file: `DocumentMessage`.
    Document,
}

impl MediaKind {
    /// Every kind, in the order of the README's media type table.
    pub const ALL: [MediaKind; 8] = [
        MediaKind::Image,
        MediaKind::Sticker,
        MediaKind::Video,
        MediaKind::Gif,
        MediaKind::Audio,
        MediaKind::Ptt,
        MediaKind::Ptv,
        MediaKind::Document,
    ];

    /// The kind of a wamedia media type name (`"image"`, `"ptt"`, …); `None` for the types
    /// without a message of their own (thumbnails, history, app state, …).
    pub fn from_name(name: &str) -> Option<MediaKind> {
        MediaKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// wamedia's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Sticker => "sticker",
            MediaKind::Video => "video",
            MediaKind::Gif => "gif",
            MediaKind::Ptv => "ptv",
            MediaKind::Audio => "audio",
            MediaKind::Ptt => "ptt",
            MediaKind::Document => "document",
        }
    }

    /// The field of WhatsApp's `Message` that carries this kind's message
    /// (`imageMessage`, `videoMessage`, `ptvMessage`, …).
    pub fn message_field(self) -> &'static str {
        match self {
            MediaKind::Image => "imageMessage",
            MediaKind::Sticker => "stickerMessage",
            MediaKind::Video | MediaKind::Gif => "videoMessage",
            MediaKind::Ptv => "ptvMessage",
            MediaKind::Audio | MediaKind::Ptt => "audioMessage",
            MediaKind::Document => "documentMessage",
        }
    }
}

impl FromStr for MediaKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        MediaKind::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = MediaKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "no message for media type '{s}' (one of: {})",
                names.join(", ")
            )
        })
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the `jpeg_thumbnail` is made.
///
/// The defaults are WhatsApp Web's: longest side 100 px (`WAWebMediaConstants.
/// IMG_THUMB_MAX_EDGE`), JPEG quality 92 (what `canvas.toDataURL("image/jpeg")` uses when no
/// quality is given, as WhatsApp Web calls it), and at most 20 000 bytes, stepping the
/// quality down by tenths until it fits (`WAWebCanvasUtils.getResizedDataUrl`). Baileys
/// sends 32 px wide at quality 50; set `max_edge: 32, quality: 50` to match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailOptions {
    /// The longest side, in pixels; smaller pictures are not enlarged.
    pub max_edge: u32,
    /// The JPEG quality tried first, 1–100.
    pub quality: u8,
    /// The largest thumbnail accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for ThumbnailOptions {
    fn default() -> Self {
        ThumbnailOptions {
            max_edge: 100,
            quality: 92,
            max_bytes: 20_000,
        }
    }
}

/// Where `ffmpeg` is and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FfmpegOptions {
    /// The program: `ffmpeg` on `PATH` by default.
    pub program: PathBuf,
    /// After this long ffmpeg is stopped and there is no first-frame thumbnail.
    pub timeout: Duration,
}

impl Default for FfmpegOptions {
    fn default() -> Self {
        FfmpegOptions {
            program: PathBuf::from("ffmpeg"),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Limits and choices of the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How thumbnails are made.
    pub thumbnail: ThumbnailOptions,
    /// Pictures whose header claims more pixels than this are not decoded (no thumbnail;
    /// their width and height are still reported). Default 50 000 000 (a 50 MP photo);
    /// decoding needs up to 4 bytes a pixel.
    pub max_pixels: u64,
    /// Voice notes longer than this get no waveform. Default 1800 s (half an hour): ~3 s
    /// of decoding with ffmpeg.
    pub max_waveform_seconds: u32,
    /// Without ffmpeg (not allowed, not installed, or no path), a voice note is decoded in
    /// process by a pure-Rust decoder that manages only ~3 s of audio per second of CPU;
    /// notes longer than this (known before decoding, from the last page) get no waveform.
    /// A limit on work, not time, so a file's metadata does not depend on how busy the
    /// machine is. Default 15 s (~5 s of CPU in a release build).
    pub max_in_process_waveform_seconds: u32,
    /// At most this many bytes are read to count a PDF's pages or walk an MP3 or AAC
    /// stream's frames. Default 64 MiB.
    pub max_scan_bytes: u64,
    /// `ffmpeg` for a video's first-frame thumbnail and a voice note's decoding
    /// ([`analyze_path`] and [`preview_path`] only). `None` by default: this library runs
    /// no program unless its caller opts in with `Some(FfmpegOptions::default())` (which
    /// runs `ffmpeg` from `PATH`) or a program of its choice.
    pub ffmpeg: Option<FfmpegOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            thumbnail: ThumbnailOptions::default(),
            max_pixels: 50_000_000,
            max_waveform_seconds: 1800,
            max_in_process_waveform_seconds: 15,
            max_scan_bytes: 64 << 20,
            ffmpeg: None,
        }
    }
}

/// Why a field is missing: the file could not say, or was not allowed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The [`MediaInfo`] field it concerns (`"mimetype"`, `"width"`, `"seconds"`,
    /// `"jpeg_thumbnail"`, `"animated"`, `"waveform"`, `"page_count"`, `"file_name"`, and
    /// `"preview"` for [`preview_path`] and [`preview_from_image`]).
    pub field: &'static str,
    /// What happened, in words.
    pub message: String,
}

impl Warning {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Warning {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What a message says about its media. Every field is optional: `None` when the file
/// could not tell (see `warnings`) or when it does not apply to the media type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaInfo {
    /// Sniffed from the content: `image/jpeg`, `video/mp4`, `audio/ogg; codecs=opus` (what
    /// WhatsApp's clients send for voice notes), `application/pdf`, …; for a document whose
    /// content names no type, `None` ([`MediaInfo::message_json`] then says
    /// `application/octet-stream`).
    pub mimetype: Option<String>,
    /// Width in pixels as displayed: after a JPEG's EXIF orientation, or a video track's
    /// quarter-turn rotation (image, sticker, video, gif, ptv).
    pub width: Option<u32>,
    /// Height in pixels as displayed.
    pub height: Option<u32>,
    /// Length in whole seconds, rounded down as Baileys (a float stored in a `uint32`) and
    /// WhatsApp Web (`~~duration`) do, but at least 1 for any non-empty media.
    pub seconds: Option<u32>,
    /// Length in milliseconds, rounded down: what `seconds` is made from.
    pub duration_ms: Option<u64>,
    /// A small JPEG (see [`ThumbnailOptions`]): images, stickers, and the first frame of a
    /// video when `ffmpeg` is installed.
    pub jpeg_thumbnail: Option<Vec<u8>>,
    /// Whether a WebP sticker is animated (the `VP8X` animation bit or an `ANIM` chunk).
    pub animated: Option<bool>,
    /// An animated sticker's `firstFrameLength`: the file offset just past its first
    /// `ANMF` chunk (`WAWebWebpParseWebp`). Give it to the upload
    /// (`wamedia_driver::UploadJob::with_first_frame_length`) for the first-frame sidecar.
    pub first_frame_length: Option<u64>,
    /// A voice note's 64 bars, each 0–100 (Baileys' rule, see the README).
    pub waveform: Option<Vec<u8>>,
    /// A PDF's number of pages, when a bounded scan finds it.
    pub page_count: Option<u32>,
    /// The file's name without its directories (documents show it).
    pub file_name: Option<String>,
    /// Why fields are missing.
    pub warnings: Vec<Warning>,
}

impl MediaInfo {
    /// The fields of the message protobuf for `media_type` (`"image"`, `"video"`, `"gif"`,
    /// `"ptv"`, `"audio"`, `"ptt"`, `"document"`, `"sticker"`) as protobuf JSON: this
    /// file's `mimetype`, `width`, `height`, `seconds`, `jpegThumbnail`, `waveform`,
    /// `isAnimated`, `fileName`, `pageCount` where the message has them, with `ptt: true`
    /// for voice notes and `gifPlayback: true` for gifs; and from `upload` (the JSON of a
    /// wamedia upload) `url`, `directPath`, `mediaKey`, `fileSha256`, `fileEncSha256`,
    /// `fileLength`, `mediaKeyTimestamp`, `streamingSidecar` (video and audio), an animated
    /// sticker's `firstFrameLength` and `firstFrameSidecar`, and from its `thumbnail_info`
    /// the larger thumbnail's `thumbnailDirectPath`, `thumbnailSha256`,
    /// `thumbnailEncSha256`, `thumbnailWidth` and `thumbnailHeight` (for a thumbnail the
    /// CDN made, which has no size of its own there, the media's width and height).
    ///
    /// Bytes are standard base64; `fileLength` and `mediaKeyTimestamp` are decimal strings
    /// (64-bit integers in the proto3 JSON mapping). Fields missing from both are left out.
    /// `Value::Null` for a media type without a message. The object goes in the `Message`
    /// field [`MediaKind::message_field`] names.
    pub fn message_json(&self, upload: &serde_json::Value, media_type: &str) -> serde_json::Value {
        message::message_json(self, upload, media_type)
    }

    fn warn(&mut self, field: &'static str, message: impl Into<String>) {
        self.warnings.push(Warning::new(field, message));
    }

    fn set_duration(&mut self, ms: u64) {
        self.duration_ms = Some(ms);
        let whole = u32::try_from(ms / 1000).unwrap_or(u32::MAX);
        self.seconds = Some(if ms > 0 { whole.max(1) } else { 0 });
    }
}

/// Analyses a file in memory as media of `kind`. `file_name` (directories are dropped) is
/// used for documents and to refine a ZIP, OLE or text type, never alone. No ffmpeg.
pub fn analyze_bytes(
    kind: MediaKind,
    data: &[u8],
    file_name: Option<&str>,
    opts: &Options,
) -> MediaInfo {
    analyze_reader(kind, Cursor::new(data), file_name, opts)
}

/// Analyses a seekable reader (a file, a cursor) as media of `kind`; see [`analyze_bytes`].
/// Only headers are read where headers suffice; pictures and voice notes are decoded
/// within the limits of `opts`. No ffmpeg: a video gets no thumbnail (use [`analyze_path`]).
pub fn analyze_reader<R: Read + Seek>(
    kind: MediaKind,
    reader: R,
    file_name: Option<&str>,
    opts: &Options,
) -> MediaInfo {
    guarded(kind, || analyze(kind, reader, file_name, None, opts))
}

/// Analyses the file at `path` as media of `kind`, its name as the `file_name`. For video,
/// gif and ptv, also the first frame's thumbnail from `ffmpeg` when `opts.ffmpeg` allows it
/// and it is installed
/// (without it, a warning). A file that cannot be opened gives a warning, not an error.
pub fn analyze_path(kind: MediaKind, path: &Path, opts: &Options) -> MediaInfo {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match File::open(path) {
        Ok(f) => guarded(kind, || analyze(kind, f, name.as_deref(), Some(path), opts)),
        Err(e) => {
            let mut info = MediaInfo {
                file_name: name,
                ..MediaInfo::default()
            };
            info.warn(
                "mimetype",
                format!("could not open {}: {e}", path.display()),
            );
            info
        }
    }
}

/// Makes a message thumbnail from any JPEG, PNG or WebP picture (for a thumbnail the caller
/// supplies, such as a video's poster), with the limits and choices of `opts`.
pub fn thumbnail_from_image(data: &[u8], opts: &Options) -> Result<Vec<u8>, Warning> {
    quiet::catch(|| {
        let img = thumbnail::decode_bytes(data, opts.max_pixels)?;
        thumbnail::jpeg(&img, &opts.thumbnail)
    })
    .unwrap_or_else(|p| Err(format!("the picture decoder failed (a bug: {p})")))
    .map_err(|m| Warning::new("jpeg_thumbnail", m))
}

/// An animated WebP sticker's `firstFrameLength` (see [`MediaInfo::first_frame_length`])
/// from its chunk headers alone, nothing decoded: what an upload needs before its first
/// pass. `Ok(None)` for a still WebP; an error for what is not a readable WebP.
pub fn webp_first_frame_length<R: Read + Seek>(reader: R) -> Result<Option<u64>, Warning> {
    let fail = |m: String| Warning::new("animated", m);
    quiet::catch(|| {
        let mut src = bytes::Source::new(reader);
        let len = bytes::stream_len(&mut src).map_err(|e| format!("could not read: {e}"))?;
        webp::parse(&mut src, len).map(|w| w.first_frame_length)
    })
    .unwrap_or_else(|p| Err(format!("the WebP parser failed (a bug: {p})")))
    .map_err(|m| fail(format!("unreadable WebP: {m}")))
}

/// The most memory a picture may take to decode, in bytes (320 MiB): its decoded size
/// (width × height × bytes per pixel, from the header) times what the decoder needs beside
/// it is checked against this before decoding, whatever [`Options::max_pixels`] allows. A
/// 48 MP JPEG photo fits; a 7000 × 7000 lossless WebP (49 MP, two 4-byte buffers) does not.
pub const MAX_DECODE_BYTES: u64 = 320 << 20;

/// The longest side of the larger thumbnail uploaded beside a video or a document
/// (`WAWebMediaConstants.VIDEO_THUMB_MAX_EDGE` and `DOC_THUMB_MAX_EDGE`, both 480).
pub const PREVIEW_MAX_EDGE: u32 = 480;

/// The largest preview JPEG made, in bytes (the quality steps down until it fits).
pub const PREVIEW_MAX_BYTES: usize = 512 << 10;

/// Pictures larger than this are not read for a preview.
const PREVIEW_MAX_FILE: u64 = 100 << 20;

/// A larger thumbnail, to upload as its own object under the media's key (the message's
/// `thumbnailDirectPath` and the rest): a JPEG whose longest side is at most
/// [`PREVIEW_MAX_EDGE`], and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The JPEG.
    pub jpeg: Vec<u8>,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
}

/// A [`Preview`] of any JPEG, PNG or WebP picture (a document's `--thumbnail`, a poster
/// frame), with the limits of `opts`.
pub fn preview_from_image(data: &[u8], opts: &Options) -> Result<Preview, Warning> {
    let t = ThumbnailOptions {
        max_edge: PREVIEW_MAX_EDGE,
        quality: opts.thumbnail.quality,
        max_bytes: PREVIEW_MAX_BYTES,
    };
    quiet::catch(|| {
        let img = thumbnail::decode_bytes(data, opts.max_pixels)?;
        let (width, height) = thumbnail::bound(img.width(), img.height(), t.max_edge);
        let jpeg = thumbnail::jpeg(&img, &t)?;
        Ok(Preview {
            jpeg,
            width,
            height,
        })
    })
    .unwrap_or_else(|p| Err(format!("the picture decoder failed (a bug: {p})")))
    .map_err(|m: String| Warning::new("preview", m))
}

/// A [`Preview`] of the file at `path` as media of `kind`: a picture (an image, or a
/// document that is a JPEG, PNG or WebP) scaled down; a video's first frame from `ffmpeg`
/// (only when `opts.ffmpeg` allows it). A PDF's first page is not rendered here (give a
/// picture with [`preview_from_image`]); other kinds have none.
pub fn preview_path(kind: MediaKind, path: &Path, opts: &Options) -> Result<Preview, Warning> {
    let fail = |m: String| Warning::new("preview", m);
    match kind {
        MediaKind::Video | MediaKind::Gif | MediaKind::Ptv => {
            let Some(ff) = &opts.ffmpeg else {
                return Err(fail(
                    "a video's frame needs ffmpeg, which is not allowed".into(),
                ));
            };
            match ffmpeg::first_frame(path, ff) {
                Ok(png) => preview_from_image(&png, opts),
                Err(ffmpeg::NoFrame::Missing) => Err(fail(format!(
                    "ffmpeg ({}) is not installed: no first frame",
                    ff.program.display()
                ))),
                Err(ffmpeg::NoFrame::Failed(m)) => Err(fail(m)),
            }
        }
        MediaKind::Image | MediaKind::Document => {
            let mut f = File::open(path)
                .map_err(|e| fail(format!("could not open {}: {e}", path.display())))?;
            let mut head = Vec::new();
            (&mut f)
                .take(sniff::HEAD as u64)
                .read_to_end(&mut head)
                .map_err(|e| fail(format!("could not read the file: {e}")))?;
            match sniff::detect(&head) {
                Format::Jpeg | Format::Png | Format::Webp => {}
                Format::Pdf => {
                    return Err(fail(
                        "PDF pages are not rendered here: give a picture of the first page".into(),
                    ))
                }
                _ => return Err(fail("not a JPEG, PNG or WebP picture".into())),
            }
            let mut data = head;
            f.take(
                PREVIEW_MAX_FILE
                    .saturating_sub(data.len() as u64)
                    .saturating_add(1),
            )
            .read_to_end(&mut data)
            .map_err(|e| fail(format!("could not read the file: {e}")))?;
            if data.len() as u64 > PREVIEW_MAX_FILE {
                return Err(fail(format!(
                    "the picture is over {PREVIEW_MAX_FILE} bytes: no preview"
                )));
            }
            preview_from_image(&data, opts)
        }
        _ => Err(fail(format!("a {kind} has no preview"))),
    }
}

/// Runs an analysis so that a panic inside a parser or decoder becomes a warning, and
/// prints nothing (see `quiet`).
fn guarded(kind: MediaKind, run: impl FnOnce() -> MediaInfo) -> MediaInfo {
    quiet::catch(run).unwrap_or_else(|p| {
        let mut info = MediaInfo::default();
        info.warn(
            "mimetype",
            format!("reading the {kind} failed inside wamedia-info (a bug: {p}); no metadata"),
        );
        info
    })
}

fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn analyze<R: Read + Seek>(
    kind: MediaKind,
    reader: R,
    file_name: Option<&str>,
    path: Option<&Path>,
    opts: &Options,
) -> MediaInfo {
    let mut info = MediaInfo {
        file_name: file_name
            .map(|n| base_name(n).to_string())
            .filter(|n| !n.is_empty()),
        ..MediaInfo::default()
    };
    let mut src = bytes::Source::new(reader);
    let len = match bytes::stream_len(&mut src) {
        Ok(l) => l,
        Err(e) => {
            info.warn("mimetype", format!("could not read the file: {e}"));
            return info;
        }
    };
    let head = match bytes::read_vec_at(
        &mut src,
        0,
        usize::try_from(len.min(sniff::HEAD as u64)).unwrap_or(0),
    ) {
        Ok(h) => h,
        Err(e) => {
            info.warn("mimetype", format!("could not read the file: {e}"));
            return info;
        }
    };
    if head.is_empty() {
        info.warn("mimetype", "the file is empty");
        return info;
    }
    let format = sniff::detect(&head);
    let mp4 = if format == Format::IsoBmff {
        match mp4::parse(&mut src, len) {
            Ok(m) => Some(m),
            Err(e) => {
                info.warn("seconds", format!("unreadable MP4: {e}"));
                None
            }
        }
    } else {
        None
    };
    info.mimetype =
        sniff::mimetype(format, file_name, mp4.as_ref().map(mp4::Mp4::kind)).map(str::to_string);
    if info.mimetype.is_none() && format != Format::IsoBmff {
        let what = if kind == MediaKind::Document {
            "the content names no type"
        } else {
            "not a file type wamedia-info knows"
        };
        info.warn("mimetype", what);
    }
    match kind {
        MediaKind::Image | MediaKind::Sticker => {
            picture(kind, format, &mut src, len, opts, &mut info)
        }
        MediaKind::Video | MediaKind::Gif | MediaKind::Ptv => {
            video(kind, format, mp4, path, opts, &mut info)
        }
        MediaKind::Audio | MediaKind::Ptt => {
            audio(kind, format, mp4, &mut src, (len, path), opts, &mut info)
        }
        MediaKind::Document => {
            if format == Format::Pdf {
                match pdf::page_count(&mut src, len, opts.max_scan_bytes) {
                    Ok(n) => info.page_count = Some(n),
                    Err(e) => info.warn("page_count", e),
                }
            }
        }
    }
    info
}

fn picture<S: Read + Seek>(
    kind: MediaKind,
    format: Format,
    src: &mut bytes::Source<S>,
    len: u64,
    opts: &Options,
    info: &mut MediaInfo,
) {
    let image_format = match format {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
        Format::Webp => image::ImageFormat::WebP,
        Format::Gif => {
            // Dimensions from the logical screen; no GIF decoder here, so no thumbnail.
            let head = bytes::read_vec_at(src, 0, 10).unwrap_or_default();
            if let (Some(w), Some(h)) = (bytes::le_u16(&head, 6), bytes::le_u16(&head, 8)) {
                info.width = Some(u32::from(w));
                info.height = Some(u32::from(h));
            }
            info.warn(
                "jpeg_thumbnail",
                "GIF pictures are not decoded (send an animation as a gif: an MP4)",
            );
            return;
        }
        _ => {
            info.warn(
                "width",
                format!(
                    "not a picture wamedia-info reads (JPEG, PNG, WebP{})",
                    if kind == MediaKind::Sticker {
                        "; stickers are WebP"
                    } else {
                        ""
                    }
                ),
            );
            return;
        }
    };
    if format == Format::Webp {
        // The WebP decoder reads far into the bitstream before it can be asked its size:
        // the chunk headers say it first, and a picture over the limits is not handed to it.
        if let Ok(w) = webp::parse(src, len) {
            let pixels = u64::from(w.width).saturating_mul(u64::from(w.height));
            let why = if pixels > opts.max_pixels {
                Some(thumbnail::too_large(w.width, w.height, opts.max_pixels))
            } else {
                thumbnail::over_ceiling(image_format, w.width, w.height, pixels.saturating_mul(4))
            };
            if let Some(why) = why {
                if kind == MediaKind::Sticker {
                    info.animated = Some(w.animated);
                    info.first_frame_length = w.first_frame_length;
                }
                info.width = Some(w.width);
                info.height = Some(w.height);
                info.warn("jpeg_thumbnail", why);
                return;
            }
        }
    }
    let mut sticker_header = None;
    if kind == MediaKind::Sticker {
        if format != Format::Webp {
            info.warn("animated", "stickers are WebP files; this is not one");
        } else {
            match webp::parse(src, len) {
                Ok(w) => {
                    info.animated = Some(w.animated);
                    info.first_frame_length = w.first_frame_length;
                    sticker_header = Some((w.width, w.height));
                }
                Err(e) => {
                    info.warn("width", format!("unreadable WebP: {e}"));
                    return;
                }
            }
        }
    }
    if format == Format::Jpeg {
        match thumbnail::jpeg_complete(src, len) {
            Ok(true) => {}
            Ok(false) => {
                info.warn(
                    "width",
                    "the JPEG is cut short (no end-of-image marker); no metadata",
                );
                return;
            }
            Err(e) => {
                info.warn("width", format!("could not read the file: {e}"));
                return;
            }
        }
    }
    if let Err(e) = src.rewind() {
        info.warn("width", format!("could not read the file: {e}"));
        return;
    }
    // A decoder's panic (image-webp#182 on some animated WebPs) costs the thumbnail only.
    let decoded = quiet::catch(|| thumbnail::decode(&mut *src, image_format, opts.max_pixels))
        .unwrap_or_else(|p| Err(format!("the decoder failed (a bug: {p})")));
    match decoded {
        Ok(thumbnail::Decoded::Image(img)) => {
            info.width = Some(img.width());
            info.height = Some(img.height());
            match thumbnail::jpeg(&img, &opts.thumbnail) {
                Ok(t) => info.jpeg_thumbnail = Some(t),
                Err(e) => info.warn("jpeg_thumbnail", e),
            }
        }
        Ok(thumbnail::Decoded::TooLarge(w, h, why)) => {
            info.width = Some(w);
            info.height = Some(h);
            info.warn("jpeg_thumbnail", why);
        }
        Err(e) => match sticker_header {
            // A sticker's chunk walk passed (size, animation, first frame in the file):
            // what it says stands; only the thumbnail is lost.
            Some((w, h)) => {
                info.width = Some(w);
                info.height = Some(h);
                info.warn(
                    "jpeg_thumbnail",
                    format!("the picture does not decode ({e}): no thumbnail"),
                );
            }
            None => {
                // A picture that does not decode gives no metadata: its header may lie too.
                info.animated = None;
                info.first_frame_length = None;
                info.warn(
                    "width",
                    format!("the picture is corrupt or cut short ({e}); no metadata"),
                );
            }
        },
    }
}

fn video(
    kind: MediaKind,
    format: Format,
    mp4: Option<mp4::Mp4>,
    path: Option<&Path>,
    opts: &Options,
    info: &mut MediaInfo,
) {
    let Some(m) = mp4 else {
        if format != Format::IsoBmff {
            let what = if kind == MediaKind::Gif {
                "gifs are MP4 files (H.264)"
            } else {
                "not an MP4 or MOV file"
            };
            info.warn("seconds", what);
        }
        return;
    };
    match m.duration_ms {
        Some(ms) => info.set_duration(ms),
        None => info.warn("seconds", "the MP4 does not say how long it is"),
    }
    match m.video {
        Some((w, h)) => {
            info.width = Some(w);
            info.height = Some(h);
        }
        None => info.warn("width", "no video track with a size"),
    }
    if !m.has_video {
        return;
    }
    let Some(ff) = &opts.ffmpeg else { return };
    let Some(path) = path else {
        info.warn(
            "jpeg_thumbnail",
            "a first-frame thumbnail needs the file's path (analyze_path) for ffmpeg",
        );
        return;
    };
    match ffmpeg::first_frame(path, ff) {
        Ok(png) => match thumbnail::decode_bytes(&png, opts.max_pixels)
            .and_then(|img| thumbnail::jpeg(&img, &opts.thumbnail))
        {
            Ok(t) => info.jpeg_thumbnail = Some(t),
            Err(e) => info.warn("jpeg_thumbnail", format!("ffmpeg's first frame: {e}")),
        },
        Err(ffmpeg::NoFrame::Missing) => info.warn(
            "jpeg_thumbnail",
            format!(
                "{} is not installed: no first-frame thumbnail",
                ff.program.display()
            ),
        ),
        Err(ffmpeg::NoFrame::Failed(e)) => info.warn("jpeg_thumbnail", e),
    }
}

fn audio<S: Read + Seek>(
    kind: MediaKind,
    format: Format,
    mp4: Option<mp4::Mp4>,
    src: &mut bytes::Source<S>,
    (len, path): (u64, Option<&Path>),
    opts: &Options,
    info: &mut MediaInfo,
) {
    let mut wav_info = None;
    let duration = match format {
        Format::Mp3 => mp3::duration_ms(src, len, opts.max_scan_bytes),
        Format::Adts => mp3::adts_duration_ms(src, len, opts.max_scan_bytes),
        Format::IsoBmff => match &mp4 {
            Some(m) => m
                .duration_ms
                .ok_or_else(|| "the MP4 does not say how long it is".to_string()),
            None => return,
        },
        Format::Ogg(OggCodec::Opus | OggCodec::Vorbis) => ogg::duration_ms(src, len),
        Format::Wav => wav::parse(src, len).and_then(|w| {
            wav_info = Some(w);
            w.duration_ms()
                .ok_or_else(|| "a byte rate of 0".to_string())
        }),
        Format::Flac => flac::duration_ms(src),
        _ => Err(
            "not an audio file wamedia-info reads (MP3, M4A/AAC, OGG Opus or Vorbis, WAV, FLAC)"
                .to_string(),
        ),
    };
    let ok = match duration {
        Ok(ms) => {
            info.set_duration(ms);
            true
        }
        Err(e) => {
            info.warn("seconds", e);
            false
        }
    };
    if kind != MediaKind::Ptt {
        return;
    }
    if !ok {
        info.warn(
            "waveform",
            "no waveform for a file whose length could not be read",
        );
        return;
    }
    let bars = match (format, wav_info) {
        (Format::Ogg(OggCodec::Opus), _) => waveform::opus(
            src,
            len,
            opts.max_waveform_seconds,
            opts.max_in_process_waveform_seconds,
            match (path, opts.ffmpeg.as_ref()) {
                (_, None) => Err(waveform::NoFfmpeg::NotAllowed),
                (None, Some(_)) => Err(waveform::NoFfmpeg::NoPath),
                (Some(p), Some(ff)) => Ok((p, ff)),
            },
        ),
        (Format::Wav, Some(w)) => waveform::wav(src, &w, opts.max_waveform_seconds),
        _ => {
            Err("waveforms are computed for OGG Opus voice notes (and 16-bit PCM WAV)".to_string())
        }
    };
    match bars {
        Ok(b) => info.waveform = Some(b),
        Err(e) => info.warn("waveform", e),
    }
}
