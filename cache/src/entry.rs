//! What the cache keeps of one upload: the first pass's summary (the media key, its
//! timestamp, the MAC and checkpoints that regenerate the body) and the CDN's answer. It
//! is stored as one small JSON document; the media key is in it, so stores keep it
//! private (PROTOCOL v3 §9; see the crate docs on securing a store).

use std::time::Duration;

use serde_json::{json, Map, Value};
use wamedia::{b64, EncryptedMedia, MediaKey, ThumbnailInfo, UploadResult};
use wamedia_driver::PreparedUpload;

/// The largest stored entry read back: a 4 GiB file's checkpoints and sidecar are about
/// 2 MiB in base64.
pub const MAX_ENTRY_LEN: usize = 16 << 20;

/// Why a stored entry was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Larger than [`MAX_ENTRY_LEN`].
    #[error("a stored entry of {0} bytes is larger than any upload makes")]
    TooLarge(usize),
    /// Not an entry this version wrote; names the field that was wrong.
    #[error("a stored entry is malformed ({0})")]
    Malformed(&'static str),
}

/// One cached upload. `Debug` never shows the media key.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The first pass's summary, with the media key.
    pub media: EncryptedMedia,
    /// When the media key was made (Unix seconds): the message's `mediaKeyTimestamp`,
    /// and where the entry's age is counted from.
    pub media_key_timestamp: i64,
    /// When the body was last sent in full (Unix seconds).
    pub uploaded_at: i64,
    /// The CDN's answer to that upload.
    pub url: String,
    /// Its `direct_path` (whose `oe` bounds the entry's life).
    pub direct_path: String,
    /// The host that took it.
    pub host: String,
    /// Its `handle`, `metadata_url`, `object_id`, `meta_hmac`, `fbid`, `ts`.
    pub extra: Extra,
    /// Its `thumbnail_info`.
    pub thumbnail_info: Option<ThumbnailInfo>,
}

/// The optional fields of the CDN's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// `handle`.
    pub handle: Option<String>,
    /// `metadata_url`.
    pub metadata_url: Option<String>,
    /// `object_id`.
    pub object_id: Option<String>,
    /// `meta_hmac`.
    pub meta_hmac: Option<String>,
    /// `fbid`.
    pub fbid: Option<String>,
    /// `ts`.
    pub ts: Option<i64>,
}

/// The `oe` of a direct path or URL: the expiry of its signature, hex Unix seconds in
/// the query (PROTOCOL §5). `None` when absent or not 1 to 16 hex digits.
pub fn oe_of(direct_path: &str) -> Option<u64> {
    let (_, query) = direct_path.split_once('?')?;
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("oe="))?
        .split('#')
        .next()?;
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(value, 16).ok()
}

impl Entry {
    /// The entry of a finished upload: `None` for unencrypted media or a result with no
    /// key timestamp (nothing to reuse).
    pub fn of(prepared: &PreparedUpload, result: &UploadResult, now_unix: i64) -> Option<Entry> {
        let media = prepared.encrypted_media()?.clone();
        Some(Entry {
            media,
            media_key_timestamp: result.media_key_timestamp?,
            uploaded_at: now_unix,
            url: result.url.clone(),
            direct_path: result.direct_path.clone(),
            host: result.host.clone(),
            extra: Extra {
                handle: result.handle.clone(),
                metadata_url: result.metadata_url.clone(),
                object_id: result.object_id.clone(),
                meta_hmac: result.meta_hmac.clone(),
                fbid: result.fbid.clone(),
                ts: result.ts,
            },
            thumbnail_info: result.thumbnail_info.clone(),
        })
    }

