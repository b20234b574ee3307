//! A download from a received media message: [`DownloadSpec::from_message_json`].
//!
//! Three shapes are read, all JSON:
//!
//! 1. **WAProto JSON**, what a bot gets from its WhatsApp client: `{"imageMessage": {...}}`
//!    (also `videoMessage`, `audioMessage`, `documentMessage`, `stickerMessage`,
//!    `ptvMessage`), inside any of the wrappers whatsmeow (`events.Message.UnwrapRaw`) and
//!    Baileys (`normalizeMessageContent`) take off: `ephemeralMessage`, `viewOnceMessage`,
//!    `viewOnceMessageV2`, `viewOnceMessageV2Extension`, `documentWithCaptionMessage`,
//!    `editedMessage`, `deviceSentMessage`, `lottieStickerMessage`,
//!    `associatedChildMessage`, `groupStatusMessage`, `groupStatusMessageV2`, each
//!    `{"message": {...}}`. A whole `WebMessageInfo` (`{"key": …, "message": {...}}`)
//!    is read through its `message`. Field names match without regard to case, so Go's
//!    `encoding/json` form of whatsmeow's structs (`URL`, `fileEncSHA256`, `Message`) is
//!    read too.
//! 2. **The `message` object `wamedia upload` prints** (`wamedia-info`'s `message_json`):
//!    the same WAProto shape.
//! 3. **The JSON line `wamedia upload` prints**: `media_type`, `media_key`, `direct_path`,
//!    `url`, `file_sha256`, `file_enc_sha256`, `file_length`, `streaming_sidecar`
//!    (exact snake_case names). A line without `media_type` is read through its `message`
//!    member.
//!
//! Values: `bytes` as base64 (standard or URL-safe, padded or not), as an array of
//! numbers 0–255, as Node's `{"type": "Buffer", "data": [...] | "base64"}` (Baileys'
//! `BufferJSON`), or as a serialised `Uint8Array` (`{"0": 12, "1": 34, …}`); 64-bit
//! integers (`fileLength`) as a number, a decimal string (the proto3 JSON mapping) or a
//! Long.js `{"low", "high", "unsigned"}`. `null` and empty values count as absent.
//!
//! The media type follows the message: `videoMessage` with `gifPlayback: true` is a
//! [`MediaType::Gif`], `audioMessage` with `ptt: true` a [`MediaType::Ptt`]. No
//! `mediaKey`: unencrypted media (newsletter media), verified by its `fileSha256`. When
//! both `directPath` and `url` are given the `directPath` is used (on the media
//! connection's hosts); a `url` alone is checked by the download machine before use.
//!
//! Input is untrusted: at most [`MAX_MESSAGE_LEN`] bytes, [`MAX_DEPTH`] levels of JSON
//! nesting and [`MAX_WRAPPERS`] wrappers; exactly one media message; every error names
//! the field and never shows a key's value.

use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::b64;
use crate::decrypt::Expected;
use crate::download::{DownloadSpec, Source};
use crate::keys::MediaKey;
use crate::media_type::MediaType;

/// The largest message read, in bytes (a media message is a few kilobytes; its
/// thumbnail is at most 20 000 bytes before base64).
pub const MAX_MESSAGE_LEN: usize = 1 << 20;

/// The deepest JSON nesting read (objects and arrays). A received message with a quoted
/// message inside a wrapper is about a dozen levels deep.
pub const MAX_DEPTH: usize = 64;

/// The most wrappers (`ephemeralMessage`, `viewOnceMessageV2`, …) taken off in a row.
pub const MAX_WRAPPERS: usize = 8;

/// The media messages of WAProto's `Message`, and the type each one carries.
const MEDIA: [(&str, MediaType); 6] = [
    ("imageMessage", MediaType::Image),
    ("videoMessage", MediaType::Video),
    ("audioMessage", MediaType::Audio),
    ("documentMessage", MediaType::Document),
    ("stickerMessage", MediaType::Sticker),
    ("ptvMessage", MediaType::Ptv),
];

/// The fields of WAProto's `Message` that wrap another `Message` in their `message`
/// (whatsmeow's `UnwrapRaw`, Baileys' `normalizeMessageContent`).
const WRAPPERS: [&str; 11] = [
    "deviceSentMessage",
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
    "lottieStickerMessage",
    "associatedChildMessage",
    "groupStatusMessage",
    "groupStatusMessageV2",
];

/// Why a JSON text is not a usable media message. Never contains a key's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("the message is {len} bytes long; a media message is at most {max}")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`] levels of JSON or [`MAX_WRAPPERS`] wrappers.
    #[error("the message is nested deeper than {max} {what}")]
    TooDeep {
        /// The limit.
        max: usize,
        /// `"levels"` (JSON) or `"wrappers"` (wrapper messages).
        what: &'static str,
    },
    /// Not JSON.
    #[error("not JSON: {reason}")]
    NotJson {
        /// The parser's complaint (line and column; it never quotes the text).
        reason: String,
    },
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// No media message in it.
    #[error("no media message in it (imageMessage, videoMessage, audioMessage, documentMessage, stickerMessage, ptvMessage, or the line `wamedia upload` prints)")]
    NoMedia,
    /// More than one media message: which one to download is not clear.
    #[error("two media messages in one: {first} and {second}")]
    TwoMedia {
        /// Where the first one is (`viewOnceMessageV2.message.imageMessage`).
        first: String,
        /// Where the second one is.
        second: String,
    },
    /// A field the download cannot do without.
    #[error("no {field} in it")]
    Missing {
        /// The field, with its path (`imageMessage.directPath or url`).
        field: String,
    },
    /// A field of the wrong type or value.
    #[error("{field}: {why}")]
    BadField {
        /// The field, with its path (`imageMessage.fileLength`).
        field: String,
        /// What is wrong with it.
        why: String,
    },
}

