//! What the fake CDN's URLs mean: the v3 upload paths (PROTOCOL §1), tokens, `media_id`,
//! and the signed direct paths it hands out and serves (PROTOCOL §4–5).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// One upload path the CDN takes, and what it stores there.
#[derive(Debug)]
pub(super) struct Route {
    /// The upload path, e.g. `/mms/image`.
    pub path: &'static str,
    /// Bodies are `ciphertext ‖ mac10` (`16k + 10` bytes); else plaintext.
    pub encrypted: bool,
    /// Newsletter media: the answer carries a `handle`.
    pub newsletter: bool,
    /// Takes `server_thumb_gen=1` (images and videos).
    pub thumbnails: bool,
    /// The download `mms-type`s an object stored through this path is served under.
    pub mms_types: &'static [&'static str],
}

const IMAGE: &[&str] = &["image", "sticker"];
const VIDEO: &[&str] = &["video", "gif", "ptv"];
const AUDIO: &[&str] = &["audio", "ptt"];
// Channel media is downloaded under its `newsletter-{type}` name (PROTOCOL v3 §1).
const NL_IMAGE: &[&str] = &["newsletter-image", "newsletter-sticker"];
const NL_VIDEO: &[&str] = &["newsletter-video", "newsletter-gif", "newsletter-ptv"];
const NL_AUDIO: &[&str] = &["newsletter-audio", "newsletter-ptt"];

const fn mms(path: &'static str, thumbnails: bool, mms_types: &'static [&'static str]) -> Route {
    Route {
        path,
        encrypted: true,
        newsletter: false,
        thumbnails,
        mms_types,
    }
}

const fn plain(path: &'static str, thumbnails: bool, mms_types: &'static [&'static str]) -> Route {
    Route {
        path,
        encrypted: false,
        newsletter: true,
        thumbnails,
        mms_types,
    }
}

/// Every v3 upload path. Peers upload stickers to `/mms/image`, voice notes to
/// `/mms/audio` and gifs to `/mms/video` and download them under either name, so the
/// image, video and audio families each share their `mms-type`s.
pub(super) static ROUTES: &[Route] = &[
    mms("/mms/image", true, IMAGE),
    mms("/mms/sticker", false, IMAGE),
    mms("/mms/video", true, VIDEO),
    mms("/mms/gif", false, VIDEO),
    mms("/mms/audio", false, AUDIO),
    mms("/mms/ptt", false, AUDIO),
    mms("/mms/document", false, &["document"]),
    mms("/mms/md-msg-hist", false, &["md-msg-hist"]),
    mms("/mms/md-app-state", false, &["md-app-state"]),
    mms("/mms/sticker-pack", false, &["sticker-pack"]),
    mms(
        "/mms/thumbnail-sticker-pack",
        false,
        &["thumbnail-sticker-pack"],
    ),
    mms("/mms/thumbnail-link", false, &["thumbnail-link"]),
    mms("/mms/thumbnail-image", false, &["thumbnail-image"]),
    mms("/mms/thumbnail-video", false, &["thumbnail-video"]),
    mms("/mms/thumbnail-document", false, &["thumbnail-document"]),
    Route {
        path: "/product/image",
        encrypted: false,
        newsletter: false,
        thumbnails: false,
        mms_types: IMAGE,
    },
    plain("/newsletter/newsletter-image", true, NL_IMAGE),
    plain("/newsletter/newsletter-sticker", false, NL_IMAGE),
    plain("/newsletter/newsletter-video", true, NL_VIDEO),
    plain("/newsletter/newsletter-gif", false, NL_VIDEO),
    plain("/newsletter/newsletter-ptv", false, NL_VIDEO),
    plain("/newsletter/newsletter-audio", false, NL_AUDIO),
    plain("/newsletter/newsletter-ptt", false, NL_AUDIO),
    plain(
        "/newsletter/newsletter-document",
        false,
        &["newsletter-document"],
    ),
    plain(
        "/newsletter/newsletter-sticker-pack",
        false,
        &["newsletter-sticker-pack"],
    ),
    plain(
        "/newsletter/newsletter-thumbnail-link",
        false,
        &["newsletter-thumbnail-link"],
    ),
];

/// What a server-made thumbnail (`server_thumb_gen=1`) is stored as.
pub(super) static SERVER_THUMBNAIL: Route = Route {
    path: "(server thumbnail)",
    encrypted: false,
    newsletter: false,
    thumbnails: false,
    mms_types: &["thumbnail-image", "thumbnail-video"],
};

/// The download `mms-type`s of PROTOCOL v3 §1, channel media's `newsletter-*` names
/// included.
pub(super) const MMS_TYPES: &[&str] = &[
    "image",
    "sticker",
    "video",
    "gif",
    "audio",
    "ptt",
    "document",
    "md-msg-hist",
    "md-app-state",
    "sticker-pack",
    "thumbnail-sticker-pack",
    "thumbnail-link",
    "thumbnail-image",
    "thumbnail-video",
    "thumbnail-document",
    "ptv",
    "newsletter-image",
    "newsletter-sticker",
    "newsletter-video",
    "newsletter-gif",
    "newsletter-ptv",
    "newsletter-audio",
    "newsletter-ptt",
    "newsletter-document",
    "newsletter-sticker-pack",
    "newsletter-thumbnail-link",
];

/// The route by its upload path (`/mms/image`, …).
pub(super) fn route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path)
}

