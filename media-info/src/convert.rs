//! The ffmpeg conversions that turn media phones refuse into media they play (PROTOCOL
//! §8): a plan first ([`Conversion`], a value with no side effect), run only when the
//! caller calls [`Conversion::run`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::accept::{Content, ContentClass};
use crate::sniff::{Format, OggCodec};
use crate::{ffmpeg, FfmpegOptions, MediaKind};

/// Even dimensions (H.264 in 4:2:0 needs them), the size otherwise kept.
const EVEN: &str = "scale=trunc(iw/2)*2:trunc(ih/2)*2";

/// A 512 × 512 sticker: scaled to fit, centred on a transparent square.
const STICKER_FILTER: &str = "scale=512:512:force_original_aspect_ratio=decrease,format=rgba,\
pad=512:512:(ow-iw)/2:(oh-ih)/2:color=0x00000000";

/// Any video → MP4, H.264 and AAC, `moov` first; the first video and audio tracks only.
const TO_MP4: &[&str] = &[
    "-map",
    "0:v:0",
    "-map",
    "0:a:0?",
    "-vf",
    EVEN,
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
];

/// A video sent as a gif: the same without sound.
const TO_SILENT_MP4: &[&str] = &[
    "-map",
    "0:v:0",
    "-an",
    "-vf",
    EVEN,
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
];

/// A voice note: Ogg/Opus, mono, 48 kHz, tuned for speech.
const TO_VOICE_NOTE: &[&str] = &[
    "-map",
    "0:a:0",
    "-vn",
    "-c:a",
    "libopus",
    "-ac",
    "1",
    "-ar",
    "48000",
    "-application",
    "voip",
    "-f",
    "ogg",
];

/// Music: AAC in an M4A (`M4A ` brand), `moov` first. ffmpeg's own AAC encoder is in
/// every build.
const TO_M4A: &[&str] = &[
    "-map",
    "0:a:0",
    "-vn",
    "-c:a",
    "aac",
    "-b:a",
    "128k",
    "-movflags",
    "+faststart",
    "-f",
    "ipod",
];

/// A sticker: WebP, 512 × 512, animated when the input moves (`-loop 0`: for ever).
const TO_STICKER: &[&str] = &[
    "-map",
    "0:v:0",
    "-an",
    "-vf",
    STICKER_FILTER,
    "-c:v",
    "libwebp",
    "-quality",
    "80",
    "-loop",
    "0",
    "-f",
    "webp",
];

/// What a conversion makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// MP4, H.264 (yuv420p, even dimensions) and AAC, faststart.
    Mp4,
    /// MP4, H.264, no sound, faststart: a gif.
    SilentMp4,
    /// Ogg/Opus, mono, 48 kHz: a voice note.
    VoiceNote,
    /// AAC in M4A: an audio file.
    M4a,
    /// WebP, 512 × 512, transparent padding; animated when the input is.
    Sticker,
}

impl Target {
    /// The mimetype of what it makes.
    pub fn mimetype(self) -> &'static str {
        match self {
            Target::Mp4 | Target::SilentMp4 => "video/mp4",
            Target::VoiceNote => "audio/ogg; codecs=opus",
            Target::M4a => "audio/mp4",
            Target::Sticker => "image/webp",
        }
    }

    /// The usual file extension of what it makes (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Target::Mp4 | Target::SilentMp4 => "mp4",
            Target::VoiceNote => "ogg",
            Target::M4a => "m4a",
            Target::Sticker => "webp",
        }
    }

    /// ffmpeg's output arguments (between the input and the output file).
    pub fn output_args(self) -> &'static [&'static str] {
        match self {
            Target::Mp4 => TO_MP4,
            Target::SilentMp4 => TO_SILENT_MP4,
            Target::VoiceNote => TO_VOICE_NOTE,
            Target::M4a => TO_M4A,
            Target::Sticker => TO_STICKER,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Target::Mp4 => "MP4, H.264/AAC, faststart",
            Target::SilentMp4 => "MP4, H.264, no sound, faststart",
            Target::VoiceNote => "Ogg/Opus, mono, 48 kHz",
            Target::M4a => "M4A, AAC",
            Target::Sticker => "WebP, 512 × 512",
        }
    }
}

