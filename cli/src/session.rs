//! Commands for what the WhatsApp session does around the CDN: the media retry
//! receipt and notification (asking the sender's phone to upload gone media again),
//! deleting a history-sync blob, and what `wamedia stream` serves (its server is
//! [`crate::stream`]).

use wamedia::retry::{decrypt_retry_notification, encrypt_retry_receipt};
use wamedia::*;

use crate::net::{client_opts, conn_provider};
use crate::{media_key, media_type, Fail, Net};

fn b64_arg(flag: &str, s: &str) -> Result<Vec<u8>, Fail> {
    b64::decode_any(s).map_err(|_| Fail::usage(format!("{flag}: not base64")))
}

/// `wamedia retry-receipt`: the encrypted receipt asking the sender's phone to upload
/// the media of a message again, as `{ciphertext, iv}` (base64).
pub fn retry_receipt(key: &str, message_id: &str) -> Result<(), Fail> {
    let key = media_key("--media-key", key)?;
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).map_err(|e| Fail::usage(format!("no randomness: {e}")))?;
    let ct = encrypt_retry_receipt(&key, message_id, &iv);
    println!(
        "{}",
        serde_json::json!({ "ciphertext": b64::std(&ct), "iv": b64::std(&iv) })
    );
    Ok(())
}

/// `wamedia retry-notification`: decrypts the phone's answer, printing
/// `{stanza_id, direct_path, result}`.
pub fn retry_notification(
    key: &str,
    message_id: &str,
    iv: &str,
    ciphertext: &str,
) -> Result<(), Fail> {
    let key = media_key("--media-key", key)?;
    let iv = b64_arg("--iv", iv)?;
    let ct = b64_arg("--ciphertext", ciphertext)?;
    let n = decrypt_retry_notification(&key, message_id, &iv, &ct).map_err(|e| Fail {
        code: 4,
        msg: e.to_string(),
        detail: None,
    })?;
    let esc = |s: &Option<String>| s.as_deref().map(wamedia::escape);
    println!(
        "{}",
        serde_json::json!({
            "stanza_id": esc(&n.stanza_id),
            "direct_path": esc(&n.direct_path),
            "result": n.result.name(),
        })
    );
    Ok(())
}

/// `wamedia delete`: deletes a history-sync blob, printing `{host, status}`.
pub fn delete(
    direct_path: &str,
    file_enc_sha256: &str,
    handle: Option<String>,
    companion_secret: Option<String>,
    net: &Net,
) -> Result<(), Fail> {
    let file_enc_sha256 = b64::decode_sha256(file_enc_sha256)
        .map_err(|e| Fail::usage(format!("--file-enc-sha256: {e}")))?;
    let provider = conn_provider(net)?.ok_or_else(|| {
        Fail::usage(
            "delete needs a media connection: --media-conn-command, --media-conn, or --auth/--host",
        )
    })?;
    let spec = DeleteSpec {
        direct_path: direct_path.to_owned(),
        file_enc_sha256,
        handle,
        companion_secret,
    };
    let o = client_opts(net, false);
    let r = crate::net::run(net, o, &crate::net::share(provider), crate::net::Del(spec))?;
    println!(
        "{}",
        serde_json::json!({ "host": r.host, "status": r.status })
    );
    Ok(())
}

/// What `wamedia stream` serves.
pub struct Stream {
    /// The media, with its sidecar and length.
    pub spec: DownloadSpec,
    /// The `Content-Type` to answer with.
    pub content_type: String,
}

/// The content type a player expects for `t`.
pub fn content_type(t: &MediaType) -> &'static str {
    match t {
        MediaType::Video | MediaType::Gif | MediaType::Ptv => "video/mp4",
        MediaType::Ptt => "audio/ogg",
        MediaType::Audio => "audio/mpeg",
        MediaType::Image => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Builds the download spec of `wamedia stream` from its flags.
pub fn stream_spec(
    t: &str,
    direct_path: &str,
    key: &str,
    file_length: u64,
    sidecar: &str,
    file_enc_sha256: Option<&str>,
) -> Result<Stream, Fail> {
    let t = media_type(t)?;
    let sidecar = b64_arg("--streaming-sidecar", sidecar)?;
    let file_enc_sha256 = file_enc_sha256
        .map(|s| b64::decode_sha256(s).map_err(|e| Fail::usage(format!("--file-enc-sha256: {e}"))))
        .transpose()?;
    Ok(Stream {
        content_type: content_type(&t).to_owned(),
        spec: DownloadSpec {
            media_type: t,
            media_key: Some(media_key("--media-key", key)?),
            source: Source::DirectPath(direct_path.to_owned()),
            expected: Expected {
                file_enc_sha256,
                file_sha256: None,
                file_length: Some(file_length),
            },
            streaming_sidecar: Some(sidecar),
        },
    })
}