impl DownloadSpec {
    /// The download of the media a received message refers to, every check it allows
    /// armed: the WAProto JSON a WhatsApp client gives (`{"imageMessage": {...}}`,
    /// wrappers included), the `message` object `wamedia upload` prints, or the whole
    /// line it prints. See [the module](crate::message) for every form read.
    ///
    /// ```
    /// # use wamedia::{DownloadSpec, MediaType, Source};
    /// let spec = DownloadSpec::from_message_json(r#"{"viewOnceMessageV2": {"message": {
    ///     "audioMessage": {"ptt": true, "directPath": "/v/t62.7117-24/x.enc?oe=6A",
    ///         "mediaKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ///         "fileLength": "4711", "mimetype": "audio/ogg; codecs=opus"}}}}"#)?;
    /// assert_eq!(spec.media_type, MediaType::Ptt);
    /// assert_eq!(spec.source, Source::DirectPath("/v/t62.7117-24/x.enc?oe=6A".into()));
    /// assert_eq!(spec.expected.file_length, Some(4711));
    /// # Ok::<(), wamedia::MessageError>(())
    /// ```
    ///
    /// # Errors
    /// [`MessageError`], naming the field: too long or too deep, not JSON, no media
    /// message or two of them, a field missing or of the wrong type.
    pub fn from_message_json(json: &str) -> Result<DownloadSpec, MessageError> {
        if json.len() > MAX_MESSAGE_LEN {
            return Err(MessageError::TooLarge {
                len: json.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        check_depth(json)?;
        let v: Value = serde_json::from_str(json.trim()).map_err(|e| MessageError::NotJson {
            reason: e.to_string(),
        })?;
        let root = v.as_object().ok_or(MessageError::NotAnObject)?;
        if root.get("media_type").is_some_and(|t| !t.is_null()) {
            return media(&Obj::exact(root, ""), &LINE, Kind::Line);
        }
        let mut found = Vec::new();
        let top = Obj::folded(root, "");
        find(&top, 0, &mut found)?;
        // A WebMessageInfo, or a line without its top-level fields: its `message`.
        if let Some(inner) = top.object("message")? {
            find(&inner, 1, &mut found)?;
        }
        match found.len() {
            0 if LINE.fields().any(|f| root.contains_key(f)) => Err(MessageError::Missing {
                field: "media_type".into(),
            }),
            0 => Err(MessageError::NoMedia),
            1 => {
                let (obj, t) = found.swap_remove(0);
                media(&obj, &WAPROTO, Kind::Proto(t))
            }
            _ => Err(MessageError::TwoMedia {
                first: found[0].0.path.clone(),
                second: found[1].0.path.clone(),
            }),
        }
    }
}

/// Refuses JSON nested deeper than [`MAX_DEPTH`] before it is parsed (a parser's own
/// recursion limit is deeper, and dropping a deep value recurses too).
fn check_depth(json: &str) -> Result<(), MessageError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in json.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > MAX_DEPTH {
                    return Err(MessageError::TooDeep {
                        max: MAX_DEPTH,
                        what: "levels",
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// An object of the message, where it is, and how its names match.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    /// Its path from the root (`viewOnceMessage.message.imageMessage`), empty at the root.
    path: String,
    /// WAProto names match without regard to ASCII case; the line's exactly.
    fold_case: bool,
}

impl<'a> Obj<'a> {
    fn exact(map: &'a Map<String, Value>, path: &str) -> Self {
        Obj {
            map,
            path: path.to_owned(),
            fold_case: false,
        }
    }

    fn folded(map: &'a Map<String, Value>, path: &str) -> Self {
        Obj {
            map,
            path: path.to_owned(),
            fold_case: true,
        }
    }

    /// The path of the member `name`.
    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn bad(&self, name: &str, why: impl Into<String>) -> MessageError {
        MessageError::BadField {
            field: self.path_of(name),
            why: why.into(),
        }
    }

    /// The member `name`; `None` when absent or `null`. Two members whose names differ
    /// only in case are an error: which one counts is not clear.
    fn get(&self, name: &str) -> Result<Option<&'a Value>, MessageError> {
        let v = if self.fold_case {
            let mut hits = self
                .map
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v);
            let first = hits.next();
            if hits.next().is_some() {
                return Err(self.bad(name, "given twice (names differing only in case)"));
            }
            first
        } else {
            self.map.get(name)
        };
        Ok(v.filter(|v| !v.is_null()))
    }

    /// The member `name`, an object.
    fn object(&self, name: &str) -> Result<Option<Obj<'a>>, MessageError> {
        match self.get(name)? {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj {
                map: m,
                path: self.path_of(name),
                fold_case: self.fold_case,
            })),
            Some(_) => Err(self.bad(name, "not an object")),
        }
    }