/// A conversion by ffmpeg: from what the content is to a format receivers take. A plan:
/// making one runs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The input's mimetype.
    pub from: &'static str,
    /// What it makes.
    pub target: Target,
}

impl Conversion {
    /// The conversion content needs to be sent as `kind`, when one is known. The content
    /// is taken to be of the kind's class already ([`crate::check`] decides that).
    pub(crate) fn for_kind(kind: MediaKind, content: &Content) -> Option<Conversion> {
        let from = content.mimetype?;
        let f = content.format;
        let target = match (kind, content.class) {
            // ffmpeg 5 does not decode animated WebP.
            (MediaKind::Sticker, ContentClass::Picture) if content.animated == Some(true) => {
                return None
            }
            (MediaKind::Sticker, ContentClass::Picture | ContentClass::Animation) => {
                Target::Sticker
            }
            (MediaKind::Gif, ContentClass::Video | ContentClass::Animation)
            | (MediaKind::Video | MediaKind::Ptv, ContentClass::Animation) => Target::SilentMp4,
            (MediaKind::Video | MediaKind::Ptv, ContentClass::Video) => Target::Mp4,
            (MediaKind::Ptt, ContentClass::Audio) if f != Format::Ogg(OggCodec::Opus) => {
                Target::VoiceNote
            }
            (MediaKind::Audio, ContentClass::Audio) => Target::M4a,
            _ => return None,
        };
        Some(Conversion { from, target })
    }

    /// The mimetype of the converted file (one receivers take).
    pub fn target_mimetype(&self) -> &'static str {
        self.target.mimetype()
    }

    /// "video/quicktime → video/mp4 (MP4, H.264/AAC, faststart)".
    pub fn describe(&self) -> String {
        format!(
            "{} → {} ({})",
            self.from,
            self.target.mimetype(),
            self.target.what()
        )
    }

    /// The whole ffmpeg command line after the program's name:
    /// `-nostdin -hide_banner -v error -y -i file:INPUT OUTPUT-ARGS… file:OUTPUT`. The
    /// paths are given with ffmpeg's `file:` protocol, so a name such as `http://x` or
    /// `-y` is only ever a file.
    pub fn ffmpeg_args(&self, input: &Path, output: &Path) -> Vec<OsString> {
        let mut v: Vec<OsString> = ["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"]
            .iter()
            .map(OsString::from)
            .collect();
        v.push(file_url(input));
        v.extend(self.target.output_args().iter().map(OsString::from));
        v.push(file_url(output));
        v
    }

    /// Runs ffmpeg to convert `input` into `output` (created or overwritten), within
    /// `ffmpeg.timeout`. Only this runs a program; what ffmpeg says on failure comes back
    /// in the error, bounded and with control characters escaped.
    pub fn run(
        &self,
        input: &Path,
        output: &Path,
        ffmpeg: &FfmpegOptions,
    ) -> Result<(), ConversionError> {
        ffmpeg::run_to_file(&self.ffmpeg_args(input, output), ffmpeg).map_err(|e| match e {
            ffmpeg::RunError::Missing => ConversionError::Missing {
                program: ffmpeg.program.display().to_string(),
            },
            ffmpeg::RunError::TimedOut => ConversionError::TimedOut {
                after: ffmpeg.timeout,
            },
            ffmpeg::RunError::Io(e) => ConversionError::Io(e.to_string()),
            ffmpeg::RunError::Failed(status, text) => ConversionError::Failed {
                status: status.to_string(),
                stderr: escape(&text),
            },
        })
    }
}

/// `file:PATH`.
fn file_url(path: &Path) -> OsString {
    let mut s = OsString::from("file:");
    s.push(OsStr::new(path));
    s
}

/// At most the first three lines of `text`, joined by " | ", control characters escaped.
fn escape(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .map(|l| {
            l.chars()
                .flat_map(|c| {
                    let esc: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    esc
                })
                .collect()
        })
        .collect();
    if lines.is_empty() {
        "no reason given".into()
    } else {
        lines.join(" | ")
    }
}