    /// Until when (Unix seconds) the entry may answer: `max_age` after the key was made,
    /// and `margin` before the direct path's `oe` (a receiver needs time to download).
    pub fn expires_at(&self, max_age: Duration, margin: Duration) -> i64 {
        let by_age = self
            .media_key_timestamp
            .saturating_add(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        match oe_of(&self.direct_path) {
            Some(oe) => {
                let oe = i64::try_from(oe).unwrap_or(i64::MAX);
                let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
                by_age.min(oe.saturating_sub(margin))
            }
            None => by_age,
        }
    }

    /// Fills in what a probe's answer left out (the probe says only `url` and
    /// `direct_path`) from the stored answer, and marks the result as from the cache.
    pub fn complete(&self, r: &mut UploadResult) {
        let e = &self.extra;
        for (have, stored) in [
            (&mut r.handle, &e.handle),
            (&mut r.metadata_url, &e.metadata_url),
            (&mut r.object_id, &e.object_id),
            (&mut r.meta_hmac, &e.meta_hmac),
            (&mut r.fbid, &e.fbid),
        ] {
            if have.is_none() {
                have.clone_from(stored);
            }
        }
        if r.ts.is_none() {
            r.ts = e.ts;
        }
        if r.thumbnail_info.is_none() {
            r.thumbnail_info.clone_from(&self.thumbnail_info);
        }
        r.cached = true;
    }

    /// The entry as stored.
    pub fn encode(&self) -> Vec<u8> {
        let m = &self.media;
        let checkpoints: Vec<u8> = m.checkpoints.iter().flatten().copied().collect();
        let mut o = Map::new();
        o.insert("v".into(), 1.into());
        o.insert("media_key".into(), m.media_key.to_base64().into());
        o.insert(
            "media_key_timestamp".into(),
            self.media_key_timestamp.into(),
        );
        o.insert("uploaded_at".into(), self.uploaded_at.into());
        o.insert("file_sha256".into(), b64::std(&m.file_sha256).into());
        o.insert(
            "file_enc_sha256".into(),
            b64::std(&m.file_enc_sha256).into(),
        );
        o.insert("file_length".into(), m.file_length.into());
        o.insert("mac".into(), b64::std(&m.mac).into());
        o.insert("checkpoints".into(), b64::std(&checkpoints).into());
        if let Some(s) = &m.streaming_sidecar {
            o.insert("streaming_sidecar".into(), b64::std(s).into());
        }
        o.insert("url".into(), self.url.clone().into());
        o.insert("direct_path".into(), self.direct_path.clone().into());
        o.insert("host".into(), self.host.clone().into());
        let e = &self.extra;
        for (k, v) in [
            ("handle", &e.handle),
            ("metadata_url", &e.metadata_url),
            ("object_id", &e.object_id),
            ("meta_hmac", &e.meta_hmac),
            ("fbid", &e.fbid),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), v.clone().into());
            }
        }
        if let Some(ts) = e.ts {
            o.insert("ts".into(), ts.into());
        }
        if let Some(s) = &m.first_frame_sidecar {
            o.insert("first_frame_sidecar".into(), b64::std(s).into());
        }
        if let Some(l) = m.first_frame_length {
            o.insert("first_frame_length".into(), l.into());
        }
        if let Some(t) = &self.thumbnail_info {
            o.insert(
                "thumbnail_info".into(),
                json!({
                    "direct_path": t.direct_path,
                    "sha256": t.sha256,
                    "enc_sha256": t.enc_sha256,
                    "width": t.width,
                    "height": t.height,
                }),
            );
        }
        Value::Object(o).to_string().into_bytes()
    }

    /// An entry read back from a store: size first, then every field checked.
    ///
    /// # Errors
    /// [`EntryError`] naming what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        use EntryError::Malformed;
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|_| Malformed("not JSON"))?;
        if v["v"].as_u64() != Some(1) {
            return Err(Malformed("version"));
        }
        let text = |k: &'static str| v[k].as_str().ok_or(Malformed(k));
        let opt = |k: &str| v[k].as_str().map(str::to_owned);
        let bytes_of = |k: &'static str| b64::decode_any(text(k)?).map_err(|_| Malformed(k));
        let sha = |k: &'static str| {
            <[u8; 32]>::try_from(bytes_of(k)?.as_slice()).map_err(|_| Malformed(k))
        };
        let media_key: MediaKey = text("media_key")?
            .parse()
            .map_err(|_| Malformed("media_key"))?;
        let mac =
            <[u8; 10]>::try_from(bytes_of("mac")?.as_slice()).map_err(|_| Malformed("mac"))?;
        let raw = bytes_of("checkpoints")?;
        if raw.len() % 16 != 0 {
            return Err(Malformed("checkpoints"));
        }
        let checkpoints = raw
            .chunks_exact(16)
            .map(|c| <[u8; 16]>::try_from(c).map_err(|_| Malformed("checkpoints")))
            .collect::<Result<Vec<_>, _>>()?;
        let streaming_sidecar = match v.get("streaming_sidecar") {
            None => None,
            Some(_) => Some(bytes_of("streaming_sidecar")?),
        };
        let dimension = |t: &Value, k: &str| t[k].as_u64().and_then(|n| u32::try_from(n).ok());
        let thumbnail_info = v.get("thumbnail_info").map(|t| ThumbnailInfo {
            direct_path: t["direct_path"].as_str().map(str::to_owned),
            sha256: t["sha256"].as_str().map(str::to_owned),
            enc_sha256: t["enc_sha256"].as_str().map(str::to_owned),
            width: dimension(t, "width"),
            height: dimension(t, "height"),
        });
        let first_frame_sidecar = match v.get("first_frame_sidecar") {
            None => None,
            Some(_) => Some(
                <[u8; wamedia::sidecar::ENTRY]>::try_from(
                    bytes_of("first_frame_sidecar")?.as_slice(),
                )
                .map_err(|_| Malformed("first_frame_sidecar"))?,
            ),
        };
        let first_frame_length = match v.get("first_frame_length") {
            None => None,
            Some(l) => Some(l.as_u64().ok_or(Malformed("first_frame_length"))?),
        };
        Ok(Entry {
            media: EncryptedMedia {
                media_key,
                file_sha256: sha("file_sha256")?,
                file_enc_sha256: sha("file_enc_sha256")?,
                file_length: v["file_length"].as_u64().ok_or(Malformed("file_length"))?,
                mac,
                checkpoints,
                streaming_sidecar,
                first_frame_sidecar,
                first_frame_length,
            },
            media_key_timestamp: v["media_key_timestamp"]
                .as_i64()
                .ok_or(Malformed("media_key_timestamp"))?,
            uploaded_at: v["uploaded_at"].as_i64().ok_or(Malformed("uploaded_at"))?,
            url: text("url")?.to_owned(),
            direct_path: text("direct_path")?.to_owned(),
            host: text("host")?.to_owned(),
            extra: Extra {
                handle: opt("handle"),
                metadata_url: opt("metadata_url"),
                object_id: opt("object_id"),
                meta_hmac: opt("meta_hmac"),
                fbid: opt("fbid"),
                ts: v["ts"].as_i64(),
            },
            thumbnail_info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oe_is_read_from_the_query_only_when_sane() {
        assert_eq!(
            oe_of("/v/t62/x?ccb=11-4&oh=a&oe=6A1B2C3D&_nc_sid=5"),
            Some(0x6A1B2C3D)
        );
        assert_eq!(oe_of("/v/t62/x?oe=zz"), None);
        assert_eq!(oe_of("/v/t62/x?oe="), None);
        assert_eq!(oe_of("/v/t62/x?oe=11111111111111111"), None, "17 digits");
        assert_eq!(oe_of("/v/t62/oe=12"), None, "not in the query");
    }

    #[test]
    fn hostile_entries_are_refused_never_panic() {
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"v\":2}",
            b"{\"v\":1,\"media_key\":\"AAAA\"}",
        ] {
            assert!(Entry::decode(bad).is_err());
        }
        assert!(matches!(
            Entry::decode(&vec![b' '; MAX_ENTRY_LEN + 1]),
            Err(EntryError::TooLarge(_))
        ));
    }
}