    /// The member `name`, a string; empty counts as absent.
    fn text(&self, name: &str) -> Result<Option<&'a str>, MessageError> {
        match self.get(name)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(_) => Err(self.bad(name, "not a string")),
        }
    }

    /// The member `name`, a boolean.
    fn flag(&self, name: &str) -> Result<bool, MessageError> {
        match self.get(name)? {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(name, "not true or false")),
        }
    }

    /// The member `name`, a 64-bit unsigned integer in any of its JSON forms.
    fn uint64(&self, name: &str) -> Result<Option<u64>, MessageError> {
        let Some(v) = self.get(name)? else {
            return Ok(None);
        };
        uint64(v)
            .map(Some)
            .map_err(|why| self.bad(name, format!("{why} (a whole number of bytes)")))
    }

    /// The member `name`, bytes in any of their JSON forms; empty counts as absent.
    fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, MessageError> {
        let Some(v) = self.get(name)? else {
            return Ok(None);
        };
        let bytes = bytes(v).map_err(|why| self.bad(name, why))?;
        Ok(Some(bytes).filter(|b| !b.is_empty()))
    }

    /// The member `name`, a SHA-256.
    fn sha256(&self, name: &str) -> Result<Option<[u8; 32]>, MessageError> {
        self.bytes(name)?
            .map(|b| {
                <[u8; 32]>::try_from(b.as_slice())
                    .map_err(|_| self.bad(name, format!("a SHA-256 is 32 bytes, got {}", b.len())))
            })
            .transpose()
    }
}

/// Collects the media messages of the `Message` `msg` and of the messages its wrappers
/// hold, `wrapped` wrappers deep already.
fn find<'a>(
    msg: &Obj<'a>,
    wrapped: usize,
    found: &mut Vec<(Obj<'a>, MediaType)>,
) -> Result<(), MessageError> {
    for (name, t) in &MEDIA {
        if let Some(m) = msg.object(name)? {
            found.push((m, t.clone()));
        }
    }
    for name in WRAPPERS {
        let Some(inner) = msg.object(name)?.map(|w| w.object("message")).transpose()? else {
            continue;
        };
        let Some(inner) = inner else { continue };
        if wrapped >= MAX_WRAPPERS {
            return Err(MessageError::TooDeep {
                max: MAX_WRAPPERS,
                what: "wrappers",
            });
        }
        find(&inner, wrapped.saturating_add(1), found)?;
    }
    Ok(())
}

/// The names of the fields a download needs, in one of the two spellings.
struct Names {
    media_key: &'static str,
    direct_path: &'static str,
    url: &'static str,
    file_sha256: &'static str,
    file_enc_sha256: &'static str,
    file_length: &'static str,
    streaming_sidecar: &'static str,
    mimetype: &'static str,
}

impl Names {
    fn fields(&self) -> impl Iterator<Item = &'static str> {
        [
            self.media_key,
            self.direct_path,
            self.url,
            self.file_sha256,
            self.file_enc_sha256,
            self.file_length,
            self.streaming_sidecar,
        ]
        .into_iter()
    }
}

/// The line `wamedia upload` prints.
const LINE: Names = Names {
    media_key: "media_key",
    direct_path: "direct_path",
    url: "url",
    file_sha256: "file_sha256",
    file_enc_sha256: "file_enc_sha256",
    file_length: "file_length",
    streaming_sidecar: "streaming_sidecar",
    mimetype: "mimetype",
};

/// WAProto's media messages (`ImageMessage`, …).
const WAPROTO: Names = Names {
    media_key: "mediaKey",
    direct_path: "directPath",
    url: "url",
    file_sha256: "fileSha256",
    file_enc_sha256: "fileEncSha256",
    file_length: "fileLength",
    streaming_sidecar: "streamingSidecar",
    mimetype: "mimetype",
};

/// Where the media type comes from.
enum Kind {
    /// The line's `media_type`.
    Line,
    /// The media message's field, refined by `gifPlayback` and `ptt`.
    Proto(MediaType),
}

/// The download the media message (or line) `m` describes.
fn media(m: &Obj<'_>, names: &Names, kind: Kind) -> Result<DownloadSpec, MessageError> {
    let media_type = match kind {
        Kind::Line => {
            let name = m
                .text("media_type")?
                .ok_or_else(|| m.bad("media_type", "empty"))?;
            name.parse::<MediaType>()
                .map_err(|e| m.bad("media_type", e.to_string()))?
        }
        Kind::Proto(MediaType::Video) if m.flag("gifPlayback")? => MediaType::Gif,
        Kind::Proto(MediaType::Audio) if m.flag("ptt")? => MediaType::Ptt,
        Kind::Proto(t) => t,
    };
    let media_key = match m.bytes(names.media_key)? {
        None => None,
        Some(mut b) => {
            let key = MediaKey::from_slice(&b).map_err(|e| m.bad(names.media_key, e.reason));
            b.zeroize();
            Some(key?)
        }
    };
    let source = match (m.text(names.direct_path)?, m.text(names.url)?) {
        (Some(p), _) => Source::DirectPath(p.to_owned()),
        (None, Some(u)) => Source::Url(u.to_owned()),
        (None, None) => {
            return Err(MessageError::Missing {
                field: format!("{} or {}", m.path_of(names.direct_path), names.url),
            })
        }
    };
    let expected = Expected {
        file_enc_sha256: m.sha256(names.file_enc_sha256)?,
        file_sha256: m.sha256(names.file_sha256)?,
        file_length: m.uint64(names.file_length)?,
    };
    let streaming_sidecar = m.bytes(names.streaming_sidecar)?;
    if let Some(s) = &streaming_sidecar {
        if s.len().checked_rem(crate::sidecar::ENTRY) != Some(0) {
            return Err(m.bad(
                names.streaming_sidecar,
                format!(
                    "a streaming sidecar is a whole number of {}-byte entries, got {} bytes",
                    crate::sidecar::ENTRY,
                    s.len()
                ),
            ));
        }
    }
    // Not needed to download, but a message whose mimetype is not text is not one.
    m.text(names.mimetype)?;
    Ok(DownloadSpec {
        media_type,
        media_key,
        source,
        expected,
        streaming_sidecar,
    })
}