/// Why a conversion did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConversionError {
    /// ffmpeg is not installed (or not at the path the options give).
    Missing {
        /// The program that was looked for.
        program: String,
    },
    /// It ran longer than the time limit and was stopped.
    TimedOut {
        /// The limit.
        after: Duration,
    },
    /// It could not be started or waited for.
    Io(String),
    /// It failed.
    Failed {
        /// Its exit status.
        status: String,
        /// The first lines it wrote on stderr, control characters escaped.
        stderr: String,
    },
}

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversionError::Missing { program } => write!(
                f,
                "converting needs ffmpeg, and {program} is not installed (or not on PATH)"
            ),
            ConversionError::TimedOut { after } => {
                write!(f, "ffmpeg took longer than {after:?} and was stopped")
            }
            ConversionError::Io(e) => write!(f, "ffmpeg could not be run: {e}"),
            ConversionError::Failed { status, stderr } => {
                write!(f, "ffmpeg failed ({status}): {stderr}")
            }
        }
    }
}

impl std::error::Error for ConversionError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target: Target) -> String {
        let c = Conversion {
            from: "x/y",
            target,
        };
        let v = c.ffmpeg_args(Path::new("in put.mov"), Path::new("-out"));
        v.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn every_conversion_has_its_exact_arguments() {
        let head = "-nostdin -hide_banner -v error -y -i file:in put.mov";
        assert_eq!(
            args(Target::Mp4),
            format!(
                "{head} -map 0:v:0 -map 0:a:0? -vf scale=trunc(iw/2)*2:trunc(ih/2)*2 \
                 -c:v libx264 -pix_fmt yuv420p -c:a aac -movflags +faststart -f mp4 file:-out"
            )
        );
        assert_eq!(
            args(Target::SilentMp4),
            format!(
                "{head} -map 0:v:0 -an -vf scale=trunc(iw/2)*2:trunc(ih/2)*2 -c:v libx264 \
                 -pix_fmt yuv420p -movflags +faststart -f mp4 file:-out"
            )
        );
        assert_eq!(
            args(Target::VoiceNote),
            format!(
                "{head} -map 0:a:0 -vn -c:a libopus -ac 1 -ar 48000 -application voip \
                 -f ogg file:-out"
            )
        );
        assert_eq!(
            args(Target::M4a),
            format!(
                "{head} -map 0:a:0 -vn -c:a aac -b:a 128k -movflags +faststart -f ipod \
                 file:-out"
            )
        );
        assert_eq!(
            args(Target::Sticker),
            format!(
                "{head} -map 0:v:0 -an -vf scale=512:512:force_original_aspect_ratio=decrease,\
                 format=rgba,pad=512:512:(ow-iw)/2:(oh-ih)/2:color=0x00000000 -c:v libwebp \
                 -quality 80 -loop 0 -f webp file:-out"
            )
        );
    }

    #[test]
    fn targets_are_listed_mimetypes_with_their_extensions() {
        let t = |t: Target| (t.mimetype(), t.extension());
        assert_eq!(t(Target::Mp4), ("video/mp4", "mp4"));
        assert_eq!(t(Target::SilentMp4), ("video/mp4", "mp4"));
        assert_eq!(t(Target::VoiceNote), ("audio/ogg; codecs=opus", "ogg"));
        assert_eq!(t(Target::M4a), ("audio/mp4", "m4a"));
        assert_eq!(t(Target::Sticker), ("image/webp", "webp"));
    }

    #[test]
    fn ffmpeg_errors_are_bounded_and_escaped() {
        assert_eq!(escape("\n a\x1b[31mb \n\nc\nd\ne"), "a\\u{1b}[31mb | c | d");
        assert_eq!(escape(""), "no reason given");
    }

    #[test]
    fn a_missing_ffmpeg_is_named() {
        let c = Conversion {
            from: "video/quicktime",
            target: Target::Mp4,
        };
        let opts = FfmpegOptions {
            program: "/nonexistent/ffmpeg".into(),
            ..FfmpegOptions::default()
        };
        let e = c
            .run(Path::new("a.mov"), Path::new("b.mp4"), &opts)
            .unwrap_err();
        assert!(matches!(e, ConversionError::Missing { .. }), "{e:?}");
        assert!(e.to_string().contains("needs ffmpeg"), "{e}");
    }
}
