//! The fields of WhatsApp's message protobuf for a media type, in the protobuf's JSON form.
//!
//! Field names are those of `WAProto.proto` (Baileys; whatsmeow's copy renames them for Go):
//! `ImageMessage`, `VideoMessage` (video, gif, ptv), `AudioMessage` (audio, ptt),
//! `DocumentMessage` and `StickerMessage`. Values follow the proto3 JSON mapping: `bytes`
//! as standard base64, 64-bit integers (`fileLength`, `mediaKeyTimestamp`) as decimal
//! strings, 32-bit ones as numbers.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{Map, Value};

use crate::{MediaInfo, MediaKind};

/// Which message a media type goes in, and what it may carry.
struct Shape {
    thumbnail: bool,
    dimensions: bool,
    seconds: bool,
    sidecar: bool,
    server_thumbnail: bool,
}

fn shape(kind: MediaKind) -> Shape {
    let no = Shape {
        thumbnail: false,
        dimensions: false,
        seconds: false,
        sidecar: false,
        server_thumbnail: false,
    };
    match kind {
        MediaKind::Image => Shape {
            thumbnail: true,
            dimensions: true,
            server_thumbnail: true,
            ..no
        },
        // StickerMessage has no jpegThumbnail (its field 16 is pngThumbnail).
        MediaKind::Sticker => Shape {
            dimensions: true,
            ..no
        },
        MediaKind::Video | MediaKind::Gif | MediaKind::Ptv => Shape {
            thumbnail: true,
            dimensions: true,
            seconds: true,
            sidecar: true,
            server_thumbnail: true,
        },
        MediaKind::Audio | MediaKind::Ptt => Shape {
            seconds: true,
            sidecar: true,
            ..no
        },
        MediaKind::Document => Shape {
            thumbnail: true,
            server_thumbnail: true,
            ..no
        },
    }
}

/// Re-encodes a base64 text (standard or URL-safe, padded or not) as standard base64.
fn std_base64(v: &Value) -> Option<Value> {
    let s = v.as_str()?;
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())?;
    Some(Value::String(STANDARD.encode(bytes)))
}

/// A 64-bit integer as the proto3 JSON mapping writes it: a decimal string.
fn int64(v: &Value) -> Option<Value> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|n| n.to_string())
            .or_else(|| n.as_i64().map(|n| n.to_string())),
        Value::String(s) => s
            .parse::<i64>()
            .ok()
            .map(|n| n.to_string())
            .or_else(|| s.parse::<u64>().ok().map(|n| n.to_string())),
        _ => None,
    }
    .map(Value::String)
}

fn text(v: &Value) -> Option<Value> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_string()))
}

pub(crate) fn message_json(info: &MediaInfo, upload: &Value, media_type: &str) -> Value {
    let Some(kind) = MediaKind::from_name(media_type) else {
        return Value::Null;
    };
    let shape = shape(kind);
    let mut m = Map::new();
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(key.to_string(), v);
        }
    };
    let up = |k: &str| upload.get(k).filter(|v| !v.is_null());
    put("url", up("url").and_then(text));
    put("directPath", up("direct_path").and_then(text));
    put("mediaKey", up("media_key").and_then(std_base64));
    put("fileSha256", up("file_sha256").and_then(std_base64));
    put("fileEncSha256", up("file_enc_sha256").and_then(std_base64));
    put("fileLength", up("file_length").and_then(int64));
    put(
        "mediaKeyTimestamp",
        up("media_key_timestamp").and_then(int64),
    );
    if shape.sidecar {
        put(
            "streamingSidecar",
            up("streaming_sidecar").and_then(std_base64),
        );
    }
    if shape.server_thumbnail {
        let t = up("thumbnail_info");
        put(
            "thumbnailDirectPath",
            t.and_then(|t| t.get("thumbnail_direct_path"))
                .and_then(text),
        );
        put(
            "thumbnailSha256",
            t.and_then(|t| t.get("thumbnail_sha256"))
                .and_then(std_base64),
        );
        put(
            "thumbnailEncSha256",
            t.and_then(|t| t.get("thumbnail_enc_sha256"))
                .and_then(std_base64),
        );
        // An uploaded thumbnail's own size; one the CDN made (server_thumb_gen) is
        // described by the media's size (`WAWebMediaPrepHelpers.maybeGetThumbnailData`).
        if let Some(t) = t.filter(|t| t.get("thumbnail_direct_path").is_some()) {
            let side = |k: &str, own: Option<u32>| {
                t.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .or(own)
                    .map(Value::from)
            };
            put("thumbnailHeight", side("thumbnail_height", info.height));
            put("thumbnailWidth", side("thumbnail_width", info.width));
        }
    }
    let mimetype = info
        .mimetype
        .clone()
        .or_else(|| (kind == MediaKind::Document).then(|| "application/octet-stream".to_string()));
    put("mimetype", mimetype.map(Value::String));
    if shape.dimensions {
        put("width", info.width.map(Value::from));
        put("height", info.height.map(Value::from));
    }
    if shape.seconds {
        put("seconds", info.seconds.map(Value::from));
    }
    if shape.thumbnail {
        put(
            "jpegThumbnail",
            info.jpeg_thumbnail
                .as_deref()
                .map(|t| Value::String(STANDARD.encode(t))),
        );
    }
    match kind {
        MediaKind::Gif => put("gifPlayback", Some(Value::Bool(true))),
        MediaKind::Ptt => {
            put("ptt", Some(Value::Bool(true)));
            put(
                "waveform",
                info.waveform
                    .as_deref()
                    .map(|w| Value::String(STANDARD.encode(w))),
            );
        }
        MediaKind::Sticker => {
            put("isAnimated", info.animated.map(Value::Bool));
            if info.animated == Some(true) {
                let length = up("first_frame_length")
                    .and_then(Value::as_u64)
                    .or(info.first_frame_length)
                    .and_then(|l| u32::try_from(l).ok());
                put("firstFrameLength", length.map(Value::from));
                put(
                    "firstFrameSidecar",
                    up("first_frame_sidecar").and_then(std_base64),
                );
            }
        }
        MediaKind::Document => {
            put("fileName", info.file_name.clone().map(Value::String));
            put("pageCount", info.page_count.map(Value::from));
        }
        _ => {}
    }
    Value::Object(m)
}