/// A 64-bit unsigned integer: a JSON number, a decimal string (proto3 JSON), or a
/// Long.js object (`{"low", "high", "unsigned"}`, protobufjs in Node).
fn uint64(v: &Value) -> Result<u64, &'static str> {
    match v {
        Value::Number(n) => n.as_u64().ok_or(if n.is_f64() {
            "not a whole number, or too large"
        } else {
            "negative"
        }),
        Value::String(s) => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err("not a decimal number");
            }
            s.parse::<u64>().map_err(|_| "too large")
        }
        Value::Object(o) => {
            let half = |k: &str| o.get(k).and_then(Value::as_i64).ok_or("not a number");
            let (low, high) = (half("low")?, half("high")?);
            let unsigned = o.get("unsigned").and_then(Value::as_bool).unwrap_or(false);
            if high < 0 && !unsigned {
                return Err("negative");
            }
            // Long.js keeps each half as a signed 32-bit number.
            let word = |n: i64| {
                i32::try_from(n)
                    .map(|n| n.to_be_bytes())
                    .or_else(|_| u32::try_from(n).map(u32::to_be_bytes))
                    .map_err(|_| "not a 64-bit integer")
            };
            let (low, high) = (word(low)?, word(high)?);
            let mut be = [0u8; 8];
            be[..4].copy_from_slice(&high);
            be[4..].copy_from_slice(&low);
            Ok(u64::from_be_bytes(be))
        }
        _ => Err("not a number"),
    }
}

/// Bytes: base64 (standard or URL-safe, padded or not), an array of numbers 0–255, a
/// Node `Buffer` as JSON (`{"type": "Buffer", "data": [...] | "base64"}`), or a
/// serialised `Uint8Array` (`{"0": 12, "1": 34, …}`).
fn bytes(v: &Value) -> Result<Vec<u8>, &'static str> {
    match v {
        Value::String(s) => b64::decode_any(s)
            .map_err(|_| "not base64 (standard or URL-safe), nor an array of bytes"),
        Value::Array(a) => a.iter().map(byte).collect(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => {
            match o.get("data") {
                Some(d @ (Value::String(_) | Value::Array(_))) => bytes(d),
                _ => Err("a Buffer without data"),
            }
        }
        Value::Object(o) => {
            let mut out = vec![0u8; o.len()];
            let mut seen = vec![false; o.len()];
            for (k, v) in o {
                let i = k
                    .parse::<usize>()
                    .ok()
                    .filter(|i| k.bytes().all(|b| b.is_ascii_digit()) && *i < o.len())
                    .ok_or("an object that is neither a Buffer nor a byte array")?;
                // In range: `i < o.len()`, checked above.
                if let (Some(slot), Some(s)) = (out.get_mut(i), seen.get_mut(i)) {
                    *slot = byte(v)?;
                    *s = true;
                }
            }
            if seen.iter().all(|s| *s) {
                Ok(out)
            } else {
                Err("an object that is neither a Buffer nor a byte array")
            }
        }
        _ => Err("not base64 (standard or URL-safe), nor an array of bytes"),
    }
}

fn byte(v: &Value) -> Result<u8, &'static str> {
    v.as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .ok_or("an array of bytes holds only whole numbers 0 to 255")
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)] // fixed small test values
mod tests {
    use super::*;
    use crate::upload::UploadResult;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use serde_json::json;

    fn key() -> [u8; 32] {
        std::array::from_fn(|i| i as u8 * 7 + 1)
    }

    const ENC: [u8; 32] = [0xe5; 32];
    const PLAIN: [u8; 32] = [0x5a; 32];

    /// An `imageMessage`-like body as WhatsApp Web and wamedia write it.
    fn body() -> Value {
        json!({
            "url": "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m233/up.enc?ccb=11-4&oh=01&oe=6A0B",
            "directPath": "/o1/v/t62.7118-24/f1/m233/up.enc?ccb=11-4&oh=01&oe=6A0B",
            "mediaKey": STANDARD.encode(key()),
            "fileEncSha256": STANDARD.encode(ENC),
            "fileSha256": STANDARD.encode(PLAIN),
            "fileLength": "70417",
            "mimetype": "image/jpeg",
            "mediaKeyTimestamp": "1767225600",
            "jpegThumbnail": STANDARD.encode([0xff, 0xd8, 0xff]),
        })
    }

    fn parse(v: &Value) -> Result<DownloadSpec, MessageError> {
        DownloadSpec::from_message_json(&v.to_string())
    }

    fn field_of(e: &MessageError) -> &str {
        match e {
            MessageError::BadField { field, .. } | MessageError::Missing { field } => field,
            e => panic!("not a field error: {e:?}"),
        }
    }

    fn assert_full(s: &DownloadSpec) {
        assert_eq!(s.media_key.as_ref().map(|k| *k.as_bytes()), Some(key()));
        assert_eq!(
            s.source,
            Source::DirectPath("/o1/v/t62.7118-24/f1/m233/up.enc?ccb=11-4&oh=01&oe=6A0B".into())
        );
        assert_eq!(
            s.expected,
            Expected {
                file_enc_sha256: Some(ENC),
                file_sha256: Some(PLAIN),
                file_length: Some(70417),
            }
        );
        assert_eq!(s.streaming_sidecar, None);
    }