/// `{upload path}/{token}` → the route and the token text.
pub(super) fn upload_route(path: &str) -> Option<(&'static Route, &str)> {
    let (prefix, token) = path.rsplit_once('/')?;
    Some((route(prefix)?, token)).filter(|(_, t)| !t.is_empty())
}

/// A token: base64url of a SHA-256, with or without `=` padding.
pub(super) fn decode_token(s: &str) -> Option<[u8; 32]> {
    let bytes = URL_SAFE
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .ok()?;
    bytes.try_into().ok()
}

/// The canonical (unpadded) text of a token, as files are named.
pub(super) fn token_text(digest: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(digest)
}

/// A `media_id`: a decimal integer below 2^53.
pub(super) fn valid_media_id(s: &str) -> bool {
    super::http::parse_decimal(s).is_some_and(|n| n < 1 << 53)
}

/// The object id in a direct path, made from the body's SHA-256, shaped like real ones:
/// `{n}_{n}_{n}_n.enc` for encrypted media, `An…` for plaintext media.
pub(super) fn object_id(digest: &[u8; 32], encrypted: bool) -> String {
    let n = |range: std::ops::Range<usize>, modulo: u64| {
        let mut b = [0u8; 8];
        b[8 - range.len()..].copy_from_slice(&digest[range]);
        u64::from_be_bytes(b) % modulo
    };
    if encrypted {
        format!(
            "{}_{}_{}_n.enc",
            n(0..4, 100_000_000),
            n(4..12, 10_000_000_000_000_000),
            n(12..20, 10_000_000_000_000_000_000)
        )
    } else {
        format!("An{}", URL_SAFE_NO_PAD.encode(&digest[..24]))
    }
}

const ENCRYPTED_PREFIX: &str = "/v/t62.7118-24/";
const PLAIN_PREFIX: &str = "/m1/v/t24/";

/// How long a direct path the fake CDN hands out stays valid.
const URL_LIFETIME_SECS: u64 = 14 * 24 * 3600;

/// Seconds since the Unix epoch.
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `oh` signature of a direct path: it binds the object path to its expiry.
fn signature(path: &str, oe: u32) -> String {
    let mut h = Sha256::new();
    h.update(b"wamedia fake CDN url key\0");
    h.update(path.as_bytes());
    h.update(oe.to_be_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh direct path for an object id, valid for 14 days from now:
/// `/v/t62.7118-24/{id}?ccb=11-4&oh=…&oe=…&_nc_sid=5e03e0` (encrypted) or
/// `/m1/v/t24/{id}?ccb=9-4&oh=…&oe=…&_nc_sid=5e03e0` (plaintext).
pub(super) fn direct_path(id: &str, encrypted: bool) -> String {
    let oe = u32::try_from(now_secs().saturating_add(URL_LIFETIME_SECS)).unwrap_or(u32::MAX);
    let (prefix, ccb) = if encrypted {
        (ENCRYPTED_PREFIX, "11-4")
    } else {
        (PLAIN_PREFIX, "9-4")
    };
    let path = format!("{prefix}{id}");
    let oh = signature(&path, oe);
    format!("{path}?ccb={ccb}&oh={oh}&oe={oe:08X}&_nc_sid=5e03e0")
}

/// The object id of a download path, if it is one of ours.
pub(super) fn download_id(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix(ENCRYPTED_PREFIX)
        .or_else(|| path.strip_prefix(PLAIN_PREFIX))?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// Why a download path's signature does not hold, if it does not: the body of a 403.
pub(super) fn signature_problem(
    path: &str,
    oh: Option<&str>,
    oe: Option<&str>,
) -> Option<&'static str> {
    let oe = oe
        .filter(|s| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|s| u32::from_str_radix(s, 16).ok());
    let Some(oe) = oe else {
        return Some("Bad URL timestamp");
    };
    if u64::from(oe) < now_secs() {
        return Some("URL signature expired");
    }
    if !oh.is_some_and(|oh| oh.eq_ignore_ascii_case(&signature(path, oe))) {
        return Some("Bad URL hash");
    }
    None
}