    #[test]
    fn an_image_message_gives_every_field_and_check() {
        let s = parse(&json!({ "imageMessage": body() })).unwrap();
        assert_eq!(s.media_type, MediaType::Image);
        assert_full(&s);
    }

    #[test]
    fn each_media_message_gives_its_type_and_flags_refine_it() {
        let with = |extra: Value| {
            let mut b = body();
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        let cases = [
            (json!({ "imageMessage": body() }), MediaType::Image),
            (json!({ "videoMessage": body() }), MediaType::Video),
            (json!({ "audioMessage": body() }), MediaType::Audio),
            (json!({ "documentMessage": body() }), MediaType::Document),
            (json!({ "stickerMessage": body() }), MediaType::Sticker),
            (json!({ "ptvMessage": body() }), MediaType::Ptv),
            (
                json!({ "videoMessage": with(json!({"gifPlayback": true})) }),
                MediaType::Gif,
            ),
            (
                json!({ "videoMessage": with(json!({"gifPlayback": false})) }),
                MediaType::Video,
            ),
            (
                json!({ "audioMessage": with(json!({"ptt": true})) }),
                MediaType::Ptt,
            ),
            (
                json!({ "audioMessage": with(json!({"ptt": null})) }),
                MediaType::Audio,
            ),
            // gifPlayback means nothing on an image.
            (
                json!({ "imageMessage": with(json!({"gifPlayback": true})) }),
                MediaType::Image,
            ),
        ];
        for (msg, t) in cases {
            let s = parse(&msg).unwrap_or_else(|e| panic!("{msg}: {e}"));
            assert_eq!(s.media_type, t, "{msg}");
            assert_full(&s);
        }
    }

    #[test]
    fn every_wrapper_is_taken_off_alone_and_stacked() {
        for w in WRAPPERS {
            let msg = json!({ w: { "message": { "imageMessage": body() } } });
            let s = parse(&msg).unwrap_or_else(|e| panic!("{w}: {e}"));
            assert_eq!(s.media_type, MediaType::Image, "{w}");
            assert_full(&s);
        }
        // deviceSentMessage carries more than its message.
        let msg = json!({ "deviceSentMessage": {
            "destinationJid": "123@s.whatsapp.net", "phash": "2:abc",
            "message": { "ephemeralMessage": { "message": { "viewOnceMessageV2": { "message": {
                "documentWithCaptionMessage": { "message": { "documentMessage": body() } }
            } } } } }
        } });
        assert_eq!(parse(&msg).unwrap().media_type, MediaType::Document);
        // A wrapper around no message (whatsmeow's `GetMessage() != nil`) is no wrapper.
        let msg = json!({ "ephemeralMessage": { "message": null }, "audioMessage": body() });
        assert_eq!(parse(&msg).unwrap().media_type, MediaType::Audio);
    }

    #[test]
    fn a_web_message_info_is_read_through_its_message() {
        let msg = json!({
            "key": { "remoteJid": "123@s.whatsapp.net", "fromMe": false, "id": "3EB0" },
            "messageTimestamp": "1767225600",
            "message": { "viewOnceMessageV2Extension": { "message": {
                "audioMessage": { "ptt": true, "directPath": "/v/x.enc", "mediaKey": STANDARD.encode(key()) }
            } } },
        });
        let s = parse(&msg).unwrap();
        assert_eq!(s.media_type, MediaType::Ptt);
        assert_eq!(s.source, Source::DirectPath("/v/x.enc".into()));
    }

    #[test]
    fn go_json_of_whatsmeow_structs_matches_without_case() {
        // encoding/json of events.Message: `Message` (unwrapped) and `RawMessage`
        // (wrapped) hold the same media; only `Message` is read.
        let media = json!({
            "URL": "https://mmg.whatsapp.net/v/x.enc",
            "Mimetype": "video/mp4",
            "FileSHA256": STANDARD.encode(PLAIN),
            "FileLength": 70417,
            "MediaKey": STANDARD.encode(key()),
            "FileEncSHA256": STANDARD.encode(ENC),
            "GifPlayback": true,
        });
        let msg = json!({
            "Info": { "ID": "3EB0" },
            "Message": { "videoMessage": media },
            "RawMessage": { "ephemeralMessage": { "message": { "videoMessage": media } } },
            "IsEphemeral": true,
        });
        let s = parse(&msg).unwrap();
        assert_eq!(s.media_type, MediaType::Gif);
        assert_eq!(
            s.source,
            Source::Url("https://mmg.whatsapp.net/v/x.enc".into())
        );
        assert_eq!(s.expected.file_enc_sha256, Some(ENC));
        assert_eq!(s.expected.file_length, Some(70417));
    }

    #[test]
    fn file_length_as_number_string_or_long() {
        let cases = [
            (json!(70417), 70417),
            (json!("70417"), 70417),
            (json!(0), 0),
            (json!(u64::MAX), u64::MAX),
            (json!(u64::MAX.to_string()), u64::MAX),
            (json!({"low": 70417, "high": 0, "unsigned": true}), 70417),
            // 3 GB: Long.js keeps the low half signed.
            (
                json!({"low": -1_294_967_296_i64, "high": 0, "unsigned": true}),
                3_000_000_000,
            ),
            (
                json!({"low": 1, "high": 1, "unsigned": false}),
                (1 << 32) + 1,
            ),
        ];
        for (v, want) in cases {
            let mut b = body();
            b["fileLength"] = v.clone();
            let s = parse(&json!({ "imageMessage": b })).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(s.expected.file_length, Some(want), "{v}");
        }
        let mut b = body();
        b["fileLength"] = Value::Null;
        let s = parse(&json!({ "imageMessage": b })).unwrap();
        assert_eq!(s.expected.file_length, None);
    }

    #[test]
    fn bytes_in_every_form_node_and_go_write_them() {
        let k = key();
        let forms = [
            json!(STANDARD.encode(k)),
            json!(STANDARD_NO_PAD.encode(k)),
            json!(URL_SAFE_NO_PAD.encode(k)),
            json!(crate::b64::url(&k)),
            json!(k.to_vec()),
            json!({"type": "Buffer", "data": k.to_vec()}),
            json!({"type": "Buffer", "data": STANDARD.encode(k)}),
            Value::Object(
                k.iter()
                    .enumerate()
                    .rev()
                    .map(|(i, b)| (i.to_string(), json!(b)))
                    .collect(),
            ),
        ];
        for f in forms {
            let mut b = body();
            b["mediaKey"] = f.clone();
            let s = parse(&json!({ "imageMessage": b })).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(s.media_key.map(|k| *k.as_bytes()), Some(k), "{f}");
        }
    }

    #[test]
    fn no_media_key_is_unencrypted_media() {
        for absent in [Value::Null, json!(""), json!([])] {
            let mut b = body();
            b["mediaKey"] = absent.clone();
            let s = parse(&json!({ "imageMessage": b })).unwrap();
            assert!(s.media_key.is_none(), "{absent}");
            assert_eq!(s.expected.file_sha256, Some(PLAIN));
        }
        let mut b = body();
        b.as_object_mut().unwrap().remove("mediaKey");
        assert!(parse(&json!({ "imageMessage": b }))
            .unwrap()
            .media_key
            .is_none());
    }

    #[test]
    fn a_url_alone_is_the_source_and_a_direct_path_wins_over_it() {
        let mut b = body();
        b.as_object_mut().unwrap().remove("directPath");
        let s = parse(&json!({ "imageMessage": b })).unwrap();
        assert!(matches!(s.source, Source::Url(u) if u.starts_with("https://mmg.")));
        let s = parse(&json!({ "imageMessage": body() })).unwrap();
        assert!(matches!(s.source, Source::DirectPath(_)));
    }

    #[test]
    fn a_streaming_sidecar_is_kept_and_must_be_whole_entries() {
        let mut b = body();
        b["streamingSidecar"] = json!(STANDARD.encode([9u8; 20]));
        let s = parse(&json!({ "videoMessage": b.clone() })).unwrap();
        assert_eq!(s.streaming_sidecar, Some(vec![9u8; 20]));
        b["streamingSidecar"] = json!(STANDARD.encode([9u8; 21]));
        let e = parse(&json!({ "videoMessage": b })).unwrap_err();
        assert_eq!(field_of(&e), "videoMessage.streamingSidecar");
    }

    /// An upload's result, as the upload machine makes it.
    fn uploaded(media_type: MediaType, encrypted: bool) -> UploadResult {
        UploadResult {
            url: "https://mmg.whatsapp.net/v/t62.7118-24/up.enc?ccb=11-4&oe=6A0B".into(),
            direct_path: "/v/t62.7118-24/up.enc?ccb=11-4&oe=6A0B".into(),
            media_type,
            media_key: encrypted.then(|| MediaKey::from_bytes(key())),
            file_enc_sha256: encrypted.then_some(ENC),
            file_sha256: PLAIN,
            file_length: 70417,
            media_key_timestamp: Some(1_767_225_600),
            streaming_sidecar: encrypted.then(|| vec![3u8; 30]),
            first_frame_sidecar: None,
            first_frame_length: None,
            handle: (!encrypted).then(|| "handle".into()),
            thumbnail_info: None,
            metadata_url: None,
            object_id: None,
            meta_hmac: None,
            ts: None,
            fbid: None,
            host: "mmg.whatsapp.net".into(),
            already_stored: false,
            cached: false,
        }
    }

    fn assert_same(a: &DownloadSpec, b: &DownloadSpec) {
        assert_eq!(a.media_type, b.media_type);
        assert_eq!(a.media_key, b.media_key);
        assert_eq!(a.source, b.source);
        assert_eq!(a.expected, b.expected);
        assert_eq!(a.streaming_sidecar, b.streaming_sidecar);
    }

    /// The `message` object `wamedia upload` adds (wamedia-info's `message_json`).
    fn message_object(r: &UploadResult, field: &str, extra: Value) -> Value {
        let mut m = json!({
            "url": r.url,
            "directPath": r.direct_path,
            "fileSha256": STANDARD.encode(r.file_sha256),
            "fileLength": r.file_length.to_string(),
            "mediaKeyTimestamp": "1767225600",
            "mimetype": "video/mp4",
        });
        if let Some(k) = &r.media_key {
            m["mediaKey"] = json!(k.to_base64());
        }
        if let Some(h) = &r.file_enc_sha256 {
            m["fileEncSha256"] = json!(STANDARD.encode(h));
        }
        if let Some(s) = &r.streaming_sidecar {
            m["streamingSidecar"] = json!(STANDARD.encode(s));
        }
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({ field: m })
    }

    #[test]
    fn the_upload_line_and_its_message_round_trip_to_the_download_spec() {
        let cases = [
            (MediaType::Video, true, "videoMessage", json!({})),
            (
                MediaType::Gif,
                true,
                "videoMessage",
                json!({"gifPlayback": true}),
            ),
            (MediaType::Ptt, true, "audioMessage", json!({"ptt": true})),
            (MediaType::Image, false, "imageMessage", json!({})),
        ];
        for (t, encrypted, field, extra) in cases {
            let r = uploaded(t.clone(), encrypted);
            let want = r.download_spec();
            let mut line = r.to_json();
            line["mimetype"] = json!("video/mp4");
            // (c) the line as printed, its `message` member included.
            line["message"] = message_object(&r, field, extra.clone());
            assert_same(&parse(&line).unwrap(), &want);
            // (b) the `message` object alone.
            assert_same(&parse(&line["message"]).unwrap(), &want);
            // (c) a line cut down to its `message` member.
            let mut cut = line.clone();
            for f in LINE.fields().chain(["media_type"]) {
                cut.as_object_mut().unwrap().remove(f);
            }
            assert_same(&parse(&cut).unwrap(), &want);
            // The line without a `message` (an older wamedia, or a type with none).
            line.as_object_mut().unwrap().remove("message");
            assert_same(&parse(&line).unwrap(), &want);
        }
        // A type without a message of its own goes by the line alone.
        let r = uploaded(MediaType::History, true);
        assert_same(&parse(&r.to_json()).unwrap(), &r.download_spec());
    }

    #[test]
    fn the_line_names_its_bad_fields() {
        let mut line = uploaded(MediaType::Image, true).to_json();
        line["media_type"] = json!("picture");
        let e = parse(&line).unwrap_err();
        assert_eq!(field_of(&e), "media_type");
        assert!(e.to_string().contains("unknown media type"), "{e}");
        line["media_type"] = json!(7);
        assert_eq!(field_of(&parse(&line).unwrap_err()), "media_type");
        let mut line = uploaded(MediaType::Image, true).to_json();
        line["file_length"] = json!(-3);
        assert_eq!(field_of(&parse(&line).unwrap_err()), "file_length");
        let mut line = uploaded(MediaType::Image, true).to_json();
        line.as_object_mut().unwrap().remove("direct_path");
        line.as_object_mut().unwrap().remove("url");
        let e = parse(&line).unwrap_err();
        assert_eq!(e.to_string(), "no direct_path or url in it");
        // The line's names are exact: `Media_Type` is not `media_type`.
        let mut line = uploaded(MediaType::Image, true).to_json();
        let t = line.as_object_mut().unwrap().remove("media_type").unwrap();
        line["Media_Type"] = t;
        assert_eq!(
            parse(&line).unwrap_err(),
            MessageError::Missing {
                field: "media_type".into()
            }
        );
    }

    #[test]
    fn wrong_types_and_values_name_the_field() {
        let cases = [
            ("directPath", json!(5), "imageMessage.directPath"),
            ("url", json!(["x"]), "imageMessage.url"),
            ("fileLength", json!(-1), "imageMessage.fileLength"),
            ("fileLength", json!(1.5), "imageMessage.fileLength"),
            ("fileLength", json!(1e300), "imageMessage.fileLength"),
            ("fileLength", json!("12a"), "imageMessage.fileLength"),
            ("fileLength", json!("-12"), "imageMessage.fileLength"),
            ("fileLength", json!(""), "imageMessage.fileLength"),
            (
                "fileLength",
                json!("18446744073709551616"),
                "imageMessage.fileLength",
            ),
            ("fileLength", json!(true), "imageMessage.fileLength"),
            (
                "fileLength",
                json!({"low": 1, "high": -1, "unsigned": false}),
                "imageMessage.fileLength",
            ),
            (
                "fileLength",
                json!({"low": 1, "high": 1_i64 << 40}),
                "imageMessage.fileLength",
            ),
            ("fileSha256", json!("AAAA"), "imageMessage.fileSha256"),
            (
                "fileEncSha256",
                json!([1, 2, 256]),
                "imageMessage.fileEncSha256",
            ),
            (
                "fileEncSha256",
                json!([1, -2]),
                "imageMessage.fileEncSha256",
            ),
            ("fileEncSha256", json!(12), "imageMessage.fileEncSha256"),
            (
                "fileEncSha256",
                json!({"type": "Buffer"}),
                "imageMessage.fileEncSha256",
            ),
            (
                "fileEncSha256",
                json!({"0": 1, "2": 3}),
                "imageMessage.fileEncSha256",
            ),
            ("mediaKey", json!("not base64!"), "imageMessage.mediaKey"),
            ("mediaKey", json!([1, 2, 3]), "imageMessage.mediaKey"),
            ("mimetype", json!(1), "imageMessage.mimetype"),
            ("gifPlayback", json!("yes"), "imageMessage.gifPlayback"),
        ];
        for (name, v, field) in cases {
            let mut b = body();
            b[name] = v.clone();
            let e = if name == "gifPlayback" {
                parse(&json!({ "videoMessage": b })).unwrap_err()
            } else {
                parse(&json!({ "imageMessage": b })).unwrap_err()
            };
            let want = field.replace("imageMessage.gifPlayback", "videoMessage.gifPlayback");
            assert_eq!(field_of(&e), want, "{name} = {v}: {e}");
            assert!(e.to_string().starts_with(&want), "{e}");
        }
        let e = parse(&json!({ "imageMessage": "x" })).unwrap_err();
        assert_eq!(field_of(&e), "imageMessage");
        let e = parse(&json!({ "viewOnceMessage": { "message": 3 } })).unwrap_err();
        assert_eq!(field_of(&e), "viewOnceMessage.message");
    }

    #[test]
    fn no_error_shows_the_media_key() {
        let k = key();
        let short = STANDARD.encode(&k[..31]);
        let long = STANDARD.encode([&k[..], &k[..1]].concat());
        let array = json!(k[..31].to_vec());
        let mut garbled = STANDARD.encode(k);
        garbled.insert(5, '!');
        for v in [json!(short), json!(long), array, json!(garbled.clone())] {
            let mut b = body();
            b["mediaKey"] = v;
            let e = parse(&json!({ "imageMessage": b })).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert_eq!(field_of(&e), "imageMessage.mediaKey");
            for secret in [&short, &long, &garbled, &STANDARD.encode(k)] {
                assert!(!shown.contains(&secret[..8]), "{shown}");
            }
            assert!(!shown.contains("15, 22, 29"), "{shown}");
        }
    }

    #[test]
    fn two_media_messages_are_refused() {
        let e = parse(&json!({ "imageMessage": body(), "videoMessage": body() })).unwrap_err();
        assert_eq!(
            e,
            MessageError::TwoMedia {
                first: "imageMessage".into(),
                second: "videoMessage".into()
            }
        );
        let e = parse(&json!({
            "imageMessage": body(),
            "ephemeralMessage": { "message": { "imageMessage": body() } },
        }))
        .unwrap_err();
        assert!(matches!(e, MessageError::TwoMedia { .. }), "{e}");
        let e = parse(&json!({
            "viewOnceMessage": { "message": { "imageMessage": body() } },
            "viewOnceMessageV2": { "message": { "videoMessage": body() } },
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "two media messages in one: viewOnceMessage.message.imageMessage and viewOnceMessageV2.message.videoMessage"
        );
        // Names differing only in case are the same field, given twice.
        let e = parse(&json!({ "imageMessage": body(), "ImageMessage": body() })).unwrap_err();
        assert!(matches!(e, MessageError::BadField { .. }), "{e}");
        let mut b = body();
        b["URL"] = json!("https://evil.example/x");
        let e = parse(&json!({ "imageMessage": b })).unwrap_err();
        assert_eq!(field_of(&e), "imageMessage.url");
    }

    #[test]
    fn what_is_not_a_media_message_says_so() {
        assert_eq!(
            parse(&json!({ "conversation": "hi" })).unwrap_err(),
            MessageError::NoMedia
        );
        assert_eq!(parse(&json!({})).unwrap_err(), MessageError::NoMedia);
        // A quoted image is not the message's own media.
        let quoted = json!({ "extendedTextMessage": { "text": "look", "contextInfo": {
            "quotedMessage": { "imageMessage": body() } } } });
        assert_eq!(parse(&quoted).unwrap_err(), MessageError::NoMedia);
        assert_eq!(parse(&json!([1])).unwrap_err(), MessageError::NotAnObject);
        assert_eq!(parse(&json!("x")).unwrap_err(), MessageError::NotAnObject);
        for text in ["", "hello", "{", "{\"imageMessage\": }", "{} {}"] {
            assert!(
                matches!(
                    DownloadSpec::from_message_json(text),
                    Err(MessageError::NotJson { .. })
                ),
                "{text:?}"
            );
        }
        let mut b = body();
        b.as_object_mut().unwrap().remove("directPath");
        b.as_object_mut().unwrap().remove("url");
        let e = parse(&json!({ "ephemeralMessage": { "message": { "imageMessage": b } } }))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no ephemeralMessage.message.imageMessage.directPath or url in it"
        );
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let big = format!(
            "{{\"imageMessage\": {}, \"pad\": \"{}\"}}",
            body(),
            "x".repeat(MAX_MESSAGE_LEN)
        );
        assert!(matches!(
            DownloadSpec::from_message_json(&big),
            Err(MessageError::TooLarge { .. })
        ));
        for deep in ["[".repeat(100_000), "{\"a\":".repeat(100_000)] {
            assert_eq!(
                DownloadSpec::from_message_json(&deep).unwrap_err(),
                MessageError::TooDeep {
                    max: MAX_DEPTH,
                    what: "levels"
                }
            );
        }
        // Brackets inside strings (escaped quotes too) are not nesting.
        let mut b = body();
        b["caption"] = json!(format!("\\\"{}", "[{".repeat(1000)));
        assert!(parse(&json!({ "imageMessage": b })).is_ok());
        // Just under the limit is read; one more wrapper than allowed is refused.
        let wrap = |n: usize| {
            let mut m = json!({ "imageMessage": body() });
            for _ in 0..n {
                m = json!({ "ephemeralMessage": { "message": m } });
            }
            m
        };
        assert!(parse(&wrap(MAX_WRAPPERS)).is_ok());
        assert_eq!(
            parse(&wrap(MAX_WRAPPERS + 1)).unwrap_err(),
            MessageError::TooDeep {
                max: MAX_WRAPPERS,
                what: "wrappers"
            }
        );
    }

    #[test]
    fn every_prefix_of_a_message_is_an_error_not_a_panic() {
        let text =
            json!({ "viewOnceMessageV2": { "message": { "imageMessage": body() } } }).to_string();
        for end in (0..text.len()).filter(|e| text.is_char_boundary(*e)) {
            assert!(DownloadSpec::from_message_json(&text[..end]).is_err());
        }
        assert!(DownloadSpec::from_message_json(&text).is_ok());
    }
}
